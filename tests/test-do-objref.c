/* Porter — objects passed by reference between processes: callbacks while
 * blocked, nesting, identity, forwarding through a third process, distributed
 * lifetime and zombies.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "libdo/do.h"
#include "do-test-util.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

static const gchar refs_xml[] =
  "<node>"
  "  <interface name='org.porter.test.Thing'>"
  "    <method name='Who'><arg direction='out' type='i'/></method>"
  "    <method name='Notify'><arg direction='in' type='u'/></method>"
  "    <method name='Hold'><arg direction='in' type='h'/></method>"
  "    <method name='Eat'><arg direction='in' type='ay'/></method>"
  "    <method name='Count'>"
  "      <arg direction='out' type='u'/><arg direction='out' type='b'/>"
  "    </method>"
  "    <method name='Bounce'>"
  "      <arg direction='in' type='o'/><arg direction='in' type='u'/>"
  "      <arg direction='out' type='u'/>"
  "    </method>"
  "  </interface>"
  "  <interface name='org.porter.test.Refs'>"
  "    <method name='Run'>"
  "      <arg direction='in' type='o'/><arg direction='in' type='u'/>"
  "      <arg direction='out' type='u'/>"
  "    </method>"
  "    <method name='Make'><arg direction='out' type='o'/></method>"
  "    <method name='Same'>"
  "      <arg direction='in' type='o'/><arg direction='out' type='o'/>"
  "    </method>"
  "    <method name='CallWho'>"
  "      <arg direction='in' type='o'/><arg direction='out' type='i'/>"
  "    </method>"
  "    <method name='Exports'><arg direction='out' type='u'/></method>"
  "    <method name='CallPort'>"
  "      <arg direction='in' type='h'/><arg direction='out' type='i'/>"
  "    </method>"
  "    <method name='Visit'><arg direction='in' type='h'/></method>"
  "    <method name='Tick'><arg direction='in' type='u'/></method>"
  "    <method name='Ticks'>"
  "      <arg direction='out' type='u'/><arg direction='out' type='b'/>"
  "    </method>"
  "    <method name='Keep'><arg direction='in' type='o'/></method>"
  "    <method name='CallBack'>"
  "      <arg direction='in' type='h'/><arg direction='out' type='i'/>"
  "    </method>"
  "    <method name='Back'><arg direction='out' type='i'/></method>"
  "  </interface>"
  "</node>";

static GDBusNodeInfo *node;

#define THING "org.porter.test.Thing"
#define REFS "org.porter.test.Refs"

/* ------------------------------------------------------------ Thing */

typedef struct {
  guint notified;
  gboolean in_order;
} Thing;

static guint32
bounce (DoObject *self, const gchar *peer_path, guint32 depth, GError **error)
{
  g_autoptr(DoObject) peer = do_object_lookup_path (peer_path);
  g_autoptr(GVariant) r = NULL;
  guint32 n;

  if (depth == 0)
    return 0;
  g_assert_nonnull (peer);
  r = do_object_call_sync (peer, THING, "Bounce",
                           g_variant_new ("(ou)", do_object_get_path (self), depth - 1),
                           NULL, DO_CALL_FLAGS_NONE, 5000, NULL, NULL, error);
  if (!r)
    return G_MAXUINT32;
  g_variant_get (r, "(u)", &n);
  return n + 1;
}

/* The fd an `(h)` call passed (the caller closes it), or -1. */
static int
passed_fd (DoInvocation *invocation, GVariant *params, GError **error)
{
  GUnixFDList *fds = do_invocation_get_fd_list (invocation);
  gint32 index;

  g_variant_get (params, "(h)", &index);
  if (!fds)
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT, "no fd passed");
      return -1;
    }
  return g_unix_fd_list_get (fds, index, error);
}

static GVariant *
thing_handle (DoObject *object, DoInvocation *invocation, const gchar *method,
              GVariant *params, gpointer user_data, GError **error)
{
  Thing *thing = user_data;

  if (g_str_equal (method, "Who"))
    return g_variant_new ("(i)", (gint32) getpid ());
  if (g_str_equal (method, "Notify"))
    {
      guint32 i;

      g_variant_get (params, "(u)", &i);
      /* Calls to one object arrive in the order sent. */
      if (thing && i != thing->notified)
        thing->in_order = FALSE;
      if (thing)
        thing->notified++;
      return g_variant_new ("()");
    }
  if (g_str_equal (method, "Hold"))
    {
      /* Holds up the thread it runs on until the fd passed says go. */
      int fd = passed_fd (invocation, params, error);
      char c;

      if (fd < 0)
        return NULL;
      (void) !read (fd, &c, 1);
      close (fd);
      return g_variant_new ("()");
    }
  if (g_str_equal (method, "Eat"))
    {
      if (thing)
        thing->notified++;
      return g_variant_new ("()");
    }
  if (g_str_equal (method, "Count"))
    return g_variant_new ("(ub)", thing ? thing->notified : 0, thing ? thing->in_order : TRUE);
  if (g_str_equal (method, "Bounce"))
    {
      const gchar *peer;
      guint32 depth, n;

      g_variant_get (params, "(&ou)", &peer, &depth);
      n = bounce (object, peer, depth, error);
      return n == G_MAXUINT32 ? NULL : g_variant_new ("(u)", n);
    }
  g_assert_not_reached ();
}

