/* Porter — connections between real processes: calls, errors, timeouts,
 * peer death, hostile peers, out-of-line bodies.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do.h"
#include "do-channel-private.h"
#include "do-connection-private.h"
#include "do-test-util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALC_ERROR (g_quark_from_static_string ("calc-error-quark"))

static const gchar calc_xml[] =
  "<node>"
  " <interface name='org.porter.test.Calc'>"
  "  <method name='Add'><arg type='i' direction='in'/><arg type='i' direction='in'/>"
  "   <arg type='i' direction='out'/></method>"
  "  <method name='Divide'><arg type='i' direction='in'/><arg type='i' direction='in'/>"
  "   <arg type='i' direction='out'/></method>"
  "  <method name='EchoBytes'><arg type='ay' direction='in'/><arg type='ay' direction='out'/></method>"
  "  <method name='Hang'/>"
  "  <method name='Later'><arg type='i' direction='in'/><arg type='i' direction='out'/></method>"
  "  <method name='Append'><arg type='i' direction='in'/>"
  "   <annotation name='org.freedesktop.DBus.Method.NoReply' value='true'/></method>"
  "  <method name='Taken'><arg type='ai' direction='out'/></method>"
  "  <method name='WhoAmI'><arg type='u' direction='out'/><arg type='u' direction='out'/>"
  "   <arg type='u' direction='out'/></method>"
  "  <method name='Clients'><arg type='u' direction='out'/></method>"
  "  <method name='ReadFd'><arg type='h' direction='in'/><arg type='s' direction='out'/></method>"
  "  <method name='BadReply'><arg type='i' direction='out'/></method>"
  " </interface>"
  "</node>";

typedef struct {
  DoConnection *vending;
  GArray *appended;
  int hang_notify;  /* written when Hang is called */
  GPtrArray *held;  /* invocations never answered */
} Server;

typedef struct {
  DoInvocation *invocation;
  gint32 value;
} Later;

/* Answers a deferred "Later" call from an idle callback. */
static gboolean
answer_later (gpointer data)
{
  Later *later = data;

  do_invocation_return_value (later->invocation, g_variant_new ("(i)", later->value * 2));
  do_invocation_unref (later->invocation);
  g_free (later);
  return G_SOURCE_REMOVE;
}

static GVariant *
calc_handle (DoObject *object, DoInvocation *invocation, const gchar *method,
             GVariant *params, gpointer user_data, GError **error)
{
  Server *server = user_data;
  gint32 a, b;

  if (g_str_equal (method, "Add"))
    {
      g_variant_get (params, "(ii)", &a, &b);
      return g_variant_new ("(i)", a + b);
    }
  if (g_str_equal (method, "Divide"))
    {
      g_variant_get (params, "(ii)", &a, &b);
      if (b == 0)
        {
          g_set_error (error, CALC_ERROR, 7, "division of %d by zero", a);
          return NULL;
        }
      return g_variant_new ("(i)", a / b);
    }
  if (g_str_equal (method, "EchoBytes"))
    return g_variant_ref (params);
  if (g_str_equal (method, "Hang"))
    {
      g_ptr_array_add (server->held, do_invocation_ref (invocation));
      if (server->hang_notify >= 0)
        (void) !write (server->hang_notify, "H", 1);
      return NULL;
    }
  if (g_str_equal (method, "Later"))
    {
      /* Answered from an idle callback: a deferred reply. */
      Later *later = g_new0 (Later, 1);

      later->invocation = do_invocation_ref (invocation);
      g_variant_get (params, "(i)", &later->value);
      {
        GSource *idle = g_idle_source_new ();
        g_source_set_callback (idle, answer_later, later, NULL);
        g_source_attach (idle, g_main_context_get_thread_default ());
        g_source_unref (idle);
      }
      return NULL;
    }
  if (g_str_equal (method, "Append"))
    {
      g_variant_get (params, "(i)", &a);
      g_array_append_val (server->appended, a);
      return g_variant_new ("()");
    }
  if (g_str_equal (method, "Taken"))
    return g_variant_new ("(@ai)", g_variant_new_fixed_array (G_VARIANT_TYPE_INT32,
                                                             server->appended->data,
                                                             server->appended->len,
                                                             sizeof (gint32)));
  if (g_str_equal (method, "WhoAmI"))
    {
      const DoCredentials *c = do_invocation_get_credentials (invocation);
      return g_variant_new ("(uuu)", (guint32) c->pid, c->uid, c->gid);
    }
  if (g_str_equal (method, "Clients"))
    return g_variant_new ("(u)", do_connection_get_n_clients (server->vending));
  if (g_str_equal (method, "ReadFd"))
    {
      gint32 idx;
      char buf[64] = { 0 };
      int fd;

      g_variant_get (params, "(h)", &idx);
      fd = g_unix_fd_list_get (do_invocation_get_fd_list (invocation), idx, error);
      if (fd < 0)
        return NULL;
      (void) !read (fd, buf, sizeof buf - 1);
      close (fd);
      return g_variant_new ("(s)", buf);
    }
  if (g_str_equal (method, "BadReply"))
    return g_variant_new ("(s)", "not an int");
  g_assert_not_reached ();
}

