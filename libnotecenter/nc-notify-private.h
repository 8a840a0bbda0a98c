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
  "  </interface>" \
  "</node>"

/* $PORTER_NOTIFYD, else $XDG_RUNTIME_DIR/porter/notifyd, else
 * /tmp/porter-$UID/notifyd; absolute.  (transfer full) */
gchar *_nc_notify_get_socket_path (void);

G_END_DECLS
