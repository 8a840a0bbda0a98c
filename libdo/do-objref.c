/* Porter — libdo: objects passed by reference (DESIGN.md §5).
 *
 * In a GVariant an object is an `o` value holding its process-local path
 * (do_object_get_path()).  On the wire the connection rewrites each one, in
 * the sender's terms:
 *
 *   /org/porter/ref/sender/ID    object ID of the sender's, exported on this
 *                                connection (the receiver gets a proxy)
 *   /org/porter/ref/receiver/ID  the receiver's own object ID, coming home
 *                                (the receiver gets the original object)
 *   /                            no object
 *
 * and the receiver rewrites them back into its own paths.  Any other `o`
 * value is refused: an object path is always an object reference here.
 *
 * Lifetime, as Mach's make-send count and Cap'n Proto's Release: the
 * exporter counts the references it sent (Export.sent); the importer keeps
 * one proxy per remote object and counts the references it received
 * (DoObject.received).  When the last local reference to a proxy goes, the
 * importer sends RELEASE (id, received), batched; the exporter subtracts and
 * drops its export at zero.  A reference still in flight keeps the count
 * above zero, so it is never freed early.  A dead connection drops
 * everything it held.  The root object (id 1) lives as long as the
 * connection and is not counted.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-connection-private.h"
#include "do-object-private.h"
#include "do-error.h"

#include <stdlib.h>
#include <string.h>

#define REF_SENDER "/org/porter/ref/sender/"
#define REF_RECEIVER "/org/porter/ref/receiver/"

typedef struct {
  guint64 id;
  DoObject *object;      /* strong */
  guint64 sent;          /* references sent and not released yet */
} Export;

typedef struct {
  guint64 id;
  guint64 count;
} Release;

static void
export_free (gpointer data)
{
  Export *e = data;

  do_object_unref (e->object);
  g_free (e);
}

void
_do_connection_init_refs (DoConnection *connection)
{
  g_mutex_init (&connection->refs_lock);
  connection->exports = g_hash_table_new (g_int64_hash, g_int64_equal);
  connection->exported = g_hash_table_new (NULL, NULL);
  connection->imports = g_hash_table_new (g_int64_hash, g_int64_equal);
  connection->releases = g_array_new (FALSE, FALSE, sizeof (Release));
  connection->next_export_id = DO_ROOT_OBJECT_ID + 1;
}

/* Drops every export (the peer is gone, or the connection is finalized).
 * Proxies made by this connection stay, as zombies whose calls fail. */
void
_do_connection_clear_refs (DoConnection *connection)
{
  GList *exports;

  g_mutex_lock (&connection->refs_lock);
  exports = g_hash_table_get_values (connection->exports);
  g_hash_table_remove_all (connection->exports);
  g_hash_table_remove_all (connection->exported);
  g_array_set_size (connection->releases, 0);
  g_atomic_int_set (&connection->n_releases, 0);
  g_mutex_unlock (&connection->refs_lock);
  g_list_free_full (exports, export_free);
}

/* ---------------------------------------------------------------- */
/* Proxies (imports) */

static DoObject *
get_proxy_locked (DoConnection *connection, guint64 object_id)
{
  DoObject *proxy = g_hash_table_lookup (connection->imports, &object_id);

  if (proxy && _do_object_try_ref (proxy))
    return proxy;
  /* None, or one being finalized: it forgets itself only if still in the
   * table, so replacing it is safe. */
  proxy = _do_object_new_proxy (connection, object_id);
  g_hash_table_replace (connection->imports, &proxy->object_id, proxy);
  return proxy;
}

/* The one proxy for the peer's object @object_id (transfer full). */
DoObject *
_do_connection_get_proxy (DoConnection *connection, guint64 object_id)
{
  DoObject *proxy;

  g_mutex_lock (&connection->refs_lock);
  proxy = get_proxy_locked (connection, object_id);
  g_mutex_unlock (&connection->refs_lock);
  return proxy;
}

static gboolean
flush_releases_idle (gpointer data)
{
  _do_connection_flush_releases (data);
  return G_SOURCE_REMOVE;
}