static gboolean
refuse_all (DoConnection *connection, const DoCredentials *creds, gpointer data)
{
  return FALSE;
}

/* Forks a server; returns its pid.  *@port_fd gets a send right to its
 * port; *@log_fd (optional) reads its stderr; *@hang_fd (optional) gets a
 * byte each time Hang is called.  With @refuse, every connection is
 * refused. */
static pid_t
fork_server (int *port_fd, int *log_fd, int *hang_fd, gboolean refuse)
{
  int sv[2], logp[2], hangp[2];
  pid_t pid;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  g_assert_cmpint (pipe2 (logp, O_CLOEXEC), ==, 0);
  g_assert_cmpint (pipe2 (hangp, O_CLOEXEC), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GMainLoop) loop = NULL;
      g_autoptr(DoObject) object = NULL;
      GMainContext *context = g_main_context_new ();
      Server server = { 0, };

      dup2 (logp[1], STDERR_FILENO);
      g_main_context_push_thread_default (context);
      loop = g_main_loop_new (context, FALSE);
      server.appended = g_array_new (FALSE, FALSE, sizeof (gint32));
      server.held = g_ptr_array_new_with_free_func ((GDestroyNotify) do_invocation_unref);
      server.hang_notify = hangp[1];
      server.vending = do_connection_new (&error);
      g_assert_no_error (error);
      object = do_object_new_for_xml (calc_xml, NULL, calc_handle, &server, NULL, &error);
      g_assert_no_error (error);
      do_connection_set_root_object (server.vending, object);
      if (refuse)
        do_connection_set_authorize_func (server.vending, refuse_all, NULL, NULL);
      test_send_fd (sv[1], do_connection_dup_port_fd (server.vending, NULL));
      g_main_loop_run (loop);
      _exit (0);
    }
  close (sv[1]);
  close (logp[1]);
  close (hangp[1]);
  *port_fd = test_recv_fd (sv[0], 5000);
  g_assert_cmpint (*port_fd, >=, 0);
  close (sv[0]);
  if (log_fd)
    *log_fd = logp[0];
  else
    close (logp[0]);
  if (hang_fd)
    *hang_fd = hangp[0];
  else
    close (hangp[0]);
  return pid;
}

static void
stop_server (pid_t pid)
{
  kill (pid, SIGKILL);
  g_assert_cmpint (test_wait_child (pid, 5000), !=, -1);
}

static DoProxy *
connect_proxy (int port_fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) connection = do_connection_new_for_port_fd (port_fd, &error);

  g_assert_no_error (error);
  return do_connection_get_root_proxy (connection);
}

static gint32
call_add (DoProxy *proxy, gint32 a, gint32 b)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = do_proxy_call_sync (proxy, "Add", g_variant_new ("(ii)", a, b),
                                              DO_CALL_FLAGS_NONE, 5000, NULL, &error);
  gint32 sum;

  g_assert_no_error (error);
  g_variant_get (r, "(i)", &sum);
  return sum;
}

