/* Porter — libdo: local objects and method invocations.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(DO_INSIDE) && !defined(DO_COMPILATION)
#error "Only <libdo/do.h> can be included directly."
#endif

#include <gio/gunixfdlist.h>
#include <libdo/do-types.h>

G_BEGIN_DECLS

/**
 * DoMethodFunc:
 * @object: the object called.
 * @invocation: the call: its connection, caller credentials, fds.
 * @method: the method's name (borrowed).
 * @parameters: the arguments, a tuple already checked against the method's
 *   in-signature (borrowed).
 * @user_data: as given to do_object_new().
 * @error: where to put the error to send back.
 *
 * Handles one call, on the thread that dispatches @object (the vending
 * connection's GMainContext).  Return the reply tuple, which must match the
 * method's out-signature (a floating reference is sunk), or %NULL with @error
 * set to send that error back with its domain, code and message.  To reply
 * later, take a reference on @invocation, return %NULL without setting
 * @error, and finish with do_invocation_return_value() or
 * do_invocation_return_gerror().
 *
 * Returns: (transfer full) (nullable): the reply.
 */
typedef GVariant *(*DoMethodFunc) (DoObject      *object,
                                   DoInvocation  *invocation,
                                   const gchar   *method,
                                   GVariant      *parameters,
                                   gpointer       user_data,
                                   GError       **error);

DO_API DoObject *do_object_new (GDBusInterfaceInfo *info,
                                DoMethodFunc        func,
                                gpointer            user_data,
                                GDestroyNotify      destroy);
DO_API DoObject *do_object_new_for_xml (const gchar    *xml,
                                        const gchar    *interface_name,
                                        DoMethodFunc    func,
                                        gpointer        user_data,
                                        GDestroyNotify  destroy,
                                        GError        **error);
DO_API DoObject *do_object_ref (DoObject *object);
DO_API void do_object_unref (DoObject *object);
DO_API gboolean do_object_add_interface (DoObject            *object,
                                         GDBusInterfaceInfo  *info,
                                         DoMethodFunc         func,
                                         gpointer             user_data,
                                         GDestroyNotify       destroy,
                                         GError             **error);
DO_API gboolean do_object_is_proxy (DoObject *object);
DO_API gboolean do_object_set_flags (DoObject       *object,
                                     DoObjectFlags   flags,
                                     GError        **error);
DO_API DoObjectFlags do_object_get_flags (DoObject *object);
DO_API GDBusInterfaceInfo *do_object_get_interface_info (DoObject *object);
DO_API GDBusInterfaceInfo *do_object_lookup_interface (DoObject    *object,
                                                       const gchar *name);
DO_API const gchar *do_object_get_path (DoObject *object);
DO_API GVariant *do_object_to_value (DoObject *object);
DO_API DoObject *do_object_lookup_path (const gchar *path);
DO_API gpointer do_object_get_data (DoObject    *object,
                                    const gchar *key);
DO_API void do_object_set_data_full (DoObject       *object,
                                     const gchar    *key,
                                     gpointer        data,
                                     GDestroyNotify  destroy);
DO_API gboolean do_object_replace_data (DoObject        *object,
                                        const gchar     *key,
                                        gpointer         oldval,
                                        gpointer         newval,
                                        GDestroyNotify   destroy,
                                        GDestroyNotify  *old_destroy);

/* Calls, on a proxy (do-proxy.c). */
DO_API GVariant *do_object_call_sync (DoObject      *object,
                                      const gchar   *interface_name,
                                      const gchar   *method,
                                      GVariant      *parameters,
                                      GUnixFDList   *fd_list,
                                      DoCallFlags    flags,
                                      gint           timeout_ms,
                                      GUnixFDList  **out_fd_list,
                                      GCancellable  *cancellable,
                                      GError       **error);
DO_API void do_object_call (DoObject            *object,
                            const gchar         *interface_name,
                            const gchar         *method,
                            GVariant            *parameters,
                            GUnixFDList         *fd_list,
                            DoCallFlags          flags,
                            gint                 timeout_ms,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data);
DO_API GVariant *do_object_call_finish (DoObject      *object,
                                        GUnixFDList  **out_fd_list,
                                        GAsyncResult  *result,
                                        GError       **error);
DO_API gchar *do_object_introspect (DoObject *object);

DO_API DoInvocation *do_invocation_ref (DoInvocation *invocation);
DO_API void do_invocation_unref (DoInvocation *invocation);
DO_API const gchar *do_invocation_get_method_name (DoInvocation *invocation);
DO_API const gchar *do_invocation_get_interface_name (DoInvocation *invocation);
DO_API const DoCredentials *do_invocation_get_credentials (DoInvocation *invocation);
DO_API DoConnection *do_invocation_get_connection (DoInvocation *invocation);
DO_API GUnixFDList *do_invocation_get_fd_list (DoInvocation *invocation);
DO_API gboolean do_invocation_is_oneway (DoInvocation *invocation);
DO_API void do_invocation_return_value (DoInvocation *invocation,
                                        GVariant     *value);
DO_API void do_invocation_return_value_with_fds (DoInvocation *invocation,
                                                 GVariant     *value,
                                                 GUnixFDList  *fd_list);
DO_API void do_invocation_return_gerror (DoInvocation *invocation,
                                         const GError *error);
DO_API void do_invocation_return_error (DoInvocation *invocation,
                                        GQuark        domain,
                                        gint          code,
                                        const gchar  *format,
                                        ...) G_GNUC_PRINTF (4, 5);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoObject, do_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoInvocation, do_invocation_unref)

G_END_DECLS
