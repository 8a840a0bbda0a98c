/* Porter — libdo: invocations, the server's side of one call.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-connection-private.h"
#include "do-error.h"


DoInvocation *
_do_invocation_new (DoConnection *connection, DoMessage *call)
{
  DoInvocation *invocation = g_new0 (DoInvocation, 1);

  invocation->ref_count = 1;
  invocation->connection = do_connection_ref (connection);
  invocation->call = call;
  if (call->n_fds)
    {
      invocation->fd_list = g_unix_fd_list_new_from_array (call->fds, call->n_fds);
      g_clear_pointer (&call->fds, g_free);
      call->n_fds = 0;
    }
  return invocation;
}

/**
 * do_invocation_ref:
 * @invocation: an invocation.
 *
 * Keeps @invocation to answer it later.  Thread rules: any thread.
 *
 * Returns: (transfer full): @invocation.
 */
DoInvocation *
do_invocation_ref (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);
  g_atomic_int_inc (&invocation->ref_count);
  return invocation;
}

/**
 * do_invocation_unref:
 * @invocation: (nullable): an invocation.
 *
 * Drops a reference.  An invocation of a call (not oneway) dropped without
 * an answer answers with %DO_ERROR_FAILED, so the caller never waits in
 * vain.  Thread rules: any thread.
 */
void
do_invocation_unref (DoInvocation *invocation)
{
  if (invocation == NULL || !g_atomic_int_dec_and_test (&invocation->ref_count))
    return;
  if (!invocation->returned && invocation->call->kind == DO_MESSAGE_CALL)
    {
      invocation->ref_count = 1;
      do_invocation_return_error (invocation, DO_ERROR, DO_ERROR_FAILED,
                                  "the server dropped the call to %s without answering",
                                  invocation->call->method);
      invocation->ref_count = 0;
    }
  g_clear_object (&invocation->fd_list);
  do_message_unref (invocation->call);
  do_connection_unref (invocation->connection);
  g_free (invocation);
}

/**
 * do_invocation_get_method_name:
 * @invocation: an invocation.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the method called.
 */
const gchar *
do_invocation_get_method_name (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);
  return invocation->call->method;
}

/**
 * do_invocation_get_interface_name:
 * @invocation: an invocation.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the interface the caller named, "" if none.
 */
const gchar *
do_invocation_get_interface_name (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);
  return invocation->call->interface;
}

/**
 * do_invocation_get_credentials:
 * @invocation: an invocation.
 *
 * The caller's pid, uid and gid, as the kernel attached them to this very
 * message (SCM_CREDENTIALS).
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the caller's credentials.
 */
const DoCredentials *
do_invocation_get_credentials (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);
  return &invocation->call->creds;
}

/**
 * do_invocation_get_connection:
 * @invocation: an invocation.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the peer connection the call came on.
 */
DoConnection *
do_invocation_get_connection (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);
  return invocation->connection;
}

/**
 * do_invocation_get_fd_list:
 * @invocation: an invocation.
 *
 * Thread rules: the thread that runs the call, or one holding the invocation alone.
 *
 * Returns: (transfer none): the fds sent with the call (an empty list if
 * none came: a hostile caller may send `h` indexes without fds); `h`
 * arguments index into it.
 */
GUnixFDList *
do_invocation_get_fd_list (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);
  if (!invocation->fd_list)
    invocation->fd_list = g_unix_fd_list_new ();
  return invocation->fd_list;
}

/**
 * do_invocation_is_oneway:
 * @invocation: an invocation.
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE if the caller expects no answer.
 */
gboolean
do_invocation_is_oneway (DoInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, FALSE);
  return invocation->call->kind == DO_MESSAGE_ONEWAY;
}

static void
invocation_send (DoInvocation *invocation, DoMessage *msg)
{
  DoConnection *connection = invocation->connection;
  g_autoptr(GError) error = NULL;

  invocation->returned = TRUE;
  if (invocation->call->kind == DO_MESSAGE_ONEWAY)
    {
      do_message_unref (msg);
      return;
    }
  msg->reply_serial = invocation->call->serial;
  _do_connection_flush_releases (connection);
  if (!do_channel_send (connection->channel, msg,
                        _do_deadline_after (connection->request_timeout_ms), &error))
    {
      /* The caller is gone or stuck; its side fails the call. */
      if (g_error_matches (error, DO_ERROR, DO_ERROR_TIMED_OUT))
        g_message ("pid %d did not read its reply to %s in time: closing",
                   connection->peer_creds.pid, invocation->call->method);
      do_channel_shutdown (connection->channel);
    }
  do_message_unref (msg);
}

/**
 * do_invocation_return_value_with_fds:
 * @invocation: an invocation not answered yet.
 * @value: (nullable): the reply tuple; a floating reference is sunk.  %NULL
 *   means `()`.
 * @fd_list: (nullable): fds to send with it; the list is emptied (its fds
 *   are sent), the caller keeps its reference.
 *
 * Answers the call.  Thread rules: any thread.
 */
void
do_invocation_return_value_with_fds (DoInvocation *invocation,
                                     GVariant     *value,
                                     GUnixFDList  *fd_list)
{
  g_autoptr(GError) error = NULL;
  DoMessage *msg;

  g_return_if_fail (invocation != NULL);
  g_return_if_fail (!invocation->returned);
  g_return_if_fail (value == NULL || g_variant_is_of_type (value, G_VARIANT_TYPE_TUPLE));

  msg = do_message_new (DO_MESSAGE_REPLY, 0, NULL, NULL, value);
  /* The fds first: a failure after the exports would have to undo them. */
  if (!_do_take_fd_list (msg, fd_list, &error) ||
      !_do_connection_export_refs (invocation->connection, msg, &error))
    {
      do_message_unref (msg);
      do_invocation_return_gerror (invocation, error);
      return;
    }
  invocation_send (invocation, msg);
}

/**
 * do_invocation_return_value:
 * @invocation: an invocation not answered yet.
 * @value: (nullable): the reply tuple; a floating reference is sunk.
 *
 * Answers the call.  Thread rules: any thread.
 */
void
do_invocation_return_value (DoInvocation *invocation,
                            GVariant     *value)
{
  do_invocation_return_value_with_fds (invocation, value, NULL);
}

/**
 * do_invocation_return_gerror:
 * @invocation: an invocation not answered yet.
 * @error: the error; its domain, code and message reach the caller.
 *
 * Thread rules: any thread.
 */
void
do_invocation_return_gerror (DoInvocation *invocation,
                             const GError *error)
{
  g_return_if_fail (invocation != NULL);
  g_return_if_fail (error != NULL);
  g_return_if_fail (!invocation->returned);

  invocation_send (invocation, do_message_new_error (0, error));
}

/**
 * do_invocation_return_error:
 * @invocation: an invocation not answered yet.
 * @domain: error domain.
 * @code: error code.
 * @format: printf-style message.
 * @...: its arguments.
 *
 * Thread rules: any thread.
 */
void
do_invocation_return_error (DoInvocation *invocation,
                            GQuark        domain,
                            gint          code,
                            const gchar  *format,
                            ...)
{
  g_autoptr(GError) error = NULL;
  va_list ap;

  g_return_if_fail (invocation != NULL);
  g_return_if_fail (format != NULL);

  va_start (ap, format);
  error = g_error_new_valist (domain, code, format, ap);
  va_end (ap);
  do_invocation_return_gerror (invocation, error);
}

