/* Porter — the notify(3) API and porter-notifyd, with real processes.
 *
 * The program uses one private per-user daemon (a socket under a temporary
 * directory, $PORTER_NOTIFYD), started on demand by the first call, and
 * starts extra daemons of its own for the tests that need other options
 * (a small page, a small queue, a system instance).  Child processes are
 * this program run again with "--child MODE ..." (or forked, where the test
 * is about fork).  Every wait is on an event, with a deadline; nothing
 * sleeps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "libdo/do.h"
#include "libnotecenter/nc.h"

#include "notifyd-test-util.h"

#define WAIT_MS 20000

static gchar *self_exe;
static gchar *tmp_dir;
static gchar *socket_path;

/* ------------------------------------------------------------ helpers */

static gboolean
wait_readable (int fd, int timeout_ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  int r;

  do
    r = poll (&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r == 1;
}

static int
read_token (int fd)
{
  guint32 net;

  g_assert_true (wait_readable (fd, WAIT_MS));
  g_assert_cmpint (read (fd, &net, sizeof net), ==, sizeof net);
  return (int) ntohl (net);
}

/* Starts porter-notifyd on @path with @extra options; returns once it
 * listens (its first process exits then). */
static void
start_daemon (const gchar *path, const gchar *const *extra)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  gint status;

  g_ptr_array_add (argv, (gpointer) g_getenv ("PORTER_NOTIFYD_EXEC"));
  g_ptr_array_add (argv, (gpointer) "--daemonize");
  g_ptr_array_add (argv, (gpointer) "--socket");
  g_ptr_array_add (argv, (gpointer) path);
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) extra[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (gchar **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static gchar *
private_path (const gchar *leaf)
{
  return g_build_filename (tmp_dir, leaf, "notifyd", NULL);
}

static GSubprocess *
spawn_child (GSubprocessFlags flags, const gchar *const *args, const gchar *env_path)
{
  return notifyd_test_spawn_child (self_exe, flags, env_path, args);
}

static void
waited_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static gboolean
timed_out_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits for @proc to exit, at most WAIT_MS (then kills it); returns
 * whether it succeeded. */
static gboolean
child_wait (GSubprocess *proc)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gboolean done = FALSE, timed_out = FALSE;
  GSource *timeout = g_timeout_source_new (WAIT_MS);

  g_main_context_push_thread_default (context);
  g_subprocess_wait_async (proc, cancellable, waited_cb, &done);
  g_source_set_callback (timeout, timed_out_cb, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (!done && !timed_out)
    g_main_context_iteration (context, TRUE);
  if (!done)
    {
      g_subprocess_force_exit (proc);
      g_cancellable_cancel (cancellable);
      while (!done)
        g_main_context_iteration (context, TRUE);
    }
  g_source_destroy (timeout);
  g_source_unref (timeout);
  g_main_context_pop_thread_default (context);
  return !timed_out && g_subprocess_get_successful (proc);
}

/* Runs a child to its end (bounded) and returns whether it succeeded. */
static gboolean
run_child (const gchar *const *args, const gchar *env_path)
{
  g_autoptr(GSubprocess) proc = spawn_child (G_SUBPROCESS_FLAGS_NONE, args, env_path);

  return child_wait (proc);
}

/* A raw client of a daemon at @path: its root proxy. */
static DoProxy *
raw_client (const gchar *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) conn = do_connection_new_for_socket_path (path, NULL, &error);

  g_assert_no_error (error);
  return do_connection_get_root_proxy (conn);
}

/* Hello with @fd (borrowed); returns the status, *page_fd the page. */
static guint32
raw_hello (DoProxy *proxy, int fd, int *page_fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) out_fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 status, n_slots;
  guint64 generation;
  gint32 index;

  index = g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  reply = do_proxy_call_with_fds_sync (proxy, "Hello", g_variant_new ("(h)", index), fds,
                                       DO_CALL_FLAGS_NONE, WAIT_MS, &out_fds, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(uhtu)", &status, &index, &generation, &n_slots);
  if (page_fd != NULL)
    *page_fd = status == 0 ? g_unix_fd_list_get (out_fds, index, NULL) : -1;
  return status;
}

static guint32
raw_call_status (DoProxy *proxy, const gchar *method, GVariant *params, GError **error)
{
  g_autoptr(GVariant) reply = do_proxy_call_sync (proxy, method, params, DO_CALL_FLAGS_NONE,
                                                  WAIT_MS, NULL, error);
  guint32 status = G_MAXUINT32;

  if (reply != NULL)
    g_variant_get_child (reply, 0, "u", &status);
  return status;
}

/* ------------------------------------------------------------ children */

static int
child_main (int argc, char **argv)
{
  const gchar *mode = argv[0];
  int token, check;

  if (g_str_equal (mode, "set-state") && argc == 3)
    {
      if (nc_notify_register_check (argv[1], &token) != 0)
        return 2;
      return nc_notify_set_state (token, g_ascii_strtoull (argv[2], NULL, 10)) == 0 ? 0 : 3;
    }
  if (g_str_equal (mode, "post") && argc == 2)
    {
      gchar line[8];
      /* Wait for the go (stdin closed), then race the others. */
      if (read (STDIN_FILENO, line, sizeof line) < 0)
        return 4;
      return nc_notify_post (argv[1]) == 0 ? 0 : 5;
    }
  if (g_str_equal (mode, "slot-limit"))
    {
      /* The daemon has 2 counter slots for 4 names: posts of one name show
       * on the names sharing its slot (false positives), never missing. */
      const char *names[] = { "lim.a", "lim.b", "lim.c", "lim.d" };
      int tokens[4], seen[4], false_positives = 0;

      for (int i = 0; i < 4; i++)
        {
          if (nc_notify_register_check (names[i], &tokens[i]) != 0)
            return 6;
          nc_notify_check (tokens[i], &check);  /* the first is always 1 */
        }
      for (int i = 0; i < 4; i++)
        {
          if (nc_notify_post (names[i]) != 0)
            return 7;
          for (int j = 0; j < 4; j++)
            nc_notify_check (tokens[j], &seen[j]);
          if (!seen[i])
            return 8;  /* a false negative: never allowed */
          for (int j = 0; j < 4; j++)
            if (j != i && seen[j])
              false_positives++;
        }
      printf ("false positives: %d\n", false_positives);
      return false_positives > 0 ? 0 : 9;
    }
  return 100;
}

/* ------------------------------------------------------------ tests */

static void
test_post_check (void)
{
  int token, check = -1, token2;

  g_assert_cmpuint (nc_notify_register_check ("test.check", &token), ==, NC_NOTIFY_STATUS_OK);
  g_assert_true (nc_notify_is_valid_token (token));
  /* True the first time, as Apple's. */
  g_assert_cmpuint (nc_notify_check (token, &check), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (check, ==, 1);
  g_assert_cmpuint (nc_notify_check (token, &check), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (check, ==, 0);
  g_assert_cmpuint (nc_notify_post ("test.check"), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpuint (nc_notify_check (token, &check), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (check, ==, 1);
  g_assert_cmpuint (nc_notify_check (token, &check), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (check, ==, 0);
  /* Another name's post does not show. */
  g_assert_cmpuint (nc_notify_post ("test.check.other"), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpuint (nc_notify_check (token, &check), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (check, ==, 0);

  /* self. names stay in the process. */
  g_assert_cmpuint (nc_notify_register_check ("self.local", &token2), ==, NC_NOTIFY_STATUS_OK);
  nc_notify_check (token2, &check);
  g_assert_cmpuint (nc_notify_post ("self.local"), ==, NC_NOTIFY_STATUS_OK);
  nc_notify_check (token2, &check);
  g_assert_cmpint (check, ==, 1);
  g_assert_cmpuint (nc_notify_cancel (token2), ==, NC_NOTIFY_STATUS_OK);

  /* Bad arguments. */
  g_assert_cmpuint (nc_notify_check (token, NULL), ==, NC_NOTIFY_STATUS_NULL_INPUT);
  g_assert_cmpuint (nc_notify_register_check (NULL, &token2), ==, NC_NOTIFY_STATUS_NULL_INPUT);
  g_assert_cmpuint (nc_notify_register_check ("", &token2), ==, NC_NOTIFY_STATUS_INVALID_NAME);
  g_assert_cmpuint (nc_notify_register_check ("x", NULL), ==, NC_NOTIFY_STATUS_NULL_INPUT);
  g_assert_cmpuint (nc_notify_post (NULL), ==, NC_NOTIFY_STATUS_NULL_INPUT);
  {
    g_autofree gchar *longname = g_strnfill (5000, 'a');
    g_assert_cmpuint (nc_notify_post (longname), ==, NC_NOTIFY_STATUS_INVALID_NAME);
  }
  g_assert_cmpuint (nc_notify_register_signal ("x", 0, &token2), ==, NC_NOTIFY_STATUS_INVALID_SIGNAL);
  g_assert_cmpuint (nc_notify_register_signal ("x", SIGKILL, &token2), ==, NC_NOTIFY_STATUS_INVALID_SIGNAL);
  g_assert_cmpuint (nc_notify_check (-1, &check), ==, NC_NOTIFY_STATUS_INVALID_TOKEN);
  g_assert_cmpuint (nc_notify_check (123456789, &check), ==, NC_NOTIFY_STATUS_INVALID_TOKEN);
  g_assert_cmpuint (nc_notify_resume (token), ==, NC_NOTIFY_STATUS_INVALID_REQUEST);

  g_assert_cmpuint (nc_notify_cancel (token), ==, NC_NOTIFY_STATUS_OK);
  g_assert_false (nc_notify_is_valid_token (token));
  g_assert_cmpuint (nc_notify_check (token, &check), ==, NC_NOTIFY_STATUS_INVALID_TOKEN);
  g_assert_cmpuint (nc_notify_cancel (token), ==, NC_NOTIFY_STATUS_INVALID_TOKEN);
  /* A reused entry gets another token value. */
  g_assert_cmpuint (nc_notify_register_check ("test.check", &token2), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (token2, !=, token);
  g_assert_false (nc_notify_is_valid_token (token));
  nc_notify_cancel (token2);
}

static void
test_state_across_processes (void)
{
  const gchar *args[] = { "set-state", "test.state", "18446744073709551615", NULL };
  guint64 state = 1;
  int token, check;

  g_assert_cmpuint (nc_notify_register_check ("test.state", &token), ==, 0);
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, 0);
  g_assert_cmpuint (state, ==, 0);
  nc_notify_check (token, &check);
  g_assert_true (run_child (args, NULL));
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, 0);
  g_assert_cmpuint (state, ==, G_MAXUINT64);
  /* Setting the state does not post. */
  nc_notify_check (token, &check);
  g_assert_cmpint (check, ==, 0);
  g_assert_cmpuint (nc_notify_set_state (token, 7), ==, 0);
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, 0);
  g_assert_cmpuint (state, ==, 7);
  g_assert_cmpuint (nc_notify_get_state (token, NULL), ==, NC_NOTIFY_STATUS_NULL_INPUT);
  nc_notify_cancel (token);
  /* The state outlives the registrations. */
  g_assert_cmpuint (nc_notify_register_check ("test.state", &token), ==, 0);
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, 0);
  g_assert_cmpuint (state, ==, 7);
  nc_notify_cancel (token);
}

static void
test_file_descriptor (void)
{
  int fd = -1, fd2, token, token2, token3, bogus = 0;

  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.fd", &fd, 0, &token), ==, 0);
  g_assert_cmpint (fd, >=, 0);
  fd2 = fd;
  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.fd2", &fd2, NC_NOTIFY_REUSE, &token2), ==, 0);
  g_assert_cmpint (fd2, ==, fd);
  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.fd2", &bogus, NC_NOTIFY_REUSE, &token3),
                    ==, NC_NOTIFY_STATUS_INVALID_FILE);
  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.fd2", NULL, 0, &token3),
                    ==, NC_NOTIFY_STATUS_NULL_INPUT);

  g_assert_cmpuint (nc_notify_post ("test.fd"), ==, 0);
  g_assert_cmpint (read_token (fd), ==, token);
  g_assert_cmpuint (nc_notify_post ("test.fd2"), ==, 0);
  g_assert_cmpint (read_token (fd), ==, token2);
  g_assert_false (wait_readable (fd, 0));

  /* The fd stays open while a token uses it, and is closed after. */
  g_assert_cmpuint (nc_notify_cancel (token), ==, 0);
  g_assert_cmpint (fcntl (fd, F_GETFD), >=, 0);
  g_assert_cmpuint (nc_notify_cancel (token2), ==, 0);
  g_assert_cmpint (fcntl (fd, F_GETFD), ==, -1);
}

static int signal_fd = -1;

static void
test_signal (void)
{
  struct signalfd_siginfo info;
  int token, check;

  g_assert_cmpuint (nc_notify_register_signal ("test.signal", SIGUSR1, &token), ==, 0);
  nc_notify_check (token, &check);
  g_assert_cmpuint (nc_notify_post ("test.signal"), ==, 0);
  g_assert_true (wait_readable (signal_fd, WAIT_MS));
  g_assert_cmpint (read (signal_fd, &info, sizeof info), ==, sizeof info);
  g_assert_cmpuint (info.ssi_signo, ==, SIGUSR1);
  g_assert_cmpint (info.ssi_pid, ==, getpid ());
  nc_notify_check (token, &check);
  g_assert_cmpint (check, ==, 1);
  nc_notify_cancel (token);
}

typedef struct {
  int calls;
  int last_token;
  gboolean destroyed;
  GThread *thread;
} DispatchData;

static void
on_dispatch (int token, gpointer user_data)
{
  DispatchData *d = user_data;

  d->calls++;
  d->last_token = token;
  d->thread = g_thread_self ();
}

static void
on_dispatch_destroy (gpointer user_data)
{
  ((DispatchData *) user_data)->destroyed = TRUE;
}

static gboolean
iterate_until (GMainContext *context, gboolean (*done) (DispatchData *), DispatchData *d)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (!done (d) && g_get_monotonic_time () < deadline)
    {
      GSource *timeout = g_timeout_source_new (100);
      g_source_attach (timeout, context);
      g_main_context_iteration (context, TRUE);
      g_source_destroy (timeout);
      g_source_unref (timeout);
    }
  return done (d);
}

static gboolean one_call (DispatchData *d) { return d->calls >= 1; }
static gboolean destroyed (DispatchData *d) { return d->destroyed; }

static void
test_dispatch (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  DispatchData d = { 0 };
  int token;

  g_assert_cmpuint (nc_notify_register_dispatch ("test.dispatch", &token, NULL, NULL, NULL, NULL),
                    ==, NC_NOTIFY_STATUS_NULL_INPUT);
  g_assert_cmpuint (nc_notify_register_dispatch ("test.dispatch", &token, context, on_dispatch,
                                                 &d, on_dispatch_destroy), ==, 0);
  g_assert_cmpuint (nc_notify_post ("test.dispatch"), ==, 0);
  g_assert_true (iterate_until (context, one_call, &d));
  g_assert_cmpint (d.last_token, ==, token);
  g_assert_true (d.thread == g_thread_self ());
  g_assert_cmpuint (nc_notify_cancel (token), ==, 0);
  g_assert_true (iterate_until (context, destroyed, &d));
  g_assert_cmpint (d.calls, ==, 1);
}

static void
test_suspend_resume (void)
{
  int fd = -1, sentinel_fd = -1, token, sentinel, check_token, check;

  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.suspend", &fd, 0, &token), ==, 0);
  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.suspend", &sentinel_fd, 0, &sentinel), ==, 0);
  g_assert_cmpuint (nc_notify_register_check ("test.suspend", &check_token), ==, 0);
  nc_notify_check (check_token, &check);

  g_assert_cmpuint (nc_notify_suspend (token), ==, 0);
  g_assert_cmpuint (nc_notify_suspend (token), ==, 0);  /* nested */
  g_assert_cmpuint (nc_notify_suspend (check_token), ==, 0);
  for (int i = 0; i < 3; i++)
    {
      g_assert_cmpuint (nc_notify_post ("test.suspend"), ==, 0);
      /* Once the unsuspended token has it, the suspended one has seen it. */
      g_assert_cmpint (read_token (sentinel_fd), ==, sentinel);
    }
  nc_notify_check (check_token, &check);
  g_assert_cmpint (check, ==, 0);
  g_assert_false (wait_readable (fd, 0));

  g_assert_cmpuint (nc_notify_resume (token), ==, 0);
  g_assert_false (wait_readable (fd, 0));
  g_assert_cmpuint (nc_notify_resume (token), ==, 0);
  /* Three posts, one delivery. */
  g_assert_cmpint (read_token (fd), ==, token);
  g_assert_false (wait_readable (fd, 0));
  g_assert_cmpuint (nc_notify_resume (token), ==, NC_NOTIFY_STATUS_INVALID_REQUEST);

  g_assert_cmpuint (nc_notify_resume (check_token), ==, 0);
  nc_notify_check (check_token, &check);
  g_assert_cmpint (check, ==, 1);
  nc_notify_check (check_token, &check);
  g_assert_cmpint (check, ==, 0);

  nc_notify_cancel (token);
  nc_notify_cancel (sentinel);
  nc_notify_cancel (check_token);
}

static void
test_duplicates (void)
{
  enum { N_CHECK = 500, N_FD = 100 };
  g_autofree int *checks = g_new (int, N_CHECK);
  g_autofree int *fds = g_new (int, N_FD);
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  int fd = -1, check;

  for (int i = 0; i < N_CHECK; i++)
    {
      g_assert_cmpuint (nc_notify_register_check ("test.dup", &checks[i]), ==, 0);
      nc_notify_check (checks[i], &check);
    }
  for (int i = 0; i < N_FD; i++)
    g_assert_cmpuint (nc_notify_register_file_descriptor ("test.dup", &fd, i ? NC_NOTIFY_REUSE : 0,
                                                          &fds[i]), ==, 0);
  g_assert_cmpuint (nc_notify_post ("test.dup"), ==, 0);
  for (int i = 0; i < N_CHECK; i++)
    {
      nc_notify_check (checks[i], &check);
      g_assert_cmpint (check, ==, 1);
    }
  for (int i = 0; i < N_FD; i++)
    g_hash_table_add (seen, GINT_TO_POINTER (read_token (fd)));
  g_assert_cmpuint (g_hash_table_size (seen), ==, N_FD);
  for (int i = 0; i < N_FD; i++)
    g_assert_true (g_hash_table_contains (seen, GINT_TO_POINTER (fds[i])));
  for (int i = 0; i < N_CHECK; i++)
    g_assert_cmpuint (nc_notify_cancel (checks[i]), ==, 0);
  for (int i = 0; i < N_FD; i++)
    g_assert_cmpuint (nc_notify_cancel (fds[i]), ==, 0);
}

static gpointer
thread_register_cancel (gpointer data)
{
  int n = GPOINTER_TO_INT (data);

  for (int i = 0; i < 200; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("test.thread.%d", (n + i) % 5);
      int token, fd = -1, check;

      if (i % 3 == 0)
        g_assert_cmpuint (nc_notify_register_file_descriptor (name, &fd, 0, &token), ==, 0);
      else
        g_assert_cmpuint (nc_notify_register_check (name, &token), ==, 0);
      g_assert_cmpuint (nc_notify_check (token, &check), ==, 0);
      if (i % 7 == 0)
        g_assert_cmpuint (nc_notify_post (name), ==, 0);
      g_assert_cmpuint (nc_notify_cancel (token), ==, 0);
      g_assert_false (nc_notify_is_valid_token (token));
    }
  return NULL;
}

static void
test_threads (void)
{
  GThread *threads[8];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("register", thread_register_cancel, GINT_TO_POINTER (i));
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
}

static void
test_restart (void)
{
  const gchar *args[] = { "set-state", "test.restart", "5", NULL };
  int fd = -1, token, check_token, check;
  pid_t before, after;
  guint64 state;

  g_assert_cmpuint (nc_notify_register_file_descriptor ("test.restart", &fd, 0, &token), ==, 0);
  g_assert_cmpuint (nc_notify_register_check ("test.restart", &check_token), ==, 0);
  nc_notify_check (check_token, &check);
  before = notifyd_test_daemon_pid (socket_path);
  g_assert_cmpint (before, >, 0);
  g_assert_cmpint (kill (before, SIGKILL), ==, 0);
  g_assert_true (notifyd_test_wait_exit (before, WAIT_MS));

  /* The next call (or our worker, whichever comes first) starts a new
   * daemon and registers again. */
  g_assert_cmpuint (nc_notify_post ("test.restart"), ==, 0);
  g_assert_cmpint (read_token (fd), ==, token);
  after = notifyd_test_daemon_pid (socket_path);
  g_assert_cmpint (after, >, 0);
  g_assert_cmpint (after, !=, before);
  /* A new daemon: the check token reports (at least) once. */
  nc_notify_check (check_token, &check);
  g_assert_cmpint (check, ==, 1);

  /* Another process reaches us through the new daemon. */
  g_assert_true (run_child (args, NULL));
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, 0);
  g_assert_cmpuint (state, ==, 5);
  {
    const gchar *post_args[] = { "post", "test.restart", NULL };
    GSubprocess *child = spawn_child (G_SUBPROCESS_FLAGS_STDIN_PIPE, post_args, NULL);
    g_output_stream_close (g_subprocess_get_stdin_pipe (child), NULL, NULL);
    g_assert_cmpint (read_token (fd), ==, token);
    g_assert_true (child_wait (child));
    g_object_unref (child);
  }
  nc_notify_cancel (token);
  nc_notify_cancel (check_token);
}

static guint
count_daemons (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const gchar *entry;
  guint n = 0;

  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *cmdline_path = g_build_filename ("/proc", entry, "cmdline", NULL);
      g_autofree gchar *cmdline = NULL;
      gsize len;

      if (!g_ascii_isdigit (entry[0]) || !g_file_get_contents (cmdline_path, &cmdline, &len, NULL))
        continue;
      /* argv: exec --daemonize --socket PATH */
      for (gsize i = 0; i + 1 < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (strstr (cmdline, "porter-notifyd") && strstr (cmdline, path))
        n++;
    }
  return n;
}

static void
test_autostart_concurrent (void)
{
  g_autofree gchar *path = private_path ("race");
  GSubprocess *children[10];
  const gchar *args[] = { "post", "test.race", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    children[i] = spawn_child (G_SUBPROCESS_FLAGS_STDIN_PIPE, args, path);
  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    g_output_stream_close (g_subprocess_get_stdin_pipe (children[i]), NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      g_assert_true (child_wait (children[i]));
      g_object_unref (children[i]);
    }
  g_assert_cmpint (notifyd_test_daemon_pid (path), >, 0);
  g_assert_cmpuint (count_daemons (path), ==, 1);
  notifyd_test_stop_daemon (path, SIGTERM, WAIT_MS);
  g_assert_cmpuint (count_daemons (path), ==, 0);
}

static void
test_slot_limit (void)
{
  g_autofree gchar *path = private_path ("slots");
  const gchar *extra[] = { "--slots", "3", NULL };
  const gchar *args[] = { "slot-limit", NULL };

  start_daemon (path, extra);
  g_assert_true (run_child (args, path));
  notifyd_test_stop_daemon (path, SIGTERM, WAIT_MS);
}

static void
test_slow_client (void)
{
  g_autofree gchar *path = private_path ("slow");
  const gchar *extra[] = { "--max-queue", "4", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(DoProxy) slow = NULL;
  g_autoptr(DoProxy) other = NULL;
  int pair[2], sndbuf = 1, page_fd;
  guint32 status = 0;
  int i;

  start_daemon (path, extra);
  slow = raw_client (path);
  /* The daemon's end of the delivery socket gets the smallest buffer, and
   * we never read ours. */
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), ==, 0);
  setsockopt (pair[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  g_assert_cmpuint (raw_hello (slow, pair[1], &page_fd), ==, 0);
  close (pair[1]);
  close (page_fd);
  for (i = 0; i < 2000; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("slow.%d", i);
      g_autoptr(GVariant) reply = do_proxy_call_sync (slow, "Register",
                                                      g_variant_new ("(sub)", name, i + 1, TRUE),
                                                      DO_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
      if (reply == NULL)
        break;
      status = raw_call_status (slow, "Post", g_variant_new ("(s)", name), &error);
      if (error != NULL)
        break;
      g_assert_cmpuint (status, ==, 0);
    }
  /* Disconnected once its queue passed the limit, not before. */
  g_assert_nonnull (error);
  g_assert_cmpint (i, >, 4);
  g_assert_cmpint (i, <, 2000);
  g_clear_error (&error);
  /* Our end of the delivery socket sees the daemon let go. */
  {
    char buf[4096];
    ssize_t n;
    do
      {
        g_assert_true (wait_readable (pair[0], WAIT_MS));
        n = recv (pair[0], buf, sizeof buf, MSG_DONTWAIT);
      }
    while (n != 0);
  }
  close (pair[0]);

  /* The daemon goes on serving others. */
  other = raw_client (path);
  g_assert_cmpuint (raw_call_status (other, "Post", g_variant_new ("(s)", "slow.1"), &error), ==, 0);
  g_assert_no_error (error);
  {
    g_autofree gchar *log_path = g_strconcat (path, ".log", NULL);
    g_autofree gchar *log = NULL;
    g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
    g_assert_nonnull (strstr (log, "deliveries waiting"));
  }
  notifyd_test_stop_daemon (path, SIGTERM, WAIT_MS);
}

static void
test_hostile (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoProxy) proxy = NULL;
  pid_t pid = notifyd_test_daemon_pid (socket_path);
  int pipe_fds[2], pair[2], page_fd;
  GRand *rand = g_rand_new_with_seed (42);
  int token, check;
  void *map;

  g_assert_cmpint (pid, >, 0);
  /* Garbage on raw sockets. */
  for (int round = 0; round < 50; round++)
    {
      int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; } addr = { AF_UNIX, { 0 } };
      guint8 buf[512];
      gsize len = g_rand_int_range (rand, 1, sizeof buf);

      g_assert_cmpuint (strlen (socket_path), <, sizeof addr.sun_path);
      strcpy (addr.sun_path, socket_path);
      g_assert_cmpint (connect (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
      for (gsize i = 0; i < len; i++)
        buf[i] = (guint8) g_rand_int (rand);
      /* Half the time a plausible header start. */
      if (round % 2 == 0 && len >= 4)
        buf[0] = 'P', buf[1] = 'D';
      send (fd, buf, len, MSG_NOSIGNAL);
      close (fd);
    }
  g_rand_free (rand);

  /* Well-formed calls with bad contents. */
  proxy = raw_client (socket_path);
  g_assert_cmpuint (raw_call_status (proxy, "Register", g_variant_new ("(sub)", "x", 1, TRUE), &error),
                    ==, NC_NOTIFY_STATUS_INVALID_REQUEST);  /* before Hello */
  g_assert_cmpint (pipe (pipe_fds), ==, 0);
  g_assert_cmpuint (raw_hello (proxy, pipe_fds[1], NULL), ==, NC_NOTIFY_STATUS_INVALID_FILE);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  g_assert_cmpuint (raw_call_status (proxy, "Post", g_variant_new ("(s)", ""), &error),
                    ==, NC_NOTIFY_STATUS_INVALID_NAME);
  g_assert_cmpuint (raw_call_status (proxy, "Cancel", g_variant_new ("(u)", 77), &error),
                    ==, NC_NOTIFY_STATUS_INVALID_TOKEN);
  {
    g_autoptr(GVariant) reply = do_proxy_call_sync (proxy, "Post", g_variant_new ("(u)", 1),
                                                    DO_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
    g_assert_null (reply);
    g_assert_nonnull (error);
    g_clear_error (&error);
  }

  /* The counter page cannot be written, however it is opened. */
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), ==, 0);
  g_assert_cmpuint (raw_hello (proxy, pair[1], &page_fd), ==, 0);
  g_assert_cmpuint (raw_hello (proxy, pair[1], NULL), ==, NC_NOTIFY_STATUS_INVALID_REQUEST);
  g_assert_cmpint (page_fd, >=, 0);
  map = mmap (NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0);
  g_assert_true (map == MAP_FAILED);
  map = mmap (NULL, 4096, PROT_READ, MAP_SHARED, page_fd, 0);
  g_assert_true (map != MAP_FAILED);
  g_assert_cmpint (mprotect (map, 4096, PROT_READ | PROT_WRITE), ==, -1);
  g_assert_cmpuint (((guint64 *) map)[0], !=, 0);  /* the generation */
  munmap (map, 4096);
  g_assert_cmpint (write (page_fd, "x", 1), ==, -1);
  {
    g_autofree gchar *proc = g_strdup_printf ("/proc/self/fd/%d", page_fd);
    int rw = open (proc, O_RDWR | O_CLOEXEC);
    if (rw >= 0)
      {
        g_assert_true (mmap (NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0) == MAP_FAILED);
        g_assert_cmpint (write (rw, "x", 1), ==, -1);
        g_assert_cmpint (ftruncate (rw, 1 << 24), ==, -1);
        close (rw);
      }
  }
  close (page_fd);
  close (pair[0]);
  close (pair[1]);

  /* Still the same daemon, still working. */
  g_assert_cmpint (notifyd_test_daemon_pid (socket_path), ==, pid);
  g_assert_cmpint (kill (pid, 0), ==, 0);
  g_assert_cmpuint (nc_notify_register_check ("test.hostile", &token), ==, 0);
  nc_notify_check (token, &check);
  g_assert_cmpuint (nc_notify_post ("test.hostile"), ==, 0);
  nc_notify_check (token, &check);
  g_assert_cmpint (check, ==, 1);
  nc_notify_cancel (token);
}

static void
test_fork (void)
{
  int token, status;
  pid_t pid;

  g_assert_cmpuint (nc_notify_register_check ("test.fork", &token), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      int t2, check = 0;
      /* The child starts with no registrations. */
      if (nc_notify_is_valid_token (token) || nc_notify_cancel (token) != NC_NOTIFY_STATUS_INVALID_TOKEN)
        _exit (10);
      if (nc_notify_register_check ("test.fork", &t2) != 0 || nc_notify_check (t2, &check) != 0 || !check)
        _exit (11);
      if (nc_notify_post ("test.fork") != 0 || nc_notify_check (t2, &check) != 0 || !check)
        _exit (12);
      _exit (0);
    }
  g_assert_true (notifyd_test_wait_exit (pid, WAIT_MS));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  /* The parent's token is untouched. */
  g_assert_true (nc_notify_is_valid_token (token));
  nc_notify_cancel (token);
}

static void
test_access_refused (void)
{
  g_autofree gchar *sys_dir = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *access_path = NULL;
  const gchar *extra[] = { "--system", "--access", NULL, NULL };
  int status;
  pid_t pid;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to run a child as another uid");
      return;
    }
  /* Somewhere uid 65534 can reach. */
  sys_dir = g_strdup ("/tmp/porter-sys-XXXXXX");
  g_assert_nonnull (g_mkdtemp_full (sys_dir, 0755));
  path = g_build_filename (sys_dir, "run", "notifyd", NULL);
  access_path = g_build_filename (tmp_dir, "access", NULL);
  g_assert_true (g_file_set_contents (access_path,
                                      "# test rules\n"
                                      "reserve test.locked 0 0 rw----\n"
                                      "reserve test.locked.readable 0 0 rw--r-\n"
                                      "reserve test.open 0 0 rw--rw\n", -1, NULL));
  extra[2] = access_path;
  start_daemon (path, extra);

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      int token;
      guint64 state;

      g_setenv ("PORTER_NOTIFYD", path, TRUE);
      if (setgid (65534) < 0 || setuid (65534) < 0)
        _exit (20);
      if (nc_notify_post ("test.locked.x") != NC_NOTIFY_STATUS_NOT_AUTHORIZED)
        _exit (21);
      if (nc_notify_register_check ("test.locked.x", &token) != NC_NOTIFY_STATUS_NOT_AUTHORIZED)
        _exit (22);
      /* Longest prefix wins: readable, not writable. */
      if (nc_notify_register_check ("test.locked.readable.x", &token) != 0)
        _exit (23);
      if (nc_notify_get_state (token, &state) != 0)
        _exit (24);
      if (nc_notify_set_state (token, 1) != NC_NOTIFY_STATUS_NOT_AUTHORIZED)
        _exit (25);
      if (nc_notify_post ("test.open.x") != 0 || nc_notify_post ("unlisted") != 0)
        _exit (26);
      if (nc_notify_post ("user.uid.0.x") != NC_NOTIFY_STATUS_NOT_AUTHORIZED)
        _exit (27);
      if (nc_notify_post ("user.uid.65534.x") != 0)
        _exit (28);
      _exit (0);
    }
  g_assert_true (notifyd_test_wait_exit (pid, WAIT_MS));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  notifyd_test_stop_daemon (path, SIGTERM, WAIT_MS);
  g_assert_true (notifyd_test_remove_tree (sys_dir));
}

static void
test_user_uid_names (void)
{
  g_autofree gchar *mine = g_strdup_printf ("user.uid.%u.test", (guint) getuid ());
  g_autofree gchar *theirs = g_strdup_printf ("user.uid.%u.test", (guint) getuid () + 1);
  int token;

  g_assert_cmpuint (nc_notify_post (mine), ==, 0);
  if (getuid () == 0)
    return;  /* root may use anyone's */
  g_assert_cmpuint (nc_notify_post (theirs), ==, NC_NOTIFY_STATUS_NOT_AUTHORIZED);
  g_assert_cmpuint (nc_notify_register_check (theirs, &token), ==, NC_NOTIFY_STATUS_NOT_AUTHORIZED);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  sigset_t mask;
  int status;

  self_exe = g_canonicalize_filename (argv[0], NULL);
  if (argc >= 3 && g_str_equal (argv[1], "--child"))
    return child_main (argc - 2, argv + 2);

  /* Every thread (the library's included) blocks SIGUSR1: it is read from
   * a signalfd. */
  sigemptyset (&mask);
  sigaddset (&mask, SIGUSR1);
  pthread_sigmask (SIG_BLOCK, &mask, NULL);
  signal_fd = signalfd (-1, &mask, SFD_CLOEXEC);
  signal (SIGPIPE, SIG_IGN);

  tmp_dir = g_dir_make_tmp ("porter-notify-XXXXXX", &error);
  g_assert_no_error (error);
  socket_path = private_path ("run");
  g_setenv ("PORTER_NOTIFYD", socket_path, TRUE);

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/notify/post-check", test_post_check);
  g_test_add_func ("/notify/state-across-processes", test_state_across_processes);
  g_test_add_func ("/notify/file-descriptor", test_file_descriptor);
  g_test_add_func ("/notify/signal", test_signal);
  g_test_add_func ("/notify/dispatch", test_dispatch);
  g_test_add_func ("/notify/suspend-resume", test_suspend_resume);
  g_test_add_func ("/notify/duplicates", test_duplicates);
  g_test_add_func ("/notify/threads", test_threads);
  g_test_add_func ("/notify/user-uid-names", test_user_uid_names);
  g_test_add_func ("/notify/hostile", test_hostile);
  g_test_add_func ("/notify/fork", test_fork);
  g_test_add_func ("/notify/restart", test_restart);
  g_test_add_func ("/notify/autostart-concurrent", test_autostart_concurrent);
  g_test_add_func ("/notify/slot-limit", test_slot_limit);
  g_test_add_func ("/notify/slow-client", test_slow_client);
  g_test_add_func ("/notify/access-refused", test_access_refused);
  status = g_test_run ();

  notifyd_test_stop_daemon (socket_path, SIGTERM, WAIT_MS);
  notifyd_test_remove_tree (tmp_dir);
  return status;
}