static DoObject *
thing_new (Thing *thing)
{
  return do_object_new (g_dbus_node_info_lookup_interface (node, THING),
                        thing_handle, thing, NULL);
}

/* ------------------------------------------------------------ the server */

static DoConnection *vending;
/* Serve the root as a thread-safe object: each connection's reader thread
 * runs its calls. */
static gboolean server_thread_safe;

static DoObject *reply_object (GVariant *reply);

/* Visit: the server's connection to the visited port and the object it
 * passed there; Keep: the object kept (a proxy). */
static DoConnection *visit_back;
static DoObject *visit_object, *kept;

/* Back: what it calls back (the test's proxy of the server's root). */
static DoObject *back_to;

/* Tick: how many ran, and whether all in order, one at a time. */
static gint ticks;
static gboolean ticks_ok = TRUE;

/* A connection to the port an `(h)` call passed. */
static DoConnection *
connect_to_passed_port (DoInvocation *invocation, GVariant *params, GError **error)
{
  DoConnection *connection;
  int fd = passed_fd (invocation, params, error);

  if (fd < 0)
    return NULL;
  connection = do_connection_new_for_port_fd (fd, error);
  close (fd);
  return connection;
}

static GVariant *
refs_handle (DoObject *object, DoInvocation *invocation, const gchar *method,
             GVariant *params, gpointer user_data, GError **error)
{
  if (g_str_equal (method, "Run"))
    {
      const gchar *path;
      g_autoptr(DoObject) observer = NULL;
      guint32 n, i;

      g_variant_get (params, "(&ou)", &path, &n);
      observer = do_object_lookup_path (path);
      for (i = 0; i < n; i++)
        {
          g_autoptr(GVariant) r = do_object_call_sync (observer, THING, "Notify",
                                                       g_variant_new ("(u)", i), NULL,
                                                       DO_CALL_FLAGS_NONE, 5000, NULL,
                                                       NULL, error);
          if (!r)
            return NULL;
        }
      return g_variant_new ("(u)", i);
    }
  if (g_str_equal (method, "Make"))
    {
      static Thing counted = { 0, TRUE };
      g_autoptr(DoObject) made = thing_new (&counted);

      /* The value holds the object until the reply exports it, and the
       * export keeps it for the peer. */
      return g_variant_new ("(@o)", do_object_to_value (made));
    }
  if (g_str_equal (method, "Same"))
    return g_variant_ref (params);
  if (g_str_equal (method, "CallWho"))
    {
      const gchar *path;
      g_autoptr(DoObject) x = NULL;

      g_variant_get (params, "(&o)", &path);
      x = do_object_lookup_path (path);
      return do_object_call_sync (x, THING, "Who", NULL, NULL, DO_CALL_FLAGS_NONE,
                                  5000, NULL, NULL, error);
    }
  if (g_str_equal (method, "Exports"))
    return g_variant_new ("(u)", do_connection_get_n_exports (vending));
  if (g_str_equal (method, "CallPort"))
    {
      /* Connects to the caller's own port, a connection of its own, and
       * while the caller waits for this reply calls its root, then an
       * object the root makes (not thread-safe: the caller's context
       * runs it, whatever runs the root). */
      g_autoptr(DoConnection) back = connect_to_passed_port (invocation, params, error);
      g_autoptr(DoProxy) root = NULL;
      g_autoptr(DoObject) made = NULL;
      g_autoptr(GVariant) reply = NULL;

      if (!back)
        return NULL;
      root = do_connection_get_root_proxy (back);
      reply = do_object_call_sync (root, REFS, "Make", NULL, NULL, DO_CALL_FLAGS_NONE,
                                   5000, NULL, NULL, error);
      if (!reply)
        return NULL;
      made = reply_object (reply);
      return do_object_call_sync (made, THING, "Who", NULL, NULL, DO_CALL_FLAGS_NONE,
                                  5000, NULL, NULL, error);
    }
  if (g_str_equal (method, "Visit"))
    {
      /* Connects to the caller's port and hands its root an object of
       * ours; both stay. */
      g_autoptr(DoProxy) root = NULL;
      g_autoptr(GVariant) reply = NULL;

      g_clear_pointer (&visit_back, do_connection_unref);
      visit_back = connect_to_passed_port (invocation, params, error);
      if (!visit_back)
        return NULL;
      g_clear_pointer (&visit_object, do_object_unref);
      visit_object = do_object_new (g_dbus_node_info_lookup_interface (node, REFS),
                                    refs_handle, NULL, NULL);
      root = do_connection_get_root_proxy (visit_back);
      reply = do_object_call_sync (root, REFS, "Keep",
                                   g_variant_new ("(o)", do_object_get_path (visit_object)),
                                   NULL, DO_CALL_FLAGS_NONE, 5000, NULL, NULL, error);
      return reply ? g_variant_new ("()") : NULL;
    }
  if (g_str_equal (method, "Tick"))
    {
      /* Calls to the root, numbered: they must run one at a time, in
       * order, whichever thread runs them. */
      static gint running;
      guint32 i;

      g_variant_get (params, "(u)", &i);
      if (!g_atomic_int_compare_and_exchange (&running, 0, 1))
        ticks_ok = FALSE;
      if (i != (guint32) g_atomic_int_get (&ticks))
        ticks_ok = FALSE;
      g_atomic_int_inc (&ticks);
      g_atomic_int_set (&running, 0);
      return g_variant_new ("()");
    }
  if (g_str_equal (method, "Ticks"))
    return g_variant_new ("(ub)", (guint32) g_atomic_int_get (&ticks), ticks_ok);
  if (g_str_equal (method, "CallBack"))
    {
      /* Connects to the caller's port and calls Back there, which calls
       * us back over the caller's first connection: served while we wait,
       * whether our context or this connection's reader thread runs us. */
      g_autoptr(DoConnection) there = connect_to_passed_port (invocation, params, error);
      g_autoptr(DoProxy) root = NULL;

      if (!there)
        return NULL;
      root = do_connection_get_root_proxy (there);
      return do_object_call_sync (root, REFS, "Back", NULL, NULL, DO_CALL_FLAGS_NONE,
                                  5000, NULL, NULL, error);
    }
  if (g_str_equal (method, "Back"))
    return do_object_call_sync (back_to, THING, "Who", NULL, NULL, DO_CALL_FLAGS_NONE,
                                5000, NULL, NULL, error);
  if (g_str_equal (method, "Keep"))
    {
      const gchar *path;
      DoObject *old;

      g_variant_get (params, "(&o)", &path);
      old = g_atomic_pointer_exchange (&kept, do_object_lookup_path (path));
      g_clear_pointer (&old, do_object_unref);
      return g_variant_new ("()");
    }
  g_assert_not_reached ();
}

