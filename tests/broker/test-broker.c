/* Porter — porter-broker and its client, with real processes.
 *
 * Every test gets a fresh broker socket under its own temporary directory
 * (so it never meets a user's broker), lets the first client start the
 * broker, and stops that broker at the end, found by the pid it writes in
 * its lock file.  Child processes are this program run again with
 * "--child MODE" (a clean exec, no GLib state copied across fork()).
 * Nothing sleeps: every wait is on an event, with a deadline.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "do-broker-private.h"
#include "do-connection.h"
#include "do-error.h"
#include "do-object.h"

#define WAIT_MS 20000 /* generous: ASan and valgrind runs are slow */

static gchar *self_exe;

/* The pid file of the broker the running test uses, so a failing test
 * (abort) or a timeout (SIGTERM) does not leave it running: it would hold
 * the test runner's output pipe open. */
static char current_pid_path[4096];

static void
kill_broker_on_fatal_signal (int sig)
{
  int fd = open (current_pid_path, O_RDONLY | O_CLOEXEC);

  if (fd >= 0)
    {
      char buf[32] = { 0 };
      ssize_t n = read (fd, buf, sizeof buf - 1);
      pid_t pid = 0;

      for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        pid = pid * 10 + (buf[i] - '0');
      /* Only while its lock is held is the pid in there a live broker. */
      if (pid > 0 && flock (fd, LOCK_SH | LOCK_NB) < 0)
        kill (pid, SIGKILL);
      close (fd);
    }
  signal (sig, SIG_DFL);
  raise (sig);
}

static void
use_broker_socket (const gchar *socket_path)
{
  g_autofree gchar *pid_path = g_strconcat (socket_path, ".pid", NULL);

  g_assert_cmpuint (strlen (pid_path), <, sizeof current_pid_path);
  g_setenv ("PORTER_BROKER", socket_path, TRUE);
  memcpy (current_pid_path, pid_path, strlen (pid_path) + 1);
}

/* ------------------------------------------------------------ helpers */

typedef struct {
  GAsyncResult *result;
  gboolean timed_out;
} Wait;

static void
wait_got_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Wait *wait = user_data;
  wait->result = g_object_ref (result);
}

static gboolean
wait_timeout_cb (gpointer user_data)
{
  Wait *wait = user_data;
  wait->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the thread-default context until @wait has a result; fails the
 * test after @timeout_ms. */
static GAsyncResult *
wait_for_result (Wait *wait, guint timeout_ms, const gchar *what)
{
  GSource *timeout = g_timeout_source_new (timeout_ms);

  g_source_set_callback (timeout, wait_timeout_cb, wait, NULL);
  g_source_attach (timeout, g_main_context_get_thread_default ());
  while (wait->result == NULL && !wait->timed_out)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  if (wait->result == NULL)
    g_error ("Timed out after %u ms waiting for %s", timeout_ms, what);
  return wait->result;
}

static GSubprocess *
spawn_child (GSubprocessFlags flags, const gchar *mode, const gchar *arg)
{
  g_autoptr(GError) error = NULL;
  const gchar *argv[] = { self_exe, "--child", mode, arg, NULL };
  GSubprocess *proc;

  proc = g_subprocess_newv (argv, flags, &error);
  g_assert_no_error (error);
  return proc;
}

/* Reads one line of @proc's stdout, waiting at most WAIT_MS. */
static gchar *
child_read_line (GSubprocess *proc, GDataInputStream **stream)
{
  g_autoptr(GError) error = NULL;
  Wait wait = { 0 };
  gchar *line;

  if (*stream == NULL)
    *stream = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_data_input_stream_read_line_async (*stream, G_PRIORITY_DEFAULT, NULL,
                                       wait_got_result, &wait);
  wait_for_result (&wait, WAIT_MS, "a line from a child");
  line = g_data_input_stream_read_line_finish (*stream, wait.result, NULL, &error);
  g_object_unref (wait.result);
  g_assert_no_error (error);
  return line;
}

static void
child_wait (GSubprocess *proc)
{
  g_autoptr(GError) error = NULL;
  Wait wait = { 0 };

  g_subprocess_wait_async (proc, NULL, wait_got_result, &wait);
  wait_for_result (&wait, WAIT_MS, "a child to exit");
  g_subprocess_wait_finish (proc, wait.result, &error);
  g_object_unref (wait.result);
  g_assert_no_error (error);
}

static void
child_kill (GSubprocess *proc)
{
  g_subprocess_force_exit (proc); /* SIGKILL */
  child_wait (proc);
  g_assert_true (g_subprocess_get_if_signaled (proc));
  g_assert_cmpint (g_subprocess_get_term_sig (proc), ==, SIGKILL);
}

/* Runs a program to completion; returns its exit status. */
static int
run_program (const gchar * const *argv, gchar **out, gchar **err)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  Wait wait = { 0 };

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, wait_got_result, &wait);
  wait_for_result (&wait, WAIT_MS, argv[0]);
  g_subprocess_communicate_utf8_finish (proc, wait.result, out, err, &error);
  g_object_unref (wait.result);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

