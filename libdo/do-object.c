/* Porter — libdo: objects (DESIGN.md §5).
 *
 * A DoObject is either local (interfaces from D-Bus introspection XML, each
 * with a handler; the connection dispatches calls to it after checking the
 * method exists and the arguments have its in-signature) or a proxy for an
 * object in another process (do-proxy.c).  Both have a path, which names the
 * object inside `o` values of GVariants: the connection turns it into a
 * reference on the wire and back.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-object-private.h"
#include "do-connection-private.h"
#include "do-error.h"

#include <string.h>

#define INTROSPECTABLE "org.freedesktop.DBus.Introspectable"
#define PATH_PREFIX "/org/porter/object/"

typedef struct {
  GDBusMethodInfo *info;
  GVariantType *in_type;
  GVariantType *out_type;
} Method;

typedef struct {
  GDBusInterfaceInfo *info;
  GHashTable *methods;   /* name -> Method; immutable */
  DoMethodFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
} Interface;

/* Every object that was given a path, weakly: path -> DoObject. */
G_LOCK_DEFINE_STATIC (paths);
static GHashTable *paths;   /* protected by paths */
static guint64 next_path;   /* protected by paths */

static GVariantType *
args_type (GDBusArgInfo **args)
{
  GString *s = g_string_new ("(");

  for (guint i = 0; args && args[i]; i++)
    g_string_append (s, args[i]->signature);
  g_string_append_c (s, ')');
  return (GVariantType *) g_string_free (s, FALSE);
}

static void
method_free (gpointer data)
{
  Method *m = data;

  g_variant_type_free (m->in_type);
  g_variant_type_free (m->out_type);
  g_free (m);
}

static void
interface_free (gpointer data)
{
  Interface *iface = data;

  if (iface->destroy)
    iface->destroy (iface->user_data);
  g_hash_table_unref (iface->methods);
  g_dbus_interface_info_unref (iface->info);
  g_free (iface);
}

static Interface *
interface_new (GDBusInterfaceInfo *info, DoMethodFunc func,
               gpointer user_data, GDestroyNotify destroy)
{
  Interface *iface = g_new0 (Interface, 1);

  iface->info = g_dbus_interface_info_ref (info);
  iface->func = func;
  iface->user_data = user_data;
  iface->destroy = destroy;
  iface->methods = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, method_free);
  for (guint i = 0; info->methods && info->methods[i]; i++)
    {
      Method *m = g_new0 (Method, 1);

      m->info = info->methods[i];
      m->in_type = args_type (m->info->in_args);
      m->out_type = args_type (m->info->out_args);
      g_hash_table_replace (iface->methods, m->info->name, m);
    }
  return iface;
}

static DoObject *
object_alloc (void)
{
  DoObject *object = g_new0 (DoObject, 1);

  object->ref_count = 1;
  g_datalist_init (&object->data);
  return object;
}

/**
 * do_object_new:
 * @info: the interface the object implements.
 * @func: called for each method call.
 * @user_data: passed to @func.
 * @destroy: (nullable): frees @user_data when the object is finalized.
 *
 * Makes an object to vend with do_connection_set_root_object() or to pass
 * by reference (an `o` argument, see do_object_get_path()).  Calls are
 * checked against @info before @func sees them: unknown methods and
 * arguments of the wrong type are answered with %DO_ERROR_UNKNOWN_METHOD and
 * %DO_ERROR_INVALID_SIGNATURE.  Every object also answers
 * `org.freedesktop.DBus.Introspectable.Introspect`.  More interfaces can be
 * added with do_object_add_interface().
 *
 * Thread rules: any thread.  @func runs on the thread that dispatches the
 * connection the call came on (its GMainContext).
 *
 * Returns: (transfer full): the object.
 */
