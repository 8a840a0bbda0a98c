/* Porter — porter-broker, the per-user name server (DESIGN.md §6).
 *
 *   porter-broker [--daemonize] [--socket PATH] [--verbose]
 *
 * Listens on PATH (default: see do_broker_get_socket_path()) with a
 * SOCK_SEQPACKET socket and serves BrokerRegistry's org.porter.Broker
 * object on every connection.  One broker per socket: it holds an flock on
 * "PATH.pid" (which holds its pid) while it runs; a second one exits 0 at
 * once.  The socket is bound under a temporary name and renamed into place
 * once it listens, so a client never meets a half-ready socket, and a stale
 * socket left by a killed broker is simply replaced.
 *
 * With --daemonize the first process exits only once the daemon it forked
 * listens (status 0) or has failed (status 1): clients wait for that.
 * Logs go to stderr: warnings and lifecycle always, names and clients with
 * --verbose.  A daemon sends them to "PATH.log" once it holds its lock
 * (emptied at each start): a daemon keeping the stderr of the client that
 * started it would hold that client's pipe open, and `out=$(porterctl list
 * 2>&1)` would never finish.  Failures before that still reach the
 * starting client's stderr.  SIGTERM and SIGINT end it cleanly, removing
 * its socket.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "broker-registry.h"
#include "do-broker-private.h"
#include "do-error.h"

static gboolean opt_daemonize;
static gboolean opt_verbose;
static gchar *opt_socket;

static const GOptionEntry options[] = {
  { "daemonize", 0, 0, G_OPTION_ARG_NONE, &opt_daemonize,
    "Fork into the background; exit once the broker listens", NULL },
  { "socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
    "Listen on PATH instead of the default socket", "PATH" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
    "Log every client and name", NULL },
  { NULL }
};

typedef struct {
  GMainLoop *loop;
  BrokerRegistry *registry;
  int listen_fd;
  guint accept_id;
  guint resume_id;
} Broker;

static GLogWriterOutput
log_writer (GLogLevelFlags level,
            const GLogField *fields,
            gsize n_fields,
            gpointer user_data)
{
  const gchar *message = NULL;
  const gchar *prefix = "";

  if (!opt_verbose && (level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)))
    return G_LOG_WRITER_HANDLED;
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    prefix = "error: ";
  else if (level & G_LOG_LEVEL_WARNING)
    prefix = "warning: ";
  fprintf (stderr, "porter-broker[%d]: %s%s\n", (int) getpid (), prefix,
           message != NULL ? message : "");
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

/* Tells the waiting first process how it went (daemon mode). */
static void
report_ready (int *ready_fd, guint8 status)
{
  if (*ready_fd < 0)
    return;
  while (write (*ready_fd, &status, 1) < 0 && errno == EINTR)
    ;
  close (*ready_fd);
  *ready_fd = -1;
}

/* Forks.  The parent waits for the child's status byte and exits with it
 * (1 if the child died first); the child returns the pipe's write end. */
static int
daemonize (void)
{
  int pipe_fds[2];
  pid_t pid;
  int null_fd;

  if (pipe2 (pipe_fds, O_CLOEXEC) < 0)
    {
      g_printerr ("porter-broker: pipe: %s\n", g_strerror (errno));
      exit (1);
    }
  pid = fork ();
  if (pid < 0)
    {
      g_printerr ("porter-broker: fork: %s\n", g_strerror (errno));
      exit (1);
    }
  if (pid > 0)
    {
      guint8 status = 1;
      ssize_t n;

      close (pipe_fds[1]);
      do
        n = read (pipe_fds[0], &status, 1);
      while (n < 0 && errno == EINTR);
      _exit (n == 1 ? status : 1);
    }

  close (pipe_fds[0]);
  setsid ();
  if (chdir ("/") < 0)
    { /* not fatal: every path we use is absolute */ }
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0)
    {
      dup2 (null_fd, STDIN_FILENO);
      dup2 (null_fd, STDOUT_FILENO);
      if (null_fd > STDERR_FILENO)
        close (null_fd);
    }
  return pipe_fds[1];
}

/* Returns a listening socket at @path, or -1. */
static int
listen_at (const gchar *path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autofree gchar *tmp = g_strdup_printf ("%s/.b%d", dir, (int) getpid ());
  int one = 1;
  int fd;

  if (strlen (path) >= sizeof addr.sun_path || strlen (tmp) >= sizeof addr.sun_path)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "socket path '%s' is too long (at most %zu bytes)", path,
                   sizeof addr.sun_path - 4);
      return -1;
    }
  memcpy (addr.sun_path, tmp, strlen (tmp) + 1);

  fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER, "socket: %s",
                   g_strerror (errno));
      return -1;
    }
  /* Credentials ride on the first message too, before libdo sets this on
   * the accepted socket. */
  (void) setsockopt (fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  (void) unlink (tmp);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
      listen (fd, SOMAXCONN) < 0 ||
      rename (tmp, path) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot listen on '%s': %s", path, g_strerror (errsv));
      (void) unlink (tmp);
      close (fd);
      return -1;
    }
  return fd;
}

static gboolean on_accept (gint fd, GIOCondition condition, gpointer user_data);

static gboolean
resume_accepting (gpointer user_data)
{
  Broker *broker = user_data;

  broker->resume_id = 0;
  broker->accept_id = g_unix_fd_add (broker->listen_fd, G_IO_IN, on_accept, broker);
  return G_SOURCE_REMOVE;
}

