/* Porter — what porter-broker and porter-notifyd share as processes.
 * See daemon-util.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "daemon-util.h"

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

#include <glib-unix.h>

#include "do-broker-private.h"
#include "do-error.h"

static const gchar *log_program = "porter-daemon";
static const gboolean *log_verbose;

typedef struct {
  GMainLoop *loop;
  DaemonAcceptFunc accept;
  gpointer accept_data;
  int listen_fd;
  guint accept_id;
  guint resume_id;
} Daemon;

/* A private daemon's directory is 0700 and ours (as clients check it); a
 * shared one (a system daemon's) is ours and 0755, made so if missing. */
static gboolean
ensure_directory (const gchar *path, DaemonServeFlags flags, GError **error)
{
  g_autofree gchar *dir = NULL;
  struct stat st;

  if (!(flags & DAEMON_SERVE_SHARED_DIR))
    {
      const gchar *what = g_str_has_prefix (log_program, "porter-")
                          ? log_program + strlen ("porter-") : log_program;
      return _do_daemon_ensure_directory (path, what, error);
    }

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0755) < 0 || lstat (dir, &st) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot make the directory '%s': %s", dir, g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISDIR (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 022) != 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the directory '%s' must be ours and writable only by us", dir);
      return FALSE;
    }
  return TRUE;
}

static GLogWriterOutput
log_writer (GLogLevelFlags level,
            const GLogField *fields,
            gsize n_fields,
            gpointer user_data)
{
  const gchar *message = NULL;
  const gchar *prefix = "";

  if (!(log_verbose != NULL && *log_verbose) &&
      (level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)))
    return G_LOG_WRITER_HANDLED;
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    prefix = "error: ";
  else if (level & G_LOG_LEVEL_WARNING)
    prefix = "warning: ";
  fprintf (stderr, "%s[%d]: %s%s\n", log_program, (int) getpid (), prefix,
           message != NULL ? message : "");
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

/* Tells the waiting first process how it went (daemon mode). */
void
daemon_log_init (const gchar *program, const gboolean *verbose)
{
  log_program = program;
  log_verbose = verbose;
  g_log_set_writer_func (log_writer, NULL, NULL);
}

void
daemon_report_ready (int *ready_fd, guint8 status)
{
  if (*ready_fd < 0)
    return;
  while (write (*ready_fd, &status, 1) < 0 && errno == EINTR)
    ;
  close (*ready_fd);
  *ready_fd = -1;
}

int
daemon_daemonize (void)
{
  int pipe_fds[2];
  pid_t pid;
  int null_fd;

  if (pipe2 (pipe_fds, O_CLOEXEC) < 0)
    {
      g_printerr ("%s: pipe: %s\n", log_program, g_strerror (errno));
      exit (1);
    }
  pid = fork ();
  if (pid < 0)
    {
      g_printerr ("%s: fork: %s\n", log_program, g_strerror (errno));
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
  Daemon *d = user_data;

  d->resume_id = 0;
  d->accept_id = g_unix_fd_add (d->listen_fd, G_IO_IN, on_accept, d);
  return G_SOURCE_REMOVE;
}

static gboolean
on_accept (gint fd, GIOCondition condition, gpointer user_data)
{
  Daemon *d = user_data;

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
          d->accept_id = 0;
          d->resume_id = g_timeout_add (100, resume_accepting, d);
          return G_SOURCE_REMOVE;
        }
      if (!d->accept (client, d->accept_data, &error))
        g_warning ("%s", error->message);
    }
}

static gboolean
on_quit_signal (gpointer user_data)
{
  Daemon *d = user_data;

  g_message ("Exiting on signal");
  g_main_loop_quit (d->loop);
  return G_SOURCE_CONTINUE;
}

/* Takes the single-instance lock and writes our pid in it.  Returns the
 * lock's fd, -1 on error, or -2 when another daemon holds it. */
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

/**
 * daemon_serve:
 * (see daemon-util.h)
 */
int
daemon_serve (const gchar *path,
              int ready_fd,
              DaemonServeFlags flags,
              DaemonAcceptFunc accept,
              gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  Daemon d = { .listen_fd = -1, .accept = accept, .accept_data = user_data };
  struct stat bound = { 0 }, now;
  guint sigterm_id, sigint_id;
  int lock_fd;

  if (!ensure_directory (path, flags, &error))
    {
      g_warning ("%s", error->message);
      daemon_report_ready (&ready_fd, 1);
      return 1;
    }

  lock_fd = take_instance_lock (path, &error);
  if (lock_fd == -2)
    {
      g_info ("Another %s already serves '%s'", log_program, path);
      daemon_report_ready (&ready_fd, 0);
      return 0;
    }
  if (lock_fd < 0)
    {
      g_warning ("%s", error->message);
      daemon_report_ready (&ready_fd, 1);
      return 1;
    }
  if (flags & DAEMON_SERVE_REDIRECT_LOG)
    redirect_log (path);

  d.listen_fd = listen_at (path, &error);
  if (d.listen_fd < 0)
    {
      g_warning ("%s", error->message);
      daemon_report_ready (&ready_fd, 1);
      close (lock_fd);
      return 1;
    }
  if (flags & DAEMON_SERVE_SHARED_DIR)
    (void) chmod (path, 0666);
  (void) stat (path, &bound);

  d.loop = g_main_loop_new (NULL, FALSE);
  d.accept_id = g_unix_fd_add (d.listen_fd, G_IO_IN, on_accept, &d);
  sigterm_id = g_unix_signal_add (SIGTERM, on_quit_signal, &d);
  sigint_id = g_unix_signal_add (SIGINT, on_quit_signal, &d);

  g_message ("Listening on %s", path);
  daemon_report_ready (&ready_fd, 0);
  g_main_loop_run (d.loop);

  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  if (d.accept_id != 0)
    g_source_remove (d.accept_id);
  if (d.resume_id != 0)
    g_source_remove (d.resume_id);
  /* Remove the socket only if it is still ours (not a successor's). */
  if (stat (path, &now) == 0 && now.st_dev == bound.st_dev && now.st_ino == bound.st_ino)
    (void) unlink (path);
  close (d.listen_fd);
  g_main_loop_unref (d.loop);
  (void) ftruncate (lock_fd, 0);
  close (lock_fd); /* releases the instance lock */
  return 0;
}
