/* Porter — typed interfaces: a D-Bus interface prepared for libffi.
 *
 * Built once per interface and process (interned by content): per method
 * the argument types, the ffi_cif of its C signature and the closure that
 * is the proxy's vtable entry.  Nothing here changes after construction, so
 * every thread reads it without locks.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-typed-private.h"
#include "do-error.h"
#include "do-object-private.h"

#include <string.h>

#define NO_REPLY "org.freedesktop.DBus.Method.NoReply"

/* Interned interfaces: key -> DoInterface (not a reference).  An interface
 * leaves the table when its last reference goes, under @intern_lock, so a
 * lookup never revives a dying one. */
static GMutex intern_lock;
static GHashTable *intern_table;  /* protected by @intern_lock */

static ffi_type *
ffi_type_for (gchar code)
{
  switch (code)
    {
    case 'y': return &ffi_type_uint8;
    case 'b': return &ffi_type_sint;   /* gboolean is an int */
    case 'n': return &ffi_type_sint16;
    case 'q': return &ffi_type_uint16;
    case 'i': return &ffi_type_sint32;
    case 'u': return &ffi_type_uint32;
    case 'x': return &ffi_type_sint64;
    case 't': return &ffi_type_uint64;
    case 'd': return &ffi_type_double;
    case 'h': return &ffi_type_sint;
    default: return &ffi_type_pointer;  /* s g o v and containers */
    }
}

/* A D-Bus single complete type. */
static gboolean
signature_is_single (const gchar *sig)
{
  const gchar *end = NULL;

  return sig && g_variant_is_signature (sig) &&
         g_variant_type_string_scan (sig, NULL, &end) && *end == '\0';
}

static gboolean
check_args (GDBusMethodInfo *method, GDBusArgInfo **args, guint *n, GError **error)
{
  for (*n = 0; args && args[*n]; (*n)++)
    if (!signature_is_single (args[*n]->signature))
      {
        g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                     "method %s: argument %u has type \"%s\", not a single "
                     "complete D-Bus type", method->name, *n,
                     args[*n]->signature ? args[*n]->signature : "");
        return FALSE;
      }
  return TRUE;
}

/* Fills @out with one DoTypedArg per argument, pointing into @tuple. */
static DoTypedArg *
args_new (const GVariantType *tuple, guint n)
{
  DoTypedArg *out = g_new0 (DoTypedArg, MAX (n, 1));
  const GVariantType *t = g_variant_type_first (tuple);

  for (guint i = 0; i < n; i++, t = g_variant_type_next (t))
    {
      out[i].type = t;
      out[i].code = g_variant_type_peek_string (t)[0];
    }
  return out;
}

static GVariantType *
tuple_type (GDBusArgInfo **args)
{
  GString *s = g_string_new ("(");

  for (guint i = 0; args && args[i]; i++)
    g_string_append (s, args[i]->signature);
  g_string_append_c (s, ')');
  return (GVariantType *) g_string_free (s, FALSE);
}

static gboolean
method_init (DoInterface *iface, DoTypedMethod *m, guint index,
             GDBusMethodInfo *info, GError **error)
{
  guint n_args;

  m->iface = iface;
  m->info = info;
  m->index = index;
  if (!check_args (info, info->in_args, &m->n_in, error) ||
      !check_args (info, info->out_args, &m->n_out, error))
    return FALSE;
  m->oneway = g_strcmp0 (g_dbus_annotation_info_lookup (info->annotations, NO_REPLY),
                         "true") == 0;
  if (m->oneway && m->n_out > 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "method %s is oneway (" NO_REPLY ") but has out arguments",
                   info->name);
      return FALSE;
    }
  n_args = 1 + m->n_in + m->n_out + 1;
  if (n_args > DO_TYPED_MAX_ARGS)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "method %s has %u arguments, more than %d", info->name,
                   m->n_in + m->n_out, DO_TYPED_MAX_ARGS - 2);
      return FALSE;
    }

  m->in_type = tuple_type (info->in_args);
  m->out_type = tuple_type (info->out_args);
  m->in = args_new (m->in_type, m->n_in);
  m->out = args_new (m->out_type, m->n_out);

  m->ffi_args = g_new (ffi_type *, n_args);
  m->ffi_args[0] = &ffi_type_pointer;                  /* self */
  for (guint i = 0; i < m->n_in; i++)
    {
      m->ffi_args[1 + i] = ffi_type_for (m->in[i].code);
      m->fds_in |= m->in[i].code == 'h';
    }
  for (guint i = 0; i < m->n_out; i++)
    m->ffi_args[1 + m->n_in + i] = &ffi_type_pointer;  /* out pointers */
  m->ffi_args[n_args - 1] = &ffi_type_pointer;         /* GError ** */
  if (ffi_prep_cif (&m->cif, FFI_DEFAULT_ABI, n_args, &ffi_type_sint, m->ffi_args) != FFI_OK)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "libffi cannot describe method %s", info->name);
      return FALSE;
    }

  m->closure = ffi_closure_alloc (sizeof (ffi_closure), &m->code);
  if (!m->closure ||
      ffi_prep_closure_loc (m->closure, &m->cif, _do_typed_proxy_closure, m, m->code) != FFI_OK)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "libffi cannot make a closure for method %s", info->name);
      return FALSE;
    }
  return TRUE;
}

