/* Porter — libdo: the broker client (DESIGN.md §6).
 *
 * Finds the per-user broker's socket, connects to it (starting the broker
 * when none answers), and wraps its org.porter.Broker methods.
 *
 * Starting is race-free: a client that cannot connect takes an exclusive
 * flock() on "<socket>.lock", tries once more (someone else may have started
 * the broker meanwhile), and otherwise runs `porter-broker --daemonize`,
 * whose first process exits only once the daemon it forked is listening.
 * The lock is held until then, so ten clients starting at once run the
 * broker once; the broker also refuses to run twice on one socket (its own
 * lock, "<socket>.pid").
 *
 * Thread rules: every function here may be called from any thread; the
 * connections they make dispatch on the calling thread's thread-default
 * main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-broker-private.h"
#include "do-connection.h"
#include "do-error.h"
#include "do-object.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gunixfdlist.h>

const gchar do_broker_interface_xml[] =
  "<node>"
  "  <interface name='" DO_BROKER_INTERFACE "'>"
  "    <method name='Register'>"
  "      <arg name='name' type='s' direction='in'/>"
  "      <arg name='port' type='h' direction='in'/>"
  "    </method>"
  "    <method name='Unregister'>"
  "      <arg name='name' type='s' direction='in'/>"
  "    </method>"
  "    <method name='Lookup'>"
  "      <arg name='name' type='s' direction='in'/>"
  "      <arg name='wait_timeout_ms' type='u' direction='in'/>"
  "      <arg name='port' type='h' direction='out'/>"
  "    </method>"
  "    <method name='List'>"
  "      <arg name='names' type='as' direction='out'/>"
  "    </method>"
  "    <method name='WaitGone'>"
  "      <arg name='name' type='s' direction='in'/>"
  "      <arg name='timeout_ms' type='u' direction='in'/>"
  "    </method>"
  "    <method name='GetPid'>"
  "      <arg name='pid' type='u' direction='out'/>"
  "    </method>"
  "  </interface>"
  "</node>";

gboolean
do_broker_name_is_valid (const gchar *name)
{
  gsize len;

  if (name == NULL || name[0] == '\0' || name[0] == '.' || name[0] == '-')
    return FALSE;
  len = strlen (name);
  if (len > DO_BROKER_MAX_NAME)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      gchar c = name[i];
      if (!g_ascii_isalnum (c) && c != '.' && c != '_' && c != '-')
        return FALSE;
    }
  return TRUE;
}

/**
 * do_broker_get_socket_path:
 *
 * Where the per-user broker listens: `$PORTER_BROKER` if set and not empty,
 * else `$XDG_RUNTIME_DIR/porter/broker`, else `/tmp/porter-$UID/broker`.
 * A relative `$PORTER_BROKER` is taken relative to the current directory.
 *
 * Returns: (transfer full): an absolute path.
 */
gchar *
do_broker_get_socket_path (void)
{
  const gchar *env = g_getenv ("PORTER_BROKER");
  const gchar *runtime;

  if (env != NULL && env[0] != '\0')
    return g_canonicalize_filename (env, NULL);

  runtime = g_getenv ("XDG_RUNTIME_DIR");
  if (runtime != NULL && g_path_is_absolute (runtime))
    return g_build_filename (runtime, "porter", "broker", NULL);

  return g_strdup_printf ("/tmp/porter-%u/broker", (guint) geteuid ());
}

