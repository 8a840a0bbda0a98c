/* Porter — libdo: proxies and calls, the client's side (DESIGN.md §5).
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-connection-private.h"
#include "do-object-private.h"
#include "do-error.h"

/**
 * do_connection_get_root_proxy:
 * @connection: a peer connection.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): a proxy for the peer's root object.
 */
DoProxy *
do_connection_get_root_proxy (DoConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  g_return_val_if_fail (!connection->is_vending, NULL);
  return _do_connection_get_proxy (connection, DO_ROOT_OBJECT_ID);
}

/**
 * do_connection_root_proxy_for_name:
 * @name: a registered name.
 * @error: return location for a #GError.
 *
 * do_connection_new_for_name() then do_connection_get_root_proxy(), as
 * NSConnection's rootProxyForConnectionWithRegisteredName: does.  The
 * proxy keeps the connection.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: (transfer full) (nullable): the proxy.
 */
DoProxy *
do_connection_root_proxy_for_name (const gchar  *name,
                                   GError      **error)
{
  g_autoptr(DoConnection) connection = NULL;

  g_return_val_if_fail (name != NULL, NULL);
  connection = do_connection_new_for_name (name, 0, NULL, error);
  return connection ? do_connection_get_root_proxy (connection) : NULL;
}

/* ---------------------------------------------------------------- */
/* Proxies and calls */

/**
 * do_proxy_ref:
 * @proxy: a proxy.
 *
 * The same as do_object_ref().
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): @proxy.
 */
DoProxy *
do_proxy_ref (DoProxy *proxy)
{
  return do_object_ref (proxy);
}

/**
 * do_proxy_unref:
 * @proxy: (nullable): a proxy.
 *
 * The same as do_object_unref(): the last reference tells the object's
 * owner, which frees the object once no process holds a proxy to it.
 *
 * Thread rules: any thread.
 */
void
do_proxy_unref (DoProxy *proxy)
{
  do_object_unref (proxy);
}

/**
 * do_proxy_get_connection:
 * @proxy: a proxy.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none) (nullable): the connection the proxy calls
 * through; %NULL for a local object.
 */
DoConnection *
do_proxy_get_connection (DoProxy *proxy)
{
  g_return_val_if_fail (proxy != NULL, NULL);
  return proxy->connection;
}

static DoMessage *
build_call (DoProxy *proxy, const gchar *interface, const gchar *method,
            GVariant *parameters, GUnixFDList *fd_list, DoCallFlags flags,
            GError **error)
{
  DoMessage *msg;

  if (!g_dbus_is_member_name (method) || (interface && !g_dbus_is_interface_name (interface)))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "'%s%s%s' is not a valid method name",
                   interface ? interface : "", interface ? "." : "", method);
      if (parameters)
        g_variant_unref (g_variant_ref_sink (parameters));
      return NULL;
    }
  msg = do_message_new ((flags & DO_CALL_FLAGS_ONEWAY) ? DO_MESSAGE_ONEWAY : DO_MESSAGE_CALL,
                        proxy->object_id, interface, method, parameters);
  msg->serial = (guint32) g_atomic_int_add (&proxy->connection->next_serial, 1) + 1;
  if (msg->serial == 0)  /* wrapped */
    msg->serial = (guint32) g_atomic_int_add (&proxy->connection->next_serial, 1) + 1;
  /* The fds first: a failure after the exports would have to undo them. */
  if (!_do_take_fd_list (msg, fd_list, error) ||
      !_do_connection_export_refs (proxy->connection, msg, error))
    {
      do_message_unref (msg);
      return NULL;
    }
  return msg;
}

static GVariant *
reply_to_result (DoMessage *reply, GUnixFDList **out_fd_list, GError **error)
{
  if (reply->kind == DO_MESSAGE_ERROR)
    {
      g_propagate_error (error, do_message_to_gerror (reply));
      return NULL;
    }
  if (out_fd_list)
    {
      *out_fd_list = NULL;
      if (reply->n_fds)
        {
          *out_fd_list = g_unix_fd_list_new_from_array (reply->fds, reply->n_fds);
          g_clear_pointer (&reply->fds, g_free);
          reply->n_fds = 0;
        }
    }
  return g_variant_ref (reply->body);
}

