/* Porter — typed interfaces: proxies, the same vtable over a remote object.
 *
 * A typed proxy is [header][vtable]: the vtable is a copy of the
 * interface's closure pointers (libffi closures built once per interface
 * and shared by every proxy), and the pointer handed out points at it, so
 * the `self` a closure receives leads back to the header and its DoObject.
 * A closure packs its C arguments into a GVariant tuple, calls the remote
 * method with the dynamic API, checks the reply's type and stores the
 * results through the caller's pointers.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-typed-private.h"
#include "do-error.h"

#include <string.h>

#define TYPED_PROXY_MAGIC 0x54797065u  /* "Type" */

typedef struct {
  guint32 magic;
  DoObject *object;      /* not a reference: @object owns this proxy */
  DoInterface *iface;    /* a reference: it owns the closures */
  gpointer vtable[];     /* iface->n_methods closure entry points */
} TypedProxy;

/* Serializes creating a proxy and caching it on its object. */
static GMutex typed_proxy_lock;

static TypedProxy *
typed_proxy_from_self (gpointer self)
{
  return (TypedProxy *) ((guint8 *) self - G_STRUCT_OFFSET (TypedProxy, vtable));
}

static void
typed_proxy_free (gpointer data)
{
  TypedProxy *proxy = data;

  do_interface_unref (proxy->iface);
  proxy->magic = 0;
  g_free (proxy);
}

static TypedProxy *
typed_proxy_new (DoObject *object, DoInterface *iface)
{
  TypedProxy *proxy = g_malloc0 (sizeof (TypedProxy) + MAX (iface->n_methods, 1) * sizeof (gpointer));

  proxy->magic = TYPED_PROXY_MAGIC;
  proxy->object = object;
  proxy->iface = do_interface_ref (iface);
  memcpy (proxy->vtable, iface->closures, iface->n_methods * sizeof (gpointer));
  return proxy;
}

static GVariant *
pack_call (DoTypedMethod *m, void **args, GUnixFDList **fd_list, GError **error)
{
  GVariant *values[DO_TYPED_MAX_ARGS];

  for (guint i = 0; i < m->n_in; i++)
    {
      DoTypedSlot slot;

      _do_typed_slot_load (&m->in[i], args[1 + i], &slot);
      if (m->in[i].code == 'h' && !*fd_list)
        *fd_list = g_unix_fd_list_new ();
      values[i] = _do_typed_slot_to_variant (&m->in[i], &slot, *fd_list, error);
      if (!values[i])
        {
          g_prefix_error (error, "%s, argument %u: ", m->info->name, i);
          return _do_typed_tuple_abandon (values, i);
        }
    }
  return _do_typed_tuple_take (values, m->n_in);
}

/* Stores the reply's values through the caller's out pointers: all of them
 * or, when one is bad, none. */
static gboolean
unpack_reply (DoTypedMethod *m, GVariant *reply, GUnixFDList *fd_list,
              void **args, GError **error)
{
  DoTypedSlot outs[DO_TYPED_MAX_ARGS];

  if (!g_variant_is_of_type (reply, m->out_type))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                   "%s replied %s, expected %.*s", m->info->name,
                   g_variant_get_type_string (reply),
                   (int) g_variant_type_get_string_length (m->out_type),
                   g_variant_type_peek_string (m->out_type));
      return FALSE;
    }
  for (guint k = 0; k < m->n_out; k++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (reply, k);

      if (!_do_typed_variant_to_slot (&m->out[k], child, fd_list, &outs[k], error))
        {
          g_prefix_error (error, "%s replied a bad out argument %u: ", m->info->name, k);
          while (k-- > 0)
            _do_typed_slot_clear (&m->out[k], &outs[k]);
          return FALSE;
        }
    }
  for (guint k = 0; k < m->n_out; k++)
    {
      void *dest = *(void **) args[1 + m->n_in + k];

      if (dest)
        _do_typed_slot_store (&m->out[k], &outs[k], dest);
      else
        _do_typed_slot_clear (&m->out[k], &outs[k]);
    }
  return TRUE;
}

