/* Porter — a header written by do-codegen, compiled and used: the same
 * code runs on a local implementation and on a proxy to it.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "example.h"
#include "do-test-util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ Calc */

typedef struct {
  ExampleCalc iface;
  guint32 logged;
} Calc;

static gboolean
calc_add (ExampleCalc *self, gint32 a, gint32 b, gint32 *sum, GError **error)
{
  *sum = a + b;
  return TRUE;
}

static gboolean
calc_div_mod (ExampleCalc *self, gint64 n, gint64 d, gint64 *q, gint64 *r, GError **error)
{
  if (d == 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT, "division by zero");
      return FALSE;
    }
  *q = n / d;
  *r = n % d;
  return TRUE;
}

static gboolean
calc_describe (ExampleCalc *self, GVariant *options, char **out, GError **error)
{
  *out = g_variant_print (options, FALSE);
  return TRUE;
}

static gboolean
calc_log (ExampleCalc *self, const char *line, GError **error)
{
  ((Calc *) self)->logged++;
  return TRUE;
}

static gboolean
calc_log_count (ExampleCalc *self, guint32 *count, GError **error)
{
  *count = ((Calc *) self)->logged;
  return TRUE;
}

static DoObject *
calc_export (void)
{
  Calc *calc = g_new0 (Calc, 1);

  calc->iface.add = calc_add;
  calc->iface.div_mod = calc_div_mod;
  calc->iface.describe = calc_describe;
  calc->iface.log = calc_log;
  calc->iface.log_count = calc_log_count;
  return example_calc_export (&calc->iface, g_free);
}

/* Knows only ExampleCalc: local or remote is all the same to it. */
static void
exercise_calc (ExampleCalc *calc)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gint32 sum = 0;
  gint64 q = 0, r = 0;
  guint32 count = 0;

  g_assert_true (example_calc_add (calc, 2, 3, &sum, &error));
  g_assert_no_error (error);
  g_assert_cmpint (sum, ==, 5);

  g_assert_true (example_calc_div_mod (calc, G_MAXINT64, 10, &q, &r, &error));
  g_assert_cmpint (q, ==, G_MAXINT64 / 10);
  g_assert_cmpint (r, ==, 7);
  g_assert_false (example_calc_div_mod (calc, 1, 0, &q, &r, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "division by zero");
  g_clear_error (&error);

  /* The wrapper sinks a floating argument. */
  g_assert_true (example_calc_describe (calc, g_variant_new_parsed ("{'k': <[1, 2]>}"),
                                        &text, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "{'k': <[1, 2]>}");

  for (int i = 0; i < 3; i++)
    g_assert_true (example_calc_log (calc, "line", &error));
  g_assert_true (example_calc_log_count (calc, &count, &error));
  g_assert_cmpuint (count, ==, 3);
}

/* ------------------------------------------------------------ Store */

typedef struct {
  ExampleStore iface;
  GHashTable *values;
} Store;

static gboolean
store_put (ExampleStore *self, const char *key, GVariant *value, GError **error)
{
  g_hash_table_replace (((Store *) self)->values, g_strdup (key), g_variant_ref (value));
  return TRUE;
}

static gboolean
store_get (ExampleStore *self, const char *key, GVariant **value, GError **error)
{
  GVariant *v = g_hash_table_lookup (((Store *) self)->values, key);

  if (!v)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no %s", key);
      return FALSE;
    }
  *value = g_variant_ref (v);
  return TRUE;
}

static gboolean
store_open_log (ExampleStore *self, int *fd, GError **error)
{
  int p[2];

  if (pipe2 (p, O_CLOEXEC) < 0)
    return FALSE;
  g_assert_cmpint (write (p[1], "log", 3), ==, 3);
  close (p[1]);
  *fd = p[0];
  return TRUE;
}

static gboolean
store_all_types (ExampleStore *self, guint8 y, gboolean b, gint16 n, guint16 q, guint32 u,
                 guint64 t, gdouble d, GVariant *ai, guint8 *oy, gboolean *ob, GVariant **aay,
                 GError **error)
{
  *oy = (guint8) (y + 1);
  *ob = !b;
  *aay = g_variant_ref_sink (g_variant_new_parsed ("[@ay [], [byte %y]]", y));
  return n == -2 && q == 3 && u == 4 && t == 5 && d == 0.5 &&
         g_variant_n_children (ai) == 1;
}

