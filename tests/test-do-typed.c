/* Porter — typed interfaces: one vtable for local objects and proxies,
 * every D-Bus type in and out, fds, errors, signature mismatches, dead
 * connections.  The remote side is a DoConnection served by a thread of
 * this process.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do.h"
#include "do-test-util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define TEST_ERROR (g_quark_from_static_string ("test-typed-error-quark"))

static const gchar types_xml[] =
  "<node>"
  " <interface name='org.porter.test.Types'>"
  "  <method name='Echo'>"
  "   <arg type='y' direction='in'/><arg type='b' direction='in'/>"
  "   <arg type='n' direction='in'/><arg type='q' direction='in'/>"
  "   <arg type='i' direction='in'/><arg type='u' direction='in'/>"
  "   <arg type='x' direction='in'/><arg type='t' direction='in'/>"
  "   <arg type='d' direction='in'/><arg type='s' direction='in'/>"
  "   <arg type='g' direction='in'/>"
  "   <arg type='y' direction='out'/><arg type='b' direction='out'/>"
  "   <arg type='n' direction='out'/><arg type='q' direction='out'/>"
  "   <arg type='i' direction='out'/><arg type='u' direction='out'/>"
  "   <arg type='x' direction='out'/><arg type='t' direction='out'/>"
  "   <arg type='d' direction='out'/><arg type='s' direction='out'/>"
  "   <arg type='g' direction='out'/>"
  "  </method>"
  "  <method name='EchoV'><arg type='v' direction='in'/><arg type='v' direction='out'/></method>"
  "  <method name='EchoC'>"
  "   <arg type='a{sv}' direction='in'/><arg type='(ias)' direction='in'/>"
  "   <arg type='aay' direction='in'/>"
  "   <arg type='a{sv}' direction='out'/><arg type='(ias)' direction='out'/>"
  "   <arg type='aay' direction='out'/>"
  "  </method>"
  "  <method name='Cat'><arg type='h' direction='in'/><arg type='h' direction='in'/>"
  "   <arg type='h' direction='out'/></method>"
  "  <method name='Fail'><arg type='i' direction='in'/></method>"
  "  <method name='Ping'><arg type='i' direction='in'/>"
  "   <annotation name='org.freedesktop.DBus.Method.NoReply' value='true'/></method>"
  "  <method name='Count'><arg type='u' direction='out'/></method>"
  " </interface>"
  "</node>";

/* The same interface name with other signatures: Echo takes one int and
 * Count answers a string. */
static const gchar other_xml[] =
  "<node>"
  " <interface name='org.porter.test.Types'>"
  "  <method name='Echo'><arg type='i' direction='in'/><arg type='i' direction='out'/></method>"
  "  <method name='Count'><arg type='s' direction='out'/></method>"
  " </interface>"
  "</node>";

typedef struct _TestTypes TestTypes;
struct _TestTypes {
  gboolean (*echo) (TestTypes *self, guint8 y, gboolean b, gint16 n, guint16 q, gint32 i,
                    guint32 u, gint64 x, guint64 t, gdouble d, const char *s, const char *g,
                    guint8 *oy, gboolean *ob, gint16 *on, guint16 *oq, gint32 *oi,
                    guint32 *ou, gint64 *ox, guint64 *ot, gdouble *od, char **os, char **og,
                    GError **error);
  gboolean (*echo_v) (TestTypes *self, GVariant *v, GVariant **out, GError **error);
  gboolean (*echo_c) (TestTypes *self, GVariant *dict, GVariant *st, GVariant *aay,
                      GVariant **odict, GVariant **ost, GVariant **oaay, GError **error);
  gboolean (*cat) (TestTypes *self, int a, int b, int *out, GError **error);
  gboolean (*fail) (TestTypes *self, gint32 code, GError **error);
  gboolean (*ping) (TestTypes *self, gint32 value, GError **error);
  gboolean (*count) (TestTypes *self, guint32 *n, GError **error);
};