static gboolean
typed_proxy_call (DoTypedMethod *m, void **args)
{
  TypedProxy *proxy = typed_proxy_from_self (*(gpointer *) args[0]);
  GError **error = *(GError ***) args[1 + m->n_in + m->n_out];
  g_autoptr(GUnixFDList) fd_list = NULL;
  g_autoptr(GUnixFDList) out_fd_list = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *params;

  g_return_val_if_fail (proxy->magic == TYPED_PROXY_MAGIC, FALSE);
  g_return_val_if_fail (proxy->iface == m->iface, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  params = pack_call (m, args, &fd_list, error);
  if (!params)
    return FALSE;
  reply = do_object_call_sync (proxy->object, do_interface_get_name (m->iface),
                               m->info->name, params, fd_list,
                               m->oneway ? DO_CALL_FLAGS_ONEWAY : DO_CALL_FLAGS_NONE,
                               DO_TIMEOUT_DEFAULT, &out_fd_list, NULL, error);
  if (!reply)
    return FALSE;
  if (m->oneway)
    return TRUE;
  return unpack_reply (m, reply, out_fd_list, args, error);
}

void
_do_typed_proxy_closure (ffi_cif *cif, void *ret, void **args, void *user_data)
{
  *(ffi_arg *) ret = (ffi_arg) typed_proxy_call (user_data, args);
}

/**
 * do_object_get_typed:
 * @object: a local object or a proxy to a remote one.
 * @iface: the interface to call it through.
 * @error: return location for a #GError.
 *
 * Gives the typed vtable of @object for @iface: cast the result to the
 * interface's vtable struct and call its function pointers.
 *
 * For an object made with do_object_new_for_instance() this is the
 * instance itself, so calls are plain C calls; asking for an interface it
 * does not implement, or implements with other signatures, fails with
 * %DO_ERROR_INVALID_ARGUMENT or %DO_ERROR_INVALID_SIGNATURE.
 *
 * For a proxy it is a vtable of libffi closures that call the remote
 * object and wait for the reply (as do_object_call_sync(), with the
 * connection's timeout).  It is made once per (proxy, interface) and kept
 * on the proxy.  Whether the remote object implements @iface is found out
 * by the calls: the server refuses an unknown method or a signature
 * mismatch (%DO_ERROR_UNKNOWN_METHOD, %DO_ERROR_INVALID_SIGNATURE), and a
 * reply of the wrong type fails the call with %DO_ERROR_INVALID_SIGNATURE.
 * Once the connection died, calls fail with %DO_ERROR_CONNECTION_DIED.
 *
 * Thread rules: any thread; the proxy's methods may be called from any
 * thread, as do_object_call_sync() may.
 *
 * Returns: (transfer none) (nullable): the vtable, valid while @object
 *   lives, or %NULL with @error set.
 */
gpointer
do_object_get_typed (DoObject     *object,
                     DoInterface  *iface,
                     GError      **error)
{
  g_autofree gchar *key = NULL;
  TypedProxy *proxy;

  g_return_val_if_fail (object != NULL, NULL);
  g_return_val_if_fail (iface != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!do_object_is_proxy (object))
    return _do_typed_local_instance (object, iface, error);

  key = _do_typed_data_key ("proxy", iface);
  g_mutex_lock (&typed_proxy_lock);
  proxy = do_object_get_data (object, key);
  if (!proxy)
    {
      proxy = typed_proxy_new (object, iface);
      do_object_set_data_full (object, key, proxy, typed_proxy_free);
    }
  g_mutex_unlock (&typed_proxy_lock);
  if (proxy->iface != iface)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                   "the proxy is already used with another interface named %s",
                   iface->info->name);
      return NULL;
    }
  return proxy->vtable;
}