/**
 * do_object_call_sync:
 * @object: a proxy.
 * @interface_name: (nullable): the method's interface; %NULL lets the
 *   object pick the first interface that has the method.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.  %NULL means `()`.
 * @fd_list: (nullable): fds to send; `h` arguments index into it.  The list
 *   is emptied (its fds are sent).
 * @flags: %DO_CALL_FLAGS_ONEWAY to not wait for an answer.
 * @timeout_ms: reply timeout, %DO_TIMEOUT_DEFAULT or %DO_TIMEOUT_INFINITE.
 * @out_fd_list: (out) (optional) (nullable): fds that came with the reply.
 * @cancellable: (nullable): a #GCancellable.
 * @error: return location for a #GError.
 *
 * Calls the method and waits for its reply.  While waiting, calls the peer
 * makes on this connection, and calls on the other connections of the
 * same GMainContext (GNUstep's reply mode), are served on this thread if it
 * owns that context (it does in a single-threaded program), so callbacks
 * into a blocked caller work.  No other source of the context runs.  A
 * handler on a connection's reader thread (a thread-safe root's) serves
 * that connection's calls to thread-safe objects instead.  If
 * the peer dies the call fails at once with %DO_ERROR_CONNECTION_DIED.  The
 * server's error arrives with its own domain, code and message.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full) (nullable): the reply tuple (`()` for a oneway
 * call), or %NULL with @error set.
 */
GVariant *
do_object_call_sync (DoObject      *proxy,
                     const gchar   *interface_name,
                     const gchar   *method,
                     GVariant      *parameters,
                     GUnixFDList   *fd_list,
                     DoCallFlags    flags,
                     gint           timeout_ms,
                     GUnixFDList  **out_fd_list,
                     GCancellable  *cancellable,
                     GError       **error)
{
  DoConnection *connection;
  g_autoptr(DoMessage) msg = NULL;
  Pending p = { 0, };
  GVariant *result = NULL;
  gint64 deadline;

  g_return_val_if_fail (proxy != NULL, NULL);
  g_return_val_if_fail (do_object_is_proxy (proxy), NULL);
  g_return_val_if_fail (method != NULL, NULL);
  g_return_val_if_fail (parameters == NULL || g_variant_get_type_string (parameters)[0] == '(', NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (out_fd_list)
    *out_fd_list = NULL;
  connection = proxy->connection;
  msg = build_call (proxy, interface_name, method, parameters, fd_list, flags, error);
  if (!msg)
    return NULL;

  if (flags & DO_CALL_FLAGS_ONEWAY)
    return _do_connection_send_call (connection, msg, NULL, error) ? do_wire_empty_body () : NULL;

  deadline = _do_deadline_after (_do_effective_timeout (timeout_ms, connection->reply_timeout_ms));
  p.serial = msg->serial;
  p.waiter = g_thread_self ();
  msg->caller_waits = TRUE;
  if (!_do_connection_send_call (connection, msg, &p, error))
    return NULL;
  _do_connection_wait_pending (connection, &p, deadline, cancellable);
  do_channel_reclaim (connection->channel);

  if (p.reply)
    result = reply_to_result (p.reply, out_fd_list, error);
  else
    g_propagate_error (error, g_steal_pointer (&p.error));
  g_clear_pointer (&p.reply, do_message_unref);
  g_clear_error (&p.error);
  return result;
}

/**
 * do_proxy_call_with_fds_sync:
 * @proxy: a proxy.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.
 * @fd_list: (nullable): fds to send (the list is emptied).
 * @flags: call flags.
 * @timeout_ms: reply timeout, %DO_TIMEOUT_DEFAULT or %DO_TIMEOUT_INFINITE.
 * @out_fd_list: (out) (optional) (nullable): fds that came with the reply.
 * @cancellable: (nullable): a #GCancellable.
 * @error: return location for a #GError.
 *
 * do_object_call_sync() naming no interface.
 *
 * Thread rules: any thread; blocks.  On the thread that owns the connection's
 * context (or when none does), calls arriving meanwhile are served, nested.
 *
 * Returns: (transfer full) (nullable): the reply tuple.
 */
GVariant *
do_proxy_call_with_fds_sync (DoProxy       *proxy,
                             const gchar   *method,
                             GVariant      *parameters,
                             GUnixFDList   *fd_list,
                             DoCallFlags    flags,
                             gint           timeout_ms,
                             GUnixFDList  **out_fd_list,
                             GCancellable  *cancellable,
                             GError       **error)
{
  return do_object_call_sync (proxy, NULL, method, parameters, fd_list, flags,
                              timeout_ms, out_fd_list, cancellable, error);
}

/**
 * do_proxy_call_sync:
 * @proxy: a proxy.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.
 * @flags: call flags.
 * @timeout_ms: reply timeout, %DO_TIMEOUT_DEFAULT or %DO_TIMEOUT_INFINITE.
 * @cancellable: (nullable): a #GCancellable.
 * @error: return location for a #GError.
 *
 * do_proxy_call_with_fds_sync() without fds.
 *
 * Thread rules: as do_proxy_call_with_fds_sync().
 *
 * Returns: (transfer full) (nullable): the reply tuple.
 */
GVariant *
do_proxy_call_sync (DoProxy       *proxy,
                    const gchar   *method,
                    GVariant      *parameters,
                    DoCallFlags    flags,
                    gint           timeout_ms,
                    GCancellable  *cancellable,
                    GError       **error)
{
  return do_proxy_call_with_fds_sync (proxy, method, parameters, NULL, flags,
                                      timeout_ms, NULL, cancellable, error);
}

/**
 * do_proxy_call_oneway:
 * @proxy: a proxy.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.
 * @error: return location for a #GError.
 *
 * Sends the call without waiting for (or getting) an answer.  Calls on one
 * connection, oneway or not, are dispatched in the order sent.
 *
 * Thread rules: any thread; does not wait for the server.
 *
 * Returns: %TRUE if the call was sent.
 */
gboolean
do_proxy_call_oneway (DoProxy      *proxy,
                      const gchar  *method,
                      GVariant     *parameters,
                      GError      **error)
{
  g_autoptr(GVariant) r = do_proxy_call_sync (proxy, method, parameters,
                                              DO_CALL_FLAGS_ONEWAY, -1, NULL, error);
  return r != NULL;
}

typedef struct {
  DoConnection *connection;
  guint32 serial;
} PendingRef;

static void
pending_ref_free (gpointer data)
{
  PendingRef *ref = data;

  do_connection_unref (ref->connection);
  g_free (ref);
}

/* The timeout or cancellation of an async call: whoever takes the pending
 * entry out of the table completes it. */
static void
abandon_async (PendingRef *ref, GError *why)
{
  Pending *p;

  g_mutex_lock (&ref->connection->lock);
  p = g_hash_table_lookup (ref->connection->pending, GUINT_TO_POINTER (ref->serial));
  if (p)
    g_hash_table_steal (ref->connection->pending, GUINT_TO_POINTER (ref->serial));
  g_mutex_unlock (&ref->connection->lock);
  if (!p)
    {
      g_error_free (why);
      return;
    }
  p->error = why;
  _do_connection_complete_pending (ref->connection, p);
}

static gboolean
async_timed_out (gpointer data)
{
  abandon_async (data, g_error_new (DO_ERROR, DO_ERROR_TIMED_OUT, "no reply within the timeout"));
  return G_SOURCE_REMOVE;
}

static gboolean
async_cancelled (GCancellable *cancellable, gpointer data)
{
  abandon_async (data, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                            "the call was cancelled"));
  return G_SOURCE_REMOVE;
}

