/* Porter — libdo: channels (ports), DESIGN.md §3.
 *
 * A channel is one end of a SOCK_SEQPACKET socket: every message is atomic,
 * carries fds with SCM_RIGHTS and the sender's credentials with
 * SCM_CREDENTIALS, and EOF / POLLHUP means the peer is gone.  Bodies too big
 * for one packet go out of line in a sealed memfd, or, for a sync call on
 * a channel with a ring, stay in the caller's memory for the peer to copy
 * (do-direct-private.h).
 *
 * With a ring pair attached (do-ring-private.h), messages that fit and
 * carry no fds go through the shared-memory ring instead; any other goes
 * on the socket after a MARKER in the ring, so the receiver, which reads
 * the ring first and the socket when the ring says so, sees one ordered
 * stream.  The socket stays the source of truth for the peer's death.
 *
 * Thread rules: do_channel_send() may be called from any thread (sends are
 * serialised); do_channel_receive() from one thread at a time (the
 * connection's lock); do_channel_attach_ring() before the channel is
 * shared; the waiting and doorbell functions from any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-wire-private.h"
#include "do-ring-private.h"

#include <poll.h>

G_BEGIN_DECLS

typedef struct _DoChannel DoChannel;

/* Takes @fd; makes it non-blocking, close-on-exec, SO_PASSCRED. */
DoChannel *do_channel_new (int fd, GError **error);
DoChannel *do_channel_ref (DoChannel *channel);
void do_channel_unref (DoChannel *channel);
int do_channel_get_fd (DoChannel *channel);
/* Shuts the socket down (peers see EOF); the fd stays open until unref. */
void do_channel_shutdown (DoChannel *channel);

/* Sends @msg with its fds.  Waits for room until @deadline (monotonic
 * microseconds; -1: forever; 0: don't wait).  Errors: DO_ERROR_TIMED_OUT,
 * DO_ERROR_CONNECTION_DIED, DO_ERROR_LIMITS_EXCEEDED. */
gboolean do_channel_send (DoChannel *channel,
                          DoMessage *msg,
                          gint64 deadline,
                          GError **error);

/* After a sync call returns: lets go of its body if the peer read it
 * from our memory (do-direct-private.h). */
void do_channel_reclaim (DoChannel *channel);
/* Attaches the shared-memory fast path (a new reference to @ring is
 * taken).  @peer: the peer's credentials, given to the messages that come
 * through the ring (they carry no SCM_CREDENTIALS).  Both ends attach at
 * the same point of the stream: after the handshake, before any other
 * message. */
void do_channel_attach_ring (DoChannel *channel, DoRing *ring, const DoCredentials *peer);
/* (nullable) (transfer none) */
DoRing *do_channel_get_ring (DoChannel *channel);

/* Receives one message without blocking.  NULL with G_IO_ERROR_WOULD_BLOCK
 * when nothing is there; DO_ERROR_CONNECTION_DIED on EOF; DO_ERROR_PROTOCOL
 * for a malformed message (the caller closes the connection). */
DoMessage *do_channel_receive (DoChannel *channel, GError **error);
/* The same; with a ring, @socket_readable FALSE says the caller's poll saw
 * nothing on the socket, so an empty ring (no MARKER pending) answers
 * G_IO_ERROR_WOULD_BLOCK without a system call. */
DoMessage *do_channel_receive_full (DoChannel *channel, gboolean socket_readable,
                                    GError **error);
/* Blocks in recvmsg() until a message comes, the peer hangs up or
 * do_channel_shutdown() is called, or @timeout_ms passes (0: none; then
 * G_IO_ERROR_WOULD_BLOCK, as after a signal, or a stale wake-up).  With a
 * ring it spins first, then blocks on the socket, where the peer sends a
 * wake-up when it fills the ring.  One system call for a caller that has
 * nothing else to wait for (a reader thread, a sync caller). */
DoMessage *do_channel_receive_blocking (DoChannel *channel, gint timeout_ms,
                                        GError **error);

/* Waits until the channel is readable, hung up, or @deadline passes (with a
 * ring: spins first, then sleeps on its doorbell and the socket).  Returns
 * FALSE with DO_ERROR_TIMED_OUT on timeout.  It may return early; the
 * caller receives until G_IO_ERROR_WOULD_BLOCK and waits again. */
gboolean do_channel_wait_readable (DoChannel *channel, gint64 deadline, GError **error);

/* For callers with their own poll() or GSource.  Polling a channel means
 * polling its socket fd and, with a ring, its doorbell fd (both POLLIN /
 * G_IO_IN); on wake-up call do_channel_ack_doorbell() *before* receiving.
 * do_channel_spin() is the bounded, adaptive spin to try first (FALSE at
 * once without a ring; after TRUE the ring does not ring its doorbell until
 * the next spin or do_channel_arm()); do_channel_has_pending() says,
 * without a system call, that the ring holds a record;
 * do_channel_arm() makes the ring ring its doorbell again, then says the
 * same: call it before sleeping (a GSource's prepare). */
gboolean do_channel_spin (DoChannel *channel, gint64 deadline);
gboolean do_channel_has_pending (DoChannel *channel);
gboolean do_channel_arm (DoChannel *channel);
/* The ring rings its doorbell again from now on, even with records
 * waiting (do_ring_rearm()). */
void do_channel_rearm (DoChannel *channel);
int do_channel_get_doorbell_fd (DoChannel *channel);   /* -1 without a ring */
void do_channel_ack_doorbell (DoChannel *channel);

/* poll()'s timeout for a monotonic @deadline in microseconds (-1: none). */
int do_poll_timeout (gint64 deadline);

/* poll() until one of @pfds is ready (TRUE) or @deadline passes (FALSE,
 * DO_ERROR_TIMED_OUT); retries on EINTR. */
gboolean do_poll (struct pollfd *pfds, guint n_fds, gint64 deadline, GError **error);

/* Whether @channel was made before a fork() and this is the child: then
 * every send and receive fails with DO_ERROR_CONNECTION_DIED, nothing
 * touches its ring, and do_channel_shutdown() leaves the parent's socket
 * alone. */
gboolean do_channel_is_inherited (DoChannel *channel);
/* Forks seen by this process (counted in each child): what was made in
 * another generation is the parent's. */
gint _do_fork_generation (void);
/* Hands an inherited channel over to this process: the parent must not use
 * it again. */
void do_channel_adopt (DoChannel *channel);

/* Makes a connected pair (both ends wrapped). */
gboolean do_channel_new_pair (DoChannel **a, DoChannel **b, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoChannel, do_channel_unref)

G_END_DECLS