static void
method_clear (DoTypedMethod *m)
{
  if (m->closure)
    ffi_closure_free (m->closure);
  g_free (m->ffi_args);
  g_free (m->in);
  g_free (m->out);
  if (m->in_type)
    g_variant_type_free (m->in_type);
  if (m->out_type)
    g_variant_type_free (m->out_type);
}

static void
interface_free (DoInterface *iface)
{
  for (guint i = 0; i < iface->n_methods; i++)
    method_clear (&iface->methods[i]);
  g_free (iface->methods);
  g_free (iface->closures);
  g_clear_pointer (&iface->by_name, g_hash_table_unref);
  g_dbus_interface_info_unref (iface->info);
  g_free (iface->key);
  g_free (iface);
}

/* What makes two interfaces the same: name, method names in order, their
 * signatures and oneway flags. */
static gchar *
interface_key (GDBusInterfaceInfo *info)
{
  GString *s = g_string_new (info->name);

  for (guint i = 0; info->methods && info->methods[i]; i++)
    {
      GDBusMethodInfo *m = info->methods[i];

      g_string_append_printf (s, "\n%s", m->name);
      for (guint j = 0; m->in_args && m->in_args[j]; j++)
        g_string_append_printf (s, " %s", m->in_args[j]->signature);
      g_string_append (s, " ->");
      for (guint j = 0; m->out_args && m->out_args[j]; j++)
        g_string_append_printf (s, " %s", m->out_args[j]->signature);
      if (g_strcmp0 (g_dbus_annotation_info_lookup (m->annotations, NO_REPLY), "true") == 0)
        g_string_append (s, " oneway");
    }
  return g_string_free (s, FALSE);
}

static DoInterface *
interface_build (GDBusInterfaceInfo *info, gchar *key, GError **error)
{
  DoInterface *iface = g_new0 (DoInterface, 1);
  guint n = 0;

  iface->ref_count = 1;
  iface->key = key;
  iface->info = g_dbus_interface_info_ref (info);
  while (info->methods && info->methods[n])
    n++;
  iface->n_methods = n;
  iface->methods = g_new0 (DoTypedMethod, MAX (n, 1));
  iface->closures = g_new0 (gpointer, MAX (n, 1));
  iface->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      DoTypedMethod *m = &iface->methods[i];

      if (!method_init (iface, m, i, info->methods[i], error))
        {
          interface_free (iface);
          return NULL;
        }
      if (g_hash_table_contains (iface->by_name, m->info->name))
        {
          g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                       "interface %s declares method %s twice", info->name, m->info->name);
          interface_free (iface);
          return NULL;
        }
      g_hash_table_insert (iface->by_name, m->info->name, m);
      iface->closures[i] = m->code;
    }
  return iface;
}

/**
 * do_interface_new:
 * @info: a D-Bus interface.
 * @error: return location for a #GError.
 *
 * Prepares @info for typed calls: checks every argument is a single
 * complete D-Bus type and that oneway methods (annotation
 * `org.freedesktop.DBus.Method.NoReply` = `true`) have no out arguments,
 * then builds each method's libffi call interface and proxy closure.  An
 * interface equal to one already prepared in this process (same name,
 * methods, signatures and oneway flags) is returned again, with a new
 * reference, instead of being built twice.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full) (nullable): the interface, or %NULL with @error
 *   set (%DO_ERROR_INVALID_ARGUMENT, %DO_ERROR_LIMITS_EXCEEDED).
 */
