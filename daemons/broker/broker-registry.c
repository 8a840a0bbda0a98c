/* Porter — porter-broker: the name registry.
 *
 * Three tables, all on the registry's main context:
 *   clients: DoConnection -> Client, one per accepted socket;
 *   names:   name -> Name (owner Client, send right, its hang-up watch);
 *   waiters: name -> array of Waiter, look-ups waiting for a name to appear
 *            and WaitGone calls waiting for it to go, each with a timer.
 * A Client also lists (borrowed) the names it owns and the waiters it
 * started, so its death removes both.
 *
 * Every argument comes from another process and is checked: names, fd
 * indexes and kinds, and per-client counts (LIMITS_EXCEEDED past them).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "broker-registry.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixfdlist.h>

#include "do-broker-private.h"
#include "do-connection.h"
#include "do-error.h"
#include "do-object.h"

typedef struct _Client Client;
typedef struct _Name Name;
typedef struct _Waiter Waiter;

struct _BrokerRegistry {
  GMainContext *context;
  DoObject *root;
  GHashTable *clients;    /* DoConnection* -> Client* (owned) */
  GHashTable *names;      /* gchar* (Name.name) -> Name* (owned) */
  GHashTable *waiters;    /* gchar* -> GPtrArray of Waiter* (owned) */
  GPtrArray *dead;        /* DoConnection* to drop from an idle callback */
  GSource *reap_source;
};

struct _Client {
  BrokerRegistry *registry;
  DoConnection *connection; /* owned */
  gint32 pid;
  GPtrArray *names;         /* Name*, borrowed from registry->names */
  GPtrArray *waiters;       /* Waiter*, borrowed from registry->waiters */
};

struct _Name {
  BrokerRegistry *registry;
  gchar *name;
  Client *owner;
  gint32 pid;               /* the registering process, for messages */
  int port_fd;              /* the send right */
  GSource *hup_source;      /* fires when the port's receive right closes */
};

typedef enum {
  WAIT_LOOKUP,              /* until the name appears */
  WAIT_GONE,                /* until the name goes */
} WaitKind;

struct _Waiter {
  BrokerRegistry *registry;
  Client *client;
  WaitKind kind;
  gchar *name;
  guint timeout_ms;
  DoInvocation *invocation; /* owned */
  GSource *timeout_source;
};

static void name_remove (Name *n, const gchar *why);

/* ---------------------------------------------------------------- replies */

/* Answers @invocation with @n's send right.  Takes @invocation: the
 * reference the handler took when it kept the call. */
static void
reply_port (DoInvocation *invocation, Name *n)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  gint index;

  index = g_unix_fd_list_append (fds, n->port_fd, &error);
  if (index < 0)
    {
      g_warning ("Cannot pass the port of '%s': %s", n->name, error->message);
      do_invocation_return_error (invocation, DO_ERROR, DO_ERROR_FAILED,
                                  "the broker cannot pass the port of '%s': %s",
                                  n->name, error->message);
    }
  else
    do_invocation_return_value_with_fds (invocation,
                                         g_variant_new ("(h)", (gint32) index),
                                         fds);
  do_invocation_unref (invocation);
}

/* ---------------------------------------------------------------- waiters */

/* Unlinks @w from every table and frees it.  Returns its invocation
 * (transfer full) for the caller to answer or drop. */
static DoInvocation *
waiter_detach (Waiter *w)
{
  BrokerRegistry *self = w->registry;
  GPtrArray *list = g_hash_table_lookup (self->waiters, w->name);
  DoInvocation *invocation = g_steal_pointer (&w->invocation);

  if (list != NULL)
    {
      g_ptr_array_remove_fast (list, w);
      if (list->len == 0)
        g_hash_table_remove (self->waiters, w->name);
    }
  g_ptr_array_remove_fast (w->client->waiters, w);
  if (w->timeout_source != NULL)
    {
      g_source_destroy (w->timeout_source);
      g_source_unref (w->timeout_source);
    }
  g_free (w->name);
  g_free (w);
  return invocation;
}