/* The last reference to @proxy went: tell the peer, batched. */
void
_do_connection_forget_proxy (DoConnection *connection, DoObject *proxy)
{
  gboolean schedule = FALSE;

  g_mutex_lock (&connection->refs_lock);
  if (g_hash_table_lookup (connection->imports, &proxy->object_id) == proxy)
    g_hash_table_remove (connection->imports, &proxy->object_id);
  if (proxy->received > 0)
    {
      Release r = { proxy->object_id, proxy->received };

      g_array_append_val (connection->releases, r);
      schedule = connection->releases->len == 1;
      g_atomic_int_set (&connection->n_releases, connection->releases->len);
    }
  g_mutex_unlock (&connection->refs_lock);

  /* Sent from the connection's context, never from inside an unref (which
   * may run under the caller's locks); a call sent meanwhile takes the batch
   * with it. */
  if (schedule)
    {
      GSource *idle = g_idle_source_new ();

      g_source_set_callback (idle, flush_releases_idle, do_connection_ref (connection),
                             (GDestroyNotify) do_connection_unref);
      g_source_set_name (idle, "DoConnection releases");
      g_source_attach (idle, connection->context);
      g_source_unref (idle);
    }
}

/* Sends the batch of releases, if any.  Any thread, no lock held. */
void
_do_connection_flush_releases (DoConnection *connection)
{
  g_autoptr(GArray) batch = NULL;
  GVariantBuilder builder;
  DoMessage *msg;

  if (g_atomic_int_get (&connection->n_releases) == 0)
    return;
  g_mutex_lock (&connection->refs_lock);
  batch = connection->releases;
  connection->releases = g_array_new (FALSE, FALSE, sizeof (Release));
  g_atomic_int_set (&connection->n_releases, 0);
  g_mutex_unlock (&connection->refs_lock);
  if (batch->len == 0)
    return;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tt)"));
  for (guint i = 0; i < batch->len; i++)
    {
      Release *r = &g_array_index (batch, Release, i);
      g_variant_builder_add (&builder, "(tt)", r->id, r->count);
    }
  msg = do_message_new (DO_MESSAGE_RELEASE, 0, NULL, NULL,
                        g_variant_new ("(a(tt))", &builder));
  /* A failure means the peer is going; its death frees what it held. */
  do_channel_send (connection->channel, msg,
                   _do_deadline_after (connection->request_timeout_ms), NULL);
  do_message_unref (msg);
}

/* ---------------------------------------------------------------- */
/* Exports */

static DoObject *
lookup_export_locked (DoConnection *connection, guint64 object_id)
{
  DoObject *object = NULL;
  Export *e;

  g_mutex_lock (&connection->refs_lock);
  e = g_hash_table_lookup (connection->exports, &object_id);
  if (e)
    object = do_object_ref (e->object);
  g_mutex_unlock (&connection->refs_lock);
  return object;
}

/* The object the peer calls as @object_id (transfer full), or NULL.
 * Called without connection->lock. */
DoObject *
_do_connection_lookup_export (DoConnection *connection, guint64 object_id)
{
  DoObject *object;

  if (object_id != DO_ROOT_OBJECT_ID)
    return lookup_export_locked (connection, object_id);
  g_mutex_lock (&connection->lock);
  object = connection->root ? do_object_ref (connection->root) : NULL;
  g_mutex_unlock (&connection->lock);
  return object;
}

/* Takes @count sent references to @e back; an export left with none is
 * dropped (into @dropped, to free outside the lock). */
static void
release_locked (DoConnection *connection, Export *e, guint64 count, GPtrArray *dropped)
{
  e->sent -= count;
  if (e->sent == 0)
    {
      g_hash_table_remove (connection->exports, &e->id);
      g_hash_table_remove (connection->exported, e->object);
      g_ptr_array_add (dropped, e);
    }
}

/* Handles a RELEASE from the peer.  No lock held: dropped objects run their
 * destroy notifies here. */
