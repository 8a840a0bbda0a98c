/* Porter — libdo: the broker client (DESIGN.md §6).
 *
 * Finds the per-user broker's socket, connects to it (starting the broker
 * when none answers), and wraps its org.porter.Broker methods.
 *
 * Starting is race-free and shared with every daemon started on demand
 * (do-daemon-client.c): `porter-broker --daemonize` runs once however many
 * clients start it at once; the broker also refuses to run twice on one
 * socket (its own lock, "<socket>.pid").
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

#include <string.h>
#include <unistd.h>

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

/**
 * do_broker_ensure_directory:
 * @socket_path: the broker's socket path.
 * @error: return location for a %DO_ERROR_BROKER error.
 *
 * Makes sure the directory holding @socket_path exists, belongs to us and
 * is private (mode 0700), creating it if missing: see
 * _do_daemon_ensure_directory().
 *
 * Returns: %TRUE if the directory is fit to use.
 */
gboolean
do_broker_ensure_directory (const gchar *socket_path, GError **error)
{
  return _do_daemon_ensure_directory (socket_path, "broker", error);
}

static int
broker_connect_fd (GError **error)
{
  g_autofree gchar *path = do_broker_get_socket_path ();
  const gchar *argv[] = { broker_exec_path (), "--daemonize", "--socket", path, NULL };

  return _do_daemon_connect_fd (path, argv, "broker", error);
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
