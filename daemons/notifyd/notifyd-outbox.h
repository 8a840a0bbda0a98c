/* Porter — porter-notifyd: a client's delivery socket and what waits for it.
 *
 * Both kinds of client of the daemon (the notify(3) API, which gets
 * registration ids, and the distributed center, which gets whole
 * notifications) give it, at hello, one end of a SOCK_SEQPACKET pair to
 * be written to.  An outbox is that socket and a bounded queue of items
 * waiting to be written: packets are built from the head of the queue by
 * the owner's @pack function, sent with MSG_DONTWAIT, and what does not fit
 * waits for the socket to become writable.  The daemon never blocks on a
 * client.  Pushing an item past @max_items, or a socket error, calls the
 * owner's @fail function (which disconnects the client and logs why); the
 * outbox then takes nothing more.
 *
 * Thread rules: an outbox lives on the thread-default GMainContext it was
 * made on; call it only from there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/uio.h>

G_BEGIN_DECLS

typedef struct _NotifydOutbox NotifydOutbox;

/* Room the outbox gives @pack for headers (bytes, aligned for guint32). */
#define NOTIFYD_OUTBOX_SCRATCH 2048
#define NOTIFYD_OUTBOX_MAX_IOV 4

typedef struct {
  /* Describes the next packet, made of the first items of @items (never
   * empty), in @iov (at most NOTIFYD_OUTBOX_MAX_IOV; @scratch may back
   * them) and returns how many items it covers (at least 1). */
  guint (*pack) (GQueue *items, guint32 *scratch, struct iovec *iov, guint *n_iov,
                 gpointer user_data);
  /* @item left the queue: written (@sent) or thrown away. */
  void (*release) (gpointer item, gboolean sent, gpointer user_data);
  /* The client cannot be served any more; @why is for the log. */
  void (*fail) (const gchar *why, gpointer user_data);
} NotifydOutboxFuncs;

/* Checks that @fd is a socket the daemon can write without blocking (a
 * SEQPACKET or DGRAM socket: a pipe could be made blocking by its other
 * holder) and takes it; else returns NULL and leaves @fd alone. */
NotifydOutbox *notifyd_outbox_new (int fd,
                                   guint max_items,
                                   const NotifydOutboxFuncs *funcs,
                                   gpointer user_data);
/* Releases every queued item (not sent) and closes the socket. */
void notifyd_outbox_free (NotifydOutbox *outbox);

/* Queues @item; FALSE (and @fail called once) past the limit or after a
 * failure.  Call notifyd_outbox_flush() once the post is queued. */
gboolean notifyd_outbox_push (NotifydOutbox *outbox, gpointer item);
/* Takes @item out of the queue (not released). */
void notifyd_outbox_remove (NotifydOutbox *outbox, gpointer item);
/* Takes out and releases (not sent) every queued item @match accepts. */
void notifyd_outbox_remove_matching (NotifydOutbox *outbox,
                                     gboolean (*match) (gpointer item, gpointer data),
                                     gpointer data);
/* Writes what it can now, and watches the socket for the rest. */
void notifyd_outbox_flush (NotifydOutbox *outbox);
guint notifyd_outbox_get_length (NotifydOutbox *outbox);
guint notifyd_outbox_get_max (NotifydOutbox *outbox);
gboolean notifyd_outbox_has_failed (NotifydOutbox *outbox);

G_END_DECLS