gboolean
_do_connection_handle_release (DoConnection *connection, DoMessage *msg, GError **error)
{
  g_autoptr(GPtrArray) dropped = g_ptr_array_new_with_free_func (export_free);
  g_autoptr(GVariantIter) iter = NULL;
  guint64 id, count;
  gboolean ok = TRUE;

  g_variant_get (msg->body, "(a(tt))", &iter);
  g_mutex_lock (&connection->refs_lock);
  while (ok && g_variant_iter_next (iter, "(tt)", &id, &count))
    {
      Export *e = g_hash_table_lookup (connection->exports, &id);

      if (!e || count == 0 || count > e->sent)
        {
          g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                       "released %" G_GUINT64_FORMAT " references to object %" G_GUINT64_FORMAT
                       ", which holds %" G_GUINT64_FORMAT,
                       count, id, e ? e->sent : 0);
          ok = FALSE;
          break;
        }
      release_locked (connection, e, count, dropped);
    }
  g_mutex_unlock (&connection->refs_lock);
  return ok;
}

/**
 * do_connection_get_n_exports:
 * @connection: a connection.
 *
 * How many of this process's objects the peer holds references to, the
 * root object aside; for a vending connection, the sum over its clients.
 * For tests and diagnostics.
 *
 * Thread rules: any thread.
 *
 * Returns: the number of exported objects.
 */
guint
do_connection_get_n_exports (DoConnection *connection)
{
  guint n = 0;

  g_return_val_if_fail (connection != NULL, 0);

  if (connection->is_vending)
    {
      g_mutex_lock (&connection->lock);
      for (guint i = 0; connection->clients && i < connection->clients->len; i++)
        n += do_connection_get_n_exports (connection->clients->pdata[i]);
      g_mutex_unlock (&connection->lock);
      return n;
    }
  g_mutex_lock (&connection->refs_lock);
  n = g_hash_table_size (connection->exports);
  g_mutex_unlock (&connection->refs_lock);
  return n;
}

/**
 * do_connection_get_n_proxies:
 * @connection: a peer connection.
 *
 * How many proxies for the peer's objects live in this process.
 *
 * Thread rules: any thread.
 *
 * Returns: the number of live proxies made by @connection.
 */
guint
do_connection_get_n_proxies (DoConnection *connection)
{
  guint n;

  g_return_val_if_fail (connection != NULL, 0);
  g_mutex_lock (&connection->refs_lock);
  n = g_hash_table_size (connection->imports);
  g_mutex_unlock (&connection->refs_lock);
  return n;
}

/* ---------------------------------------------------------------- */
/* Rewriting `o` values */

typedef GVariant *(*PathMapFunc) (DoConnection *connection, const gchar *path,
                                  GPtrArray *held, GError **error);

static gboolean
type_may_hold_refs (const GVariantType *type)
{
  const gchar *s = g_variant_type_peek_string (type);
  gsize n = g_variant_type_get_string_length (type);

  return memchr (s, 'o', n) != NULL || memchr (s, 'v', n) != NULL;
}

/* A copy of @value with every `o` value mapped by @func (transfer full). */
static GVariant *
map_paths (DoConnection *connection, GVariant *value, PathMapFunc func,
           GPtrArray *held, GError **error)
{
  const GVariantType *type = g_variant_get_type (value);
  g_autofree GVariant **children = NULL;
  GVariant *result = NULL;
  gsize n;

  if (!type_may_hold_refs (type))
    return g_variant_ref (value);
  if (g_variant_type_equal (type, G_VARIANT_TYPE_OBJECT_PATH))
    {
      result = func (connection, g_variant_get_string (value, NULL), held, error);
      return result ? g_variant_ref_sink (result) : NULL;
    }

  n = g_variant_n_children (value);
  if (n == 0)
    return g_variant_ref (value);
  children = g_new0 (GVariant *, n);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

      if (g_variant_type_is_variant (type))
        {
          /* A `v` child is the boxed value itself. */
          g_autoptr(GVariant) mapped = map_paths (connection, child, func, held, error);
          if (!mapped)
            goto out;
          result = g_variant_ref_sink (g_variant_new_variant (mapped));
          goto out;
        }
      if (!(children[i] = map_paths (connection, child, func, held, error)))
        goto out;
    }
  if (g_variant_type_is_array (type))
    result = g_variant_new_array (g_variant_type_element (type), children, n);
  else if (g_variant_type_is_maybe (type))
    result = g_variant_new_maybe (NULL, children[0]);
  else if (g_variant_type_is_dict_entry (type))
    result = g_variant_new_dict_entry (children[0], children[1]);
  else
    result = g_variant_new_tuple (children, n);
  g_variant_ref_sink (result);