static int
pidfd_open (pid_t pid)
{
  return (int) syscall (SYS_pidfd_open, pid, 0);
}

/* Waits until @pid exits (it need not be our child). */
static gboolean
wait_pid_gone (int pidfd, int timeout_ms)
{
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
  int r;

  do
    r = poll (&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r == 1;
}

/* The pid of the broker serving @socket_path, or 0 if none runs: the pid
 * file counts only while its lock is held. */
static pid_t
broker_pid (const gchar *socket_path)
{
  g_autofree gchar *pid_path = g_strconcat (socket_path, ".pid", NULL);
  g_autofree gchar *text = NULL;
  int fd;

  fd = open (pid_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  if (flock (fd, LOCK_SH | LOCK_NB) == 0)
    {
      close (fd); /* nobody holds it: no broker */
      return 0;
    }
  close (fd);
  if (!g_file_get_contents (pid_path, &text, NULL, NULL))
    return 0;
  return (pid_t) g_ascii_strtoll (text, NULL, 10);
}

/* Stops the broker of @socket_path with SIGTERM and waits for it. */
static void
stop_broker (const gchar *socket_path)
{
  pid_t pid = broker_pid (socket_path);
  int pidfd;

  if (pid <= 0)
    return;
  pidfd = pidfd_open (pid);
  if (pidfd < 0)
    return;
  g_assert_cmpint (kill (pid, SIGTERM), ==, 0);
  if (!wait_pid_gone (pidfd, WAIT_MS))
    {
      kill (pid, SIGKILL);
      g_assert_true (wait_pid_gone (pidfd, WAIT_MS));
      g_error ("the broker ignored SIGTERM");
    }
  close (pidfd);
}

/* How many porter-broker processes serve @socket_path. */
static guint
count_brokers (const gchar *socket_path)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const gchar *entry;
  guint count = 0;

  g_assert_nonnull (proc);
  while ((entry = g_dir_read_name (proc)) != NULL)
    {
      g_autofree gchar *path = NULL;
      g_autofree gchar *cmdline = NULL;
      gsize len;

      if (!g_ascii_isdigit (entry[0]))
        continue;
      path = g_build_filename ("/proc", entry, "cmdline", NULL);
      if (!g_file_get_contents (path, &cmdline, &len, NULL) || len == 0)
        continue;
      if (!g_str_has_suffix (cmdline, "porter-broker"))
        continue;
      for (gsize off = 0; off < len; off += strlen (cmdline + off) + 1)
        if (g_str_equal (cmdline + off, socket_path))
          {
            count++;
            break;
          }
    }
  return count;
}

static gboolean
strv_has (gchar **names, const gchar *name)
{
  return names != NULL && g_strv_contains ((const gchar * const *) names, name);
}

/* A connection to the broker and its root proxy, for raw calls. */
static DoProxy *
broker_proxy (DoConnection **connection)
{
  g_autoptr(GError) error = NULL;

  *connection = do_broker_connect (&error);
  g_assert_no_error (error);
  return do_connection_get_root_proxy (*connection);
}

static GVariant *
call (DoProxy *proxy, const gchar *method, GVariant *parameters,
      GUnixFDList *fds, GUnixFDList **out_fds, GError **error)
{
  return do_proxy_call_with_fds_sync (proxy, method, parameters, fds,
                                      DO_CALL_FLAGS_NONE, WAIT_MS, out_fds,
                                      NULL, error);
}

/* Waits (bounded) until @name is no longer registered. */
static void
wait_name_gone (const gchar *name)
{
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) proxy = broker_proxy (&connection);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = call (proxy, "WaitGone", g_variant_new ("(su)", name, WAIT_MS),
                NULL, NULL, &error);
  g_assert_no_error (error);
}

/* Checks that @fd reaches @receiver: a message sent on one arrives on the
 * other. */
