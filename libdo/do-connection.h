/* Porter — libdo: connections between processes, and proxies.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(DO_INSIDE) && !defined(DO_COMPILATION)
#error "Only <libdo/do.h> can be included directly."
#endif

#include <gio/gunixfdlist.h>
#include <libdo/do-types.h>

G_BEGIN_DECLS

/**
 * DoAuthorizeFunc:
 * @connection: the vending connection a client is connecting to.
 * @credentials: the client's credentials, from the kernel.
 * @user_data: as given.
 *
 * Decides whether a client may connect.  Runs on the vending connection's
 * GMainContext.  A refused client's connect fails with
 * %DO_ERROR_ACCESS_DENIED.
 *
 * Returns: %TRUE to accept.
 */
typedef gboolean (*DoAuthorizeFunc) (DoConnection        *connection,
                                     const DoCredentials *credentials,
                                     gpointer             user_data);

/**
 * DoConnectionDiedFunc:
 * @connection: the connection whose peer went away.
 * @error: why (%DO_ERROR_CONNECTION_DIED, %DO_ERROR_PROTOCOL ...).
 * @user_data: as given.
 *
 * Called once, on the connection's GMainContext, after every pending call
 * has failed.
 */
typedef void (*DoConnectionDiedFunc) (DoConnection *connection,
                                      const GError *error,
                                      gpointer      user_data);

/* Vending (server) side. */
DO_API DoConnection *do_connection_new (GError **error);
DO_API void do_connection_set_root_object (DoConnection *connection,
                                           DoObject     *object);
DO_API gboolean do_connection_register_name (DoConnection  *connection,
                                             const gchar   *name,
                                             GError       **error);
DO_API gboolean do_connection_unregister_name (DoConnection  *connection,
                                               GError       **error);
DO_API void do_connection_set_authorize_func (DoConnection    *connection,
                                              DoAuthorizeFunc  func,
                                              gpointer         user_data,
                                              GDestroyNotify   destroy);
DO_API guint do_connection_get_n_clients (DoConnection *connection);
DO_API guint do_connection_get_n_exports (DoConnection *connection);
DO_API guint do_connection_get_n_proxies (DoConnection *connection);
DO_API int do_connection_dup_port_fd (DoConnection  *connection,
                                      GError       **error);

/* Client side. */
DO_API DoConnection *do_connection_new_for_name (const gchar   *name,
                                                 gint           wait_timeout_ms,
                                                 GCancellable  *cancellable,
                                                 GError       **error);
DO_API DoConnection *do_connection_new_for_port_fd (int       port_fd,
                                                    GError  **error);
DO_API DoConnection *do_connection_new_for_socket_path (const gchar        *socket_path,
                                                        const gchar *const *start_argv,
                                                        GError            **error);
DO_API DoProxy *do_connection_get_root_proxy (DoConnection *connection);
DO_API DoProxy *do_connection_root_proxy_for_name (const gchar  *name,
                                                   GError      **error);

/* Either side. */
DO_API DoConnection *do_connection_ref (DoConnection *connection);
DO_API void do_connection_unref (DoConnection *connection);
DO_API void do_connection_close (DoConnection *connection);
DO_API gboolean do_connection_is_alive (DoConnection *connection);
DO_API gboolean do_connection_uses_shm (DoConnection *connection);
DO_API const DoCredentials *do_connection_get_peer_credentials (DoConnection *connection);
DO_API void do_connection_set_timeouts (DoConnection *connection,
                                        gint          request_timeout_ms,
                                        gint          reply_timeout_ms);
DO_API void do_connection_set_died_func (DoConnection         *connection,
                                         DoConnectionDiedFunc  func,
                                         gpointer              user_data,
                                         GDestroyNotify        destroy);

/* Proxies. */
DO_API DoProxy *do_proxy_ref (DoProxy *proxy);
DO_API void do_proxy_unref (DoProxy *proxy);
DO_API DoConnection *do_proxy_get_connection (DoProxy *proxy);
DO_API GVariant *do_proxy_call_sync (DoProxy       *proxy,
                                     const gchar   *method,
                                     GVariant      *parameters,
                                     DoCallFlags    flags,
                                     gint           timeout_ms,
                                     GCancellable  *cancellable,
                                     GError       **error);
DO_API GVariant *do_proxy_call_with_fds_sync (DoProxy       *proxy,
                                              const gchar   *method,
                                              GVariant      *parameters,
                                              GUnixFDList   *fd_list,
                                              DoCallFlags    flags,
                                              gint           timeout_ms,
                                              GUnixFDList  **out_fd_list,
                                              GCancellable  *cancellable,
                                              GError       **error);
DO_API void do_proxy_call (DoProxy             *proxy,
                           const gchar         *method,
                           GVariant            *parameters,
                           DoCallFlags          flags,
                           gint                 timeout_ms,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data);
DO_API void do_proxy_call_with_fds (DoProxy             *proxy,
                                    const gchar         *method,
                                    GVariant            *parameters,
                                    GUnixFDList         *fd_list,
                                    DoCallFlags          flags,
                                    gint                 timeout_ms,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data);
DO_API GVariant *do_proxy_call_finish (DoProxy       *proxy,
                                       GAsyncResult  *result,
                                       GError       **error);
DO_API GVariant *do_proxy_call_with_fds_finish (DoProxy       *proxy,
                                                GUnixFDList  **out_fd_list,
                                                GAsyncResult  *result,
                                                GError       **error);
DO_API gboolean do_proxy_call_oneway (DoProxy      *proxy,
                                      const gchar  *method,
                                      GVariant     *parameters,
                                      GError      **error);

/* The broker (name server). */
DO_API gchar **do_broker_list_names (GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoConnection, do_connection_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoProxy, do_proxy_unref)

G_END_DECLS
