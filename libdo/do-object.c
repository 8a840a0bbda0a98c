/* Porter — libdo: local objects.  An object is an interface (from D-Bus
 * introspection XML) plus a handler; the connection dispatches calls to it
 * after checking the method exists and the arguments have its in-signature.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-object-private.h"
#include "do-error.h"

#include <string.h>

#define INTROSPECTABLE "org.freedesktop.DBus.Introspectable"

typedef struct {
  GDBusMethodInfo *info;
  GVariantType *in_type;
  GVariantType *out_type;
} Method;

struct _DoObject {
  gint ref_count;
  GDBusInterfaceInfo *info;
  GHashTable *methods;   /* name -> Method; immutable after construction */
  DoMethodFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
};

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

/**
 * do_object_new:
 * @info: the interface the object implements.
 * @func: called for each method call.
 * @user_data: passed to @func.
 * @destroy: (nullable): frees @user_data when the object is finalized.
 *
 * Makes an object to vend with do_connection_set_root_object().  Calls are
 * checked against @info before @func sees them: unknown methods and
 * arguments of the wrong type are answered with %DO_ERROR_UNKNOWN_METHOD and
 * %DO_ERROR_INVALID_SIGNATURE.  Every object also answers
 * `org.freedesktop.DBus.Introspectable.Introspect`.
 *
 * Thread rules: any thread.  @func runs on the vending connection's
 * GMainContext.
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

  object = g_new0 (DoObject, 1);
  object->ref_count = 1;
  object->info = g_dbus_interface_info_ref (info);
  object->func = func;
  object->user_data = user_data;
  object->destroy = destroy;
  object->methods = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, method_free);
  for (guint i = 0; info->methods && info->methods[i]; i++)
    {
      Method *m = g_new0 (Method, 1);

      m->info = info->methods[i];
      m->in_type = args_type (m->info->in_args);
      m->out_type = args_type (m->info->out_args);
      g_hash_table_replace (object->methods, m->info->name, m);
    }
  return object;
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
  g_autoptr(GDBusNodeInfo) node = NULL;
  GDBusInterfaceInfo *info;

  g_return_val_if_fail (xml != NULL, NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  node = g_dbus_node_info_new_for_xml (xml, error);
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
  return do_object_new (info, func, user_data, destroy);
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

/**
 * do_object_unref:
 * @object: (nullable): an object.
 *
 * Drops a reference; the last one runs the destroy notify given at
 * construction, on the calling thread.
 *
 * Thread rules: any thread.
 */
void
do_object_unref (DoObject *object)
{
  if (object == NULL || !g_atomic_int_dec_and_test (&object->ref_count))
    return;
  if (object->destroy)
    object->destroy (object->user_data);
  g_hash_table_unref (object->methods);
  g_dbus_interface_info_unref (object->info);
  g_free (object);
}

/**
 * do_object_get_interface_info:
 * @object: an object.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the object's interface.
 */
GDBusInterfaceInfo *
do_object_get_interface_info (DoObject *object)
{
  g_return_val_if_fail (object != NULL, NULL);
  return object->info;
}

/**
 * do_object_introspect:
 * @object: an object.
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

  s = g_string_new ("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
                    "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n");
  g_dbus_interface_info_generate_xml (object->info, 2, s);
  g_string_append (s,
                   "  <interface name=\"" INTROSPECTABLE "\">\n"
                   "    <method name=\"Introspect\">\n"
                   "      <arg type=\"s\" name=\"xml_data\" direction=\"out\"/>\n"
                   "    </method>\n"
                   "  </interface>\n"
                   "</node>\n");
  return g_string_free (s, FALSE);
}

GVariant *
_do_object_dispatch (DoObject      *object,
                     DoInvocation  *invocation,
                     const gchar   *interface,
                     const gchar   *method,
                     GVariant      *parameters,
                     GError       **error)
{
  gboolean ours = interface[0] == '\0' || strcmp (interface, object->info->name) == 0;
  Method *m = ours ? g_hash_table_lookup (object->methods, method) : NULL;
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
                   interface, interface[0] ? "." : "", method, object->info->name);
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

  reply = object->func (object, invocation, method, parameters, object->user_data, error);
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

gboolean
_do_object_method_is_oneway (DoObject *object, const gchar *method)
{
  Method *m = g_hash_table_lookup (object->methods, method);

  return m && g_strcmp0 (g_dbus_annotation_info_lookup (m->info->annotations,
                                                        "org.freedesktop.DBus.Method.NoReply"),
                         "true") == 0;
}