static gboolean
waiter_timed_out (gpointer user_data)
{
  Waiter *w = user_data;
  g_autofree gchar *name = g_strdup (w->name);
  WaitKind kind = w->kind;
  guint timeout_ms = w->timeout_ms;
  DoInvocation *invocation = waiter_detach (w);

  if (kind == WAIT_LOOKUP)
    do_invocation_return_error (invocation, DO_ERROR, DO_ERROR_NAME_NOT_FOUND,
                                "name '%s' was not registered within %u ms",
                                name, timeout_ms);
  else
    do_invocation_return_error (invocation, DO_ERROR, DO_ERROR_TIMED_OUT,
                                "name '%s' was still registered after %u ms",
                                name, timeout_ms);
  do_invocation_unref (invocation);
  return G_SOURCE_REMOVE;
}

static gboolean
waiter_add (BrokerRegistry *self,
            Client *client,
            WaitKind kind,
            const gchar *name,
            guint timeout_ms,
            DoInvocation *invocation,
            GError **error)
{
  GPtrArray *list;
  Waiter *w;

  if (client->waiters->len >= BROKER_MAX_WAITERS_PER_CLIENT)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "too many waiting calls on this connection (at most %d)",
                   BROKER_MAX_WAITERS_PER_CLIENT);
      return FALSE;
    }

  w = g_new0 (Waiter, 1);
  w->registry = self;
  w->client = client;
  w->kind = kind;
  w->name = g_strdup (name);
  w->timeout_ms = timeout_ms;
  w->invocation = do_invocation_ref (invocation);
  w->timeout_source = g_timeout_source_new (timeout_ms);
  g_source_set_callback (w->timeout_source, waiter_timed_out, w, NULL);
  g_source_attach (w->timeout_source, self->context);

  list = g_hash_table_lookup (self->waiters, name);
  if (list == NULL)
    {
      list = g_ptr_array_new ();
      g_hash_table_insert (self->waiters, g_strdup (name), list);
    }
  g_ptr_array_add (list, w);
  g_ptr_array_add (client->waiters, w);
  return TRUE;
}

static Waiter *
waiter_find (BrokerRegistry *self, const gchar *name, WaitKind kind)
{
  GPtrArray *list = g_hash_table_lookup (self->waiters, name);

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      Waiter *w = g_ptr_array_index (list, i);
      if (w->kind == kind)
        return w;
    }
  return NULL;
}

/* Answers the look-ups waiting for @n.  Looks the waiters up afresh after
 * every reply, so nothing breaks if a reply changes the tables. */
static void
waiters_name_appeared (BrokerRegistry *self, Name *n)
{
  g_autofree gchar *name = g_strdup (n->name);
  Waiter *w;

  while ((w = waiter_find (self, name, WAIT_LOOKUP)) != NULL)
    {
      DoInvocation *invocation = waiter_detach (w);

      n = g_hash_table_lookup (self->names, name);
      if (n == NULL)
        {
          do_invocation_return_error (invocation, DO_ERROR,
                                      DO_ERROR_NAME_NOT_FOUND,
                                      "name '%s' went away", name);
          do_invocation_unref (invocation);
          continue;
        }
      reply_port (invocation, n);
    }
}

static void
waiters_name_gone (BrokerRegistry *self, const gchar *name)
{
  Waiter *w;

  while ((w = waiter_find (self, name, WAIT_GONE)) != NULL)
    {
      DoInvocation *invocation = waiter_detach (w);

      do_invocation_return_value (invocation, g_variant_new ("()"));
      do_invocation_unref (invocation);
    }
}

/* ------------------------------------------------------------------ names */

static void
name_free (gpointer data)
{
  Name *n = data;

  if (n->hup_source != NULL)
    {
      g_source_destroy (n->hup_source);
      g_source_unref (n->hup_source);
    }
  if (n->port_fd >= 0)
    close (n->port_fd);
  g_free (n->name);
  g_free (n);
}

static gboolean
name_port_hung_up (gint fd, GIOCondition condition, gpointer user_data)
{
  Name *n = user_data;

  name_remove (n, "its port was closed");
  return G_SOURCE_REMOVE;
}