/**
 * do_broker_ensure_directory:
 * @socket_path: the broker's socket path.
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
do_broker_ensure_directory (const gchar *socket_path, GError **error)
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
                       "cannot create the broker directory '%s': %s",
                       dir, g_strerror (errsv));
          return FALSE;
        }
      created = TRUE;
    }
  else if (errno != EEXIST)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot create the broker directory '%s': %s",
                   dir, g_strerror (errsv));
      return FALSE;
    }

  /* Whatever the umask did, a directory we made is 0700. */
  if (created && chmod (dir, 0700) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot set the mode of the broker directory '%s': %s",
                   dir, g_strerror (errsv));
      return FALSE;
    }

  if (lstat (dir, &st) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot examine the broker directory '%s': %s",
                   dir, g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the broker directory '%s' is not a directory", dir);
      return FALSE;
    }
  if (st.st_uid != geteuid ())
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the broker directory '%s' belongs to uid %u, not to us "
                   "(uid %u)", dir, (guint) st.st_uid, (guint) geteuid ());
      return FALSE;
    }
  if ((st.st_mode & 07777) != 0700)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the broker directory '%s' has mode %04o; it must be 0700",
                   dir, (guint) (st.st_mode & 07777));
      return FALSE;
    }
  return TRUE;
}

/* Returns a connected socket, or -errno. */
static int
broker_try_connect (const gchar *path)
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

static const gchar *
broker_exec_path (void)
{
  const gchar *env = g_getenv ("PORTER_BROKER_EXEC");

  if (env != NULL && env[0] != '\0')
    return env;
  if (g_file_test (DO_BROKER_EXEC_INSTALLED, G_FILE_TEST_IS_EXECUTABLE))
    return DO_BROKER_EXEC_INSTALLED;
  return DO_BROKER_EXEC_BUILDDIR;
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

/* Runs `porter-broker --daemonize --socket PATH` and waits (bounded) for its
 * first process to exit, which it does once the daemon is listening. */
static gboolean
broker_spawn (const gchar *path, GError **error)
{
  const gchar *exec = broker_exec_path ();
  const gchar *argv[] = { exec, "--daemonize", "--socket", path, NULL };
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
                   "cannot start the broker (%s): %s", exec,
                   local_error->message);
      return FALSE;
    }

  context = g_main_context_new ();
  cancellable = g_cancellable_new ();
  g_main_context_push_thread_default (context);
  g_subprocess_wait_async (proc, cancellable, spawn_waited_cb, &wait);
  timeout = g_timeout_source_new (DO_BROKER_START_TIMEOUT_MS);
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
                   "the broker (%s) did not start listening on '%s' within "
                   "%d ms", exec, path, DO_BROKER_START_TIMEOUT_MS);
      return FALSE;
    }
  if (!g_subprocess_get_if_exited (proc))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the broker (%s) was killed by signal %d while starting",
                   exec, g_subprocess_get_term_sig (proc));
      return FALSE;
    }
  if (g_subprocess_get_exit_status (proc) != 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "the broker (%s) failed to start on '%s' (exit status %d)",
                   exec, path, g_subprocess_get_exit_status (proc));
      return FALSE;
    }
  return TRUE;
}

static gboolean
connect_error_means_absent (int err)
{
  return err == -ENOENT || err == -ECONNREFUSED;
}

static int
broker_connect_fd (GError **error)
{
  g_autofree gchar *path = do_broker_get_socket_path ();
  g_autofree gchar *lock_path = NULL;
  int fd, lock_fd;

  fd = broker_try_connect (path);
  if (fd >= 0)
    return fd;
  if (!connect_error_means_absent (fd))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot connect to the broker at '%s': %s", path,
                   g_strerror (-fd));
      return -1;
    }

  if (!do_broker_ensure_directory (path, error))
    return -1;

  /* Serialise the starters.  Waiting here is bounded: the holder gives the
   * lock up within DO_BROKER_START_TIMEOUT_MS, or dies and the kernel
   * releases it. */
  lock_path = g_strconcat (path, ".lock", NULL);
  lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot open the broker lock '%s': %s", lock_path,
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

  fd = broker_try_connect (path);
  if (fd < 0 && connect_error_means_absent (fd))
    {
      if (broker_spawn (path, error))
        {
          fd = broker_try_connect (path);
          if (fd < 0)
            g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                         "the broker started but '%s' does not answer: %s",
                         path, g_strerror (-fd));
        }
      else
        fd = -1;
    }
  else if (fd < 0)
    g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                 "cannot connect to the broker at '%s': %s", path,
                 g_strerror (-fd));

  close (lock_fd); /* releases the lock */
  return fd >= 0 ? fd : -1;
}

