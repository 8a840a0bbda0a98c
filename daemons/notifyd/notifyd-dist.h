/* Porter — porter-notifyd: the distributed notification center's side of
 * the daemon (NSDistributedNotificationCenter, GNUstep's gdnc).
 *
 * Each distributed client has observers (name and/or sender, either may
 * be any) with a suspension behaviour, and may be suspended.  A post is
 * matched here, in the daemon, so a process is sent only what it
 * observes: one delivery item per matching observer, written through the
 * client's NotifydOutbox (notifyd-outbox.h) with the notify clients'
 * non-blocking machinery.  What happens to an item:
 *
 *   client suspended, post not "deliver immediately", observer not
 *   NC_SUSPENSION_DELIVER_IMMEDIATELY:
 *     DROP      nothing;
 *     COALESCE  held, at most one per observer (the latest);
 *     HOLD      held, all of them, up to the client's queue limit (past
 *               it the oldest held one is dropped, and that is logged);
 *   otherwise it is queued for the socket, unless the client is behind
 *   (half its queue limit waiting): then DROP observers lose it and
 *   COALESCE observers' waiting item is replaced by the latest.  A client
 *   whose queue reaches the limit is disconnected, with the reason in the
 *   log (notifyd-outbox.h).  Held items are queued when the client resumes.
 *
 * Thread rules: as the server's (notifyd-server.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "notifyd-outbox.h"

G_BEGIN_DECLS

typedef struct _DistRegistry DistRegistry;
typedef struct _DistClient DistClient;

typedef struct {
  guint observers;
  guint queued;           /* in outboxes and held */
  guint64 posts;
  guint64 dropped;
  guint64 coalesced;
} DistStats;

DistRegistry *dist_registry_new (void);
void dist_registry_free (DistRegistry *registry);
void dist_registry_get_stats (DistRegistry *registry, DistStats *stats);

/* @outbox stays its caller's and must outlive the client; its items are
 * packed and released by dist_outbox_pack() / dist_outbox_release(). */
DistClient *dist_client_new (DistRegistry *registry,
                             NotifydOutbox *outbox,
                             guint max_observers,
                             int pid);
void dist_client_free (DistClient *client);

guint dist_outbox_pack (GQueue *items, guint32 *scratch, struct iovec *iov,
                        guint *n_iov, gpointer user_data);
void dist_outbox_release (gpointer item, gboolean sent, gpointer user_data);

/* Requests.  Each returns an NC_NOTIFY_STATUS_* for the reply, or 0 with
 * @why set (transfer full) when the request is malformed: the caller then
 * disconnects the client. */
guint32 dist_client_add_observer (DistClient *client,
                                  guint32 id,
                                  const gchar *name,
                                  const gchar *sender,
                                  guint32 behavior,
                                  gchar **why);
guint32 dist_client_remove_observer (DistClient *client, guint32 id, gchar **why);
guint32 dist_client_set_suspended (DistClient *client, gboolean suspended);
guint32 dist_client_post (DistClient *client,
                          const gchar *name,
                          const gchar *sender,
                          GVariant *user_info,
                          guint32 flags,
                          gchar **why);

G_END_DECLS