static gboolean
on_accept (gint fd, GIOCondition condition, gpointer user_data)
{
  Broker *broker = user_data;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      int client = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);

      if (client < 0)
        {
          int errsv = errno;

          if (errsv == EINTR || errsv == ECONNABORTED)
            continue;
          if (errsv == EAGAIN || errsv == EWOULDBLOCK)
            return G_SOURCE_CONTINUE;
          /* Out of fds or memory: stop accepting for a moment instead of
           * spinning on a socket that stays readable. */
          g_warning ("accept: %s; not accepting clients for 100 ms",
                     g_strerror (errsv));
          broker->accept_id = 0;
          broker->resume_id = g_timeout_add (100, resume_accepting, broker);
          return G_SOURCE_REMOVE;
        }
      if (!broker_registry_add_client (broker->registry, client, &error))
        g_warning ("%s", error->message);
    }
}

static gboolean
on_quit_signal (gpointer user_data)
{
  Broker *broker = user_data;

  g_message ("Exiting on signal");
  g_main_loop_quit (broker->loop);
  return G_SOURCE_CONTINUE;
}

/* Takes the single-instance lock and writes our pid in it.  Returns the
 * lock's fd, -1 on error, or -2 when another broker holds it. */
static int
take_instance_lock (const gchar *path, GError **error)
{
  g_autofree gchar *lock_path = g_strconcat (path, ".pid", NULL);
  g_autofree gchar *pid_text = g_strdup_printf ("%d\n", (int) getpid ());
  int fd;

  fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER, "Cannot open '%s': %s",
                   lock_path, g_strerror (errno));
      return -1;
    }
  while (flock (fd, LOCK_EX | LOCK_NB) < 0)
    {
      int errsv = errno;
      if (errsv == EINTR)
        continue;
      close (fd);
      if (errsv == EWOULDBLOCK)
        return -2;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER, "Cannot lock '%s': %s",
                   lock_path, g_strerror (errsv));
      return -1;
    }
  if (ftruncate (fd, 0) < 0 ||
      pwrite (fd, pid_text, strlen (pid_text), 0) != (ssize_t) strlen (pid_text))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot write our pid to '%s': %s", lock_path,
                   g_strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

/* A daemon's logs go to PATH.log from now on. */
static void
redirect_log (const gchar *path)
{
  g_autofree gchar *log_path = g_strconcat (path, ".log", NULL);
  int fd = open (log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0)
    {
      g_warning ("Cannot open '%s': %s; logging nowhere", log_path, g_strerror (errno));
      fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return;
    }
  dup2 (fd, STDERR_FILENO);
  close (fd);
}

static int
run (const gchar *path, int ready_fd)
{
  g_autoptr(GError) error = NULL;
  Broker broker = { .listen_fd = -1 };
  struct stat bound = { 0 }, now;
  guint sigterm_id, sigint_id;
  int lock_fd;

  if (!do_broker_ensure_directory (path, &error))
    {
      g_warning ("%s", error->message);
      report_ready (&ready_fd, 1);
      return 1;
    }

  lock_fd = take_instance_lock (path, &error);
  if (lock_fd == -2)
    {
      g_info ("Another broker already serves '%s'", path);
      report_ready (&ready_fd, 0);
      return 0;
    }
  if (lock_fd < 0)
    {
      g_warning ("%s", error->message);
      report_ready (&ready_fd, 1);
      return 1;
    }
  if (opt_daemonize)
    redirect_log (path);

  broker.listen_fd = listen_at (path, &error);
  if (broker.listen_fd < 0)
    {
      g_warning ("%s", error->message);
      report_ready (&ready_fd, 1);
      close (lock_fd);
      return 1;
    }
  (void) stat (path, &bound);

  broker.registry = broker_registry_new (&error);
  if (broker.registry == NULL)
    {
      g_warning ("%s", error->message);
      report_ready (&ready_fd, 1);
      (void) unlink (path);
      close (broker.listen_fd);
      close (lock_fd);
      return 1;
    }
  broker.loop = g_main_loop_new (NULL, FALSE);
  broker.accept_id = g_unix_fd_add (broker.listen_fd, G_IO_IN, on_accept, &broker);
  sigterm_id = g_unix_signal_add (SIGTERM, on_quit_signal, &broker);
  sigint_id = g_unix_signal_add (SIGINT, on_quit_signal, &broker);

  g_message ("Listening on %s", path);
  report_ready (&ready_fd, 0);
  g_main_loop_run (broker.loop);

  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  if (broker.accept_id != 0)
    g_source_remove (broker.accept_id);
  if (broker.resume_id != 0)
    g_source_remove (broker.resume_id);
  /* Remove the socket only if it is still ours (not a successor's). */
  if (stat (path, &now) == 0 && now.st_dev == bound.st_dev && now.st_ino == bound.st_ino)
    (void) unlink (path);
  close (broker.listen_fd);
  broker_registry_free (broker.registry);
  g_main_loop_unref (broker.loop);
  (void) ftruncate (lock_fd, 0);
  close (lock_fd); /* releases the instance lock */
  return 0;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL;
  int ready_fd = -1;
  int status;

  signal (SIGPIPE, SIG_IGN);

  context = g_option_context_new ("- the Porter name server");
  g_option_context_add_main_entries (context, options, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("porter-broker: %s\n", error->message);
      return 2;
    }
  if (argc > 1)
    {
      g_printerr ("porter-broker: unexpected argument '%s'\n", argv[1]);
      return 2;
    }

  g_log_set_writer_func (log_writer, NULL, NULL);
  path = opt_socket != NULL ? g_canonicalize_filename (opt_socket, NULL)
                            : do_broker_get_socket_path ();
  /* Fork before anything starts a thread. */
  if (opt_daemonize)
    ready_fd = daemonize ();

  status = run (path, ready_fd);
  g_free (opt_socket);
  return status;
}