static void
server_main (int sock)
{
  g_autoptr(GError) error = NULL;
  GMainContext *context = g_main_context_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (context, FALSE);
  g_autoptr(DoObject) root = NULL;

  g_main_context_push_thread_default (context);
  vending = do_connection_new (&error);
  g_assert_no_error (error);
  root = do_object_new (g_dbus_node_info_lookup_interface (node, REFS),
                        refs_handle, NULL, NULL);
  g_assert_true (do_object_add_interface (root, g_dbus_node_info_lookup_interface (node, THING),
                                          thing_handle, NULL, NULL, &error));
  if (server_thread_safe)
    g_assert_true (do_object_set_flags (root, DO_OBJECT_FLAGS_THREAD_SAFE, &error));
  do_connection_set_root_object (vending, root);
  test_send_fd (sock, do_connection_dup_port_fd (vending, NULL));
  g_main_loop_run (loop);
  _exit (0);
}

typedef struct {
  pid_t pid;
  int port_fd;
  DoConnection *connection;
  DoProxy *root;
} Server;

static void
server_start (Server *server)
{
  g_autoptr(GError) error = NULL;
  int sv[2], port;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  server->pid = fork ();
  g_assert_cmpint (server->pid, >=, 0);
  if (server->pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      close (sv[0]);
      server_main (sv[1]);
    }
  close (sv[1]);
  port = test_recv_fd (sv[0], 5000);
  close (sv[0]);
  g_assert_cmpint (port, >=, 0);
  server->connection = do_connection_new_for_port_fd (port, &error);
  g_assert_no_error (error);
  server->port_fd = port;
  server->root = do_connection_get_root_proxy (server->connection);
}

static void
server_kill (Server *server)
{
  if (server->pid > 0)
    {
      kill (server->pid, SIGKILL);
      g_assert_cmpint (test_wait_child (server->pid, 5000), !=, -1);
      server->pid = 0;
    }
  g_clear_pointer (&server->root, do_proxy_unref);
  g_clear_pointer (&server->connection, do_connection_unref);
  if (server->port_fd > 0)
    close (server->port_fd);
  server->port_fd = 0;
}

static GVariant *
call (DoObject *object, const gchar *iface, const gchar *method, GVariant *args)
{
  g_autoptr(GError) error = NULL;
  GVariant *r = do_object_call_sync (object, iface, method, args, NULL,
                                     DO_CALL_FLAGS_NONE, 5000, NULL, NULL, &error);

  g_assert_no_error (error);
  return r;
}

/* Calls @method, which answers `(ub)`: how many calls ran, and whether
 * in order; checks both. */
static void
assert_ran_in_order (DoObject *object, const gchar *iface, const gchar *method, guint32 n)
{
  g_autoptr(GVariant) r = call (object, iface, method, NULL);
  guint32 ran = 0;
  gboolean in_order = FALSE;

  g_variant_get (r, "(ub)", &ran, &in_order);
  g_assert_cmpuint (ran, ==, n);
  g_assert_true (in_order);
}

static guint32
call_u (DoObject *object, const gchar *method, GVariant *args)
{
  g_autoptr(GVariant) r = call (object, REFS, method, args);
  guint32 u;

  g_variant_get (r, "(u)", &u);
  return u;
}

/* The object an `(o)` reply names (transfer full). */
static DoObject *
reply_object (GVariant *reply)
{
  const gchar *path;

  g_variant_get (reply, "(&o)", &path);
  return do_object_lookup_path (path);
}

/* ------------------------------------------------------------ the tests */

static void
test_callbacks_while_blocked (void)
{
  Server s = { 0, };
  Thing thing = { 0, TRUE };
  g_autoptr(DoObject) observer = thing_new (&thing);

  server_start (&s);
  g_assert_cmpuint (call_u (s.root, "Run",
                            g_variant_new ("(ou)", do_object_get_path (observer), 1000)),
                    ==, 1000);
  g_assert_cmpuint (thing.notified, ==, 1000);
  g_assert_true (thing.in_order);
  server_kill (&s);
}

