/* Porter — libdo: the DO_ERROR domain.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(DO_INSIDE) && !defined(DO_COMPILATION)
#error "Only <libdo/do.h> can be included directly."
#endif

#include <libdo/do-types.h>

G_BEGIN_DECLS

/**
 * DoError:
 * @DO_ERROR_FAILED: generic failure.
 * @DO_ERROR_INVALID_ARGUMENT: an argument was not acceptable.
 * @DO_ERROR_CONNECTION_DIED: the peer process died or closed the
 *   connection; every call pending on it fails with this at once.
 * @DO_ERROR_TIMED_OUT: no reply (or no room to send) before the deadline.
 * @DO_ERROR_PROTOCOL: a peer sent a malformed message; the connection was
 *   closed.
 * @DO_ERROR_NAME_NOT_FOUND: no server is registered under that name.
 * @DO_ERROR_NAME_TAKEN: the name is already registered by a live server.
 * @DO_ERROR_NO_SUCH_OBJECT: the target object does not exist (any more).
 * @DO_ERROR_UNKNOWN_METHOD: the object has no such method.
 * @DO_ERROR_INVALID_SIGNATURE: the arguments' types do not match the
 *   method's signature.
 * @DO_ERROR_ACCESS_DENIED: the server refused the connection or the call.
 * @DO_ERROR_BROKER: the broker, or another daemon started on demand
 *   (do_connection_new_for_socket_path()), could not be reached or started.
 * @DO_ERROR_CLOSED: the connection was closed locally.
 * @DO_ERROR_LIMITS_EXCEEDED: a message or a count was over a limit (such
 *   as a call that would have nested more than 64 sync calls deep).
 *
 * Error codes in the `do-error-quark` domain.  They cross processes by name
 * (`org.porter.Error.ConnectionDied` and so on), as GDBus errors do.
 */
typedef enum {
  DO_ERROR_FAILED,
  DO_ERROR_INVALID_ARGUMENT,
  DO_ERROR_CONNECTION_DIED,
  DO_ERROR_TIMED_OUT,
  DO_ERROR_PROTOCOL,
  DO_ERROR_NAME_NOT_FOUND,
  DO_ERROR_NAME_TAKEN,
  DO_ERROR_NO_SUCH_OBJECT,
  DO_ERROR_UNKNOWN_METHOD,
  DO_ERROR_INVALID_SIGNATURE,
  DO_ERROR_ACCESS_DENIED,
  DO_ERROR_BROKER,
  DO_ERROR_CLOSED,
  DO_ERROR_LIMITS_EXCEEDED,
} DoError;

#define DO_ERROR (do_error_quark ())
DO_API GQuark do_error_quark (void);

G_END_DECLS