DoObject *
do_object_new (GDBusInterfaceInfo *info,
               DoMethodFunc        func,
               gpointer            user_data,
               GDestroyNotify      destroy)
{
  DoObject *object;

  g_return_val_if_fail (info != NULL, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  object = object_alloc ();
  object->interfaces = g_ptr_array_new_with_free_func (interface_free);
  g_ptr_array_add (object->interfaces, interface_new (info, func, user_data, destroy));
  return object;
}

/**
 * do_object_add_interface:
 * @object: a local object.
 * @info: another interface it implements.
 * @func: called for calls to @info's methods.
 * @user_data: passed to @func.
 * @destroy: (nullable): frees @user_data when the object is finalized (not
 *   called on failure).
 * @error: return location for a #GError.
 *
 * Adds an interface.  A call naming its interface goes to that interface's
 * handler; a call naming none goes to the first interface, in the order
 * added, that has the method.
 *
 * Thread rules: before the object is vended or passed to another process.
 *
 * Returns: %TRUE, or %FALSE with %DO_ERROR_INVALID_ARGUMENT if the object
 * already has an interface of that name.
 */
gboolean
do_object_add_interface (DoObject            *object,
                         GDBusInterfaceInfo  *info,
                         DoMethodFunc         func,
                         gpointer             user_data,
                         GDestroyNotify       destroy,
                         GError             **error)
{
  g_return_val_if_fail (object != NULL, FALSE);
  g_return_val_if_fail (!do_object_is_proxy (object), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);
  g_return_val_if_fail (func != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (do_object_lookup_interface (object, info->name))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "the object already implements %s", info->name);
      return FALSE;
    }
  g_ptr_array_add (object->interfaces, interface_new (info, func, user_data, destroy));
  return TRUE;
}

DoObject *
_do_object_new_proxy (DoConnection *connection, guint64 object_id)
{
  DoObject *object = object_alloc ();

  object->connection = do_connection_ref (connection);
  object->object_id = object_id;
  return object;
}

/**
 * do_object_set_flags:
 * @object: a local object.
 * @flags: how its calls are run.
 * @error: return location for a #GError.
 *
 * Says how connections run calls to @object: by default on the connection's
 * #GMainContext, in order; with %DO_OBJECT_FLAGS_WORKER_POOL on worker
 * threads, concurrently.  %DO_OBJECT_FLAGS_WORKER_POOL needs
 * %DO_OBJECT_FLAGS_THREAD_SAFE: the handlers then must be safe to run on
 * any thread, several at once.  A handler on a worker thread may make sync
 * calls; calls that arrive meanwhile are served by the context as usual.
 * Calls already queued keep the way they were started with.
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE, or %FALSE with %DO_ERROR_INVALID_ARGUMENT for a proxy or
 * an invalid combination.
 */
gboolean
do_object_set_flags (DoObject       *object,
                     DoObjectFlags   flags,
                     GError        **error)
{
  g_return_val_if_fail (object != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (do_object_is_proxy (object))
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                           "a proxy's calls run in the process that owns its object");
      return FALSE;
    }
  if (flags & ~(DO_OBJECT_FLAGS_THREAD_SAFE | DO_OBJECT_FLAGS_WORKER_POOL))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT, "unknown object flags 0x%x", flags);
      return FALSE;
    }
  if ((flags & DO_OBJECT_FLAGS_WORKER_POOL) && !(flags & DO_OBJECT_FLAGS_THREAD_SAFE))
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                           "only a thread-safe object can run its calls on worker threads");
      return FALSE;
    }
  g_atomic_int_set (&object->flags, flags);
  return TRUE;
}

/**
 * do_object_get_flags:
 * @object: an object.
 *
 * Thread rules: any thread.
 *
 * Returns: the flags do_object_set_flags() set (none for a proxy).
 */
DoObjectFlags
do_object_get_flags (DoObject *object)
{
  g_return_val_if_fail (object != NULL, DO_OBJECT_FLAGS_NONE);
  return g_atomic_int_get (&object->flags);
}

/**
 * do_object_is_proxy:
 * @object: an object.
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE if @object stands for an object in another process (a
 * #DoProxy), %FALSE if it is implemented here.
 */
gboolean
do_object_is_proxy (DoObject *object)
{
  g_return_val_if_fail (object != NULL, FALSE);
  return object->connection != NULL;
}

/* The interface @interface_name (or the first) of introspection @xml
 * (transfer full), or NULL with a GMarkup or DO_ERROR_INVALID_ARGUMENT
 * error. */