static void
test_call_basic (void)
{
  g_autoptr(GError) error = NULL;
  int port;
  pid_t pid = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  g_autoptr(GVariant) r = NULL;
  guint32 p, u, g;

  g_assert_cmpint (call_add (proxy, 2, 3), ==, 5);
  g_assert_cmpint (call_add (proxy, -7, 3), ==, -4);

  /* The caller's credentials, as the kernel gave them to the server. */
  r = do_proxy_call_sync (proxy, "WhoAmI", NULL, 0, -1, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (r, "(uuu)", &p, &u, &g);
  g_assert_cmpuint (p, ==, getpid ());
  g_assert_cmpuint (u, ==, getuid ());
  g_assert_cmpuint (g, ==, getgid ());
  g_clear_pointer (&r, g_variant_unref);
  g_assert_cmpint (do_connection_get_peer_credentials (do_proxy_get_connection (proxy))->pid, ==, pid);

  /* Introspection comes for free. */
  r = do_proxy_call_sync (proxy, "Introspect", NULL, 0, -1, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (g_variant_get_string (g_variant_get_child_value (r, 0), NULL), "EchoBytes"));

  close (port);
  stop_server (pid);
}

static void
test_call_errors (void)
{
  g_autoptr(GError) error = NULL;
  int port;
  pid_t pid = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  GVariant *r;

  /* The server's GError arrives with its domain, code and message. */
  r = do_proxy_call_sync (proxy, "Divide", g_variant_new ("(ii)", 9, 0), 0, -1, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, CALC_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "division of 9 by zero");
  g_clear_error (&error);

  r = do_proxy_call_sync (proxy, "Nope", NULL, 0, -1, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD);
  g_clear_error (&error);

  r = do_proxy_call_sync (proxy, "Add", g_variant_new ("(s)", "x"), 0, -1, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE);
  g_assert_nonnull (strstr (error->message, "(ii)"));
  g_clear_error (&error);

  r = do_proxy_call_sync (proxy, "BadReply", NULL, 0, -1, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE);
  g_clear_error (&error);

  r = do_proxy_call_sync (proxy, "not a name", NULL, 0, -1, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A per-call timeout. */
  r = do_proxy_call_sync (proxy, "Hang", NULL, 0, 100, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  /* The connection still works afterwards. */
  g_assert_cmpint (call_add (proxy, 1, 1), ==, 2);
  close (port);
  stop_server (pid);
}

static void
test_refused (void)
{
  g_autoptr(GError) error = NULL;
  int port;
  pid_t pid = fork_server (&port, NULL, NULL, TRUE);
  DoConnection *connection = do_connection_new_for_port_fd (port, &error);

  g_assert_null (connection);
  g_assert_error (error, DO_ERROR, DO_ERROR_ACCESS_DENIED);
  close (port);
  stop_server (pid);
}

typedef struct {
  gboolean done;
  GVariant *result;
  GError *error;
  DoProxy *proxy;
} AsyncData;

static void
async_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  AsyncData *d = user_data;

  g_assert_null (source);
  d->result = do_proxy_call_finish (d->proxy, res, &d->error);
  d->done = TRUE;
}

static void
test_call_async (void)
{
  GMainContext *context = g_main_context_new ();
  int port;
  pid_t pid;
  DoProxy *proxy;
  AsyncData d = { 0, };
  GCancellable *cancellable;

  g_main_context_push_thread_default (context);
  pid = fork_server (&port, NULL, NULL, FALSE);
  proxy = connect_proxy (port);
  d.proxy = proxy;

  do_proxy_call (proxy, "Add", g_variant_new ("(ii)", 40, 2), 0, -1, NULL, async_done, &d);
  g_assert_false (d.done);  /* never before the call returns */
  g_assert_true (test_iterate_until (context, &d.done, 5000));
  g_assert_no_error (d.error);
  g_assert_cmpint (g_variant_get_int32 (g_variant_get_child_value (d.result, 0)), ==, 42);
  g_clear_pointer (&d.result, g_variant_unref);

  /* Errors come through the callback. */
  d.done = FALSE;
  do_proxy_call (proxy, "Divide", g_variant_new ("(ii)", 1, 0), 0, -1, NULL, async_done, &d);
  g_assert_true (test_iterate_until (context, &d.done, 5000));
  g_assert_error (d.error, CALC_ERROR, 7);
  g_clear_error (&d.error);

  /* Timeout of an async call. */
  d.done = FALSE;
  do_proxy_call (proxy, "Hang", NULL, 0, 50, NULL, async_done, &d);
  g_assert_true (test_iterate_until (context, &d.done, 5000));
  g_assert_error (d.error, DO_ERROR, DO_ERROR_TIMED_OUT);
  g_clear_error (&d.error);

  /* Cancellation. */
  d.done = FALSE;
  cancellable = g_cancellable_new ();
  do_proxy_call (proxy, "Hang", NULL, 0, -1, cancellable, async_done, &d);
  g_cancellable_cancel (cancellable);
  g_assert_true (test_iterate_until (context, &d.done, 5000));
  g_assert_error (d.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&d.error);
  g_object_unref (cancellable);

  /* Many in flight at once, answered in any order. */
  {
    AsyncData many[50] = { 0, };

    for (int i = 0; i < 50; i++)
      {
        many[i].proxy = proxy;
        do_proxy_call (proxy, i % 2 ? "Later" : "Add",
                       i % 2 ? g_variant_new ("(i)", i) : g_variant_new ("(ii)", i, i),
                       0, -1, NULL, async_done, &many[i]);
      }
    for (int i = 0; i < 50; i++)
      g_assert_true (test_iterate_until (context, &many[i].done, 5000));
    for (int i = 0; i < 50; i++)
      {
        g_assert_no_error (many[i].error);
        g_assert_cmpint (g_variant_get_int32 (g_variant_get_child_value (many[i].result, 0)), ==, 2 * i);
        g_variant_unref (many[i].result);
      }
  }

  do_proxy_unref (proxy);
  close (port);
  stop_server (pid);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
}

static void
test_oneway_order (void)
{
  g_autoptr(GError) error = NULL;
  int port;
  pid_t pid = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GVariant) list = NULL;
  const gint32 *v;
  gsize n;

  for (gint32 i = 0; i < 1000; i++)
    {
      g_assert_true (do_proxy_call_oneway (proxy, "Append", g_variant_new ("(i)", i), &error));
      g_assert_no_error (error);
    }
  r = do_proxy_call_sync (proxy, "Taken", NULL, 0, -1, NULL, &error);
  g_assert_no_error (error);
  list = g_variant_get_child_value (r, 0);
  v = g_variant_get_fixed_array (list, &n, sizeof (gint32));
  g_assert_cmpuint (n, ==, 1000);
  for (gsize i = 0; i < n; i++)
    g_assert_cmpint (v[i], ==, (gint32) i);
  close (port);
  stop_server (pid);
}

static void
test_fds (void)
{
  g_autoptr(GError) error = NULL;
  int port, p[2];
  pid_t pid = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) r = NULL;

  g_assert_cmpint (pipe2 (p, O_CLOEXEC), ==, 0);
  g_assert_cmpint (write (p[1], "through a pipe", 14), ==, 14);
  close (p[1]);
  g_assert_cmpint (g_unix_fd_list_append (fds, p[0], &error), ==, 0);
  close (p[0]);
  r = do_proxy_call_with_fds_sync (proxy, "ReadFd", g_variant_new ("(h)", 0), fds, 0, -1,
                                   NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (g_variant_get_child_value (r, 0), NULL), ==, "through a pipe");
  close (port);
  stop_server (pid);
}

