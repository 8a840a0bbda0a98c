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
 *
 * A name belongs to the broker connection that registered it and vanishes
 * when that connection dies.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-types.h"

G_BEGIN_DECLS

#define DO_BROKER_INTERFACE "org.porter.Broker"
extern const gchar do_broker_interface_xml[];

/* $PORTER_BROKER, else $XDG_RUNTIME_DIR/porter/broker, else
 * /tmp/porter-$UID/broker.  (transfer full) */
gchar *do_broker_get_socket_path (void);
/* Creates the socket's directory 0700 if missing; fails if it exists but is
 * not a directory owned by us with mode 0700. */
gboolean do_broker_ensure_directory (const gchar *socket_path, GError **error);
/* Connects to the broker, starting it first if none answers (race-free:
 * concurrent starters serialise on a lock file beside the socket). */
DoConnection *do_broker_connect (GError **error);

/* A connection over an already-connected SEQPACKET socket, with no
 * CONNECT/HELLO handshake: how the broker and its clients talk.  @root
 * (nullable) is served as object 1 to the peer.  Dispatches on the
 * thread-default main context. */
DoConnection *_do_connection_new_for_socket (int fd, DoObject *root, GError **error);

G_END_DECLS