typedef struct _TestOther TestOther;
struct _TestOther {
  gboolean (*echo) (TestOther *self, gint32 i, gint32 *out, GError **error);
  gboolean (*count) (TestOther *self, char **out, GError **error);
};

/* ------------------------------------------------------------ the implementation */

typedef struct {
  TestTypes iface;
  guint32 pings;        /* sum of Ping's values */
  gboolean *destroyed;  /* set when the object lets go of the instance */
} Impl;

static gboolean
impl_echo (TestTypes *self, guint8 y, gboolean b, gint16 n, guint16 q, gint32 i,
           guint32 u, gint64 x, guint64 t, gdouble d, const char *s, const char *g,
           guint8 *oy, gboolean *ob, gint16 *on, guint16 *oq, gint32 *oi,
           guint32 *ou, gint64 *ox, guint64 *ot, gdouble *od, char **os, char **og,
           GError **error)
{
  *oy = y; *ob = b; *on = n; *oq = q; *oi = i; *ou = u;
  *ox = x; *ot = t; *od = d;
  *os = g_strdup (s);
  *og = g_strdup (g);
  return TRUE;
}

static gboolean
impl_echo_v (TestTypes *self, GVariant *v, GVariant **out, GError **error)
{
  *out = g_variant_ref (v);
  return TRUE;
}

static gboolean
impl_echo_c (TestTypes *self, GVariant *dict, GVariant *st, GVariant *aay,
             GVariant **odict, GVariant **ost, GVariant **oaay, GError **error)
{
  *odict = g_variant_ref (dict);
  *ost = g_variant_ref (st);
  *oaay = g_variant_ref (aay);
  return TRUE;
}