static void
store_free (gpointer data)
{
  Store *store = data;

  g_hash_table_unref (store->values);
  g_free (store);
}

static DoObject *
store_export (void)
{
  Store *store = g_new0 (Store, 1);

  store->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_variant_unref);
  store->iface.put = store_put;
  store->iface.get = store_get;
  store->iface.open_log = store_open_log;
  store->iface.all_types = store_all_types;  /* child: not implemented */
  return example_store_export (&store->iface, store_free);
}

static void
exercise_store (ExampleStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) aay = NULL;
  char buf[8] = { 0 };
  guint8 y = 0;
  gboolean b = TRUE;
  int fd = -1;

  g_assert_true (example_store_put (store, "k", g_variant_new_parsed ("({'a': <(1, 'x')>}, @as [])"),
                                    &error));
  g_assert_no_error (error);
  g_assert_true (example_store_get (store, "k", &value, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (value), ==, "(a{sv}as)");
  g_assert_false (example_store_get (store, "nope", &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (example_store_open_log (store, &fd, &error));
  g_assert_no_error (error);
  g_assert_cmpint (read (fd, buf, sizeof buf - 1), ==, 3);
  g_assert_cmpstr (buf, ==, "log");
  close (fd);

  g_assert_true (example_store_all_types (store, 41, TRUE, -2, 3, 4, 5, 0.5,
                                          g_variant_new_parsed ("([1, 2],)"), &y, &b, &aay, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (y, ==, 42);
  g_assert_false (b);
  g_assert_cmpuint (g_variant_n_children (aay), ==, 2);
}

/* ------------------------------------------------------------ runs */

/* Each gets the typed view itself, from a local object or a proxy. */
static void
calc_on (DoObject *object)
{
  g_autoptr(GError) error = NULL;
  ExampleCalc *calc = example_calc_from_object (object, &error);

  g_assert_no_error (error);
  exercise_calc (calc);
}

static void
store_on (DoObject *object)
{
  g_autoptr(GError) error = NULL;
  ExampleStore *store = example_store_from_object (object, &error);

  g_assert_no_error (error);
  exercise_store (store);
}

typedef struct {
  DoObject *(*export) (void);
  void (*on) (DoObject *object);
  gboolean remote;
} Run;

static void
test_run (gconstpointer data)
{
  const Run *run = data;
  DoObject *object = run->export ();

  if (run->remote)
    {
      g_autoptr(GError) error = NULL;
      int port_fd;
      TestServer *server = test_server_start (object, &port_fd);
      g_autoptr(DoConnection) connection = do_connection_new_for_port_fd (port_fd, &error);
      g_autoptr(DoProxy) proxy = NULL;

      g_assert_no_error (error);
      close (port_fd);
      proxy = do_connection_get_root_proxy (connection);
      run->on ((DoObject *) proxy);
      do_connection_close (connection);
      test_server_stop (server);
    }
  else
    run->on (object);
  do_object_unref (object);
}

/* The accessor builds the interface once; it is the same one libdo interns. */
static void
test_interface (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoInterface) again = do_interface_new (do_interface_get_info (example_calc_get_interface ()),
                                                   &error);

  g_assert_no_error (error);
  g_assert_true (example_calc_get_interface () == example_calc_get_interface ());
  g_assert_true (again == example_calc_get_interface ());
  g_assert_cmpuint (do_interface_get_n_methods (again), ==, sizeof (ExampleCalc) / sizeof (gpointer));
  g_assert_cmpstr (do_interface_get_name (example_store_get_interface ()), ==, "org.example.Store");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/do/typed/codegen/interface", test_interface);
  static const Run runs[] = {
    { calc_export, calc_on, FALSE },
    { calc_export, calc_on, TRUE },
    { store_export, store_on, FALSE },
    { store_export, store_on, TRUE },
  };

  g_test_add_data_func ("/do/typed/codegen/calc/local", &runs[0], test_run);
  g_test_add_data_func ("/do/typed/codegen/calc/remote", &runs[1], test_run);
  g_test_add_data_func ("/do/typed/codegen/store/local", &runs[2], test_run);
  g_test_add_data_func ("/do/typed/codegen/store/remote", &runs[3], test_run);
  return g_test_run ();
}