static void
test_nested (void)
{
  Server s = { 0, };
  g_autoptr(DoObject) me = thing_new (NULL);
  g_autoptr(GVariant) r = NULL;
  guint32 n;

  server_start (&s);
  for (guint32 depth = 0; depth <= 5; depth++)
    {
      r = call (s.root, THING, "Bounce", g_variant_new ("(ou)", do_object_get_path (me), depth));
      g_variant_get (r, "(u)", &n);
      g_assert_cmpuint (n, ==, depth);
      g_clear_pointer (&r, g_variant_unref);
    }

  /* Deeper than either side serves (64 nested waits on a thread): the
   * call nested too deep is refused, not run, and the error comes back up
   * through every level; a peer calling back for ever cannot overflow our
   * stack.  Then all is as before. */
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GError) error = NULL;

      r = do_object_call_sync (s.root, THING, "Bounce",
                               g_variant_new ("(ou)", do_object_get_path (me), i ? 5 : 100000),
                               NULL, DO_CALL_FLAGS_NONE, 20000, NULL, NULL, &error);
      if (i == 0)
        {
          g_assert_null (r);
          g_assert_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED);
          g_assert_nonnull (strstr (error->message, "nested deeper than 64"));
        }
      else
        {
          g_assert_no_error (error);
          g_variant_get (r, "(u)", &n);
          g_assert_cmpuint (n, ==, 5);
        }
      g_clear_pointer (&r, g_variant_unref);
    }
  server_kill (&s);
}

static void
test_identity (void)
{
  Server s = { 0, };
  g_autoptr(DoObject) mine = thing_new (NULL);
  g_autoptr(GVariant) r1 = NULL, r2 = NULL, r3 = NULL;
  g_autoptr(DoObject) a = NULL, b = NULL, back = NULL;

  server_start (&s);

  /* Our own object comes home as itself. */
  r1 = call (s.root, REFS, "Same", g_variant_new ("(o)", do_object_get_path (mine)));
  back = reply_object (r1);
  g_assert_true (back == mine);

  /* One proxy per remote object; passed back to its owner, it is the
   * owner's object again (Same answers the very path it got). */
  r2 = call (s.root, REFS, "Make", NULL);
  a = reply_object (r2);
  g_assert_true (do_object_is_proxy (a));
  r3 = call (s.root, REFS, "Same", g_variant_new ("(o)", do_object_get_path (a)));
  b = reply_object (r3);
  g_assert_true (a == b);
  g_assert_cmpuint (do_connection_get_n_proxies (s.connection), ==, 2);  /* root and a */

  /* The root object passed by reference is the root proxy. */
  g_clear_pointer (&r1, g_variant_unref);
  g_clear_pointer (&back, do_object_unref);
  r1 = call (s.root, REFS, "Same", g_variant_new ("(o)", do_object_get_path (s.root)));
  back = reply_object (r1);
  g_assert_true (back == s.root);

  /* A path that names no object is refused before anything is sent. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = do_object_call_sync (s.root, REFS, "Same",
                                                 g_variant_new ("(o)", "/not/an/object"),
                                                 NULL, DO_CALL_FLAGS_NONE, 5000, NULL,
                                                 NULL, &error);
    g_assert_null (r);
    g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  }
  server_kill (&s);
}

static void
test_third_process (void)
{
  Server a = { 0, }, c = { 0, };
  g_autoptr(GVariant) made = NULL, who_a = NULL, who_c = NULL;
  g_autoptr(DoObject) x = NULL;
  g_autoptr(GError) error = NULL;
  gint32 pid_a, pid_c;

  server_start (&a);
  server_start (&c);
  made = call (a.root, REFS, "Make", NULL);
  x = reply_object (made);
  who_a = call (x, THING, "Who", NULL);
  g_variant_get (who_a, "(i)", &pid_a);
  g_assert_cmpint (pid_a, ==, a.pid);

  /* C gets a proxy to our proxy: its call still reaches A. */
  who_c = call (c.root, REFS, "CallWho", g_variant_new ("(o)", do_object_get_path (x)));
  g_variant_get (who_c, "(i)", &pid_c);
  g_assert_cmpint (pid_c, ==, a.pid);

  /* A dies: our proxy and the one C holds fail cleanly (zombies). */
  kill (a.pid, SIGKILL);
  g_assert_cmpint (test_wait_child (a.pid, 5000), !=, -1);
  a.pid = 0;
  g_clear_pointer (&who_a, g_variant_unref);
  who_a = do_object_call_sync (x, THING, "Who", NULL, NULL, DO_CALL_FLAGS_NONE, 5000,
                               NULL, NULL, &error);
  g_assert_null (who_a);
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  g_clear_error (&error);
  g_clear_pointer (&who_c, g_variant_unref);
  who_c = do_object_call_sync (c.root, REFS, "CallWho",
                               g_variant_new ("(o)", do_object_get_path (x)),
                               NULL, DO_CALL_FLAGS_NONE, 5000, NULL, NULL, &error);
  g_assert_null (who_c);
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);

  server_kill (&a);
  server_kill (&c);
}

/* Round @i of a test that runs @n rounds over rings, then @n over sockets
 * alone (PORTER_NO_SHM, which the test unsets at its end): starts the
 * server for each half. */
static void
server_for_round (Server *s, guint i, guint n)
{
  if (i == n)
    {
      server_kill (s);
      g_setenv ("PORTER_NO_SHM", "1", TRUE);
    }
  if (i % n == 0)
    server_start (s);
}