DoInterface *
do_interface_new (GDBusInterfaceInfo  *info,
                  GError             **error)
{
  g_autofree gchar *key = NULL;
  DoInterface *iface;

  g_return_val_if_fail (info != NULL, NULL);
  g_return_val_if_fail (info->name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  key = interface_key (info);
  g_mutex_lock (&intern_lock);
  if (!intern_table)
    intern_table = g_hash_table_new (g_str_hash, g_str_equal);
  iface = g_hash_table_lookup (intern_table, key);
  if (iface)
    g_atomic_int_inc (&iface->ref_count);
  else
    {
      iface = interface_build (info, g_steal_pointer (&key), error);
      if (iface)
        g_hash_table_insert (intern_table, iface->key, iface);
    }
  g_mutex_unlock (&intern_lock);
  return iface;
}

/**
 * do_interface_new_for_xml:
 * @xml: D-Bus introspection XML.
 * @interface_name: (nullable): the interface to take; %NULL for the first.
 * @error: return location for a #GError.
 *
 * Parses @xml and prepares one of its interfaces, as do_interface_new().
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full) (nullable): the interface, or %NULL with @error
 *   set (a #GMarkupError for malformed XML, %DO_ERROR_INVALID_ARGUMENT).
 */
DoInterface *
do_interface_new_for_xml (const gchar  *xml,
                          const gchar  *interface_name,
                          GError      **error)
{
  GDBusInterfaceInfo *info;
  DoInterface *iface;

  g_return_val_if_fail (xml != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  info = _do_interface_info_new_for_xml (xml, interface_name, error);
  if (!info)
    return NULL;
  iface = do_interface_new (info, error);
  g_dbus_interface_info_unref (info);
  return iface;
}

/**
 * do_interface_ref:
 * @iface: an interface.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): @iface.
 */
DoInterface *
do_interface_ref (DoInterface *iface)
{
  g_return_val_if_fail (iface != NULL, NULL);
  g_atomic_int_inc (&iface->ref_count);
  return iface;
}

/**
 * do_interface_unref:
 * @iface: (nullable): an interface.
 *
 * Drops a reference.  The last one frees the closures: no proxy of the
 * interface may be left (each typed proxy holds a reference).
 *
 * Thread rules: any thread.
 */
void
do_interface_unref (DoInterface *iface)
{
  if (iface == NULL)
    return;
  g_mutex_lock (&intern_lock);
  if (!g_atomic_int_dec_and_test (&iface->ref_count))
    {
      g_mutex_unlock (&intern_lock);
      return;
    }
  g_hash_table_remove (intern_table, iface->key);
  if (g_hash_table_size (intern_table) == 0)
    g_clear_pointer (&intern_table, g_hash_table_unref);
  g_mutex_unlock (&intern_lock);
  interface_free (iface);
}

/**
 * do_interface_get_info:
 * @iface: an interface.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the D-Bus description of @iface.
 */
GDBusInterfaceInfo *
do_interface_get_info (DoInterface *iface)
{
  g_return_val_if_fail (iface != NULL, NULL);
  return iface->info;
}

/**
 * do_interface_get_name:
 * @iface: an interface.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the interface's D-Bus name.
 */
const gchar *
do_interface_get_name (DoInterface *iface)
{
  g_return_val_if_fail (iface != NULL, NULL);
  return iface->info->name;
}

/**
 * do_interface_get_n_methods:
 * @iface: an interface.
 *
 * Thread rules: any thread.
 *
 * Returns: the number of methods, which is the number of function pointers
 *   in the interface's vtable struct.
 */
guint
do_interface_get_n_methods (DoInterface *iface)
{
  g_return_val_if_fail (iface != NULL, 0);
  return iface->n_methods;
}

DoTypedMethod *
_do_interface_lookup_method (DoInterface *iface, const gchar *name)
{
  return g_hash_table_lookup (iface->by_name, name);
}

gchar *
_do_typed_data_key (const gchar *what, DoInterface *iface)
{
  return g_strdup_printf ("do-typed-%s:%s", what, iface->info->name);
}
