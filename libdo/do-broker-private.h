/* Porter — libdo: talking to porter-broker (DESIGN.md §6).
 *
 * The broker speaks the ordinary wire format: a client connect()s a
 * SOCK_SEQPACKET socket to the broker's path and the resulting socket is a
 * DoConnection whose root object (object id 1) has this interface:
 *
 *   org.porter.Broker
 *     Register   (s name, h port) -> ()        the port's send right
 *     Unregister (s name) -> ()
 *     Lookup     (s name, u wait_timeout_ms) -> (h port)
 *     List       () -> (as names)
 *     WaitGone   (s name, u timeout_ms) -> ()  returns once @name is not
 *                                              registered (TIMED_OUT after
 *                                              @timeout_ms)
 *     GetPid     () -> (u pid)                 the broker's process id
 *
 * A name belongs to the broker connection that registered it and vanishes
 * when that connection dies, or when the port's receive right is closed.
 *
 * Errors the broker sends: DO_ERROR_NAME_NOT_FOUND, DO_ERROR_NAME_TAKEN,
 * DO_ERROR_INVALID_ARGUMENT (bad name or fd), DO_ERROR_ACCESS_DENIED
 * (unregistering someone else's name), DO_ERROR_LIMITS_EXCEEDED,
 * DO_ERROR_TIMED_OUT (WaitGone).  The client functions below pass those on
 * and report a broker that cannot be reached, started or understood as
 * DO_ERROR_BROKER.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-types.h"

G_BEGIN_DECLS

#define DO_BROKER_INTERFACE "org.porter.Broker"
extern const gchar do_broker_interface_xml[];

/* Names are 1..DO_BROKER_MAX_NAME bytes of [A-Za-z0-9._-], not starting
 * with '.' or '-'. */
#define DO_BROKER_MAX_NAME 255
gboolean do_broker_name_is_valid (const gchar *name);

/* How long a client waits for a daemon it started to listen. */
#define DO_DAEMON_START_TIMEOUT_MS 20000
#define DO_BROKER_START_TIMEOUT_MS DO_DAEMON_START_TIMEOUT_MS

/* do-daemon-client.c: any daemon reached at a socket path.  @what names
 * it in messages ("broker").  Errors are DO_ERROR_BROKER. */
gboolean _do_daemon_ensure_directory (const gchar *socket_path,
                                      const gchar *what,
                                      GError **error);
int _do_daemon_connect_fd (const gchar *path,
                           const gchar *const *start_argv,
                           const gchar *what,
                           GError **error);

/* $PORTER_BROKER, else $XDG_RUNTIME_DIR/porter/broker, else
 * /tmp/porter-$UID/broker; always absolute.  (transfer full) */
gchar *do_broker_get_socket_path (void);
/* Creates the socket's directory 0700 if missing; fails if it exists but is
 * not a directory owned by us with mode 0700. */
gboolean do_broker_ensure_directory (const gchar *socket_path, GError **error);
/* Connects to the broker, starting it first if none answers (race-free:
 * concurrent starters serialise on a lock file beside the socket). */
DoConnection *do_broker_connect (GError **error);

/* Registers @name for the port whose send right is @port_send_fd (borrowed:
 * the broker gets a duplicate).  Returns (transfer full) the broker
 * connection that holds the name: the name lives as long as that connection
 * (close or drop it to give the name up) or until the port's receive right
 * is closed.  Errors: DO_ERROR_NAME_TAKEN, DO_ERROR_INVALID_ARGUMENT,
 * DO_ERROR_BROKER. */
DoConnection *do_broker_register (const gchar *name,
                                  int port_send_fd,
                                  GError **error);
/* Gives up @name on @broker, the connection do_broker_register() returned.
 * Errors: DO_ERROR_NAME_NOT_FOUND, DO_ERROR_ACCESS_DENIED, DO_ERROR_BROKER. */
gboolean do_broker_unregister (DoConnection *broker,
                               const gchar *name,
                               GError **error);
/* Looks @name up, waiting up to @wait_timeout_ms for it to be registered
 * (0: don't wait).  Returns (transfer full) a send right to the server's
 * port, or -1 with DO_ERROR_NAME_NOT_FOUND, G_IO_ERROR_CANCELLED,
 * DO_ERROR_INVALID_ARGUMENT or DO_ERROR_BROKER. */
int do_broker_lookup (const gchar *name,
                      guint wait_timeout_ms,
                      GCancellable *cancellable,
                      GError **error);

/* A connection over an already-connected SEQPACKET socket, with no
 * CONNECT/HELLO handshake: how the broker and its clients talk.  @root
 * (nullable) is served as object 1 to the peer.  Dispatches on the
 * thread-default main context. */
DoConnection *_do_connection_new_for_socket (int fd, DoObject *root, GError **error);

G_END_DECLS