static void
assert_same_port (int fd, int receiver)
{
  char buf[8] = { 0 };
  struct pollfd pfd = { .fd = receiver, .events = POLLIN };

  g_assert_cmpint (send (fd, "ping", 4, MSG_NOSIGNAL), ==, 4);
  g_assert_cmpint (poll (&pfd, 1, WAIT_MS), ==, 1);
  g_assert_cmpint (recv (receiver, buf, sizeof buf, MSG_DONTWAIT), ==, 4);
  g_assert_cmpstr (buf, ==, "ping");
}

static void
port_pair (int sv[2])
{
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), ==, 0);
}

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* ------------------------------------------------------------- fixture */

typedef struct {
  gchar *dir;
  gchar *socket;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("test-broker-XXXXXX", &error);
  g_assert_no_error (error);
  f->socket = g_build_filename (f->dir, "broker", NULL);
  use_broker_socket (f->socket);
}

static void
remove_tree (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (path, entry, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) &&
          !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  stop_broker (f->socket);
  g_assert_cmpuint (count_brokers (f->socket), ==, 0);
  remove_tree (f->dir);
  g_free (f->socket);
  g_free (f->dir);
}

/* --------------------------------------------------------------- tests */

static void
test_register_lookup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  DoConnection *holder;
  gchar **names;
  guint fds_before;
  int sv[2], fd;

  /* The first client starts the broker. */
  g_assert_cmpint (broker_pid (f->socket), ==, 0);
  port_pair (sv);
  holder = do_broker_register ("test.one", sv[1], &error);
  g_assert_no_error (error);
  g_assert_nonnull (holder);
  g_assert_cmpint (broker_pid (f->socket), >, 0);
  fds_before = count_fds ();

  fd = do_broker_lookup ("test.one", 0, NULL, &error);
  g_assert_no_error (error);
  assert_same_port (fd, sv[0]);
  close (fd);

  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (names), ==, 1);
  g_assert_cmpstr (names[0], ==, "test.one");
  g_strfreev (names);

  g_assert_true (do_broker_unregister (holder, "test.one", &error));
  g_assert_no_error (error);
  fd = do_broker_lookup ("test.one", 0, NULL, &error);
  g_assert_cmpint (fd, ==, -1);
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (do_broker_unregister (holder, "test.one", &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_clear_error (&error);
  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (names), ==, 0);
  g_strfreev (names);

  /* Each call above used its own broker connection: none leaked.  (Fewer
   * is fine: GLib's worker may still have been closing the pipes of the
   * broker it started when we counted.) */
  g_assert_cmpuint (count_fds (), <=, fds_before);

  /* A name goes when the connection that registered it is dropped. */
  do_connection_unref (holder);
  holder = do_broker_register ("test.two", sv[1], &error);
  g_assert_no_error (error);
  do_connection_unref (holder);
  wait_name_gone ("test.two");
  names = do_broker_list_names (&error);
  g_assert_false (strv_has (names, "test.two"));
  g_strfreev (names);

  close (sv[0]);
  close (sv[1]);
}

static void
test_name_taken (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) holder = NULL;
  g_autoptr(DoConnection) second = NULL;
  g_autoptr(DoConnection) other = NULL;
  g_autoptr(DoProxy) proxy = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree gchar *by_us = g_strdup_printf ("by pid %d", (int) getpid ());
  int sv[2], fd;

  port_pair (sv);
  holder = do_broker_register ("test.taken", sv[1], &error);
  g_assert_no_error (error);

  second = do_broker_register ("test.taken", sv[1], &error);
  g_assert_null (second);
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_TAKEN);
  g_assert_nonnull (strstr (error->message, "'test.taken'"));
  g_assert_nonnull (strstr (error->message, by_us));
  g_clear_error (&error);

  /* Only the owner may give it up. */
  proxy = broker_proxy (&other);
  reply = call (proxy, "Unregister", g_variant_new ("(s)", "test.taken"),
                NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, DO_ERROR, DO_ERROR_ACCESS_DENIED);
  g_clear_error (&error);

  /* The name still works. */
  fd = do_broker_lookup ("test.taken", 0, NULL, &error);
  g_assert_no_error (error);
  assert_same_port (fd, sv[0]);
  close (fd);
  close (sv[0]);
  close (sv[1]);
}