/* An fd list holding a new fd of @connection's port, for an `(h)` call. */
static GUnixFDList *
port_fd_list (DoConnection *connection)
{
  g_autoptr(GError) error = NULL;
  GUnixFDList *fds = g_unix_fd_list_new ();
  int port = do_connection_dup_port_fd (connection, &error);

  g_assert_no_error (error);
  g_assert_cmpint (g_unix_fd_list_append (fds, port, &error), ==, 0);
  close (port);
  return fds;
}

static void
raise_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
}

/* GNUstep's reply mode: a caller blocked in a sync call still serves
 * other connections on its context.  The server connects back to our own
 * port (a second connection, accepted while we wait) and calls our root,
 * then an object it made, over it; from a thread-safe server's reader
 * thread too (the thread-safe variant of this test). */
static void
test_callback_other_connection (void)
{
  Server s = { 0, };

  /* Over rings (their doorbells are watched), then over sockets alone; our
   * root runs on our context, or on each connection's reader thread (and
   * what it makes, on our context again). */
  for (guint i = 0; i < 8; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoConnection) mine = do_connection_new (&error);
      g_autoptr(DoObject) me = do_object_new (g_dbus_node_info_lookup_interface (node, REFS),
                                              refs_handle, NULL, NULL);
      g_autoptr(GUnixFDList) fds = NULL;
      g_autoptr(GVariant) r = NULL;
      gboolean idled = FALSE;
      gint64 t0;
      gint32 pid;

      server_for_round (&s, i, 4);
      g_assert_no_error (error);
      g_assert_true (do_object_add_interface (me, g_dbus_node_info_lookup_interface (node, THING),
                                              thing_handle, NULL, NULL, &error));
      if (i % 4 >= 2)
        g_assert_true (do_object_set_flags (me, DO_OBJECT_FLAGS_THREAD_SAFE, &error));
      do_connection_set_root_object (mine, me);
      fds = port_fd_list (mine);

      g_idle_add_once (raise_flag, &idled);
      t0 = g_get_monotonic_time ();
      r = do_object_call_sync (s.root, REFS, "CallPort", g_variant_new ("(h)", 0), fds,
                               DO_CALL_FLAGS_NONE, 20000, NULL, NULL, &error);
      g_assert_no_error (error);
      g_variant_get (r, "(i)", &pid);
      g_assert_cmpint (pid, ==, getpid ());
      g_assert_cmpint (do_connection_uses_shm (s.connection), ==, i < 4);
      /* Served at once, not once the server's 5 s call gave up. */
      g_assert_cmpint (g_get_monotonic_time () - t0, <, 4 * G_USEC_PER_SEC);
      /* Only connections are served meanwhile: the idle waits its turn. */
      g_assert_false (idled);
      while (!idled)
        g_main_context_iteration (NULL, TRUE);
      do_connection_close (mine);
    }
  server_kill (&s);
  g_unsetenv ("PORTER_NO_SHM");
}

/* The same while another thread reads the connection we wait on: our
 * root is thread-safe, so the connection the server opens to our port has
 * a reader thread, and we call the object the server passed over it.  The
 * server, to answer, connects to our port once more, and calls our root
 * and an object it makes (that one on our context) over that. */
static void
test_callback_while_another_reads (void)
{
  Server s = { 0, };
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) mine = do_connection_new (&error);
  g_autoptr(DoObject) me = do_object_new (g_dbus_node_info_lookup_interface (node, REFS),
                                          refs_handle, NULL, NULL);
  g_autoptr(DoObject) visitor = NULL;

  g_assert_no_error (error);
  g_assert_true (do_object_add_interface (me, g_dbus_node_info_lookup_interface (node, THING),
                                          thing_handle, NULL, NULL, &error));
  g_assert_true (do_object_set_flags (me, DO_OBJECT_FLAGS_THREAD_SAFE, &error));
  do_connection_set_root_object (mine, me);
  server_start (&s);

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GUnixFDList) fds = port_fd_list (mine);
      g_autoptr(GVariant) r = NULL;
      gint64 t0;
      gint32 pid;

      if (i == 0)
        {
          r = do_object_call_sync (s.root, REFS, "Visit", g_variant_new ("(h)", 0), fds,
                                   DO_CALL_FLAGS_NONE, 5000, NULL, NULL, &error);
          g_assert_no_error (error);
          visitor = g_atomic_pointer_exchange (&kept, NULL);
          g_assert_nonnull (visitor);
          continue;
        }
      t0 = g_get_monotonic_time ();
      r = do_object_call_sync (visitor, REFS, "CallPort", g_variant_new ("(h)", 0), fds,
                               DO_CALL_FLAGS_NONE, 20000, NULL, NULL, &error);
      g_assert_no_error (error);
      g_variant_get (r, "(i)", &pid);
      g_assert_cmpint (pid, ==, getpid ());
      g_assert_cmpint (g_get_monotonic_time () - t0, <, 4 * G_USEC_PER_SEC);
    }
  g_clear_pointer (&visitor, do_object_unref);
  server_kill (&s);
  do_connection_close (mine);
}

/* A call back over the connection the server's call came on, while the
 * server waits on another: the server (on its context, or in the
 * thread-safe variant on the reader thread of our connection to it)
 * connects to our port and calls Back there, and Back calls the server's
 * root over our first connection.  The server serves that call nested in
 * its wait, rather than after its 5 s timeout. */