/* Calls EchoBytes with @data and checks that every byte came back. */
static void
echo_bytes (DoProxy *proxy, const guint8 *data, gsize len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GVariant) bytes = NULL;
  const guint8 *back;
  gsize n;

  r = do_proxy_call_sync (proxy, "EchoBytes",
                          g_variant_new ("(@ay)", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                             data, len, 1)),
                          0, 60000, NULL, &error);
  g_assert_no_error (error);
  bytes = g_variant_get_child_value (r, 0);
  back = g_variant_get_fixed_array (bytes, &n, 1);
  g_assert_cmpuint (n, ==, len);
  g_assert_true (memcmp (back, data, len) == 0);
}

static void
test_bulk_64mib (void)
{
  int port;
  pid_t pid = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  gsize len = 64 * 1024 * 1024;
  g_autofree guint8 *data = g_malloc (len);

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 2654435761u >> 13);
  echo_bytes (proxy, data, len);
  close (port);
  stop_server (pid);
}

/* Large arguments of sync calls: the first goes in a memfd, the server
 * then finds it can read the client's memory and copies the later ones
 * straight out of it (the last, big one in halves with the client).
 * Every byte echoed back is checked. */
static void
test_bulk_direct_read (void)
{
  int port;
  pid_t pid = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  DoRing *ring = do_channel_get_ring (do_proxy_get_connection (proxy)->channel);
  gsize sizes[] = { 256 * 1024, 256 * 1024, 1024 * 1024 + 3, 4 * 1024 * 1024,
                    DO_WIRE_INLINE_MAX + 1, 12 * 1024 * 1024 + 5 };

  g_assert_nonnull (ring);
  for (gsize c = 0; c < G_N_ELEMENTS (sizes); c++)
    {
      g_autofree guint8 *data = g_malloc (sizes[c]);

      for (gsize i = 0; i < sizes[c]; i++)
        data[i] = (guint8) (c + i * 31);
      echo_bytes (proxy, data, sizes[c]);
      g_assert_cmpint (test_lent_state (ring), ==, c == 0 ? DO_RING_READ_IDLE : DO_RING_READ_DONE);
    }
  close (port);
  stop_server (pid);
}

/* A client killed while the server copies its body out of the client's
 * memory (or just before, or after): the server drops that connection
 * and keeps serving the others.  The client says when each call starts;
 * the rounds kill it as its second (the first read from its memory),
 * third or fourth call starts, so the kill lands at varying points. */
static void
test_bulk_direct_read_killed (void)
{
  int port;
  pid_t server = fork_server (&port, NULL, NULL, FALSE);
  g_autoptr(DoProxy) good = connect_proxy (port);
  const int calls = 4;

  for (int round = 0; round < 6; round++)
    {
      int ready[2];
      pid_t client;

      g_assert_cmpint (pipe2 (ready, O_CLOEXEC), ==, 0);
      client = fork ();
      g_assert_cmpint (client, >=, 0);
      if (client == 0)
        {
          DoProxy *proxy = connect_proxy (port);
          gsize len = 32u << 20;
          guint8 *data = g_malloc0 (len);

          for (int i = 0; i < calls; i++)
            {
              if (write (ready[1], "r", 1) != 1)
                _exit (1);
              g_variant_unref (do_proxy_call_sync (proxy, "EchoBytes",
                                                   g_variant_new ("(@ay)", g_variant_new_fixed_array (
                                                       G_VARIANT_TYPE_BYTE, data, len, 1)),
                                                   0, 60000, NULL, NULL));
            }
          _exit (0);
        }
      close (ready[1]);
      for (int started = 0; started < 2 + round % (calls - 1); started++)
        {
          struct pollfd pfd = { .fd = ready[0], .events = POLLIN };
          char c;

          g_assert_cmpint (poll (&pfd, 1, 60000), ==, 1);
          g_assert_cmpint (read (ready[0], &c, 1), ==, 1);
        }
      close (ready[0]);
      kill (client, SIGKILL);
      g_assert_cmpint (test_wait_child (client, 5000), !=, -1);
      g_assert_cmpint (call_add (good, round, 1), ==, round + 1);
    }
  close (port);
  stop_server (server);
}

