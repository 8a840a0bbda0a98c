/* Porter — libnotecenter: what the notify(3) client library and
 * porter-notifyd agree on.  Private: never installed.
 *
 * A client connects to porter-notifyd's socket (do_connection_new_for_-
 * socket_path(): no handshake, the daemon's root object is object 1) and
 * calls, on interface org.porter.Notify:
 *
 *   Hello    (h delivery) -> (u status, h counters, t generation, u n_slots)
 *       @delivery: one end of a SOCK_SEQPACKET socketpair the client reads;
 *       the daemon sends it packets of native-endian guint32 registration
 *       ids, at most one pending per id (coalesced), never blocking.
 *       @counters: the counter page, read-only (see below).  Hello comes
 *       first and once; Register needs it.
 *   Register (s name, u id, b deliver) -> (u status, u slot)
 *       Watches @name as the client's registration @id (non-zero, chosen
 *       by the client): @slot is the counter the daemon bumps on each post
 *       of @name; with @deliver, @id is also sent on @delivery.  Calling it
 *       again for the same id and name changes @deliver.
 *   Cancel   (u id) -> (u status)
 *   Post     (s name) -> (u status)
 *   GetState (s name) -> (u status, t state)
 *   SetState (s name, t state) -> (u status)    does not post
 *
 *   Stats    () -> (a{sv} stats)
 *       Counters for tools and tests: "clients", "names", "observers",
 *       "queued" (u: deliveries waiting in all clients' queues, held ones
 *       included), "max-queue" (u), "posts", "dropped", "coalesced",
 *       "disconnected" (t).
 *
 * The distributed center (nc-distributed-center.c) uses the same daemon,
 * on a connection of its own:
 *
 *   DistHello          (h delivery) -> (u status)
 *       Instead of Hello: @delivery gets whole notifications (below).
 *   DistAddObserver    (u id, s name, s sender, u behavior) -> (u status)
 *       @name and @sender "" for any; @behavior an NcSuspensionBehavior.
 *   DistRemoveObserver (u id) -> (u status)
 *   DistSetSuspended   (b suspended) -> (u status)
 *   DistPost           (s name, s sender, a{sv} user_info, u flags)   oneway
 *       @sender "" for none; @flags NcDistributedPostFlags.
 *
 * A request no client of the library would make (an unknown behavior, an
 * id 0 or already used, an empty or over-long name, user info over
 * NC_DIST_USER_INFO_MAX bytes, a distributed call before DistHello) makes
 * the daemon close that client's connection and log why.
 *
 * A distributed delivery packet is: guint32 n (1 to NC_DIST_MAX_IDS), n
 * guint32 observer ids, zero padding to a multiple of 8 bytes, then a
 * GVariant "(ssa{sv})" (name, sender or "", user info) in normal form,
 * all native-endian: one notification for n of the client's observers.
 *
 * Every status is an NC_NOTIFY_STATUS_* value.  Names are 1 to
 * NC_NOTIFY_NAME_MAX bytes of UTF-8.
 *
 * The counter page is a sealed memfd of @n_slots guint64 slots: slot 0
 * holds the daemon's generation (random, non-zero, fixed for its life), so
 * a client tells one daemon from its successor; slot i > 0 is a counter the
 * daemon increments on every post of a name using it.  Clients map it
 * read-only and read counters without a system call.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NC_NOTIFY_INTERFACE "org.porter.Notify"
#define NC_NOTIFY_NAME_MAX 1024
/* Slots in the counter page unless porter-notifyd --slots says otherwise. */
#define NC_NOTIFY_DEFAULT_SLOTS 65536
/* Registration ids in one delivery packet at most. */
#define NC_NOTIFY_MAX_BATCH 256
/* Observer ids in one distributed delivery packet at most. */
#define NC_DIST_MAX_IDS 256
/* Serialized user info of a distributed post at most (bytes). */
#define NC_DIST_USER_INFO_MAX (64 * 1024)

#define NC_NOTIFY_INTERFACE_XML \
  "<node>" \
  "  <interface name='" NC_NOTIFY_INTERFACE "'>" \
  "    <method name='Hello'>" \
  "      <arg name='delivery' type='h' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "      <arg name='counters' type='h' direction='out'/>" \
  "      <arg name='generation' type='t' direction='out'/>" \
  "      <arg name='n_slots' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='Register'>" \
  "      <arg name='name' type='s' direction='in'/>" \
  "      <arg name='id' type='u' direction='in'/>" \
  "      <arg name='deliver' type='b' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "      <arg name='slot' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='Cancel'>" \
  "      <arg name='id' type='u' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='Post'>" \
  "      <arg name='name' type='s' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='GetState'>" \
  "      <arg name='name' type='s' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "      <arg name='state' type='t' direction='out'/>" \
  "    </method>" \
  "    <method name='SetState'>" \
  "      <arg name='name' type='s' direction='in'/>" \
  "      <arg name='state' type='t' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='Stats'>" \
  "      <arg name='stats' type='a{sv}' direction='out'/>" \
  "    </method>" \
  "    <method name='DistHello'>" \
  "      <arg name='delivery' type='h' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='DistAddObserver'>" \
  "      <arg name='id' type='u' direction='in'/>" \
  "      <arg name='name' type='s' direction='in'/>" \
  "      <arg name='sender' type='s' direction='in'/>" \
  "      <arg name='behavior' type='u' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='DistRemoveObserver'>" \
  "      <arg name='id' type='u' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='DistSetSuspended'>" \
  "      <arg name='suspended' type='b' direction='in'/>" \
  "      <arg name='status' type='u' direction='out'/>" \
  "    </method>" \
  "    <method name='DistPost'>" \
  "      <arg name='name' type='s' direction='in'/>" \
  "      <arg name='sender' type='s' direction='in'/>" \
  "      <arg name='user_info' type='a{sv}' direction='in'/>" \
  "      <arg name='flags' type='u' direction='in'/>" \
  "      <annotation name='org.freedesktop.DBus.Method.NoReply' value='true'/>" \
  "    </method>" \
  "  </interface>" \
  "</node>"

/* $PORTER_NOTIFYD, else $XDG_RUNTIME_DIR/porter/notifyd, else
 * /tmp/porter-$UID/notifyd; absolute.  (transfer full) */
gchar *_nc_notify_get_socket_path (void);

#ifdef NC_NOTIFYD_EXEC_BUILDDIR
typedef struct _DoConnection DoConnection;
/* Connects to porter-notifyd, starting it if none runs (race-free, see
 * do_connection_new_for_socket_path()); the connection belongs to
 * @context.  (transfer full) */
DoConnection *_nc_notifyd_connect (GMainContext *context, GError **error);

/* Receives one packet from a non-blocking delivery socket (@flags added to
 * MSG_DONTWAIT): its length (with MSG_TRUNC, its whole length), or 0 when
 * nothing more waits; then *@hung_up is set if the daemon has gone. */
gssize _nc_delivery_recv (int fd, void *buf, gsize size, int flags, gboolean *hung_up);
#endif

/* Checks a distributed delivery packet of @len bytes (see above): sets
 * @n_ids to the number of ids after the count, @name (not empty) and
 * @sender to its message's strings, which point into @data, and
 * @user_info to its user info, or NULL if it has none (transfer full);
 * or returns FALSE with @why set to what is wrong with it. */
gboolean _nc_delivery_parse (const guint8 *data, gsize len, guint32 *n_ids,
                             const gchar **name, const gchar **sender,
                             GVariant **user_info, const gchar **why);

G_END_DECLS