static void
test_callback_first_connection (void)
{
  Server s = { 0, };
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) mine = do_connection_new (&error);
  g_autoptr(DoObject) me = do_object_new (g_dbus_node_info_lookup_interface (node, REFS),
                                          refs_handle, NULL, NULL);

  g_assert_no_error (error);
  do_connection_set_root_object (mine, me);
  /* Over rings, then over sockets alone. */
  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(GUnixFDList) fds = port_fd_list (mine);
      g_autoptr(GVariant) r = NULL;
      gint64 t0;
      gint32 pid;

      server_for_round (&s, i, 3);
      back_to = s.root;
      t0 = g_get_monotonic_time ();
      r = do_object_call_sync (s.root, REFS, "CallBack", g_variant_new ("(h)", 0), fds,
                               DO_CALL_FLAGS_NONE, 20000, NULL, NULL, &error);
      g_assert_no_error (error);
      g_variant_get (r, "(i)", &pid);
      g_assert_cmpint (pid, ==, s.pid);
      g_assert_cmpint (do_connection_uses_shm (s.connection), ==, i < 3);
      g_assert_cmpint (g_get_monotonic_time () - t0, <, 4 * G_USEC_PER_SEC);
    }
  back_to = NULL;
  server_kill (&s);
  g_unsetenv ("PORTER_NO_SHM");
  do_connection_close (mine);
}

/* A client whose calls come faster than they run: while the server's
 * context is held up, the object's oneway calls pile up, to a bound (its
 * reader thread, in the thread-safe variant, stops reading), then our
 * sends wait and time out.  None is lost: once the context runs again
 * every call sent runs, in order.  Small calls (the bound of 1024 calls),
 * then 256 KiB ones (the bound of 64 MiB of bodies), which go out of line
 * on the socket behind a marker in the ring: their send times out before
 * the marker goes in, and the connection goes on. */
static void
test_flood_bounded (void)
{
  Server s = { 0, };
  g_autofree guint8 *food = g_malloc0 (256 << 10);

  for (guint big = 0; big < 2; big++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
      g_autoptr(GVariant) made = NULL, hold = NULL;
      g_autoptr(DoObject) x = NULL;
      gboolean ok = TRUE;
      guint32 sent = 0;
      int go[2];

      server_kill (&s);   /* a fresh count */
      server_start (&s);
      made = call (s.root, REFS, "Make", NULL);
      x = reply_object (made);
      g_assert_cmpint (pipe2 (go, O_CLOEXEC), ==, 0);
      g_assert_cmpint (g_unix_fd_list_append (fds, go[0], &error), ==, 0);
      close (go[0]);
      hold = do_object_call_sync (x, THING, "Hold", g_variant_new ("(h)", 0), fds,
                                  DO_CALL_FLAGS_ONEWAY, -1, NULL, NULL, &error);
      g_assert_no_error (error);

      do_connection_set_timeouts (s.connection, 200, -1);
      while (ok && sent < 200000)
        {
          GVariant *args = big
            ? g_variant_new ("(@ay)", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, food,
                                                                 256 << 10, 1))
            : g_variant_new ("(u)", sent);
          g_autoptr(GVariant) r = do_object_call_sync (x, THING, big ? "Eat" : "Notify", args,
                                                       NULL, DO_CALL_FLAGS_ONEWAY, -1, NULL,
                                                       NULL, &error);
          ok = r != NULL;
          if (ok)
            sent++;
        }
      g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
      /* What the ring and the socket hold (about 700 small calls, 280
       * large ones here), and what was read to the bound: 1024 calls, or
       * 64 MiB (256 calls) where 1024 would be 1024 calls again. */
      g_test_message ("%u %s oneway calls sent before the server's queues filled",
                      sent, big ? "256 KiB" : "small");
      g_assert_cmpuint (sent, >, big ? 10 : 100);
      g_assert_cmpuint (sent, <, big ? 900 : 20000);

      g_assert_cmpint (write (go[1], "g", 1), ==, 1);
      close (go[1]);
      do_connection_set_timeouts (s.connection, 5000, -1);
      assert_ran_in_order (x, THING, "Count", sent);
    }
  server_kill (&s);
}

/* Calls to the root (thread-safe in the thread-safe variant: its reader
 * thread runs them) interleaved with calls to an object it made (not
 * thread-safe: the context runs them): each kind still runs in order,
 * one call at a time. */
static void
test_order_mixed (void)
{
  Server s = { 0, };
  g_autoptr(GVariant) made = NULL;
  g_autoptr(DoObject) x = NULL;
  const guint32 n = 20000;

  server_start (&s);
  made = call (s.root, REFS, "Make", NULL);
  x = reply_object (made);
  for (guint32 i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) a = do_object_call_sync (s.root, REFS, "Tick", g_variant_new ("(u)", i),
                                                   NULL, DO_CALL_FLAGS_ONEWAY, -1, NULL, NULL,
                                                   &error);
      g_autoptr(GVariant) b = do_object_call_sync (x, THING, "Notify", g_variant_new ("(u)", i),
                                                   NULL, DO_CALL_FLAGS_ONEWAY, -1, NULL, NULL,
                                                   &error);

      g_assert_no_error (error);
    }
  assert_ran_in_order (s.root, REFS, "Ticks", n);
  assert_ran_in_order (x, THING, "Count", n);
  server_kill (&s);
}