/* Several client processes call one server at once; every result checked. */
static void
test_concurrent_clients (void)
{
  int port;
  pid_t server = fork_server (&port, NULL, NULL, FALSE);
  pid_t clients[6];

  for (int c = 0; c < 6; c++)
    {
      clients[c] = fork ();
      g_assert_cmpint (clients[c], >=, 0);
      if (clients[c] == 0)
        {
          DoProxy *proxy = connect_proxy (port);
          for (gint32 i = 0; i < 2000; i++)
            if (call_add (proxy, i, c * 100000) != i + c * 100000)
              _exit (1);
          do_proxy_unref (proxy);
          _exit (0);
        }
    }
  for (int c = 0; c < 6; c++)
    {
      int status = test_wait_child (clients[c], 60000);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 0);
    }
  close (port);
  stop_server (server);
}

/* A thread of test_ring_hammer(): Add calls through the ring, every tenth
 * call a ReadFd that carries an fd (so goes on the socket after a marker)
 * with its own text; every answer checked. */
static gpointer
hammer_thread (gpointer data)
{
  DoProxy *proxy = data;
  gint32 base = (gint32) (getpid () % 1000) * 1000000 + (gint32) (gintptr) g_thread_self () % 997;

  for (gint32 i = 0; i < 3000; i++)
    {
      if (i % 10 == 0)
        {
          g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
          g_autoptr(GVariant) r = NULL;
          g_autofree gchar *text = g_strdup_printf ("%d-%d", base, i);
          int p[2];

          if (pipe2 (p, O_CLOEXEC) < 0 || write (p[1], text, strlen (text)) < 0)
            return GINT_TO_POINTER (1);
          close (p[1]);
          g_unix_fd_list_append (fds, p[0], NULL);
          close (p[0]);
          r = do_proxy_call_with_fds_sync (proxy, "ReadFd", g_variant_new ("(h)", 0), fds, 0,
                                           10000, NULL, NULL, NULL);
          if (!r || g_strcmp0 (g_variant_get_string (g_variant_get_child_value (r, 0), NULL), text) != 0)
            return GINT_TO_POINTER (2);
        }
      else if (call_add (proxy, i, base) != i + base)
        return GINT_TO_POINTER (3);
    }
  return NULL;
}

/* Two client processes times two threads each call one server over the
 * shared-memory rings, plain calls interleaved with calls carrying fds. */
static void
test_ring_hammer (void)
{
  int port;
  pid_t server = fork_server (&port, NULL, NULL, FALSE);
  pid_t clients[2];

  for (int c = 0; c < 2; c++)
    {
      clients[c] = fork ();
      g_assert_cmpint (clients[c], >=, 0);
      if (clients[c] == 0)
        {
          DoProxy *proxy = connect_proxy (port);
          GThread *threads[2];
          int status = 0;

          if (!do_connection_uses_shm (do_proxy_get_connection (proxy)))
            _exit (9);
          for (int t = 0; t < 2; t++)
            threads[t] = g_thread_new ("hammer", hammer_thread, proxy);
          for (int t = 0; t < 2; t++)
            status |= GPOINTER_TO_INT (g_thread_join (threads[t]));
          do_proxy_unref (proxy);
          _exit (status);
        }
    }
  for (int c = 0; c < 2; c++)
    {
      int status = test_wait_child (clients[c], 60000);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 0);
    }
  close (port);
  stop_server (server);
}

typedef struct {
  guint8 *map;
  gsize from, to;   /* the words to scribble over */
  gint stop;        /* (atomic) */
  gint started;     /* (atomic) */
  guint32 seed;
} Scribbler;

static gpointer
scribble_thread (gpointer data)
{
  Scribbler *sc = data;
  GRand *rand = g_rand_new_with_seed (sc->seed);

  while (!g_atomic_int_get (&sc->stop))
    {
      gsize at = g_rand_int_range (rand, (gint32) (sc->from / 4), (gint32) (sc->to / 4)) * 4;
      guint32 v = g_rand_int (rand);

      memcpy (sc->map + at, &v, sizeof v);
      g_atomic_int_set (&sc->started, TRUE);
    }
  g_rand_free (rand);
  return NULL;
}

/* A client scribbles over the ring the server reads, indices and records,
 * while it calls and another client keeps calling: the server drops the
 * scribbler with a logged reason and keeps serving the other.  (Between
 * calls the rings are empty and the indices are rewritten by their owners
 * before anyone reads them, so the scribbling runs during the calls; a
 * loaded machine may not run it then, so rounds go on until one failed.) */
