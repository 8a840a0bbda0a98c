/* Porter — typed interfaces: skeletons, which vend a C instance.
 *
 * A skeleton is a libdo DoObject whose handler unpacks the call's GVariant
 * tuple into C values and calls the instance's vtable entry with ffi_call,
 * through the call interface its DoInterface prepared once.  The results
 * go back as the reply tuple, fds in the reply's fd list.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-typed-private.h"
#include "do-error.h"

/* One interface an object implements, and the instance implementing it. */
typedef struct {
  DoInterface *iface;
  gpointer instance;
  GDestroyNotify destroy;
} Binding;

/* The handler's user data.  One binding for now: when DoObject carries
 * several interfaces, this becomes an array searched by interface name in
 * skeleton_binding(). */
typedef struct {
  DoObject *object;   /* not a reference: the object owns the skeleton */
  Binding binding;
} Skeleton;

static const Binding *
skeleton_binding (Skeleton *skeleton, const gchar *interface)
{
  if (interface && interface[0] &&
      g_strcmp0 (interface, skeleton->binding.iface->info->name) != 0)
    return NULL;
  return &skeleton->binding;
}

static void
skeleton_free (gpointer data)
{
  Skeleton *skeleton = data;

  if (skeleton->binding.destroy)
    skeleton->binding.destroy (skeleton->binding.instance);
  do_interface_unref (skeleton->binding.iface);
  g_free (skeleton);
}

/* Packs the implementation's out values (owned by @outs) into the reply. */
static GVariant *
pack_reply (DoTypedMethod *m, DoTypedSlot *outs, GUnixFDList **fd_list, GError **error)
{
  GVariant *values[DO_TYPED_MAX_ARGS];

  for (guint k = 0; k < m->n_out; k++)
    {
      if (m->out[k].code == 'h' && !*fd_list)
        *fd_list = g_unix_fd_list_new ();
      values[k] = _do_typed_slot_to_variant (&m->out[k], &outs[k], *fd_list, error);
      if (!values[k])
        {
          g_prefix_error (error, "%s returned a bad out argument %u: ", m->info->name, k);
          return _do_typed_tuple_abandon (values, k);
        }
    }
  return _do_typed_tuple_take (values, m->n_out);
}

static GVariant *
skeleton_dispatch (DoObject      *object,
                   DoInvocation  *invocation,
                   const gchar   *method,
                   GVariant      *parameters,
                   gpointer       user_data,
                   GError       **error)
{
  Skeleton *skeleton = user_data;
  const Binding *binding;
  DoTypedMethod *m;
  DoTypedFunc fn;
  DoTypedSlot ins[DO_TYPED_MAX_ARGS], outs[DO_TYPED_MAX_ARGS];
  gpointer out_ptrs[DO_TYPED_MAX_ARGS];
  void *avalues[DO_TYPED_MAX_ARGS];
  GUnixFDList *in_fds = NULL;
  g_autoptr(GUnixFDList) out_fds = NULL;
  GError *impl_error = NULL;
  GError **impl_error_p = &impl_error;
  gpointer self;
  GVariant *reply = NULL;
  ffi_arg rc = 0;
  guint n_in_ready = 0;

  binding = skeleton_binding (skeleton, invocation ? do_invocation_get_interface_name (invocation) : NULL);
  m = binding ? _do_interface_lookup_method (binding->iface, method) : NULL;
  fn = m ? ((DoTypedFunc *) binding->instance)[m->index] : NULL;
  if (!fn)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD,
                   "method %s is not implemented", method);
      return NULL;
    }

  /* Asked for only when needed: the invocation makes an empty list. */
  if (m->fds_in && invocation)
    in_fds = do_invocation_get_fd_list (invocation);
  self = binding->instance;
  avalues[0] = &self;
  for (guint i = 0; i < m->n_in; i++, n_in_ready++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (parameters, i);

      if (!_do_typed_variant_to_slot (&m->in[i], child, in_fds, &ins[i], error))
        {
          g_prefix_error (error, "%s, argument %u: ", method, i);
          goto out;
        }
      avalues[1 + i] = &ins[i];
    }
  for (guint k = 0; k < m->n_out; k++)
    {
      _do_typed_slot_init (&m->out[k], &outs[k]);
      out_ptrs[k] = &outs[k];
      avalues[1 + m->n_in + k] = &out_ptrs[k];
    }
  avalues[1 + m->n_in + m->n_out] = &impl_error_p;

  ffi_call (&m->cif, fn, &rc, avalues);

  /* Out values are the skeleton's now; a floating GVariant is sunk so that
   * one unref frees any of them. */
  for (guint k = 0; k < m->n_out; k++)
    if (outs[k].p && g_variant_type_is_container (m->out[k].type))
      g_variant_take_ref (outs[k].p);

  if ((int) rc == FALSE)
    {
      if (impl_error)
        g_propagate_error (error, g_steal_pointer (&impl_error));
      else
        g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                     "%s failed without saying why", method);
    }
  else
    {
      reply = pack_reply (m, outs, &out_fds, error);
      if (reply && invocation)
        {
          /* Sent now, while the out values (objects, fds) are alive. */
          do_invocation_return_value_with_fds (invocation, reply, out_fds);
          reply = NULL;
        }
    }
  g_clear_error (&impl_error);
  for (guint k = 0; k < m->n_out; k++)
    _do_typed_slot_clear (&m->out[k], &outs[k]);