GDBusInterfaceInfo *
_do_interface_info_new_for_xml (const gchar *xml, const gchar *interface_name, GError **error)
{
  g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml (xml, error);
  GDBusInterfaceInfo *info;

  if (!node)
    return NULL;
  if (interface_name)
    info = g_dbus_node_info_lookup_interface (node, interface_name);
  else
    info = node->interfaces ? node->interfaces[0] : NULL;
  if (!info)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "the XML has no interface %s", interface_name ? interface_name : "");
      return NULL;
    }
  return g_dbus_interface_info_ref (info);
}

/**
 * do_object_new_for_xml:
 * @xml: D-Bus introspection XML holding at least one interface.
 * @interface_name: (nullable): which interface; %NULL for the first.
 * @func: called for each method call.
 * @user_data: passed to @func.
 * @destroy: (nullable): frees @user_data when the object is finalized.
 * @error: return location for a #GError.
 *
 * Like do_object_new(), parsing the interface from @xml.  On failure
 * @destroy is not called.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full) (nullable): the object, or %NULL with @error set.
 */
DoObject *
do_object_new_for_xml (const gchar    *xml,
                       const gchar    *interface_name,
                       DoMethodFunc    func,
                       gpointer        user_data,
                       GDestroyNotify  destroy,
                       GError        **error)
{
  GDBusInterfaceInfo *info;
  DoObject *object;

  g_return_val_if_fail (xml != NULL, NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  info = _do_interface_info_new_for_xml (xml, interface_name, error);
  if (!info)
    return NULL;
  object = do_object_new (info, func, user_data, destroy);
  g_dbus_interface_info_unref (info);
  return object;
}

/**
 * do_object_ref:
 * @object: an object.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): @object.
 */
DoObject *
do_object_ref (DoObject *object)
{
  g_return_val_if_fail (object != NULL, NULL);
  g_atomic_int_inc (&object->ref_count);
  return object;
}

DoObject *
_do_object_try_ref (DoObject *object)
{
  gint old;

  do
    old = g_atomic_int_get (&object->ref_count);
  while (old > 0 && !g_atomic_int_compare_and_exchange (&object->ref_count, old, old + 1));
  return old > 0 ? object : NULL;
}

/**
 * do_object_unref:
 * @object: (nullable): an object.
 *
 * Drops a reference.  The last one runs the destroy notifies given for the
 * object's interfaces and data, on the calling thread.  Dropping the last
 * reference to a proxy tells its owner (batched, see DESIGN.md §5): the
 * remote object lives while any process holds a proxy to it.
 *
 * Thread rules: any thread.
 */
void
do_object_unref (DoObject *object)
{
  if (object == NULL || !g_atomic_int_dec_and_test (&object->ref_count))
    return;

  if (object->path)
    {
      G_LOCK (paths);
      g_hash_table_remove (paths, object->path);
      G_UNLOCK (paths);
      g_free (object->path);
    }
  g_datalist_clear (&object->data);
  if (object->connection)
    {
      _do_connection_forget_proxy (object->connection, object);
      do_connection_unref (object->connection);
    }
  g_clear_pointer (&object->interfaces, g_ptr_array_unref);
  g_free (object);
}

/**
 * do_object_get_path:
 * @object: an object, local or a proxy.
 *
 * The object path that stands for @object in an `o` value: pass an object
 * by reference by putting this path in the arguments or the reply, e.g.
 * `g_variant_new ("(o)", do_object_get_path (observer))`.  The connection
 * exports a local object to the peer, which receives a proxy; a proxy sent
 * back to the process that owns its object arrives there as the original
 * object.  The path is "/" for no object, as do_object_lookup_path()
 * understands it.  It is unique in this process and valid while @object
 * lives: the object must still be alive when the message is sent, so a
 * method handler returning an object it made returns do_object_to_value(),
 * which holds the object, rather than the bare path.  A received
 * message holds the objects it names for as long as its GVariant lives;
 * take a reference with do_object_lookup_path() to keep one longer.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the path, `/org/porter/object/N`.
 */
const gchar *
do_object_get_path (DoObject *object)
{
  g_return_val_if_fail (object != NULL, NULL);

  G_LOCK (paths);
  if (!object->path)
    {
      if (!paths)
        paths = g_hash_table_new (g_str_hash, g_str_equal);
      object->path = g_strdup_printf (PATH_PREFIX "%" G_GUINT64_FORMAT, ++next_path);
      g_hash_table_insert (paths, object->path, object);
    }
  G_UNLOCK (paths);
  return object->path;
}

/**
 * do_object_to_value:
 * @object: an object, local or a proxy.
 *
 * An `o` value naming @object, as do_object_get_path() does, that holds a
 * reference to @object for as long as the value lives: the object can go
 * in a message after its other references are dropped.  A method handler
 * that makes an object for its caller returns
 * `g_variant_new ("(@o)", do_object_to_value (made))` and drops `made`.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer floating): the value.
 */
GVariant *
do_object_to_value (DoObject *object)
{
  g_autoptr(GBytes) bytes = NULL;
  const gchar *path;

  g_return_val_if_fail (object != NULL, NULL);

  /* The bytes are the object's own path: they live as long as it does. */
  path = do_object_get_path (object);
  bytes = g_bytes_new_with_free_func (path, strlen (path) + 1,
                                      (GDestroyNotify) do_object_unref, do_object_ref (object));
  return g_variant_new_from_bytes (G_VARIANT_TYPE_OBJECT_PATH, bytes, TRUE);
}

/**
 * do_object_lookup_path:
 * @path: an object path, from an `o` value or do_object_get_path().
 *
 * The object an `o` value names.  Objects received by reference stay
 * alive at least as long as the GVariant that carried them (or any value
 * taken out of it as a GVariant); take a reference to keep one longer.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full) (nullable): the object, or %NULL for "/" and for
 * a path that names no live object.
 */
DoObject *
do_object_lookup_path (const gchar *path)
{
  DoObject *object = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  G_LOCK (paths);
  if (paths)
    object = g_hash_table_lookup (paths, path);
  if (object)
    object = _do_object_try_ref (object);
  G_UNLOCK (paths);
  return object;
}

/**
 * do_object_get_data:
 * @object: an object.
 * @key: a name.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none) (nullable): what do_object_set_data_full() put
 * under @key.
 */
gpointer
do_object_get_data (DoObject    *object,
                    const gchar *key)
{
  g_return_val_if_fail (object != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return g_datalist_get_data (&object->data, key);
}

/**
 * do_object_set_data_full:
 * @object: an object.
 * @key: a name.
 * @data: (nullable): what to keep under @key; %NULL removes it.
 * @destroy: (nullable): frees @data when it is replaced or the object is
 *   finalized.
 *
 * Attaches data to the object, as g_object_set_data_full() does: bindings
 * and the typed layer keep their views of an object this way.
 *
 * Thread rules: any thread.
 */
void
do_object_set_data_full (DoObject       *object,
                         const gchar    *key,
                         gpointer        data,
                         GDestroyNotify  destroy)
{
  g_return_if_fail (object != NULL);
  g_return_if_fail (key != NULL);
  g_datalist_id_set_data_full (&object->data, g_quark_from_string (key), data, destroy);
}

/**
 * do_object_replace_data:
 * @object: an object.
 * @key: a name.
 * @oldval: (nullable): the value expected under @key.
 * @newval: (nullable): the value to put there.
 * @destroy: (nullable): frees @newval later.
 * @old_destroy: (out) (optional): the destroy notify of @oldval, which the
 *   caller now owns.
 *
 * Compare-and-exchange on the object's data, as g_object_replace_data():
 * for caches two threads may fill at once.
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE if @oldval was there and was replaced.
 */
gboolean
do_object_replace_data (DoObject        *object,
                        const gchar     *key,
                        gpointer         oldval,
                        gpointer         newval,
                        GDestroyNotify   destroy,
                        GDestroyNotify  *old_destroy)
{
  g_return_val_if_fail (object != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  return g_datalist_id_replace_data (&object->data, g_quark_from_string (key),
                                     oldval, newval, destroy, old_destroy);
}

/**
 * do_object_get_interface_info:
 * @object: an object.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none) (nullable): the object's first interface; %NULL
 * for a proxy (ask it with Introspect).
 */
GDBusInterfaceInfo *
do_object_get_interface_info (DoObject *object)
{
  g_return_val_if_fail (object != NULL, NULL);
  if (!object->interfaces)
    return NULL;
  return ((Interface *) object->interfaces->pdata[0])->info;
}

/**
 * do_object_lookup_interface:
 * @object: an object.
 * @name: an interface name.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none) (nullable): the interface of that name, if the
 * (local) object implements it.
 */
GDBusInterfaceInfo *
do_object_lookup_interface (DoObject    *object,
                            const gchar *name)
{
  g_return_val_if_fail (object != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  for (guint i = 0; object->interfaces && i < object->interfaces->len; i++)
    {
      Interface *iface = object->interfaces->pdata[i];

      if (strcmp (iface->info->name, name) == 0)
        return iface->info;
    }
  return NULL;
}

/**
 * do_object_introspect:
 * @object: a local object.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): D-Bus introspection XML for the object,
 * including the Introspectable interface every object answers.
 */
gchar *
do_object_introspect (DoObject *object)
{
  GString *s;

  g_return_val_if_fail (object != NULL, NULL);
  g_return_val_if_fail (!do_object_is_proxy (object), NULL);

  s = g_string_new ("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
                    "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n");
  for (guint i = 0; i < object->interfaces->len; i++)
    g_dbus_interface_info_generate_xml (((Interface *) object->interfaces->pdata[i])->info, 2, s);
  g_string_append (s,
                   "  <interface name=\"" INTROSPECTABLE "\">\n"
                   "    <method name=\"Introspect\">\n"
                   "      <arg type=\"s\" name=\"xml_data\" direction=\"out\"/>\n"
                   "    </method>\n"
                   "  </interface>\n"
                   "</node>\n");
  return g_string_free (s, FALSE);
}

static Method *
find_method (DoObject *object, const gchar *interface, const gchar *method,
             Interface **out_iface)
{
  for (guint i = 0; i < object->interfaces->len; i++)
    {
      Interface *iface = object->interfaces->pdata[i];
      Method *m;

      if (interface[0] != '\0' && strcmp (interface, iface->info->name) != 0)
        continue;
      if ((m = g_hash_table_lookup (iface->methods, method)))
        {
          *out_iface = iface;
          return m;
        }
    }
  return NULL;
}

GVariant *
_do_object_dispatch (DoObject      *object,
                     DoInvocation  *invocation,
                     const gchar   *interface,
                     const gchar   *method,
                     GVariant      *parameters,
                     GError       **error)
{
  Interface *iface = NULL;
  Method *m = find_method (object, interface, method, &iface);
  GVariant *reply;

  if (!m && (strcmp (interface, INTROSPECTABLE) == 0 || interface[0] == '\0') &&
      strcmp (method, "Introspect") == 0)
    {
      if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE_UNIT))
        {
          g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                       "Introspect takes no arguments, got %s",
                       g_variant_get_type_string (parameters));
          return NULL;
        }
      return g_variant_ref_sink (g_variant_new ("(@s)", g_variant_new_take_string (do_object_introspect (object))));
    }
  if (!m)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD,
                   "no method %s%s%s on this object (interface %s)",
                   interface, interface[0] ? "." : "", method,
                   do_object_get_interface_info (object)->name);
      return NULL;
    }
  if (!g_variant_is_of_type (parameters, m->in_type))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                   "method %s takes %.*s, got %s", method,
                   (int) g_variant_type_get_string_length (m->in_type),
                   g_variant_type_peek_string (m->in_type),
                   g_variant_get_type_string (parameters));
      return NULL;
    }

  reply = iface->func (object, invocation, method, parameters, iface->user_data, error);
  if (reply)
    {
      g_variant_ref_sink (reply);
      if (!g_variant_is_of_type (reply, m->out_type))
        {
          g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                       "the server's %s returned %s instead of %.*s", method,
                       g_variant_get_type_string (reply),
                       (int) g_variant_type_get_string_length (m->out_type),
                       g_variant_type_peek_string (m->out_type));
          g_clear_pointer (&reply, g_variant_unref);
        }
    }
  return reply;
}