static void
test_ring_scribbler (void)
{
  int port, log;
  pid_t server = fork_server (&port, &log, NULL, FALSE);
  g_autoptr(DoProxy) good = connect_proxy (port);
  g_autoptr(GString) logged = g_string_new (NULL);
  guint failed = 0;

  for (int round = 0;
       round < 20 || ((failed == 0 || !strstr (logged->str, "closing connection")) && round < 400);
       round++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoProxy) bad = connect_proxy (port);
      DoRing *ring = do_channel_get_ring (do_proxy_get_connection (bad)->channel);
      int fds[DO_RING_N_FDS];
      Scribbler sc = { .seed = 42 + round };
      GThread *thread;
      gsize size;

      g_assert_nonnull (ring);
      g_assert_true (do_ring_dup_fds (ring, fds, &error));
      size = 4096 + 2 * (gsize) do_ring_get_size (ring);
      sc.map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
      g_assert_true (sc.map != MAP_FAILED);
      g_assert_cmpint (call_add (bad, 1, 2), ==, 3);

      /* What the server reads: the cache line of ring 0's head (our
       * producer words), or ring 0's records.  (Our own consumer words
       * would break this client first, and the server would only see it
       * hang up.) */
      sc.from = round % 2 ? 64 : 4096;
      sc.to = round % 2 ? 128 : 4096 + do_ring_get_size (ring);
      thread = g_thread_new ("scribbler", scribble_thread, &sc);
      while (!g_atomic_int_get (&sc.started))
        g_thread_yield ();
      for (int i = 0; i < 5; i++)
        {
          g_autoptr(GVariant) r = do_proxy_call_sync (bad, "Add", g_variant_new ("(ii)", i, i),
                                                      DO_CALL_FLAGS_NONE, 2000, NULL, NULL);
          g_autoptr(GVariant) ok = do_proxy_call_sync (good, "Add", g_variant_new ("(ii)", round, i),
                                                       DO_CALL_FLAGS_NONE, 5000, NULL, &error);
          gint32 sum;

          if (error)
            {
              /* Say what happened to the server before failing. */
              test_read_into (log, logged, 2000);
              g_test_message ("the server's log: %s", logged->str);
            }
          g_assert_no_error (error);
          g_variant_get (ok, "(i)", &sum);
          g_assert_cmpint (sum, ==, round + i);
          failed += r == NULL;
        }
      g_atomic_int_set (&sc.stop, TRUE);
      g_thread_join (thread);
      munmap (sc.map, size);
      for (int i = 0; i < DO_RING_N_FDS; i++)
        close (fds[i]);
      test_read_into (log, logged, 0);
    }
  g_test_message ("%u calls through a scribbled ring failed", failed);
  g_assert_cmpuint (failed, >, 0);

  /* The good client never noticed; the server said why it dropped others. */
  g_assert_cmpint (call_add (good, 40, 2), ==, 42);
  stop_server (server);
  test_read_into (log, logged, 5000);
  close (log);
  g_assert_nonnull (strstr (logged->str, "closing connection"));
  close (port);
}

typedef struct {
  gboolean died;
  GError *error;
} DiedState;

static void
on_died (DoConnection *connection, const GError *error, gpointer data)
{
  DiedState *s = data;

  g_assert_false (s->died);
  s->died = TRUE;
  s->error = g_error_copy (error);
}

typedef struct {
  int hang_fd;
  pid_t pid;
} Killer;

static gpointer
kill_when_hanging (gpointer data)
{
  Killer *k = data;
  char c;

  if (read (k->hang_fd, &c, 1) == 1)
    kill (k->pid, SIGKILL);
  return NULL;
}

/* The server is killed while we are blocked in a call: the call fails with
 * CONNECTION_DIED at once and the died callback runs. */
/* After fork() the child's copies of the parent's connections are dead:
 * a call on one fails at once, and a child running its main loop (where
 * their sources were copied) takes none of the parent's replies, flags
 * none of its rings and does not shut its sockets down, while the parent
 * goes on calling.  The child can still connect afresh. */
static void
test_fork (void)
{
  int port, log, stop[2];
  pid_t server = fork_server (&port, &log, NULL, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  pid_t child;
  int status;

  g_assert_cmpint (call_add (proxy, 1, 2), ==, 3);
  g_assert_cmpint (pipe2 (stop, O_CLOEXEC), ==, 0);
  child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) r = do_proxy_call_sync (proxy, "Add", g_variant_new ("(ii)", 1, 2),
                                                  DO_CALL_FLAGS_NONE, 5000, NULL, &error);
      struct pollfd pfd = { .fd = stop[0], .events = POLLIN };
      gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

      if (r || !g_error_matches (error, DO_ERROR, DO_ERROR_CONNECTION_DIED))
        _exit (3);
      while (poll (&pfd, 1, 0) == 0)
        {
          g_main_context_iteration (NULL, FALSE);
          if (g_get_monotonic_time () > deadline)
            _exit (4);
        }
      {
        g_autoptr(DoProxy) mine = connect_proxy (port);
        _exit (call_add (mine, 40, 2) == 42 ? 0 : 5);
      }
    }
  for (int i = 0; i < 1000; i++)
    g_assert_cmpint (call_add (proxy, i, 1), ==, i + 1);
  g_assert_cmpint (write (stop[1], "s", 1), ==, 1);
  status = test_wait_child (child, 20000);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_cmpint (call_add (proxy, 20, 22), ==, 42);
  close (stop[0]);
  close (stop[1]);
  close (log);
  close (port);
  stop_server (server);
}