static void
test_owner_killed (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) server = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  gchar **names;
  gint64 start, elapsed_ms;
  int fd;

  server = spawn_child (G_SUBPROCESS_FLAGS_STDOUT_PIPE, "serve", "test.killed");
  line = child_read_line (server, &out);
  g_assert_cmpstr (line, ==, "ready");

  fd = do_broker_lookup ("test.killed", 0, NULL, &error);
  g_assert_no_error (error);
  close (fd);

  child_kill (server);
  wait_name_gone ("test.killed");

  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_assert_false (strv_has (names, "test.killed"));
  g_strfreev (names);

  /* A waiting look-up now waits its full time, then fails. */
  start = g_get_monotonic_time ();
  fd = do_broker_lookup ("test.killed", 200, NULL, &error);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  g_assert_cmpint (fd, ==, -1);
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_assert_cmpint (elapsed_ms, >=, 190);
}

static void
test_lookup_waits (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) proxy = broker_proxy (&connection);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) out_fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) found = NULL;
  Wait wait = { 0 };
  gint32 index;
  int sv[2], fd;

  /* Calls on one connection are handled in order: the look-up is waiting
   * at the broker before the name is registered. */
  do_proxy_call_with_fds (proxy, "Lookup", g_variant_new ("(su)", "test.later", WAIT_MS),
                          NULL, DO_CALL_FLAGS_NONE, WAIT_MS + 5000, NULL,
                          wait_got_result, &wait);
  port_pair (sv);
  g_unix_fd_list_append (fds, sv[1], &error);
  g_assert_no_error (error);
  reply = call (proxy, "Register", g_variant_new ("(sh)", "test.later", 0),
                fds, NULL, &error);
  g_assert_no_error (error);

  wait_for_result (&wait, WAIT_MS, "the waiting look-up");
  found = do_proxy_call_with_fds_finish (proxy, &out_fds, wait.result, &error);
  g_object_unref (wait.result);
  g_assert_no_error (error);
  g_variant_get (found, "(h)", &index);
  fd = g_unix_fd_list_get (out_fds, index, &error);
  g_assert_no_error (error);
  assert_same_port (fd, sv[0]);
  close (fd);

  /* A process waiting for a name another process registers later. */
  {
    g_autoptr(GSubprocess) waiter = NULL;
    g_autoptr(GSubprocess) server = NULL;
    g_autoptr(GDataInputStream) waiter_out = NULL;
    g_autoptr(GDataInputStream) server_out = NULL;
    g_autofree gchar *line = NULL;
    g_autofree gchar *line2 = NULL;

    waiter = spawn_child (G_SUBPROCESS_FLAGS_STDOUT_PIPE, "lookup", "test.appears");
    server = spawn_child (G_SUBPROCESS_FLAGS_STDOUT_PIPE, "serve", "test.appears");
    line = child_read_line (waiter, &waiter_out);
    g_assert_cmpstr (line, ==, "found");
    child_wait (waiter);
    g_assert_true (g_subprocess_get_successful (waiter));
    line2 = child_read_line (server, &server_out);
    g_assert_cmpstr (line2, ==, "ready");
    child_kill (server);
  }

  close (sv[0]);
  close (sv[1]);
}

static void
test_lookup_times_out (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 start, elapsed_ms;
  int fd;

  start = g_get_monotonic_time ();
  fd = do_broker_lookup ("test.never", 300, NULL, &error);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  g_assert_cmpint (fd, ==, -1);
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_assert_cmpint (elapsed_ms, >=, 290);
  g_assert_cmpint (elapsed_ms, <, WAIT_MS);
  g_clear_error (&error);

  fd = do_broker_lookup ("test.never", 0, NULL, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND);
  g_clear_error (&error);

  /* A cancelled look-up gives up at once. */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_cancellable_cancel (cancellable);
    start = g_get_monotonic_time ();
    fd = do_broker_lookup ("test.never", WAIT_MS, cancellable, &error);
    elapsed_ms = (g_get_monotonic_time () - start) / 1000;
    g_assert_cmpint (fd, ==, -1);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpint (elapsed_ms, <, WAIT_MS / 2);
  }
}