out:
  for (gsize i = 0; i < n; i++)
    if (children[i])
      g_variant_unref (children[i]);
  return result;
}

static gboolean
parse_ref (const gchar *path, const gchar *prefix, guint64 *id)
{
  const gchar *digits;
  gchar *end;

  if (!g_str_has_prefix (path, prefix))
    return FALSE;
  digits = path + strlen (prefix);
  if (!g_ascii_isdigit (digits[0]) || (digits[0] == '0' && digits[1]))
    return FALSE;
  *id = g_ascii_strtoull (digits, &end, 10);
  return *end == '\0' && *id != 0 && *id != G_MAXUINT64;
}

/* Outgoing: one of our paths -> a wire reference, exporting the object. */
static GVariant *
export_path (DoConnection *connection, const gchar *path, GPtrArray *held, GError **error)
{
  g_autoptr(DoObject) object = NULL;
  DoObject *root;
  Export *e;
  guint64 id;

  if (strcmp (path, "/") == 0)
    return g_variant_new_object_path ("/");
  object = do_object_lookup_path (path);
  if (!object)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "the object path %s names no live object (pass objects with do_object_get_path())",
                   path);
      return NULL;
    }
  if (object->connection == connection)
    {
      g_autofree gchar *ref = g_strdup_printf (REF_RECEIVER "%" G_GUINT64_FORMAT, object->object_id);
      return g_variant_new_object_path (ref);
    }

  g_mutex_lock (&connection->lock);
  root = connection->root;
  g_mutex_unlock (&connection->lock);
  if (object == root)
    id = DO_ROOT_OBJECT_ID;
  else
    {
      /* A local object, or a proxy from another connection: the peer's
       * calls then go through us to its owner, as DO forwards them. */
      g_mutex_lock (&connection->refs_lock);
      e = g_hash_table_lookup (connection->exported, object);
      if (!e)
        {
          e = g_new0 (Export, 1);
          e->id = connection->next_export_id++;
          e->object = do_object_ref (object);
          g_hash_table_insert (connection->exports, &e->id, e);
          g_hash_table_insert (connection->exported, e->object, e);
        }
      e->sent++;
      id = e->id;
      g_mutex_unlock (&connection->refs_lock);
      g_ptr_array_add (held, g_steal_pointer (&object));  /* counted: see unexport */
    }
  {
    g_autofree gchar *ref = g_strdup_printf (REF_SENDER "%" G_GUINT64_FORMAT, id);
    return g_variant_new_object_path (ref);
  }
}

/* Incoming: a wire reference -> the path of a proxy, or of our own object,
 * held by @held as long as the rewritten value lives. */
static GVariant *
import_path (DoConnection *connection, const gchar *path, GPtrArray *held, GError **error)
{
  DoObject *object = NULL;
  guint64 id;

  if (strcmp (path, "/") == 0)
    return g_variant_new_object_path ("/");
  if (parse_ref (path, REF_SENDER, &id))
    {
      g_mutex_lock (&connection->refs_lock);
      object = get_proxy_locked (connection, id);
      if (id != DO_ROOT_OBJECT_ID)
        object->received++;
      g_mutex_unlock (&connection->refs_lock);
    }
  else if (parse_ref (path, REF_RECEIVER, &id))
    {
      /* Called with connection->lock held (see route_locked()). */
      if (id == DO_ROOT_OBJECT_ID)
        object = connection->root ? do_object_ref (connection->root) : NULL;
      else
        object = lookup_export_locked (connection, id);
      if (!object)
        {
          g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                       "a reference to object %" G_GUINT64_FORMAT ", which is not exported", id);
          return NULL;
        }
    }
  else
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "the object path %s is not an object reference", path);
      return NULL;
    }
  g_ptr_array_add (held, object);
  return g_variant_new_object_path (do_object_get_path (object));
}

