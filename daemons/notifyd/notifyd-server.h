/* Porter — porter-notifyd: the notify(3) server (DESIGN.md §7).
 *
 * Serves org.porter.Notify (libnotecenter/nc-notify-private.h) as the root
 * object of every accepted client socket.  It keeps, per name, the
 * registrations, a counter slot in the shared page and a 64-bit state;
 * per client, its registrations and a queue of registration ids waiting to
 * be written to its delivery socket.
 *
 * A slow client never blocks the server: deliveries are written with
 * MSG_DONTWAIT, an id already queued is not queued again (posts coalesce),
 * and a client whose queue passes @max_queue ids is disconnected, with the
 * reason in the log.  Replies to calls are sent without waiting either: a
 * client that does not read them loses them.
 *
 * Thread rules: a server lives on the thread-default GMainContext it was
 * made on; call it only from there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "notifyd-access.h"

G_BEGIN_DECLS

typedef struct _NotifydServer NotifydServer;

typedef struct {
  guint n_slots;            /* counter page slots, slot 0 included (>= 2) */
  guint max_queue;          /* per client, ids waiting for its socket */
  guint max_registrations;  /* per client */
  guint max_names;          /* names known at once */
  gboolean system;          /* serve every uid (else ours and root only) */
} NotifydOptions;

#define NOTIFYD_DEFAULT_MAX_QUEUE 16384
#define NOTIFYD_DEFAULT_MAX_REGISTRATIONS 65536
#define NOTIFYD_DEFAULT_MAX_NAMES 1048576

void notifyd_options_init (NotifydOptions *options);

/* Takes @access (nullable: no access file). */
NotifydServer *notifyd_server_new (const NotifydOptions *options,
                                   NotifydAccess *access,
                                   GError **error);
void notifyd_server_free (NotifydServer *server);

/* Takes @fd, an accepted client socket. */
gboolean notifyd_server_add_client (NotifydServer *server, int fd, GError **error);

guint notifyd_server_get_n_clients (NotifydServer *server);
guint notifyd_server_get_n_names (NotifydServer *server);
guint64 notifyd_server_get_generation (NotifydServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NotifydServer, notifyd_server_free)

G_END_DECLS