out:
  for (guint i = 0; i < n_in_ready; i++)
    _do_typed_slot_clear (&m->in[i], &ins[i]);
  return reply;
}

/**
 * do_object_new_for_instance:
 * @iface: the interface @instance implements.
 * @instance: a struct whose first member is the interface's vtable struct
 *   (one function pointer per method, in the XML's order), filled in.
 * @destroy: (nullable): called with @instance when the object is finalized.
 *
 * Vends a C implementation of a typed interface: the returned object's
 * calls are unpacked into C values and dispatched to @instance's function
 * pointers with the C signature <proxies/do-typed.h> describes.
 * A %NULL entry answers %DO_ERROR_UNKNOWN_METHOD.  A method that returns
 * %FALSE sends its #GError back with its domain, code and message.
 * do_object_get_typed() on the object returns @instance itself.
 *
 * Thread rules: any thread.  The methods run where the object's calls are
 * dispatched (the vending connection's GMainContext); @destroy runs on the
 * thread dropping the last reference.
 *
 * Returns: (transfer full): the object.
 */
DoObject *
do_object_new_for_instance (DoInterface    *iface,
                            gpointer        instance,
                            GDestroyNotify  destroy)
{
  Skeleton *skeleton;
  g_autofree gchar *key = NULL;

  g_return_val_if_fail (iface != NULL, NULL);
  g_return_val_if_fail (instance != NULL, NULL);

  skeleton = g_new0 (Skeleton, 1);
  skeleton->binding.iface = do_interface_ref (iface);
  skeleton->binding.instance = instance;
  skeleton->binding.destroy = destroy;
  skeleton->object = do_object_new (iface->info, skeleton_dispatch, skeleton, skeleton_free);
  key = _do_typed_data_key ("instance", iface);
  do_object_set_data_full (skeleton->object, key, &skeleton->binding, NULL);
  return skeleton->object;
}

/* The instance behind a local object, if it implements @iface. */
gpointer
_do_typed_local_instance (DoObject *object, DoInterface *iface, GError **error)
{
  g_autofree gchar *key = _do_typed_data_key ("instance", iface);
  const Binding *binding = do_object_get_data (object, key);

  if (!binding)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "the object has no typed implementation of %s", iface->info->name);
      return NULL;
    }
  if (binding->iface != iface)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                   "the object implements %s with other methods or signatures",
                   iface->info->name);
      return NULL;
    }
  return binding->instance;
}