/**
 * do_object_call:
 * @object: a proxy.
 * @interface_name: (nullable): the method's interface, or %NULL.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.
 * @fd_list: (nullable): fds to send (the list is emptied).
 * @flags: call flags.
 * @timeout_ms: reply timeout, %DO_TIMEOUT_DEFAULT or %DO_TIMEOUT_INFINITE.
 * @cancellable: (nullable): a #GCancellable.
 * @callback: called with the result, in the thread-default main context of
 *   the calling thread, never before this function returns.  Its source
 *   object is %NULL: pass the proxy in @user_data if the callback needs it.
 * @user_data: for @callback.
 *
 * Starts a call; finish it with do_object_call_finish().
 *
 * Thread rules: any thread.
 */
void
do_object_call (DoObject            *proxy,
                const gchar         *interface_name,
                const gchar         *method,
                GVariant            *parameters,
                GUnixFDList         *fd_list,
                DoCallFlags          flags,
                gint                 timeout_ms,
                GCancellable        *cancellable,
                GAsyncReadyCallback  callback,
                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(DoMessage) msg = NULL;
  GError *error = NULL;
  DoConnection *connection;
  Pending *p;
  PendingRef *ref;
  gint timeout;

  g_return_if_fail (proxy != NULL);
  g_return_if_fail (do_object_is_proxy (proxy));
  g_return_if_fail (method != NULL);
  g_return_if_fail (parameters == NULL || g_variant_is_of_type (parameters, G_VARIANT_TYPE_TUPLE));

  connection = proxy->connection;
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, do_object_call);
  msg = build_call (proxy, interface_name, method, parameters, fd_list, flags, &error);
  if (!msg)
    {
      g_task_return_error (task, error);
      return;
    }
  if (flags & DO_CALL_FLAGS_ONEWAY)
    {
      if (_do_connection_send_call (connection, msg, NULL, &error))
        g_task_return_pointer (task, do_message_new (DO_MESSAGE_REPLY, 0, NULL, NULL, NULL),
                               (GDestroyNotify) do_message_unref);
      else
        g_task_return_error (task, error);
      return;
    }

  p = g_new0 (Pending, 1);
  p->serial = msg->serial;
  p->task = g_object_ref (task);
  timeout = _do_effective_timeout (timeout_ms, connection->reply_timeout_ms);
  if (timeout != DO_TIMEOUT_INFINITE)
    {
      ref = g_new0 (PendingRef, 1);
      ref->connection = do_connection_ref (connection);
      ref->serial = p->serial;
      p->timeout_source = g_timeout_source_new (timeout);
      g_source_set_callback (p->timeout_source, async_timed_out, ref, pending_ref_free);
      g_source_attach (p->timeout_source, g_task_get_context (task));
    }
  if (cancellable)
    {
      ref = g_new0 (PendingRef, 1);
      ref->connection = do_connection_ref (connection);
      ref->serial = p->serial;
      p->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (p->cancel_source, G_SOURCE_FUNC (async_cancelled), ref, pending_ref_free);
      g_source_attach (p->cancel_source, g_task_get_context (task));
    }
  if (!_do_connection_send_call (connection, msg, p, &error))
    {
      p->error = error;
      _do_connection_complete_pending (connection, p);
    }
}