/* Drops @n, whichever way it went, and wakes WaitGone callers. */
static void
name_remove (Name *n, const gchar *why)
{
  BrokerRegistry *self = n->registry;
  g_autofree gchar *name = g_strdup (n->name);

  g_info ("Name '%s' (pid %d) removed: %s", name, (int) n->pid, why);
  g_ptr_array_remove_fast (n->owner->names, n);
  g_hash_table_remove (self->names, name); /* frees @n */
  waiters_name_gone (self, name);
}

static gboolean
check_name (const gchar *name, GError **error)
{
  if (do_broker_name_is_valid (name))
    return TRUE;
  g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
               "invalid name: use 1 to %d characters among letters, digits, "
               "'.', '_' and '-', not starting with '.' or '-'",
               DO_BROKER_MAX_NAME);
  return FALSE;
}

/* -------------------------------------------------------------- methods */

static GVariant *
method_register (BrokerRegistry *self,
                 Client *client,
                 DoInvocation *invocation,
                 GVariant *parameters,
                 GError **error)
{
  const DoCredentials *creds = do_invocation_get_credentials (invocation);
  GUnixFDList *fd_list = do_invocation_get_fd_list (invocation);
  g_autoptr(GError) local_error = NULL;
  const gchar *name;
  gint32 index;
  struct stat st;
  Name *n;
  int fd;

  g_variant_get (parameters, "(&sh)", &name, &index);
  if (!check_name (name, error))
    return NULL;

  n = g_hash_table_lookup (self->names, name);
  if (n != NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_NAME_TAKEN,
                   "name '%s' is already registered by pid %d", name,
                   (int) n->pid);
      return NULL;
    }
  if (client->names->len >= BROKER_MAX_NAMES_PER_CLIENT)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "too many names on this connection (at most %d)",
                   BROKER_MAX_NAMES_PER_CLIENT);
      return NULL;
    }
  if (fd_list == NULL || index < 0 || index >= g_unix_fd_list_get_length (fd_list))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "Register: the port handle %d names no fd sent with the call",
                   (int) index);
      return NULL;
    }
  fd = g_unix_fd_list_get (fd_list, index, &local_error);
  if (fd < 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "Register: cannot take the port: %s", local_error->message);
      return NULL;
    }
  if (fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode))
    {
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "Register: the port for '%s' is not a socket", name);
      return NULL;
    }

  n = g_new0 (Name, 1);
  n->registry = self;
  n->name = g_strdup (name);
  n->owner = client;
  n->pid = (creds != NULL && creds->pid > 0) ? creds->pid : client->pid;
  n->port_fd = fd;
  n->hup_source = g_unix_fd_source_new (fd, G_IO_HUP | G_IO_ERR);
  g_source_set_callback (n->hup_source, G_SOURCE_FUNC (name_port_hung_up),
                         n, NULL);
  g_source_attach (n->hup_source, self->context);
  g_hash_table_insert (self->names, n->name, n);
  g_ptr_array_add (client->names, n);
  g_info ("Name '%s' registered by pid %d", n->name, (int) n->pid);

  waiters_name_appeared (self, n);
  return g_variant_new ("()");
}

static GVariant *
method_unregister (BrokerRegistry *self,
                   Client *client,
                   GVariant *parameters,
                   GError **error)
{
  const gchar *name;
  Name *n;

  g_variant_get (parameters, "(&s)", &name);
  if (!check_name (name, error))
    return NULL;
  n = g_hash_table_lookup (self->names, name);
  if (n == NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND,
                   "name '%s' is not registered", name);
      return NULL;
    }
  if (n->owner != client)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_ACCESS_DENIED,
                   "name '%s' is registered by pid %d, not by this connection",
                   name, (int) n->pid);
      return NULL;
    }
  name_remove (n, "unregistered");
  return g_variant_new ("()");
}

static GVariant *
method_lookup (BrokerRegistry *self,
               Client *client,
               DoInvocation *invocation,
               GVariant *parameters,
               GError **error)
{
  const gchar *name;
  guint32 wait_ms;
  Name *n;

  g_variant_get (parameters, "(&su)", &name, &wait_ms);
  if (!check_name (name, error))
    return NULL;

  n = g_hash_table_lookup (self->names, name);
  if (n != NULL)
    {
      /* A reply with fds goes through the invocation. */
      reply_port (do_invocation_ref (invocation), n);
      return NULL;
    }
  if (wait_ms == 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND,
                   "name '%s' is not registered", name);
      return NULL;
    }
  if (!waiter_add (self, client, WAIT_LOOKUP, name, wait_ms, invocation, error))
    return NULL;
  return NULL; /* answered when the name appears or the wait times out */
}