static gchar *
read_fd (int fd)
{
  GString *s = g_string_new (NULL);
  char buf[256];
  ssize_t r;

  while ((r = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (s, buf, r);
  return g_string_free (s, FALSE);
}

/* Reads both fds to their end and answers a pipe holding both texts. */
static gboolean
impl_cat (TestTypes *self, int a, int b, int *out, GError **error)
{
  g_autofree gchar *ta = read_fd (a);
  g_autofree gchar *tb = read_fd (b);
  int p[2];

  if (pipe2 (p, O_CLOEXEC) < 0)
    {
      g_set_error (error, TEST_ERROR, 1, "pipe failed");
      return FALSE;
    }
  g_assert_cmpint (write (p[1], ta, strlen (ta)), ==, (gssize) strlen (ta));
  g_assert_cmpint (write (p[1], tb, strlen (tb)), ==, (gssize) strlen (tb));
  close (p[1]);
  *out = p[0];
  return TRUE;
}

static gboolean
impl_fail (TestTypes *self, gint32 code, GError **error)
{
  if (code == 0)
    return FALSE;  /* an implementation bug: no error set */
  g_set_error (error, TEST_ERROR, code, "failed with %d", code);
  return FALSE;
}

static gboolean
impl_ping (TestTypes *self, gint32 value, GError **error)
{
  ((Impl *) self)->pings += (guint32) value;
  return TRUE;
}

static gboolean
impl_count (TestTypes *self, guint32 *n, GError **error)
{
  *n = ((Impl *) self)->pings;
  return TRUE;
}

static void
impl_free (gpointer data)
{
  Impl *impl = data;

  if (impl->destroyed)
    *impl->destroyed = TRUE;
  g_free (impl);
}

static DoInterface *
types_interface (void)
{
  g_autoptr(GError) error = NULL;
  DoInterface *iface = do_interface_new_for_xml (types_xml, "org.porter.test.Types", &error);

  g_assert_no_error (error);
  return iface;
}

static DoObject *
impl_new (DoInterface *iface, gboolean *destroyed)
{
  Impl *impl = g_new0 (Impl, 1);

  impl->iface.echo = impl_echo;
  impl->iface.echo_v = impl_echo_v;
  impl->iface.echo_c = impl_echo_c;
  impl->iface.cat = impl_cat;
  impl->iface.fail = impl_fail;
  impl->iface.ping = impl_ping;
  impl->iface.count = impl_count;
  impl->destroyed = destroyed;
  return do_object_new_for_instance (iface, impl, impl_free);
}

/* A served object and a proxy to it. */
typedef struct {
  TestServer *server;
  DoConnection *connection;
  DoProxy *proxy;
} Remote;

static void
remote_open (Remote *remote, DoObject *object)
{
  g_autoptr(GError) error = NULL;
  int port_fd;

  remote->server = test_server_start (object, &port_fd);
  remote->connection = do_connection_new_for_port_fd (port_fd, &error);
  g_assert_no_error (error);
  close (port_fd);
  remote->proxy = do_connection_get_root_proxy (remote->connection);
  g_assert_nonnull (remote->proxy);
}

static void
remote_close (Remote *remote)
{
  g_clear_pointer (&remote->proxy, do_proxy_unref);
  if (remote->connection)
    do_connection_close (remote->connection);
  g_clear_pointer (&remote->connection, do_connection_unref);
  if (remote->server)
    test_server_stop (g_steal_pointer (&remote->server));
}

static gpointer
remote_typed (Remote *remote, DoInterface *iface)
{
  g_autoptr(GError) error = NULL;
  gpointer typed = do_object_get_typed ((DoObject *) remote->proxy, iface, &error);

  g_assert_no_error (error);
  g_assert_nonnull (typed);
  return typed;
}

/* ------------------------------------------------------------ the checks
 * Each takes a TestTypes and does not know whether it is local or remote. */

static void
check_scalars (TestTypes *t)
{
  g_autoptr(GError) error = NULL;
  guint8 y = 0;
  gboolean b = FALSE;
  gint16 n = 0;
  guint16 q = 0;
  gint32 i = 0;
  guint32 u = 0;
  gint64 x = 0;
  guint64 tt = 0;
  gdouble d = 0;
  g_autofree char *s = NULL;
  g_autofree char *g = NULL;

  g_assert_true (t->echo (t, 0xfe, TRUE, G_MININT16, G_MAXUINT16, G_MININT32, G_MAXUINT32,
                          G_MININT64, G_MAXUINT64, -1.5e300, "h\xc3\xa9llo", "a{sv}(ih)",
                          &y, &b, &n, &q, &i, &u, &x, &tt, &d, &s, &g, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (y, ==, 0xfe);
  g_assert_true (b);
  g_assert_cmpint (n, ==, G_MININT16);
  g_assert_cmpuint (q, ==, G_MAXUINT16);
  g_assert_cmpint (i, ==, G_MININT32);
  g_assert_cmpuint (u, ==, G_MAXUINT32);
  g_assert_cmpint (x, ==, G_MININT64);
  g_assert_cmpuint (tt, ==, G_MAXUINT64);
  g_assert_cmpfloat (d, ==, -1.5e300);
  g_assert_cmpstr (s, ==, "h\xc3\xa9llo");
  g_assert_cmpstr (g, ==, "a{sv}(ih)");
  g_clear_pointer (&s, g_free);
  g_clear_pointer (&g, g_free);

  /* The other ends of the ranges, and empty strings. */
  g_assert_true (t->echo (t, 0, FALSE, G_MAXINT16, 0, G_MAXINT32, 0, G_MAXINT64, 0, 0.0, "", "",
                          &y, &b, &n, &q, &i, &u, &x, &tt, &d, &s, &g, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (y, ==, 0);
  g_assert_false (b);
  g_assert_cmpint (n, ==, G_MAXINT16);
  g_assert_cmpint (i, ==, G_MAXINT32);
  g_assert_cmpint (x, ==, G_MAXINT64);
  g_assert_cmpstr (s, ==, "");
  g_assert_cmpstr (g, ==, "");
}

static void
check_big_strings (TestTypes *t)
{
  /* Around the inline limit, and well out of line. */
  const gsize sizes[] = { 60 * 1024 - 200, 64 * 1024, 4 * 1024 * 1024 };

  for (gsize k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *big = g_malloc (sizes[k] + 1);
      g_autofree char *s = NULL;
      g_autofree char *g = NULL;
      guint8 y;
      gboolean b;
      gint16 n;
      guint16 q;
      gint32 i;
      guint32 u;
      gint64 x;
      guint64 tt;
      gdouble d;

      for (gsize j = 0; j < sizes[k]; j++)
        big[j] = 'a' + (char) (j % 26);
      big[sizes[k]] = '\0';
      g_assert_true (t->echo (t, 1, TRUE, 1, 1, 1, 1, 1, 1, 1, big, "s",
                              &y, &b, &n, &q, &i, &u, &x, &tt, &d, &s, &g, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (strlen (s), ==, sizes[k]);
      g_assert_true (strcmp (s, big) == 0);
    }
}

static void
check_containers (TestTypes *t)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) dict = NULL;
  g_autoptr(GVariant) st = NULL;
  g_autoptr(GVariant) aay = NULL;
  g_autoptr(GVariant) odict = NULL;
  g_autoptr(GVariant) ost = NULL;
  g_autoptr(GVariant) oaay = NULL;
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "nested", g_variant_new_parsed ("[{'a': <[1, 2]>}, {'b': <('x', [<@ay []>])>}]"));
  g_variant_builder_add (&b, "{sv}", "empty", g_variant_new_parsed ("@as []"));
  dict = g_variant_ref_sink (g_variant_builder_end (&b));
  st = g_variant_ref_sink (g_variant_new_parsed ("(-3, ['one', '', 'three'])"));
  aay = g_variant_ref_sink (g_variant_new_parsed ("[@ay [], [1, 2, 3], []]"));

  g_assert_true (t->echo_c (t, dict, st, aay, &odict, &ost, &oaay, &error));
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (dict, odict));
  g_assert_true (g_variant_equal (st, ost));
  g_assert_true (g_variant_equal (aay, oaay));
  g_clear_pointer (&odict, g_variant_unref);
  g_clear_pointer (&ost, g_variant_unref);
  g_clear_pointer (&oaay, g_variant_unref);

  /* Empty containers. */
  g_clear_pointer (&dict, g_variant_unref);
  g_clear_pointer (&st, g_variant_unref);
  g_clear_pointer (&aay, g_variant_unref);
  dict = g_variant_ref_sink (g_variant_new_parsed ("@a{sv} {}"));
  st = g_variant_ref_sink (g_variant_new_parsed ("(0, @as [])"));
  aay = g_variant_ref_sink (g_variant_new_parsed ("@aay []"));
  g_assert_true (t->echo_c (t, dict, st, aay, &odict, &ost, &oaay, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (odict), ==, 0);
  g_assert_cmpuint (g_variant_n_children (oaay), ==, 0);
  g_assert_false (g_variant_is_floating (odict));
}

static void
check_variants (TestTypes *t)
{
  const gchar *values[] = {
    "int32 7", "'text'", "<<(1, 'deep')>>", "{'k': [<1>, <'v'>]}", "@aa{sv} []",
  };

  for (gsize k = 0; k < G_N_ELEMENTS (values); k++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) in = g_variant_ref_sink (g_variant_new_parsed (values[k]));
      g_autoptr(GVariant) out = NULL;

      g_assert_true (t->echo_v (t, in, &out, &error));
      g_assert_no_error (error);
      g_assert_true (g_variant_equal (in, out));
    }
}

static int
pipe_with (const char *text)
{
  int p[2];

  g_assert_cmpint (pipe2 (p, O_CLOEXEC), ==, 0);
  g_assert_cmpint (write (p[1], text, strlen (text)), ==, (gssize) strlen (text));
  close (p[1]);
  return p[0];
}

static void
check_fds (TestTypes *t)
{
  g_autoptr(GError) error = NULL;
  int a = pipe_with ("left,"), b = pipe_with ("right");
  int out = -1;
  g_autofree gchar *text = NULL;

  g_assert_true (t->cat (t, a, b, &out, &error));
  g_assert_no_error (error);
  g_assert_cmpint (out, >=, 0);
  text = read_fd (out);
  g_assert_cmpstr (text, ==, "left,right");
  close (out);
  close (a);
  close (b);
}

static void
check_errors_and_oneway (TestTypes *t)
{
  g_autoptr(GError) error = NULL;
  guint32 n = 0;

  g_assert_false (t->fail (t, 42, &error));
  g_assert_error (error, TEST_ERROR, 42);
  g_assert_cmpstr (error->message, ==, "failed with 42");
  g_clear_error (&error);

  g_assert_true (t->ping (t, 5, &error));
  g_assert_true (t->ping (t, 6, &error));
  g_assert_true (t->count (t, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 11);
}

static void
run_checks (TestTypes *t)
{
  check_scalars (t);
  check_big_strings (t);
  check_containers (t);
  check_variants (t);
  check_fds (t);
  check_errors_and_oneway (t);
}

/* ------------------------------------------------------------ tests */

static void
test_interface_interned (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoInterface) a = types_interface ();
  g_autoptr(DoInterface) b = types_interface ();
  g_autoptr(DoInterface) other = do_interface_new_for_xml (other_xml, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (a == b);
  g_assert_true (a != other);
  g_assert_cmpstr (do_interface_get_name (a), ==, "org.porter.test.Types");
  g_assert_cmpuint (do_interface_get_n_methods (a), ==, 7);
  g_assert_cmpuint (do_interface_get_n_methods (other), ==, 2);
  g_assert_true (do_interface_get_info (a)->methods[0] != NULL);
}

static void
test_interface_bad (void)
{
  const struct {
    const gchar *xml;
    gint code;
  } cases[] = {
    { "<node><interface name='a.B'><method name='M'><arg type='ii' direction='in'/>"
      "</method></interface></node>", DO_ERROR_INVALID_ARGUMENT },
    { "<node><interface name='a.B'><method name='M'><arg type='m' direction='in'/>"
      "</method></interface></node>", DO_ERROR_INVALID_ARGUMENT },
    { "<node><interface name='a.B'><method name='M'><arg type='i' direction='out'/>"
      "<annotation name='org.freedesktop.DBus.Method.NoReply' value='true'/>"
      "</method></interface></node>", DO_ERROR_INVALID_ARGUMENT },
    { "<node><interface name='a.B'><method name='M'/><method name='M'/>"
      "</interface></node>", DO_ERROR_INVALID_ARGUMENT },
    { "<node/>", DO_ERROR_INVALID_ARGUMENT },
  };

  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr(GError) error = NULL;
      DoInterface *iface = do_interface_new_for_xml (cases[k].xml, NULL, &error);

      g_assert_null (iface);
      g_assert_error (error, DO_ERROR, cases[k].code);
    }

  {
    g_autoptr(GError) error = NULL;
    g_assert_null (do_interface_new_for_xml ("<node><interface", NULL, &error));
    g_assert_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE);
  }
}

static void
test_local (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoInterface) iface = types_interface ();
  g_autoptr(DoInterface) other = do_interface_new_for_xml (other_xml, NULL, &error);
  gboolean destroyed = FALSE;
  DoObject *object = impl_new (iface, &destroyed);
  TestTypes *t;

  t = do_object_get_typed (object, iface, &error);
  g_assert_no_error (error);
  g_assert_nonnull (t);
  g_assert_true (t->echo == impl_echo);  /* the instance itself */
  run_checks (t);

  /* The same name with other signatures is refused. */
  g_assert_null (do_object_get_typed (object, other, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE);
  g_clear_error (&error);

  g_assert_false (destroyed);
  do_object_unref (object);
  g_assert_true (destroyed);
}

static void
test_remote (void)
{
  g_autoptr(DoInterface) iface = types_interface ();
  gboolean destroyed = FALSE;
  DoObject *object = impl_new (iface, &destroyed);
  Remote remote = { 0, };
  TestTypes *t;

  remote_open (&remote, object);
  t = remote_typed (&remote, iface);
  g_assert_true (t->echo != impl_echo);  /* a closure */
  /* One typed proxy per (proxy, interface). */
  g_assert_true (remote_typed (&remote, iface) == t);
  run_checks (t);

  remote_close (&remote);
  do_object_unref (object);
  g_assert_true (destroyed);
}

/* Proxies of one interface share its closures: the vtables are equal. */
static void
test_closures_shared (void)
{
  g_autoptr(DoInterface) iface = types_interface ();
  DoObject *object = impl_new (iface, NULL);
  Remote r1 = { 0, }, r2 = { 0, };
  gpointer *v1, *v2;

  remote_open (&r1, object);
  remote_open (&r2, object);
  v1 = remote_typed (&r1, iface);
  v2 = remote_typed (&r2, iface);
  g_assert_true (v1 != v2);
  for (guint k = 0; k < do_interface_get_n_methods (iface); k++)
    g_assert_true (v1[k] == v2[k]);
  remote_close (&r1);
  remote_close (&r2);
  do_object_unref (object);
}

static void
test_remote_bad_args (void)
{
  g_autoptr(DoInterface) iface = types_interface ();
  DoObject *object = impl_new (iface, NULL);
  Remote remote = { 0, };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  guint32 n = 1;
  guint8 y = 9;
  gboolean b;
  gint16 nn;
  guint16 q;
  gint32 i;
  guint32 u;
  gint64 x;
  guint64 tt;
  gdouble d;
  char *s = NULL, *g = NULL;
  TestTypes *t;

  remote_open (&remote, object);
  t = remote_typed (&remote, iface);

  /* Caught before sending: not UTF-8, not a signature, wrong container type,
   * not an fd.  The out pointers are left alone. */
  g_assert_false (t->echo (t, 1, TRUE, 1, 1, 1, 1, 1, 1, 1, "\xff", "s",
                           &y, &b, &nn, &q, &i, &u, &x, &tt, &d, &s, &g, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (t->echo (t, 1, TRUE, 1, 1, 1, 1, 1, 1, 1, "s", "(",
                           &y, &b, &nn, &q, &i, &u, &x, &tt, &d, &s, &g, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpuint (y, ==, 9);
  g_assert_null (s);
  {
    g_autoptr(GVariant) dict = g_variant_ref_sink (g_variant_new_parsed ("@a{sv} {}"));
    g_autoptr(GVariant) pair = g_variant_ref_sink (g_variant_new_parsed ("(1, 2)"));
    g_autoptr(GVariant) aay = g_variant_ref_sink (g_variant_new_parsed ("@aay []"));

    g_assert_false (t->echo_c (t, dict, pair, aay, &out, &out, &out, &error));
  }
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE);
  g_clear_error (&error);
  g_assert_null (out);
  g_assert_false (t->cat (t, -1, 0, &i, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* An implementation returning FALSE without an error still fails cleanly;
   * NULL out pointers are allowed. */
  g_assert_false (t->fail (t, 0, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_true (t->count (t, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (t->count (t, &n, &error));
  g_assert_cmpuint (n, ==, 0);

  remote_close (&remote);
  do_object_unref (object);
}

/* A caller and a server that disagree on signatures: refused both ways. */
static void
test_signature_mismatch (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoInterface) iface = types_interface ();
  g_autoptr(DoInterface) other = do_interface_new_for_xml (other_xml, NULL, &error);
  DoObject *object = impl_new (iface, NULL);
  Remote remote = { 0, };
  TestOther *o;
  g_autofree char *s = NULL;
  gint32 i = 0;

  g_assert_no_error (error);
  remote_open (&remote, object);
  o = do_object_get_typed ((DoObject *) remote.proxy, other, &error);
  g_assert_no_error (error);

  /* The server refuses arguments of the wrong type. */
  g_assert_false (o->echo (o, 7, &i, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE);
  g_clear_error (&error);

  /* The caller refuses a reply of the wrong type, and stores nothing. */
  g_assert_false (o->count (o, &s, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE);
  g_assert_null (s);
  g_clear_error (&error);

  remote_close (&remote);
  do_object_unref (object);
}

/* Once the server is gone, calls fail with an error: no crash, no hang. */
static void
test_dead_connection (void)
{
  g_autoptr(DoInterface) iface = types_interface ();
  DoObject *object = impl_new (iface, NULL);
  Remote remote = { 0, };
  g_autoptr(GError) error = NULL;
  guint32 n = 0;
  TestTypes *t;

  remote_open (&remote, object);
  t = remote_typed (&remote, iface);
  g_assert_true (t->count (t, &n, &error));
  g_assert_no_error (error);

  test_server_stop (g_steal_pointer (&remote.server));
  g_assert_false (t->count (t, &n, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  g_clear_error (&error);
  g_assert_false (t->ping (t, 1, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_false (t->cat (t, 0, 1, (int *) &n, &error));
  g_assert_nonnull (error);

  remote_close (&remote);
  do_object_unref (object);
}

/* ------------------------------------------------------------ object references */

static const gchar refs_xml[] =
  "<node>"
  " <interface name='org.porter.test.Refs'>"
  "  <method name='Same'><arg type='o' direction='in'/><arg type='o' direction='out'/></method>"
  "  <method name='Make'><arg type='o' direction='out'/></method>"
  " </interface>"
  "</node>";

typedef struct _TestRefs TestRefs;
struct _TestRefs {
  gboolean (*same) (TestRefs *self, DoObject *in, DoObject **out, GError **error);
  gboolean (*make) (TestRefs *self, DoObject **out, GError **error);
};

static gboolean
refs_same (TestRefs *self, DoObject *in, DoObject **out, GError **error)
{
  *out = do_object_ref (in);
  return TRUE;
}

static gboolean
refs_make (TestRefs *self, DoObject **out, GError **error)
{
  g_autoptr(DoInterface) iface = types_interface ();

  *out = impl_new (iface, NULL);
  return TRUE;
}

static void
test_object_refs (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoInterface) refs_iface = do_interface_new_for_xml (refs_xml, NULL, &error);
  g_autoptr(DoInterface) types_iface = types_interface ();
  static TestRefs refs_impl = { refs_same, refs_make };
  DoObject *refs = do_object_new_for_instance (refs_iface, &refs_impl, NULL);
  DoObject *mine = impl_new (types_iface, NULL);
  DoObject *back = NULL;
  Remote remote = { 0, };
  TestRefs *local, *r;

  g_assert_no_error (error);

  /* Locally an object is passed as it is. */
  local = do_object_get_typed (refs, refs_iface, &error);
  g_assert_no_error (error);
  g_assert_true (local->same (local, mine, &back, &error));
  g_assert_true (back == mine);
  g_clear_pointer (&back, do_object_unref);

  remote_open (&remote, refs);
  r = remote_typed (&remote, refs_iface);
  {
    guint32 n = 1;
    TestTypes *t;

    /* Sent by reference and back: the owner gets its own object again. */
    g_assert_true (r->same (r, mine, &back, &error));
    g_assert_no_error (error);
    g_assert_true (back == mine);
    g_clear_pointer (&back, do_object_unref);

    /* An object made remotely arrives as a proxy the typed layer calls. */
    g_assert_true (r->make (r, &back, &error));
    g_assert_no_error (error);
    t = do_object_get_typed (back, types_iface, &error);
    g_assert_no_error (error);
    g_assert_true (t->count (t, &n, &error));
    g_assert_cmpuint (n, ==, 0);
    g_clear_pointer (&back, do_object_unref);
  }

  remote_close (&remote);
  do_object_unref (mine);
  do_object_unref (refs);
}

#define N_THREADS 4
#define N_CALLS 300

static gpointer
echo_many (gpointer data)
{
  TestTypes *t = data;

  for (gint32 k = 0; k < N_CALLS; k++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) in = g_variant_ref_sink (g_variant_new_int32 (k));
      g_autoptr(GVariant) out = NULL;

      if (!t->echo_v (t, in, &out, &error) || !g_variant_equal (in, out))
        return GINT_TO_POINTER (FALSE);
    }
  return GINT_TO_POINTER (TRUE);
}

/* One typed proxy called from several threads at once: the closures keep
 * no per-call state outside the stack. */
static void
test_remote_threads (void)
{
  g_autoptr(DoInterface) iface = types_interface ();
  DoObject *object = impl_new (iface, NULL);
  Remote remote = { 0, };
  GThread *threads[N_THREADS];
  TestTypes *t;

  remote_open (&remote, object);
  t = remote_typed (&remote, iface);
  for (guint k = 0; k < N_THREADS; k++)
    threads[k] = g_thread_new ("typed-caller", echo_many, t);
  for (guint k = 0; k < N_THREADS; k++)
    g_assert_true (GPOINTER_TO_INT (g_thread_join (threads[k])));
  remote_close (&remote);
  do_object_unref (object);
}

/* A server answering Cat with an fd index it sends no fd for. */
static GVariant *
lying_handle (DoObject *object, DoInvocation *invocation, const gchar *method,
              GVariant *params, gpointer user_data, GError **error)
{
  if (g_str_equal (method, "Cat"))
    return g_variant_new ("(h)", 3);
  g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD, "no %s", method);
  return NULL;
}

/* fd indices come from the other process: out of range is an error on
 * both sides, never a read past the fd list. */
static void
test_hostile_fd_indices (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoInterface) iface = types_interface ();
  DoObject *object = impl_new (iface, NULL);
  DoObject *liar = do_object_new_for_xml (types_xml, NULL, lying_handle, NULL, NULL, &error);
  Remote remote = { 0, };
  GVariant *r;
  TestTypes *t;
  int a = pipe_with ("a"), b = pipe_with ("b"), out = -7;

  g_assert_no_error (error);

  /* A caller using the dynamic API lies to the skeleton. */
  remote_open (&remote, object);
  r = do_proxy_call_sync (remote.proxy, "Cat", g_variant_new ("(hh)", 0, 5), 0, -1, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r = do_proxy_call_sync (remote.proxy, "Cat", g_variant_new ("(hh)", -1, 0), 0, -1, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  remote_close (&remote);

  /* A server lies to the typed proxy. */
  remote_open (&remote, liar);
  t = remote_typed (&remote, iface);
  g_assert_false (t->cat (t, a, b, &out, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_assert_cmpint (out, ==, -7);
  remote_close (&remote);

  close (a);
  close (b);
  do_object_unref (liar);
  do_object_unref (object);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/do/typed/interface/interned", test_interface_interned);
  g_test_add_func ("/do/typed/interface/bad", test_interface_bad);
  g_test_add_func ("/do/typed/local", test_local);
  g_test_add_func ("/do/typed/remote", test_remote);
  g_test_add_func ("/do/typed/remote/closures-shared", test_closures_shared);
  g_test_add_func ("/do/typed/remote/bad-arguments", test_remote_bad_args);
  g_test_add_func ("/do/typed/remote/signature-mismatch", test_signature_mismatch);
  g_test_add_func ("/do/typed/remote/dead-connection", test_dead_connection);
  g_test_add_func ("/do/typed/remote/hostile-fd-indices", test_hostile_fd_indices);
  g_test_add_func ("/do/typed/remote/threads", test_remote_threads);
  g_test_add_func ("/do/typed/object-refs", test_object_refs);
  return g_test_run ();
}