/**
 * do_proxy_call_with_fds:
 * @proxy: a proxy.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.
 * @fd_list: (nullable): fds to send (the list is emptied).
 * @flags: call flags.
 * @timeout_ms: reply timeout.
 * @cancellable: (nullable): a #GCancellable.
 * @callback: called with the result in the caller's thread-default context.
 * @user_data: for @callback.
 *
 * do_object_call() naming no interface; finish with
 * do_proxy_call_with_fds_finish().
 */
void
do_proxy_call_with_fds (DoProxy             *proxy,
                        const gchar         *method,
                        GVariant            *parameters,
                        GUnixFDList         *fd_list,
                        DoCallFlags          flags,
                        gint                 timeout_ms,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  do_object_call (proxy, NULL, method, parameters, fd_list, flags, timeout_ms,
                  cancellable, callback, user_data);
}

/**
 * do_proxy_call:
 * @proxy: a proxy.
 * @method: the method's name.
 * @parameters: (nullable): the arguments tuple; a floating reference is
 *   sunk.
 * @flags: call flags.
 * @timeout_ms: reply timeout.
 * @cancellable: (nullable): a #GCancellable.
 * @callback: called with the result in the caller's thread-default context.
 * @user_data: for @callback.
 *
 * do_proxy_call_with_fds() without fds; finish with do_proxy_call_finish().
 */
void
do_proxy_call (DoProxy             *proxy,
               const gchar         *method,
               GVariant            *parameters,
               DoCallFlags          flags,
               gint                 timeout_ms,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             user_data)
{
  do_proxy_call_with_fds (proxy, method, parameters, NULL, flags, timeout_ms,
                          cancellable, callback, user_data);
}

/**
 * do_object_call_finish:
 * @object: the proxy called.
 * @out_fd_list: (out) (optional) (nullable): fds that came with the reply.
 * @result: the #GAsyncResult given to the callback.
 * @error: return location for a #GError.
 *
 * Thread rules: the thread whose context ran the callback.
 *
 * Returns: (transfer full) (nullable): the reply tuple, or %NULL with
 * @error set.
 */
GVariant *
do_object_call_finish (DoObject      *proxy,
                       GUnixFDList  **out_fd_list,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_autoptr(DoMessage) reply = NULL;

  g_return_val_if_fail (proxy != NULL, NULL);
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  if (out_fd_list)
    *out_fd_list = NULL;
  reply = g_task_propagate_pointer (G_TASK (result), error);
  return reply ? reply_to_result (reply, out_fd_list, error) : NULL;
}

/**
 * do_proxy_call_with_fds_finish:
 * @proxy: the proxy called.
 * @out_fd_list: (out) (optional) (nullable): fds that came with the reply.
 * @result: the #GAsyncResult given to the callback.
 * @error: return location for a #GError.
 *
 * The same as do_object_call_finish().
 *
 * Thread rules: the thread whose context ran the callback.
 *
 * Returns: (transfer full) (nullable): the reply tuple.
 */
GVariant *
do_proxy_call_with_fds_finish (DoProxy       *proxy,
                               GUnixFDList  **out_fd_list,
                               GAsyncResult  *result,
                               GError       **error)
{
  return do_object_call_finish (proxy, out_fd_list, result, error);
}

/**
 * do_proxy_call_finish:
 * @proxy: the proxy called.
 * @result: the #GAsyncResult given to the callback.
 * @error: return location for a #GError.
 *
 * Thread rules: the thread whose context ran the callback.
 *
 * Returns: (transfer full) (nullable): the reply tuple.
 */
GVariant *
do_proxy_call_finish (DoProxy       *proxy,
                      GAsyncResult  *result,
                      GError       **error)
{
  return do_object_call_finish (proxy, NULL, result, error);
}