static void
test_autostart_concurrent (Fixture *f, gconstpointer data)
{
  GSubprocess *children[10];
  pid_t pid;
  guint i;

  g_assert_cmpint (broker_pid (f->socket), ==, 0);
  /* The children block on stdin; closing all their stdins lets them race
   * to connect (and so to start the broker) at once. */
  for (i = 0; i < G_N_ELEMENTS (children); i++)
    children[i] = spawn_child (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE, "connect", NULL);
  for (i = 0; i < G_N_ELEMENTS (children); i++)
    g_output_stream_close (g_subprocess_get_stdin_pipe (children[i]), NULL, NULL);

  pid = 0;
  for (i = 0; i < G_N_ELEMENTS (children); i++)
    {
      g_autoptr(GDataInputStream) out = NULL;
      g_autofree gchar *line = child_read_line (children[i], &out);
      pid_t child_pid;

      g_assert_nonnull (line);
      child_wait (children[i]);
      g_assert_true (g_subprocess_get_successful (children[i]));
      child_pid = (pid_t) g_ascii_strtoll (line, NULL, 10);
      g_assert_cmpint (child_pid, >, 0);
      if (pid == 0)
        pid = child_pid;
      /* Every child reached the same broker. */
      g_assert_cmpint (child_pid, ==, pid);
      g_object_unref (children[i]);
    }

  /* It is the one in the pid file, and there is no other. */
  g_assert_cmpint (broker_pid (f->socket), ==, pid);
  g_assert_cmpuint (count_brokers (f->socket), ==, 1);
}

static void
test_directory_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *open_dir = g_build_filename (f->dir, "open", NULL);
  g_autofree gchar *open_socket = g_build_filename (open_dir, "broker", NULL);
  g_autofree gchar *new_dir = g_build_filename (f->dir, "new", "sub", NULL);
  g_autofree gchar *new_socket = g_build_filename (new_dir, "broker", NULL);
  g_autofree gchar *err = NULL;
  gchar **names;
  struct stat st;
  int status;

  /* A directory others can read is refused, by clients and the broker. */
  g_assert_cmpint (mkdir (open_dir, 0700), ==, 0);
  g_assert_cmpint (chmod (open_dir, 0755), ==, 0);
  use_broker_socket (open_socket);
  names = do_broker_list_names (&error);
  g_assert_null (names);
  g_assert_error (error, DO_ERROR, DO_ERROR_BROKER);
  g_assert_nonnull (strstr (error->message, "0755"));
  g_clear_error (&error);
  g_assert_false (do_broker_ensure_directory (open_socket, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_BROKER);
  g_clear_error (&error);
  {
    const gchar *argv[] = { g_getenv ("PORTER_BROKER_EXEC"), "--socket", open_socket, NULL };
    status = run_program (argv, NULL, &err);
    g_assert_cmpint (status, ==, 1);
    g_assert_nonnull (strstr (err, "0755"));
  }
  g_assert_cmpint (count_brokers (open_socket), ==, 0);
  g_assert_false (g_file_test (open_socket, G_FILE_TEST_EXISTS));

  /* A missing one is made, private. */
  use_broker_socket (new_socket);
  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_strfreev (names);
  g_assert_cmpint (stat (new_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0700);
  stop_broker (new_socket);
  use_broker_socket (f->socket);
}

static void
test_start_failure (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *exec = g_strdup (g_getenv ("PORTER_BROKER_EXEC"));
  g_autofree gchar *missing = g_build_filename (f->dir, "no-such-broker", NULL);
  gchar **names;

  /* A broker that cannot start, or fails, is reported, not waited for. */
  g_setenv ("PORTER_BROKER_EXEC", "/bin/false", TRUE);
  names = do_broker_list_names (&error);
  g_assert_null (names);
  g_assert_error (error, DO_ERROR, DO_ERROR_BROKER);
  g_assert_nonnull (strstr (error->message, "exit status 1"));
  g_clear_error (&error);

  g_setenv ("PORTER_BROKER_EXEC", missing, TRUE);
  g_assert_cmpint (do_broker_lookup ("test.x", 0, NULL, &error), ==, -1);
  g_assert_error (error, DO_ERROR, DO_ERROR_BROKER);
  g_clear_error (&error);

  /* The next client with a working broker gets it. */
  g_setenv ("PORTER_BROKER_EXEC", exec, TRUE);
  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_strfreev (names);
}

static void
test_stale_socket (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gchar **names;
  pid_t first, second;
  int pidfd;

  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_strfreev (names);
  first = broker_pid (f->socket);
  g_assert_cmpint (first, >, 0);

  /* Killed outright, the broker leaves its socket behind... */
  pidfd = pidfd_open (first);
  g_assert_cmpint (pidfd, >=, 0);
  g_assert_cmpint (kill (first, SIGKILL), ==, 0);
  g_assert_true (wait_pid_gone (pidfd, WAIT_MS));
  close (pidfd);
  g_assert_true (g_file_test (f->socket, G_FILE_TEST_EXISTS));

  /* ...and the next client starts a new one in its place. */
  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_strfreev (names);
  second = broker_pid (f->socket);
  g_assert_cmpint (second, >, 0);
  g_assert_cmpint (second, !=, first);
  g_assert_cmpuint (count_brokers (f->socket), ==, 1);

  /* SIGTERM ends it cleanly: no socket left, pid file emptied. */
  stop_broker (f->socket);
  g_assert_false (g_file_test (f->socket, G_FILE_TEST_EXISTS));
  g_assert_cmpint (broker_pid (f->socket), ==, 0);
}

static void
test_second_broker_exits (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *err = NULL;
  gchar **names;
  pid_t pid;
  const gchar *argv[] = { g_getenv ("PORTER_BROKER_EXEC"), "--socket", f->socket, NULL };

  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_strfreev (names);
  pid = broker_pid (f->socket);

  /* Run in the foreground, a second broker sees the first and exits 0. */
  g_assert_cmpint (run_program (argv, NULL, &err), ==, 0);
  g_assert_cmpint (broker_pid (f->socket), ==, pid);
  g_assert_cmpuint (count_brokers (f->socket), ==, 1);
}

static void
test_port_hangup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) holder = NULL;
  int sv[2];

  port_pair (sv);
  holder = do_broker_register ("test.hangup", sv[1], &error);
  g_assert_no_error (error);
  close (sv[1]);
  /* Closing the receive right kills the name, though its broker
   * connection lives on. */
  close (sv[0]);
  wait_name_gone ("test.hangup");
  g_assert_true (do_connection_is_alive (holder));
}

