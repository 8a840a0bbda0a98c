/* Porter — libdo: reaching a daemon that serves DoConnections on a socket
 * path, starting it on demand (DESIGN.md §6).  porter-broker and
 * porter-notifyd are reached this way.
 *
 * Such a daemon listens on a SOCK_SEQPACKET socket; each accepted socket is
 * a DoConnection with no CONNECT/HELLO handshake whose root object (object
 * id 1) is the daemon's.
 *
 * Thread rules: every function here may be called from any thread; the
 * connections they make dispatch on the calling thread's thread-default
 * main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-broker-private.h"
#include "do-connection.h"
#include "do-error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

/**
 * _do_daemon_ensure_directory:
 * @socket_path: a daemon's socket path.
 * @what: the daemon's short name, for messages ("broker").
 * @error: return location for a %DO_ERROR_BROKER error.
 *
 * Makes sure the directory holding @socket_path exists, belongs to us and
 * is private (mode 0700), creating it if missing.  Refuses one that anybody
 * else could write or read: another user could otherwise put a socket of
 * their own there.
 *
 * Returns: %TRUE if the directory is fit to use.
 */
gboolean
_do_daemon_ensure_directory (const gchar *socket_path, const gchar *what, GError **error)
{
  g_autofree gchar *dir = NULL;
  gboolean created = FALSE;
  struct stat st;

  g_return_val_if_fail (socket_path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  dir = g_path_get_dirname (socket_path);
  if (mkdir (dir, 0700) == 0)
    created = TRUE;
  else if (errno == ENOENT)
    {
      if (g_mkdir_with_parents (dir, 0700) < 0)
        {
          int errsv = errno;
          g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                       "cannot create the %s directory '%s': %s",
                       what, dir, g_strerror (errsv));
          return FALSE;
        }
      created = TRUE;
    }
  else if (errno != EEXIST)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot create the %s directory '%s': %s",
                   what, dir, g_strerror (errsv));
      return FALSE;
    }

  /* Whatever the umask did, a directory we made is 0700. */
  if (created && chmod (dir, 0700) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot set the mode of the %s directory '%s': %s",
                   what, dir, g_strerror (errsv));
      return FALSE;
    }

  if (lstat (dir, &st) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot examine the %s directory '%s': %s",
                   what, dir, g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the %s directory '%s' is not a directory", what, dir);
      return FALSE;
    }
  if (st.st_uid != geteuid ())
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the %s directory '%s' belongs to uid %u, not to us "
                   "(uid %u)", what, dir, (guint) st.st_uid, (guint) geteuid ());
      return FALSE;
    }
  if ((st.st_mode & 07777) != 0700)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the %s directory '%s' has mode %04o; it must be 0700",
                   what, dir, (guint) (st.st_mode & 07777));
      return FALSE;
    }
  return TRUE;
}

/* Returns a connected socket, or -errno. */
static int
daemon_try_connect (const gchar *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  gsize len = strlen (path);
  int fd;

  if (len >= sizeof addr.sun_path)
    return -ENAMETOOLONG;
  memcpy (addr.sun_path, path, len + 1);

  fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      int errsv = errno;
      close (fd);
      return -errsv;
    }
  return fd;
}

typedef struct {
  gboolean done;
  gboolean timed_out;
} SpawnWait;

static void
spawn_waited_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SpawnWait *wait = user_data;

  /* Cancelled or not, the exit status (if any) is read by the caller. */
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  wait->done = TRUE;
}

static gboolean
spawn_timeout_cb (gpointer user_data)
{
  SpawnWait *wait = user_data;

  wait->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs @argv (`porter-broker --daemonize --socket PATH` and the like) and
 * waits (bounded) for its first process to exit, which it does once the
 * daemon is listening. */
static gboolean
daemon_spawn (const gchar *path, const gchar *const *argv, const gchar *what,
              GError **error)
{
  const gchar *exec = argv[0];
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GCancellable) cancellable = NULL;
  g_autoptr(GSource) timeout = NULL;
  g_autoptr(GError) local_error = NULL;
  SpawnWait wait = { FALSE, FALSE };

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &local_error);
  if (proc == NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot start the %s (%s): %s", what, exec,
                   local_error->message);
      return FALSE;
    }

  context = g_main_context_new ();
  cancellable = g_cancellable_new ();
  g_main_context_push_thread_default (context);
  g_subprocess_wait_async (proc, cancellable, spawn_waited_cb, &wait);
  timeout = g_timeout_source_new (DO_DAEMON_START_TIMEOUT_MS);
  g_source_set_callback (timeout, spawn_timeout_cb, &wait, NULL);
  g_source_attach (timeout, context);

  while (!wait.done && !wait.timed_out)
    g_main_context_iteration (context, TRUE);
  if (!wait.done)
    {
      g_cancellable_cancel (cancellable);
      /* The cancelled wait still completes in @context: let it, so its
       * callback never sees a dead stack frame. */
      while (!wait.done)
        g_main_context_iteration (context, TRUE);
    }
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (context);

  if (g_subprocess_get_identifier (proc) != NULL)
    {
      /* Still running: the wait timed out. */
      g_subprocess_force_exit (proc);
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the %s (%s) did not start listening on '%s' within "
                   "%d ms", what, exec, path, DO_DAEMON_START_TIMEOUT_MS);
      return FALSE;
    }
  if (!g_subprocess_get_if_exited (proc))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the %s (%s) was killed by signal %d while starting",
                   what, exec, g_subprocess_get_term_sig (proc));
      return FALSE;
    }
  if (g_subprocess_get_exit_status (proc) != 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the %s (%s) failed to start on '%s' (exit status %d)",
                   what, exec, path, g_subprocess_get_exit_status (proc));
      return FALSE;
    }
  return TRUE;
}