/**
 * do_broker_connect:
 * @error: return location for a %DO_ERROR_BROKER error.
 *
 * Connects to the per-user broker, starting it if none answers.
 *
 * Returns: (transfer full) (nullable): a connection whose root proxy is the
 * broker's org.porter.Broker object.
 */
DoConnection *
do_broker_connect (GError **error)
{
  g_autoptr(GError) local_error = NULL;
  DoConnection *connection;
  int fd;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  fd = broker_connect_fd (error);
  if (fd < 0)
    return NULL;
  connection = _do_connection_new_for_socket (fd, NULL, &local_error);
  if (connection == NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "cannot talk to the broker: %s", local_error->message);
      return NULL;
    }
  return connection;
}

/* Errors that mean something about the request pass through; anything
 * else means the broker itself failed us.  Takes @local_error. */
static void
broker_propagate_error (GError **error, GError *local_error)
{
  if (local_error->domain == DO_ERROR)
    {
      switch ((DoError) local_error->code)
        {
        case DO_ERROR_NAME_NOT_FOUND:
        case DO_ERROR_NAME_TAKEN:
        case DO_ERROR_INVALID_ARGUMENT:
        case DO_ERROR_ACCESS_DENIED:
        case DO_ERROR_LIMITS_EXCEEDED:
        case DO_ERROR_TIMED_OUT:
        case DO_ERROR_BROKER:
          g_propagate_error (error, local_error);
          return;
        default:
          break;
        }
    }
  else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_propagate_error (error, local_error);
      return;
    }

  g_set_error (error, DO_ERROR, DO_ERROR_BROKER, "Broker: %s",
               local_error->message);
  g_error_free (local_error);
}

/* Calls @method on @broker's root object; on error maps it as above.
 * @parameters is sunk. */
static GVariant *
broker_call (DoConnection *broker,
             const gchar *method,
             GVariant *parameters,
             const gchar *reply_type,
             GUnixFDList *fd_list,
             gint timeout_ms,
             GUnixFDList **out_fd_list,
             GCancellable *cancellable,
             GError **error)
{
  g_autoptr(DoProxy) root = do_connection_get_root_proxy (broker);
  GError *local_error = NULL;
  GVariant *reply;

  if (root == NULL)
    {
      g_variant_unref (g_variant_ref_sink (parameters));
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "broker: the connection has no root object");
      return NULL;
    }
  reply = do_proxy_call_with_fds_sync (root, method, parameters, fd_list,
                                       DO_CALL_FLAGS_NONE, timeout_ms,
                                       out_fd_list, cancellable, &local_error);
  if (reply == NULL)
    {
      broker_propagate_error (error, local_error);
      return NULL;
    }
  if (!g_variant_is_of_type (reply, G_VARIANT_TYPE (reply_type)))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "broker: %s returned type '%s', expected '%s'", method,
                   g_variant_get_type_string (reply), reply_type);
      g_variant_unref (reply);
      if (out_fd_list != NULL)
        g_clear_object (out_fd_list);
      return NULL;
    }
  return reply;
}

/**
 * do_broker_register:
 * @name: the name to register.
 * @port_send_fd: a send right to the server's port (borrowed; the broker
 *   receives a duplicate).
 * @error: return location for an error.
 *
 * Registers @name at the broker for the port @port_send_fd reaches.
 *
 * Returns: (transfer full) (nullable): the broker connection that holds the
 * name; the name lives while it does.
 */