static void
assert_call_fails (DoProxy *proxy, const gchar *method, GVariant *parameters,
                   GUnixFDList *fds, gint code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (proxy, method, parameters, fds, NULL, &error);

  g_assert_null (reply);
  g_assert_error (error, DO_ERROR, code);
}

static void
test_bad_arguments (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) proxy = broker_proxy (&connection);
  g_autoptr(GUnixFDList) pipe_fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) reply = NULL;
  g_autofree gchar *long_name = g_strnfill (DO_BROKER_MAX_NAME + 1, 'a');
  const gchar *bad_names[] = { "", ".dot", "-dash", "a b", "a/b", "é", long_name };
  int pipe_ends[2];
  gchar **names;

  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++)
    {
      assert_call_fails (proxy, "Lookup", g_variant_new ("(su)", bad_names[i], 0),
                         NULL, DO_ERROR_INVALID_ARGUMENT);
      assert_call_fails (proxy, "WaitGone", g_variant_new ("(su)", bad_names[i], 0),
                         NULL, DO_ERROR_INVALID_ARGUMENT);
      g_assert_false (do_broker_name_is_valid (bad_names[i]));
    }
  /* A handle with no fd behind it, and an fd that is not a socket. */
  assert_call_fails (proxy, "Register", g_variant_new ("(sh)", "test.bad", 3),
                     NULL, DO_ERROR_INVALID_ARGUMENT);
  g_assert_cmpint (pipe2 (pipe_ends, O_CLOEXEC), ==, 0);
  g_unix_fd_list_append (pipe_fds, pipe_ends[0], &error);
  g_assert_no_error (error);
  assert_call_fails (proxy, "Register", g_variant_new ("(sh)", "test.bad", 0),
                     pipe_fds, DO_ERROR_INVALID_ARGUMENT);
  close (pipe_ends[0]);
  close (pipe_ends[1]);
  assert_call_fails (proxy, "Register", g_variant_new ("(sh)", "", 0),
                     NULL, DO_ERROR_INVALID_ARGUMENT);
  /* The client library checks names before sending them. */
  g_assert_cmpint (do_broker_lookup ("a b", 0, NULL, &error), ==, -1);
  g_assert_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* The broker is still there for everyone. */
  reply = call (proxy, "GetPid", g_variant_new ("()"), NULL, NULL, &error);
  g_assert_no_error (error);
  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (names), ==, 0);
  g_strfreev (names);
}

static void
test_waiter_dies (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) waiter = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(DoConnection) holder = NULL;
  g_autofree gchar *line = NULL;
  gchar **names;
  int sv[2], fd;

  /* A client killed while its look-up waits leaves the broker unharmed. */
  waiter = spawn_child (G_SUBPROCESS_FLAGS_STDOUT_PIPE, "wait-forever", "test.orphan");
  line = child_read_line (waiter, &out);
  g_assert_cmpstr (line, ==, "sent");
  child_kill (waiter);

  port_pair (sv);
  holder = do_broker_register ("test.orphan", sv[1], &error);
  g_assert_no_error (error);
  fd = do_broker_lookup ("test.orphan", 0, NULL, &error);
  g_assert_no_error (error);
  assert_same_port (fd, sv[0]);
  close (fd);
  names = do_broker_list_names (&error);
  g_assert_no_error (error);
  g_assert_true (strv_has (names, "test.orphan"));
  g_strfreev (names);
  close (sv[0]);
  close (sv[1]);
}