static void
test_server_killed (void)
{
  g_autoptr(GError) error = NULL;
  GMainContext *context = g_main_context_new ();
  DiedState died = { 0, };
  Killer k;
  GThread *thread;
  GVariant *r;
  gint64 start;
  int port;
  DoProxy *proxy;

  g_main_context_push_thread_default (context);
  k.pid = fork_server (&port, NULL, &k.hang_fd, FALSE);
  proxy = connect_proxy (port);
  do_connection_set_died_func (do_proxy_get_connection (proxy), on_died, &died, NULL);
  g_assert_cmpint (call_add (proxy, 1, 2), ==, 3);

  thread = g_thread_new ("killer", kill_when_hanging, &k);
  start = g_get_monotonic_time ();
  r = do_proxy_call_sync (proxy, "Hang", NULL, 0, DO_TIMEOUT_INFINITE, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC / 2);
  g_thread_join (thread);
  g_clear_error (&error);

  g_assert_true (test_iterate_until (context, &died.died, 5000));
  g_assert_error (died.error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  g_clear_error (&died.error);
  g_assert_false (do_connection_is_alive (do_proxy_get_connection (proxy)));

  /* Later calls fail cleanly. */
  r = do_proxy_call_sync (proxy, "Add", g_variant_new ("(ii)", 1, 1), 0, -1, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  g_clear_error (&error);
  do_proxy_unref (proxy);
  close (k.hang_fd);
  g_assert_cmpint (test_wait_child (k.pid, 5000), !=, -1);

  /* Once the server is gone, connecting to its dead port fails. */
  g_assert_null (do_connection_new_for_port_fd (port, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  close (port);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
}

/* A client killed in the middle of a call leaves the server and the other
 * clients unharmed. */
static void
test_client_killed (void)
{
  g_autoptr(GError) error = NULL;
  int port, hang;
  pid_t server = fork_server (&port, NULL, &hang, FALSE);
  g_autoptr(DoProxy) proxy = connect_proxy (port);
  g_autoptr(GVariant) r = NULL;
  pid_t victim;
  char c;

  victim = fork ();
  if (victim == 0)
    {
      DoProxy *p = connect_proxy (port);
      do_proxy_call_sync (p, "Hang", NULL, 0, DO_TIMEOUT_INFINITE, NULL, NULL);
      _exit (0);
    }
  g_assert_cmpint (read (hang, &c, 1), ==, 1);
  kill (victim, SIGKILL);
  g_assert_cmpint (test_wait_child (victim, 5000), !=, -1);

  g_assert_cmpint (call_add (proxy, 20, 22), ==, 42);
  /* The server forgets the dead client (it notices at its next
   * iteration; ask until it has, with a bound). */
  for (int i = 0; i < 1000; i++)
    {
      guint32 n;
      g_clear_pointer (&r, g_variant_unref);
      r = do_proxy_call_sync (proxy, "Clients", NULL, 0, -1, NULL, &error);
      g_assert_no_error (error);
      g_variant_get (r, "(u)", &n);
      if (n == 1)
        break;
      g_assert_cmpint (i, <, 999);
    }
  close (port);
  close (hang);
  stop_server (server);
}

/* Connects by hand and returns our raw end of the connection. */
static int
raw_connect (int port)
{
  g_autoptr(DoChannel) port_channel = do_channel_new (dup (port), NULL);
  g_autoptr(DoMessage) connect = do_message_new (DO_MESSAGE_CONNECT, 0, NULL, NULL, NULL);
  int sv[2];
  int *fds = g_new (int, 1);
  char buf[256];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), ==, 0);
  fds[0] = sv[1];
  g_assert_true (do_message_take_fds (connect, fds, 1, NULL));
  g_assert_true (do_channel_send (port_channel, connect, -1, NULL));
  /* HELLO */
  g_assert_cmpint (recv (sv[0], buf, sizeof buf, 0), >, 0);
  return sv[0];
}

/* The server must close a connection that sent @packet (with @n_fds fds). */
static void
assert_closed_after (int port, const void *packet, gsize len, guint n_fds)
{
  int sock = raw_connect (port);
  union {
    char buf[CMSG_SPACE (sizeof (int) * 4)];
    struct cmsghdr align;
  } u;
  struct iovec iov = { (void *) packet, len };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  int p[2];
  char buf[256];
  struct timeval tv = { 5, 0 };

  if (n_fds)
    {
      struct cmsghdr *cm;
      int fds[4];

      g_assert_cmpint (pipe2 (p, O_CLOEXEC), ==, 0);
      for (guint i = 0; i < n_fds; i++)
        fds[i] = p[i % 2];
      mh.msg_control = u.buf;
      mh.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      cm = CMSG_FIRSTHDR (&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (cm), fds, sizeof (int) * n_fds);
    }
  g_assert_cmpint (sendmsg (sock, &mh, MSG_NOSIGNAL), ==, (ssize_t) len);
  if (n_fds)
    {
      close (p[0]);
      close (p[1]);
    }
  /* EOF within the bound: the server hung up on us. */
  setsockopt (sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  g_assert_cmpint (recv (sock, buf, sizeof buf, 0), ==, 0);
  close (sock);
}

static GBytes *
encode_call (const gchar *method, GVariant *body)
{
  g_autoptr(DoMessage) msg = do_message_new (DO_MESSAGE_CALL, 1, NULL, method, body);

  msg->serial = 1;
  return do_wire_encode (msg, FALSE);
}

static void
test_hostile_client (void)
{
  int port, log;
  pid_t server = fork_server (&port, &log, NULL, FALSE);
  g_autoptr(DoProxy) good = connect_proxy (port);
  g_autoptr(GBytes) call = encode_call ("Add", g_variant_new ("(ii)", 1, 2));
  gsize len;
  const guint8 *valid = g_bytes_get_data (call, &len);
  guint8 *bad = g_malloc (len);
  g_autofree gchar *logged = NULL;
  DoWireHeader *h = (DoWireHeader *) bad;
  guint8 garbage[512];

  for (gsize i = 0; i < sizeof garbage; i++)
    garbage[i] = (guint8) (i * 37 + 11);
  assert_closed_after (port, garbage, sizeof garbage, 0);
  g_assert_cmpint (call_add (good, 1, 1), ==, 2);

  /* truncated header */
  assert_closed_after (port, valid, 20, 0);
  /* truncated body */
  assert_closed_after (port, valid, len - 3, 0);
  /* wrong fd counts: fds the header does not announce, and the reverse */
  assert_closed_after (port, valid, len, 2);
  memcpy (bad, valid, len);
  h->n_fds = GUINT16_TO_LE (3);
  assert_closed_after (port, bad, len, 0);
  /* huge body length */
  memcpy (bad, valid, len);
  h->body_len = GUINT64_TO_LE (G_MAXUINT64 - 4);
  assert_closed_after (port, bad, len, 0);
  /* bad signature: "(ii)" becomes "(i!)" */
  memcpy (bad, valid, len);
  bad[sizeof (DoWireHeader) + 1 + 4 + 2] = '!';
  assert_closed_after (port, bad, len, 0);
  /* a body that does not match its signature's normal form */
  memcpy (bad, valid, len);
  h->body_len = GUINT64_TO_LE (7);
  assert_closed_after (port, bad, len - 1, 0);
  g_free (bad);

  /* The well-behaved client never noticed. */
  for (int i = 0; i < 100; i++)
    g_assert_cmpint (call_add (good, i, i), ==, 2 * i);

  stop_server (server);
  logged = test_read_all (log, 2000);
  g_assert_nonnull (strstr (logged, "closing connection to pid"));
  g_assert_nonnull (strstr (logged, "bad magic"));
  g_assert_nonnull (strstr (logged, "shorter than a header"));
  g_assert_nonnull (strstr (logged, "file descriptors"));
  g_assert_nonnull (strstr (logged, "not a D-Bus tuple type"));
  close (log);
  close (port);
}

/* A vended name is found through the broker, and gone as soon as it is
 * unregistered. */
static void
test_register_name (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *socket = test_private_broker ();
  g_autoptr(DoConnection) vending = do_connection_new (&error);
  g_autoptr(DoConnection) again = NULL;
  DoConnection *client;

  g_assert_no_error (error);
  g_assert_true (do_connection_register_name (vending, "org.porter.test.Named", &error));
  g_assert_no_error (error);
  g_assert_true (do_connection_unregister_name (vending, &error));
  g_assert_no_error (error);
  client = do_connection_new_for_name ("org.porter.test.Named", 0, NULL, &error);
  g_assert_null (client);
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (do_connection_unregister_name (vending, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_clear_error (&error);

  /* Taken by a live connection: refused with a clear error. */
  g_assert_true (do_connection_register_name (vending, "org.porter.test.Named", &error));
  again = do_connection_new (&error);
  g_assert_false (do_connection_register_name (again, "org.porter.test.Named", &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_TAKEN);
  test_kill_broker (socket);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);

  g_test_add_func ("/do/connection/call-basic", test_call_basic);
  g_test_add_func ("/do/connection/call-errors", test_call_errors);
  g_test_add_func ("/do/connection/refused", test_refused);
  g_test_add_func ("/do/connection/call-async", test_call_async);
  g_test_add_func ("/do/connection/oneway-order", test_oneway_order);
  g_test_add_func ("/do/connection/fds", test_fds);
  g_test_add_func ("/do/connection/bulk-64mib", test_bulk_64mib);
  g_test_add_func ("/do/connection/bulk-direct-read", test_bulk_direct_read);
  g_test_add_func ("/do/connection/bulk-direct-read-killed", test_bulk_direct_read_killed);
  g_test_add_func ("/do/connection/concurrent-clients", test_concurrent_clients);
  g_test_add_func ("/do/connection/ring-hammer", test_ring_hammer);
  g_test_add_func ("/do/connection/ring-scribbler", test_ring_scribbler);
  g_test_add_func ("/do/connection/fork", test_fork);
  g_test_add_func ("/do/connection/server-killed", test_server_killed);
  g_test_add_func ("/do/connection/client-killed", test_client_killed);
  g_test_add_func ("/do/connection/hostile-client", test_hostile_client);
  g_test_add_func ("/do/connection/register-name", test_register_name);
  return g_test_run ();
}