DoConnection *
do_broker_register (const gchar *name, int port_send_fd, GError **error)
{
  g_autoptr(DoConnection) broker = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  GError *local_error = NULL;
  gint index;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (port_send_fd >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!do_broker_name_is_valid (name))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "'%s' is not a valid name: use 1 to %d characters among "
                   "letters, digits, '.', '_' and '-'", name,
                   DO_BROKER_MAX_NAME);
      return NULL;
    }

  fds = g_unix_fd_list_new ();
  index = g_unix_fd_list_append (fds, port_send_fd, &local_error);
  if (index < 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "cannot pass the port: %s", local_error->message);
      g_error_free (local_error);
      return NULL;
    }

  broker = do_broker_connect (error);
  if (broker == NULL)
    return NULL;
  reply = broker_call (broker, "Register",
                       g_variant_new ("(sh)", name, (gint32) index), "()",
                       fds, DO_TIMEOUT_DEFAULT, NULL, NULL, error);
  if (reply == NULL)
    return NULL;
  return g_steal_pointer (&broker);
}

/**
 * do_broker_unregister:
 * @broker: the connection do_broker_register() returned.
 * @name: the name it registered.
 * @error: return location for an error.
 *
 * Gives @name up.  Dropping @broker gives it up too.
 *
 * Returns: %TRUE on success.
 */
gboolean
do_broker_unregister (DoConnection *broker, const gchar *name, GError **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (broker != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  reply = broker_call (broker, "Unregister", g_variant_new ("(s)", name),
                       "()", NULL, DO_TIMEOUT_DEFAULT, NULL, NULL, error);
  return reply != NULL;
}

/**
 * do_broker_lookup:
 * @name: the name to look up.
 * @wait_timeout_ms: how long the broker waits for @name to be registered;
 *   0 to answer at once.
 * @cancellable: (nullable): to give up waiting.
 * @error: return location for an error.
 *
 * Returns: a send right to the port registered as @name (the caller owns
 * it), or -1 on error.
 */
int
do_broker_lookup (const gchar *name,
                  guint wait_timeout_ms,
                  GCancellable *cancellable,
                  GError **error)
{
  g_autoptr(DoConnection) broker = NULL;
  g_autoptr(GUnixFDList) out_fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  GError *local_error = NULL;
  gint32 index;
  gint timeout_ms;
  int fd;

  g_return_val_if_fail (name != NULL, -1);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (!do_broker_name_is_valid (name))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "'%s' is not a valid name", name);
      return -1;
    }

  broker = do_broker_connect (error);
  if (broker == NULL)
    return -1;

  /* The broker answers by the end of the wait; leave room for the reply. */
  if (wait_timeout_ms >= (guint) G_MAXINT - 30000)
    timeout_ms = DO_TIMEOUT_INFINITE;
  else
    timeout_ms = (gint) wait_timeout_ms + 25000;

  reply = broker_call (broker, "Lookup",
                       g_variant_new ("(su)", name, (guint32) wait_timeout_ms),
                       "(h)", NULL, timeout_ms, &out_fds, cancellable, error);
  if (reply == NULL)
    return -1;

  g_variant_get (reply, "(h)", &index);
  if (out_fds == NULL || index < 0 || index >= g_unix_fd_list_get_length (out_fds))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "broker: Lookup returned no port for '%s'", name);
      return -1;
    }
  fd = g_unix_fd_list_get (out_fds, index, &local_error);
  if (fd < 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_BROKER,
                   "broker: cannot take the port for '%s': %s", name,
                   local_error->message);
      g_error_free (local_error);
      return -1;
    }
  return fd;
}

/**
 * do_broker_list_names:
 * @error: return location for a %DO_ERROR_BROKER error.
 *
 * Lists the names registered at the per-user broker, starting the broker
 * if none is running.  May be called from any thread; blocks.
 *
 * Returns: (transfer full) (array zero-terminated=1): the names, sorted.
 */
gchar **
do_broker_list_names (GError **error)
{
  g_autoptr(DoConnection) broker = NULL;
  g_autoptr(GVariant) reply = NULL;
  gchar **names;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  broker = do_broker_connect (error);
  if (broker == NULL)
    return NULL;
  reply = broker_call (broker, "List", g_variant_new ("()"), "(as)", NULL,
                       DO_TIMEOUT_DEFAULT, NULL, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(^as)", &names);
  return names;
}