static gboolean
connect_error_means_absent (int err)
{
  return err == -ENOENT || err == -ECONNREFUSED;
}

/**
 * _do_daemon_connect_fd:
 * @path: the daemon's socket.
 * @start_argv: (nullable): how to start it when nothing listens.
 * @what: its short name, for messages.
 * @error: return location for a %DO_ERROR_BROKER error.
 *
 * Connects a SOCK_SEQPACKET socket to @path.  When nothing listens there
 * and @start_argv is given, starts the daemon race-free: takes an exclusive
 * flock() on "<path>.lock", tries once more (someone else may have started
 * it meanwhile), and otherwise runs @start_argv, whose first process must
 * exit (status 0) only once the daemon it forked listens on @path.  The
 * lock is held until then, so ten clients starting at once run it once.
 *
 * Returns: a connected socket, or -1.
 */
int
_do_daemon_connect_fd (const gchar *path, const gchar *const *start_argv,
                       const gchar *what, GError **error)
{
  g_autofree gchar *lock_path = NULL;
  int fd, lock_fd;

  fd = daemon_try_connect (path);
  if (fd >= 0)
    return fd;
  if (!connect_error_means_absent (fd))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot connect to the %s at '%s': %s", what, path,
                   g_strerror (-fd));
      return -1;
    }

  if (start_argv == NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "no %s listens at '%s'", what, path);
      return -1;
    }
  if (!_do_daemon_ensure_directory (path, what, error))
    return -1;

  /* Serialise the starters.  Waiting here is bounded: the holder gives the
   * lock up within DO_DAEMON_START_TIMEOUT_MS, or dies and the kernel
   * releases it. */
  lock_path = g_strconcat (path, ".lock", NULL);
  lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot open the %s lock '%s': %s", what, lock_path,
                   g_strerror (errsv));
      return -1;
    }
  while (flock (lock_fd, LOCK_EX) < 0)
    {
      int errsv = errno;
      if (errsv == EINTR)
        continue;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot lock '%s': %s", lock_path, g_strerror (errsv));
      close (lock_fd);
      return -1;
    }

  fd = daemon_try_connect (path);
  if (fd < 0 && connect_error_means_absent (fd))
    {
      if (daemon_spawn (path, start_argv, what, error))
        {
          fd = daemon_try_connect (path);
          if (fd < 0)
            g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                         "the %s started but '%s' does not answer: %s",
                         what, path, g_strerror (-fd));
        }
      else
        fd = -1;
    }
  else if (fd < 0)
    g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                 "cannot connect to the %s at '%s': %s", what, path,
                 g_strerror (-fd));

  close (lock_fd); /* releases the lock */
  return fd >= 0 ? fd : -1;
}

/**
 * do_connection_new_for_socket_path:
 * @socket_path: where the daemon listens (absolute).
 * @start_argv: (nullable) (array zero-terminated=1): the command that
 *   starts the daemon when nothing listens at @socket_path, or %NULL not to
 *   start anything.  Its first process must exit with status 0 once the
 *   daemon it forked listens (as `porter-broker --daemonize` does).
 * @error: return location for a #GError (%DO_ERROR_BROKER when the daemon
 *   cannot be reached or started).
 *
 * Connects to a daemon that serves a root object on every socket it
 * accepts at @socket_path, as porter-broker and porter-notifyd do, starting
 * it on demand.  Starting is race-free: however many processes find nothing
 * listening at once, @start_argv runs once (they serialise on an flock() of
 * "@socket_path.lock").  The directory of @socket_path must then be ours
 * and private (mode 0700); it is made if missing.
 *
 * The connection's root proxy is the daemon's root object; the daemon's
 * credentials are do_connection_get_peer_credentials().
 *
 * Thread rules: any thread; blocks.  The connection dispatches on the
 * thread-default GMainContext.
 *
 * Returns: (transfer full) (nullable): the connection.
 */
DoConnection *
do_connection_new_for_socket_path (const gchar        *socket_path,
                                   const gchar *const *start_argv,
                                   GError            **error)
{
  g_autoptr(GError) local_error = NULL;
  DoConnection *connection;
  int fd;

  g_return_val_if_fail (socket_path != NULL && g_path_is_absolute (socket_path), NULL);
  g_return_val_if_fail (start_argv == NULL || start_argv[0] != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  fd = _do_daemon_connect_fd (socket_path, start_argv, "daemon", error);
  if (fd < 0)
    return NULL;
  connection = _do_connection_new_for_socket (fd, NULL, &local_error);
  if (connection == NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot talk to the daemon at '%s': %s", socket_path,
                   local_error->message);
      return NULL;
    }
  return connection;
}