typedef struct {
  GBytes *bytes;
  GPtrArray *held;
} Holder;

static void
holder_free (gpointer data)
{
  Holder *holder = data;

  g_bytes_unref (holder->bytes);
  g_ptr_array_unref (holder->held);
  g_free (holder);
}

/* Takes back one sent reference to each of the @objects (exports of a
 * message that did not go out). */
static void
unexport_objects (DoConnection *connection, GPtrArray *objects)
{
  g_autoptr(GPtrArray) dropped = g_ptr_array_new_with_free_func (export_free);

  g_mutex_lock (&connection->refs_lock);
  for (guint i = 0; i < objects->len; i++)
    {
      Export *e = g_hash_table_lookup (connection->exported, objects->pdata[i]);

      if (e)  /* else dropped with the connection meanwhile */
        release_locked (connection, e, 1, dropped);
    }
  g_mutex_unlock (&connection->refs_lock);
}

static gboolean
rewrite_body (DoConnection *connection, DoMessage *msg, PathMapFunc func, GError **error)
{
  g_autoptr(GPtrArray) held = NULL;
  g_autoptr(GVariant) mapped = NULL;
  Holder *holder;
  GBytes *bytes;

  if (!type_may_hold_refs (g_variant_get_type (msg->body)))
    return TRUE;
  held = g_ptr_array_new_with_free_func ((GDestroyNotify) do_object_unref);
  mapped = map_paths (connection, msg->body, func, held, error);
  if (!mapped)
    {
      /* A bad path after good ones: the good ones were counted. */
      if (func == export_path)
        unexport_objects (connection, held);
      return FALSE;
    }

  /* The body keeps the objects it names alive: its bytes' free function
   * drops them, so any value taken out of it as a GVariant does too. */
  holder = g_new0 (Holder, 1);
  holder->bytes = g_variant_get_data_as_bytes (mapped);
  holder->held = g_steal_pointer (&held);
  bytes = g_bytes_new_with_free_func (g_bytes_get_data (holder->bytes, NULL),
                                      g_bytes_get_size (holder->bytes),
                                      holder_free, holder);
  g_variant_unref (msg->body);
  msg->body = g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (mapped), bytes, TRUE));
  g_bytes_unref (bytes);
  return TRUE;
}

/* Rewrites the `o` values of an outgoing message into wire references,
 * exporting what they name.  Errors: DO_ERROR_INVALID_ARGUMENT. */
gboolean
_do_connection_export_refs (DoConnection *connection, DoMessage *msg, GError **error)
{
  return rewrite_body (connection, msg, export_path, error);
}

/* Takes back the references an outgoing message counted, when it is not
 * sent after all. */
static GVariant *
unexport_path (DoConnection *connection, const gchar *path, GPtrArray *held, GError **error)
{
  guint64 id;

  if (parse_ref (path, REF_SENDER, &id) && id != DO_ROOT_OBJECT_ID)
    {
      g_autoptr(DoObject) object = lookup_export_locked (connection, id);

      if (object)
        g_ptr_array_add (held, g_steal_pointer (&object));
    }
  return g_variant_new_object_path (path);
}

void
_do_connection_unexport_refs (DoConnection *connection, DoMessage *msg)
{
  g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func ((GDestroyNotify) do_object_unref);
  g_autoptr(GVariant) mapped = map_paths (connection, msg->body, unexport_path, objects, NULL);

  unexport_objects (connection, objects);
}

/* Rewrites the wire references of an incoming message into local paths;
 * the body then holds the objects.  Errors: DO_ERROR_PROTOCOL. */
gboolean
_do_connection_import_refs (DoConnection *connection, DoMessage *msg, GError **error)
{
  return rewrite_body (connection, msg, import_path, error);
}