static GVariant *
method_wait_gone (BrokerRegistry *self,
                  Client *client,
                  DoInvocation *invocation,
                  GVariant *parameters,
                  GError **error)
{
  const gchar *name;
  guint32 timeout_ms;

  g_variant_get (parameters, "(&su)", &name, &timeout_ms);
  if (!check_name (name, error))
    return NULL;
  if (!g_hash_table_contains (self->names, name))
    return g_variant_new ("()");
  if (timeout_ms == 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_TIMED_OUT,
                   "name '%s' is still registered", name);
      return NULL;
    }
  if (!waiter_add (self, client, WAIT_GONE, name, timeout_ms, invocation, error))
    return NULL;
  return NULL;
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const gchar * const *) a, *(const gchar * const *) b);
}

static GVariant *
method_list (BrokerRegistry *self)
{
  g_autofree const gchar **names = NULL;
  guint n_names;

  names = (const gchar **) g_hash_table_get_keys_as_array (self->names, &n_names);
  qsort (names, n_names, sizeof *names, compare_strings);
  return g_variant_new ("(^as)", names);
}

static GVariant *
broker_method (DoObject *object,
               DoInvocation *invocation,
               const gchar *method,
               GVariant *parameters,
               gpointer user_data,
               GError **error)
{
  BrokerRegistry *self = user_data;
  Client *client;

  client = g_hash_table_lookup (self->clients,
                                do_invocation_get_connection (invocation));
  if (client == NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "the broker does not know this connection");
      return NULL;
    }

  if (g_str_equal (method, "Register"))
    return method_register (self, client, invocation, parameters, error);
  if (g_str_equal (method, "Unregister"))
    return method_unregister (self, client, parameters, error);
  if (g_str_equal (method, "Lookup"))
    return method_lookup (self, client, invocation, parameters, error);
  if (g_str_equal (method, "List"))
    return method_list (self);
  if (g_str_equal (method, "WaitGone"))
    return method_wait_gone (self, client, invocation, parameters, error);
  if (g_str_equal (method, "GetPid"))
    return g_variant_new ("(u)", (guint32) getpid ());

  g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD,
               "the broker has no method '%s'", method);
  return NULL;
}

/* ---------------------------------------------------------------- clients */