static void
test_porterctl (Fixture *f, gconstpointer data)
{
  g_autoptr(GSubprocess) server = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  struct {
    const gchar *args[6];
    int status;
    const gchar *out;       /* exact stdout, or NULL */
    const gchar *err;       /* a substring of stderr, or NULL */
  } cases[] = {
    { { "list" }, 0, "test.ctl\n", NULL },
    { { "call", "test.ctl", "Add", "2", "3" }, 0, "(5,)\n", NULL },
    { { "call", "test.ctl", "Add", "-7", "3" }, 0, "(-4,)\n", NULL },
    { { "call", "test.ctl", "Echo", "'hello world'" }, 0, "('hello world',)\n", NULL },
    { { "call", "test.ctl", "Echo", "bare" }, 0, "('bare',)\n", NULL },
    { { "call", "test.ctl", "Unsigned", "5" }, 0, "(uint32 6,)\n", NULL },
    { { "introspect", "test.ctl" }, 0, NULL, NULL },
    { { "call", "test.ctl", "Fail" }, 1, "", "Error: g-io-error-quark 14: Fail was called" },
    { { "call", "test.ctl", "Add", "2" }, 1, "", "Error: do-error-quark " },
    { { "call", "test.ctl", "Add", "2", "[" }, 1, "", "Error: cannot parse argument 2" },
    { { "call", "test.nobody", "Add", "2", "3" }, 1, "", "Error: do-error-quark 5: " },
    { { "call", "test.ctl" }, 2, "", "call needs NAME and METHOD" },
    { { "frobnicate" }, 2, "", "unknown command" },
    { { "--help" }, 0, NULL, NULL },
  };

  /* porterctl starting the broker: the daemon must not keep porterctl's
   * output pipes open, or this would wait for it forever. */
  {
    const gchar *argv[] = { PORTERCTL_PATH, "list", NULL };
    g_autofree gchar *stdout_text = NULL;

    g_assert_cmpint (broker_pid (f->socket), ==, 0);
    g_assert_cmpint (run_program (argv, &stdout_text, NULL), ==, 0);
    g_assert_cmpstr (stdout_text, ==, "");
    g_assert_cmpint (broker_pid (f->socket), >, 0);
  }

  server = spawn_child (G_SUBPROCESS_FLAGS_STDOUT_PIPE, "serve", "test.ctl");
  line = child_read_line (server, &out);
  g_assert_cmpstr (line, ==, "ready");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const gchar *argv[8] = { PORTERCTL_PATH };
      g_autofree gchar *stdout_text = NULL;
      g_autofree gchar *stderr_text = NULL;
      int status;

      for (guint j = 0; cases[i].args[j] != NULL; j++)
        argv[j + 1] = cases[i].args[j];
      status = run_program (argv, &stdout_text, &stderr_text);
      g_test_message ("porterctl %s: status %d, stdout '%s', stderr '%s'",
                      cases[i].args[0], status, stdout_text, stderr_text);
      g_assert_cmpint (status, ==, cases[i].status);
      if (cases[i].out != NULL)
        g_assert_cmpstr (stdout_text, ==, cases[i].out);
      if (cases[i].err != NULL)
        g_assert_nonnull (strstr (stderr_text, cases[i].err));
      if (g_str_equal (cases[i].args[0], "introspect"))
        g_assert_nonnull (strstr (stdout_text, "org.porter.test.Calc"));
    }

  child_kill (server);
}

/* ------------------------------------------------------------ children */

static const gchar test_xml[] =
  "<node><interface name='org.porter.test.Calc'>"
  "  <method name='Add'><arg type='i' direction='in'/><arg type='i' direction='in'/>"
  "    <arg type='i' direction='out'/></method>"
  "  <method name='Echo'><arg type='s' direction='in'/><arg type='s' direction='out'/></method>"
  "  <method name='Unsigned'><arg type='u' direction='in'/><arg type='u' direction='out'/></method>"
  "  <method name='Fail'/>"
  "</interface></node>";

