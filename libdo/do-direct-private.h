/* Porter — libdo: direct reads, a channel's way with large bodies of sync
 * calls: the peer copies them straight out of the caller's memory
 * (process_vm_readv(2)), with the caller pushing half of a big one
 * (process_vm_writev(2)).  The protocol is in do-direct.c; its words live
 * in the ring's page (DoRingReadControl).
 *
 * Thread rules: lending (do_direct_lend(), _unlend(), _reclaim()) is
 * serialised by the caller (the channel's send lock), fetching by the
 * caller's receive lock; the rest may run on any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>
#include "do-ring-private.h"
#include "do-wire-private.h"

G_BEGIN_DECLS

typedef struct _DoDirect DoDirect;

/* For a channel that attached @ring; @peer: the peer's pid (0: unknown,
 * then nothing is lent or read). */
DoDirect *do_direct_new (DoRing *ring, pid_t peer);
/* At the channel's end.  A body the peer may still be reading stays lent
 * until it is done; @inherited (a child after fork()) frees the child's
 * copy only. */
void do_direct_free (DoDirect *direct, gboolean inherited);

/* A body came from the peer in a memfd: tries once whether we can read
 * (and write) the peer's memory, and tells the peer. */
void do_direct_try_peer (DoDirect *direct);
/* A DoWireFetch; @data is the DoDirect. */
GBytes *do_direct_fetch (gpointer data, const DoWirePiece *pieces, guint n_pieces,
                         gsize len, GError **error);

/* Lends @msg's body to the peer (a sync call's, when the peer can read
 * us and nothing else is lent), filling @pieces; returns their number, 0
 * when the body must go in a memfd. */
guint do_direct_lend (DoDirect *direct, DoMessage *msg, DoWirePiece pieces[DO_WIRE_MAX_PIECES]);
/* The lent body was never sent. */
void do_direct_unlend (DoDirect *direct);
/* After the lent body went out, outside the send lock: for a big one,
 * pushes the caller's half when the peer offers it. */
void do_direct_push (DoDirect *direct, const DoWirePiece *pieces, guint n_pieces, gsize len);
/* Lets go of the lent body once the peer is done with it;
 * do_direct_is_lending() says, without the lock, whether one is. */
void do_direct_reclaim (DoDirect *direct);
gboolean do_direct_is_lending (DoDirect *direct);

/* Tests only: called by a receiver right after it offered the sender to
 * push half of a body. */
extern void (*_do_direct_test_split_offered) (DoRingReadControl *rc);

G_END_DECLS