/* References counted for a message that does not go out are taken back:
 * a bad path after a good one, and a send that times out on a stopped
 * server. */
static void
test_unsent_references (void)
{
  Server s = { 0, };
  g_autoptr(DoObject) mine = thing_new (NULL);
  g_autoptr(GPtrArray) things = g_ptr_array_new_with_free_func ((GDestroyNotify) do_object_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  guint sent = 0;

  server_start (&s);
  r = do_object_call_sync (s.root, REFS, "Same",
                           g_variant_new ("(oo)", do_object_get_path (mine), "/not/an/object"),
                           NULL, DO_CALL_FLAGS_NONE, 5000, NULL, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_assert_cmpuint (do_connection_get_n_exports (s.connection), ==, 0);
  g_clear_error (&error);

  /* Each oneway call exports a new object until the stopped server's
   * queues are full and a send gives up. */
  do_connection_set_timeouts (s.connection, 200, -1);
  kill (s.pid, SIGSTOP);
  for (;;)
    {
      DoObject *thing = thing_new (NULL);

      g_ptr_array_add (things, thing);
      r = do_object_call_sync (s.root, THING, "Bounce",
                               g_variant_new ("(ou)", do_object_get_path (thing), 0),
                               NULL, DO_CALL_FLAGS_ONEWAY, -1, NULL, NULL, &error);
      if (!r)
        break;
      g_clear_pointer (&r, g_variant_unref);
      sent++;
      g_assert_cmpuint (sent, <, 1000000);
    }
  g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
  g_assert_cmpuint (sent, >, 0);
  g_assert_cmpuint (do_connection_get_n_exports (s.connection), ==, sent);
  kill (s.pid, SIGCONT);
  server_kill (&s);
}

static void
test_many_proxies (void)
{
  Server s = { 0, };

  server_start (&s);
  for (guint i = 0; i < 10000; i++)
    {
      g_autoptr(GVariant) r = call (s.root, REFS, "Make", NULL);
      g_autoptr(DoObject) thing = reply_object (r);

      g_assert_true (do_object_is_proxy (thing));
      if (i % 1000 == 0)
        g_assert_cmpuint (call_u (s.root, "Exports", NULL), <=, 2);
    }
  /* The last release goes before the next call: the table is empty. */
  g_assert_cmpuint (call_u (s.root, "Exports", NULL), ==, 0);
  g_assert_cmpuint (do_connection_get_n_proxies (s.connection), ==, 1);  /* the root */

  /* Held proxies keep theirs, each counted once however often it came. */
  {
    g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func ((GDestroyNotify) do_object_unref);
    g_autoptr(GVariant) r = call (s.root, REFS, "Make", NULL);
    g_autoptr(DoObject) one = reply_object (r);

    for (guint i = 0; i < 50; i++)
      {
        g_autoptr(GVariant) made = call (s.root, REFS, "Make", NULL);
        g_autoptr(GVariant) same = call (s.root, REFS, "Same",
                                         g_variant_new ("(o)", do_object_get_path (one)));
        g_ptr_array_add (held, reply_object (made));
      }
    g_assert_cmpuint (call_u (s.root, "Exports", NULL), ==, 51);
    g_clear_pointer (&held, g_ptr_array_unref);
    g_assert_cmpuint (call_u (s.root, "Exports", NULL), ==, 1);
  }
  g_assert_cmpuint (call_u (s.root, "Exports", NULL), ==, 0);
  server_kill (&s);
}

static void
test_client_killed (void)
{
  Server s = { 0, };
  int ready[2];
  pid_t client;
  gint64 deadline;
  guint32 n;
  char byte = 0;

  server_start (&s);
  g_assert_cmpint (pipe2 (ready, O_CLOEXEC), ==, 0);
  client = fork ();
  g_assert_cmpint (client, >=, 0);
  if (client == 0)
    {
      g_autoptr(GError) error = NULL;
      DoConnection *connection = do_connection_new_for_port_fd (s.port_fd, &error);
      DoProxy *root;

      if (!connection)
        _exit (2);
      root = do_connection_get_root_proxy (connection);
      for (guint i = 0; i < 100; i++)
        {
          g_autoptr(GVariant) r = do_object_call_sync (root, REFS, "Make", NULL, NULL,
                                                       DO_CALL_FLAGS_NONE, 5000, NULL,
                                                       NULL, NULL);
          if (!r)
            _exit (3);
          reply_object (r);  /* held until killed */
        }
      if (write (ready[1], "x", 1) != 1)
        _exit (4);
      for (;;)
        pause ();
    }
  close (ready[1]);
  g_assert_cmpint (read (ready[0], &byte, 1), ==, 1);
  close (ready[0]);
  g_assert_cmpuint (call_u (s.root, "Exports", NULL), ==, 100);

  kill (client, SIGKILL);
  g_assert_cmpint (test_wait_child (client, 5000), !=, -1);
  /* The server notices the death on its own; each probe is a round trip. */
  deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  while ((n = call_u (s.root, "Exports", NULL)) != 0 && g_get_monotonic_time () < deadline)
    ;
  g_assert_cmpuint (n, ==, 0);
  server_kill (&s);
}

/* ------------------------------------------------------------ worker pool */

static const gchar gate_xml[] =
  "<node><interface name='org.porter.test.Gate'>"
  "  <method name='Wait'><arg direction='out' type='b'/></method>"
  "  <method name='Open'/>"
  "</interface></node>";

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean open;
  GThread *waiter, *opener;
} Gate;

static GVariant *
gate_handle (DoObject *object, DoInvocation *invocation, const gchar *method,
             GVariant *params, gpointer user_data, GError **error)
{
  Gate *gate = user_data;
  gint64 deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  gboolean opened;

  g_mutex_lock (&gate->lock);
  if (g_str_equal (method, "Open"))
    {
      gate->opener = g_thread_self ();
      gate->open = TRUE;
      g_cond_broadcast (&gate->cond);
    }
  else
    {
      gate->waiter = g_thread_self ();
      while (!gate->open && g_cond_wait_until (&gate->cond, &gate->lock, deadline))
        ;
    }
  opened = gate->open;
  g_mutex_unlock (&gate->lock);
  return g_str_equal (method, "Open") ? g_variant_new ("()") : g_variant_new ("(b)", opened);
}

typedef struct {
  DoProxy *proxy;
  GVariant *reply;
} AsyncCall;

static void
got_reply (GObject *source, GAsyncResult *result, gpointer data)
{
  AsyncCall *call = data;
  g_autoptr(GError) error = NULL;

  call->reply = do_proxy_call_finish (call->proxy, result, &error);
  g_assert_no_error (error);
}

static void
test_worker_pool (void)
{
  g_autoptr(GError) error = NULL;
  Gate gate = { 0, };
  g_autoptr(DoObject) object = do_object_new_for_xml (gate_xml, NULL, gate_handle, &gate,
                                                      NULL, &error);
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) proxy = NULL;
  g_autoptr(GVariant) opened = NULL;
  AsyncCall waited = { NULL, NULL };
  TestServer *server;
  gboolean ok = FALSE;
  int port;

  g_assert_no_error (error);
  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);

  /* Only a thread-safe object goes to the pool; a proxy has no say. */
  g_assert_false (do_object_set_flags (object, DO_OBJECT_FLAGS_WORKER_POOL, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (do_object_set_flags (object, DO_OBJECT_FLAGS_THREAD_SAFE |
                                              DO_OBJECT_FLAGS_WORKER_POOL, &error));
  g_assert_cmpint (do_object_get_flags (object), ==,
                   DO_OBJECT_FLAGS_THREAD_SAFE | DO_OBJECT_FLAGS_WORKER_POOL);

  server = test_server_start (object, &port);
  connection = do_connection_new_for_port_fd (port, &error);
  g_assert_no_error (error);
  close (port);
  proxy = do_connection_get_root_proxy (connection);
  g_assert_false (do_object_set_flags (proxy, DO_OBJECT_FLAGS_THREAD_SAFE, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Wait blocks its worker until Open, a later call, runs on another: on
   * the context, one at a time, Open would wait behind it for ever. */
  waited.proxy = proxy;
  do_proxy_call (proxy, "Wait", NULL, DO_CALL_FLAGS_NONE, 10000, NULL, got_reply, &waited);
  opened = do_proxy_call_sync (proxy, "Open", NULL, DO_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  {
    gint64 deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
    while (!waited.reply && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
  }
  g_assert_nonnull (waited.reply);
  g_variant_get (waited.reply, "(b)", &ok);
  g_assert_true (ok);
  g_assert_true (gate.waiter != gate.opener);
  g_variant_unref (waited.reply);

  g_clear_pointer (&proxy, do_proxy_unref);
  do_connection_close (connection);
  test_server_stop (server);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
}

/* The same, with the server's calls on its connections' reader threads. */
static void
run_thread_safe (gconstpointer test)
{
  server_thread_safe = TRUE;
  ((GTestFunc) test) ();
  server_thread_safe = FALSE;
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  node = g_dbus_node_info_new_for_xml (refs_xml, NULL);
  g_assert_nonnull (node);

  g_test_add_func ("/objref/callbacks-while-blocked", test_callbacks_while_blocked);
  g_test_add_func ("/objref/nested", test_nested);
  g_test_add_func ("/objref/identity", test_identity);
  g_test_add_func ("/objref/third-process", test_third_process);
  g_test_add_func ("/objref/callback-other-connection", test_callback_other_connection);
  g_test_add_func ("/objref/callback-first-connection", test_callback_first_connection);
  g_test_add_func ("/objref/callback-while-another-reads", test_callback_while_another_reads);
  g_test_add_func ("/objref/flood-bounded", test_flood_bounded);
  g_test_add_func ("/objref/order-mixed", test_order_mixed);
  g_test_add_func ("/objref/unsent-references", test_unsent_references);
  g_test_add_func ("/objref/many-proxies", test_many_proxies);
  g_test_add_func ("/objref/client-killed", test_client_killed);
  g_test_add_func ("/objref/worker-pool", test_worker_pool);
  g_test_add_data_func ("/objref/thread-safe/callbacks-while-blocked",
                        test_callbacks_while_blocked, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/nested", test_nested, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/identity", test_identity, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/third-process", test_third_process, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/callback-other-connection",
                        test_callback_other_connection, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/callback-first-connection",
                        test_callback_first_connection, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/many-proxies", test_many_proxies, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/flood-bounded", test_flood_bounded, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/order-mixed", test_order_mixed, run_thread_safe);
  g_test_add_data_func ("/objref/thread-safe/client-killed", test_client_killed, run_thread_safe);
  return g_test_run ();
}