static gboolean
reap_dead (gpointer user_data)
{
  BrokerRegistry *self = user_data;

  g_ptr_array_set_size (self->dead, 0);
  g_clear_pointer (&self->reap_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Forgets @client: its waiting calls are dropped (libdo answers them with
 * an error nobody reads), its names go.  The connection itself is
 * released from an idle callback, never from inside its own callback. */
static void
client_remove (BrokerRegistry *self, Client *client)
{
  DoConnection *connection = client->connection;

  do_connection_set_died_func (connection, NULL, NULL, NULL);
  while (client->waiters->len > 0)
    do_invocation_unref (waiter_detach (g_ptr_array_index (client->waiters, 0)));
  while (client->names->len > 0)
    name_remove (g_ptr_array_index (client->names, 0), "its owner disconnected");

  g_hash_table_steal (self->clients, connection);
  g_ptr_array_add (self->dead, connection);
  if (self->reap_source == NULL)
    {
      self->reap_source = g_idle_source_new ();
      g_source_set_callback (self->reap_source, reap_dead, self, NULL);
      g_source_attach (self->reap_source, self->context);
    }
  g_ptr_array_unref (client->names);
  g_ptr_array_unref (client->waiters);
  g_free (client);
}

static void
client_died (DoConnection *connection, const GError *error, gpointer user_data)
{
  Client *client = user_data;

  g_debug ("Client pid %d disconnected: %s", (int) client->pid,
             error != NULL ? error->message : "closed");
  client_remove (client->registry, client);
}

/**
 * broker_registry_add_client:
 * @registry: the registry.
 * @fd: an accepted client socket; taken, closed on failure too.
 * @error: return location for an error.
 *
 * Serves the broker object to a new client.  Refuses other users' clients
 * (%DO_ERROR_ACCESS_DENIED; root may connect) and clients past
 * %BROKER_MAX_CLIENTS (%DO_ERROR_LIMITS_EXCEEDED).
 */
gboolean
broker_registry_add_client (BrokerRegistry *self, int fd, GError **error)
{
  struct ucred cred = { 0 };
  socklen_t len = sizeof cred;
  DoConnection *connection;
  Client *client;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (fd >= 0, FALSE);

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    {
      int errsv = errno;
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "cannot read the client's credentials: %s",
                   g_strerror (errsv));
      return FALSE;
    }
  if (cred.uid != geteuid () && cred.uid != 0)
    {
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_ACCESS_DENIED,
                   "refused a client of uid %u (pid %d): this broker serves "
                   "uid %u", (guint) cred.uid, (int) cred.pid,
                   (guint) geteuid ());
      return FALSE;
    }
  if (g_hash_table_size (self->clients) >= BROKER_MAX_CLIENTS)
    {
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "refused a client (pid %d): already %d clients",
                   (int) cred.pid, BROKER_MAX_CLIENTS);
      return FALSE;
    }

  connection = _do_connection_new_for_socket (fd, self->root, error);
  if (connection == NULL)
    return FALSE;

  client = g_new0 (Client, 1);
  client->registry = self;
  client->connection = connection;
  client->pid = cred.pid;
  client->names = g_ptr_array_new ();
  client->waiters = g_ptr_array_new ();
  g_hash_table_insert (self->clients, connection, client);
  do_connection_set_died_func (connection, client_died, client, NULL);
  g_debug ("Client pid %d connected", (int) cred.pid);

  if (!do_connection_is_alive (connection))
    client_remove (self, client);
  return TRUE;
}

/* -------------------------------------------------------------- lifetime */

/**
 * broker_registry_new:
 * @error: return location for an error.
 *
 * Makes an empty registry on the thread-default main context.
 *
 * Returns: (transfer full) (nullable): the registry.
 */
BrokerRegistry *
broker_registry_new (GError **error)
{
  g_autoptr(DoObject) root = NULL;
  BrokerRegistry *self;

  self = g_new0 (BrokerRegistry, 1);
  root = do_object_new_for_xml (do_broker_interface_xml, DO_BROKER_INTERFACE,
                                broker_method, self, NULL, error);
  if (root == NULL)
    {
      g_free (self);
      return NULL;
    }
  self->root = g_steal_pointer (&root);
  self->context = g_main_context_ref_thread_default ();
  self->clients = g_hash_table_new (NULL, NULL);
  self->names = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, name_free);
  self->waiters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_ptr_array_unref);
  self->dead = g_ptr_array_new_with_free_func ((GDestroyNotify) do_connection_unref);
  return self;
}

/**
 * broker_registry_free:
 * @registry: (nullable): the registry.
 *
 * Closes every client connection and frees the registry.
 */
void
broker_registry_free (BrokerRegistry *self)
{
  GHashTableIter iter;
  gpointer value;

  if (self == NULL)
    return;

  for (;;)
    {
      g_hash_table_iter_init (&iter, self->clients);
      if (!g_hash_table_iter_next (&iter, NULL, &value))
        break;
      client_remove (self, value);
    }
  /* Close them after the tables are empty: nothing calls back into us. */
  for (guint i = 0; i < self->dead->len; i++)
    do_connection_close (g_ptr_array_index (self->dead, i));
  g_ptr_array_unref (self->dead);
  if (self->reap_source != NULL)
    {
      g_source_destroy (self->reap_source);
      g_source_unref (self->reap_source);
    }

  g_hash_table_unref (self->waiters);
  g_hash_table_unref (self->names);
  g_hash_table_unref (self->clients);
  do_object_unref (self->root);
  g_main_context_unref (self->context);
  g_free (self);
}

guint
broker_registry_get_n_clients (BrokerRegistry *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return g_hash_table_size (self->clients);
}

guint
broker_registry_get_n_names (BrokerRegistry *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return g_hash_table_size (self->names);
}