static GVariant *
child_method (DoObject *object, DoInvocation *invocation, const gchar *method,
              GVariant *parameters, gpointer user_data, GError **error)
{
  if (g_str_equal (method, "Add"))
    {
      gint32 a, b;
      g_variant_get (parameters, "(ii)", &a, &b);
      return g_variant_new ("(i)", a + b);
    }
  if (g_str_equal (method, "Echo"))
    return g_variant_ref (parameters);
  if (g_str_equal (method, "Unsigned"))
    {
      guint32 u;
      g_variant_get (parameters, "(u)", &u);
      return g_variant_new ("(u)", u + 1);
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "Fail was called");
  return NULL;
}

static int
child_main (const gchar *mode, const gchar *arg)
{
  g_autoptr(GError) error = NULL;

  if (g_str_equal (mode, "serve"))
    {
      g_autoptr(DoObject) object = NULL;
      g_autoptr(DoConnection) connection = NULL;
      g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

      object = do_object_new_for_xml (test_xml, "org.porter.test.Calc",
                                      child_method, NULL, NULL, &error);
      g_assert_no_error (error);
      connection = do_connection_new (&error);
      g_assert_no_error (error);
      do_connection_set_root_object (connection, object);
      do_connection_register_name (connection, arg, &error);
      g_assert_no_error (error);
      printf ("ready\n");
      fflush (stdout);
      g_main_loop_run (loop); /* until killed */
      return 0;
    }
  if (g_str_equal (mode, "lookup"))
    {
      int fd = do_broker_lookup (arg, WAIT_MS, NULL, &error);
      g_assert_no_error (error);
      close (fd);
      printf ("found\n");
      return 0;
    }
  if (g_str_equal (mode, "connect"))
    {
      g_autoptr(DoConnection) connection = NULL;
      g_autoptr(DoProxy) proxy = NULL;
      g_autoptr(GVariant) reply = NULL;
      char buf[16];
      guint32 pid;

      while (read (STDIN_FILENO, buf, sizeof buf) > 0)
        ;
      proxy = broker_proxy (&connection);
      reply = call (proxy, "GetPid", g_variant_new ("()"), NULL, NULL, &error);
      g_assert_no_error (error);
      g_variant_get (reply, "(u)", &pid);
      printf ("%u\n", pid);
      return 0;
    }
  if (g_str_equal (mode, "wait-forever"))
    {
      g_autoptr(DoConnection) connection = NULL;
      g_autoptr(DoProxy) proxy = broker_proxy (&connection);
      g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

      do_proxy_call (proxy, "Lookup", g_variant_new ("(su)", arg, WAIT_MS * 10),
                     DO_CALL_FLAGS_NONE, DO_TIMEOUT_INFINITE, NULL, NULL, NULL);
      printf ("sent\n");
      fflush (stdout);
      g_main_loop_run (loop); /* until killed */
      return 0;
    }
  g_printerr ("unknown child mode %s\n", mode);
  return 2;
}

int
main (int argc, char **argv)
{
  if (argc >= 3 && g_str_equal (argv[1], "--child"))
    return child_main (argv[2], argc > 3 ? argv[3] : NULL);

  signal (SIGPIPE, SIG_IGN);
  signal (SIGABRT, kill_broker_on_fatal_signal);
  signal (SIGTRAP, kill_broker_on_fatal_signal); /* g_error() */
  signal (SIGTERM, kill_broker_on_fatal_signal);
  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  g_assert_nonnull (self_exe);
  /* No G_TEST_OPTION_ISOLATE_DIRS: every test sets PORTER_BROKER itself,
   * and GLib 2.74 leaks the dirs it sets (LSan). */
  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("PORTER_BROKER_EXEC") == NULL)
    g_setenv ("PORTER_BROKER_EXEC", PORTER_BROKER_EXEC_PATH, TRUE);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/broker/register-lookup-unregister-list", test_register_lookup);
  ADD ("/broker/name-taken", test_name_taken);
  ADD ("/broker/owner-killed", test_owner_killed);
  ADD ("/broker/lookup-waits-for-name", test_lookup_waits);
  ADD ("/broker/lookup-times-out", test_lookup_times_out);
  ADD ("/broker/autostart-concurrent", test_autostart_concurrent);
  ADD ("/broker/directory-refused", test_directory_refused);
  ADD ("/broker/start-failure", test_start_failure);
  ADD ("/broker/stale-socket", test_stale_socket);
  ADD ("/broker/second-broker-exits", test_second_broker_exits);
  ADD ("/broker/port-hangup", test_port_hangup);
  ADD ("/broker/bad-arguments", test_bad_arguments);
  ADD ("/broker/waiter-dies", test_waiter_dies);
  ADD ("/broker/porterctl", test_porterctl);
#undef ADD

  return g_test_run ();
}
