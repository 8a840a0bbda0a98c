/* Porter — libdo: shared-memory rings, a channel's fast path (DESIGN.md §3,
 * "Fast path").
 *
 * A DoRing is one sealed memfd shared by the two ends of a connection: a
 * header page, then two single-producer single-consumer byte rings, one per
 * direction.  The side that created it (the client) produces on ring 0 and
 * consumes ring 1; the side that attached (the server) the other way round.
 *
 * A ring holds framed records: an 8-byte header (length, kind) and the
 * payload, padded to 8 bytes; a record may wrap around the end.  A MESSAGE
 * record carries one encoded wire message; a MARKER record, no payload,
 * says "the next message is on the socket" (it carries fds or is too big),
 * so the order of messages is kept across both paths.
 *
 * Head and tail are free-running 32-bit byte counts.  Each side keeps its
 * own index privately and only *reads* the peer's from the shared page, so
 * a peer scribbling over the page is caught by checks on what it could
 * change (indices out of range, lengths, kinds) and can only break its own
 * connection: records are copied into a private buffer before anyone
 * decodes them.
 *
 * Waking: every ring has a "consumer sleeping" flag only the consumer
 * writes, and a "producer waiting" flag only the producer writes, each
 * paired with an eventfd (the data doorbell, the space doorbell).  A
 * producer stores the head, fences, then reads the consumer's flag; a
 * consumer going to sleep stores its flag, fences, then reads the head
 * again (the same for the tail and the producer's flag): one of the two
 * always sees the other, so no wake-up is lost.  The
 * consumer's flag is set except while it spins and works through what the
 * spin found, so a consumer asleep in poll() (a GMainContext included) is
 * always rung, and one that spins or reads is not: a pipelining producer
 * makes no system call.  Every path to sleep goes through do_ring_spin()
 * finding nothing or do_ring_arm().  A consumer that has nothing but the
 * ring and the socket to wait for (a reader thread, a blocked sync caller)
 * blocks in recvmsg() on the socket instead (do_ring_arm_socket()), and
 * is woken by a one-byte packet there: one system call on each side, as
 * on the socket path, where a doorbell costs a write, a poll and a read.  A consumer spins for an adaptive budget before it
 * sleeps: the budget halves when a spin fails and grows when it succeeds,
 * and it does not spin at all when the peer last ran on its own CPU (a
 * spin there only delays the peer).
 *
 * Memory: a ring pair takes 4 KiB + 2 × ring size of shared memory (132
 * KiB with the default 64 KiB rings) and five file descriptors per side.
 *
 * Thread rules: pushes are serialised by the caller (the channel's send
 * lock), pops too (the connection's lock); do_ring_spin(),
 * do_ring_is_readable() and the doorbell functions may run on any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdatomic.h>

G_BEGIN_DECLS

typedef struct _DoRing DoRing;

/* File descriptors that travel with a ring: the memfd, then the data and
 * space doorbells (eventfds) of ring 0, then those of ring 1. */
#define DO_RING_N_FDS 5

#define DO_RING_MIN_SIZE 4096u
#define DO_RING_MAX_SIZE (64u << 20)
#define DO_RING_DEFAULT_SIZE (64u << 10)

typedef enum {
  DO_RING_ERROR = -1,   /* the peer corrupted the ring; the ring is broken */
  DO_RING_EMPTY = 0,
  DO_RING_MESSAGE,
  DO_RING_MARKER,
} DoRingRecord;

/* The ring size to offer: $PORTER_SHM_RING_SIZE (a power of two between
 * the limits) or the default; 0 when $PORTER_NO_SHM is set to 1. */
guint32 do_ring_configured_size (void);

/* Creates a ring pair of two rings of @ring_size bytes each (a power of
 * two within the limits), as the creating side. */
DoRing *do_ring_new (guint32 ring_size, GError **error);
/* Fills @fds with new descriptors (close-on-exec) to send to the peer. */
gboolean do_ring_dup_fds (DoRing *ring, int fds[DO_RING_N_FDS], GError **error);
/* Attaches to a ring pair the peer created, from the @n_fds descriptors
 * it sent (taken: kept or closed).  Checks that they are a sealed memfd of
 * the size its header announces and eventfds; DO_ERROR_PROTOCOL if not. */
DoRing *do_ring_attach (int *fds, guint n_fds, GError **error);
DoRing *do_ring_ref (DoRing *ring);
void do_ring_unref (DoRing *ring);

guint32 do_ring_get_size (DoRing *ring);
/* The largest payload a push accepts (half a ring, less a record header). */
gsize do_ring_get_max_message (DoRing *ring);

/* Copies @len bytes in as one MESSAGE record.  When the ring is full, waits
 * for room until @deadline (monotonic µs; -1: forever; 0: don't wait),
 * giving up with DO_ERROR_CONNECTION_DIED when @hangup_fd (a socket, or -1)
 * hangs up.  Sets @wake_socket (nullable: then the doorbell is rung
 * instead) when the consumer is blocked on the socket and the caller must
 * send it a wake-up there.  Errors: DO_ERROR_TIMED_OUT,
 * DO_ERROR_CONNECTION_DIED, DO_ERROR_LIMITS_EXCEEDED (too big),
 * DO_ERROR_PROTOCOL (corrupted). */
gboolean do_ring_push (DoRing *ring,
                       const void *data,
                       gsize len,
                       gint64 deadline,
                       int hangup_fd,
                       gboolean *wake_socket,
                       GError **error);
/* Pushes a MARKER record: the next message is on the socket. */
gboolean do_ring_push_marker (DoRing *ring, gint64 deadline, int hangup_fd, GError **error);

/* Pops one record without blocking.  A MESSAGE is copied to @buf (at most
 * @buf_size bytes, its length in @len); the shared page is not read again
 * for it.  DO_RING_ERROR with DO_ERROR_PROTOCOL when the peer corrupted the
 * ring (every later call fails too). */
DoRingRecord do_ring_pop (DoRing *ring,
                          guint8 *buf,
                          gsize buf_size,
                          gsize *len,
                          GError **error);

/* Whether a record (or garbage, which the next pop reports) waits. */
gboolean do_ring_is_readable (DoRing *ring);
/* Spins for the adaptive budget (never past @deadline) until a record
 * waits, and returns whether one does.  When it returns FALSE the consumer
 * counts as asleep (it will be rung); when TRUE it stays awake, unrung,
 * until it spins again or calls do_ring_arm(), which it must before it
 * sleeps. */
gboolean do_ring_spin (DoRing *ring, gint64 deadline);
/* Counts the consumer as asleep from now on, then returns whether a record
 * waits (if so, do not sleep: it counts as awake again).  do_ring_arm() sleeps on the doorbell;
 * do_ring_arm_socket() in recvmsg() on the socket, where the producer's
 * side sends a wake-up packet instead of ringing. */
gboolean do_ring_arm (DoRing *ring);
gboolean do_ring_arm_socket (DoRing *ring);
/* The consumer was woken (a wake-up packet): not to be woken again until
 * it arms. */
void do_ring_set_awake (DoRing *ring);
/* Counts the consumer as asleep on its doorbell from now on, records
 * waiting or not: for a reader that may stop before the ring is empty
 * while another thread of the same consumer sleeps on the doorbell. */
void do_ring_rearm (DoRing *ring);
/* The eventfd rung when a record arrives while the consumer does not spin:
 * poll it for G_IO_IN (GMainContext), then do_ring_ack_doorbell() before
 * popping. */
int do_ring_get_doorbell_fd (DoRing *ring);
void do_ring_ack_doorbell (DoRing *ring);
/* Spins, then sleeps on the doorbell and @fd (POLLIN; -1: none) until a
 * record waits, @fd is readable or @deadline passes (DO_ERROR_TIMED_OUT). */
gboolean do_ring_wait (DoRing *ring, int fd, gint64 deadline, GError **error);

/* Direct reads (do-direct.c): one direction's words,
 * in the ring's page, on a cache line of their own.  The peer may scribble
 * over any of them: a lie only breaks the liar's own messages. */
typedef enum {
  DO_RING_READ_IDLE = 0,
  DO_RING_READ_POSTED,      /* producer: a body is lent */
  DO_RING_READ_COPYING,     /* consumer: copying it */
  DO_RING_READ_SPLIT,       /* consumer: copying the first part; the producer
                             * may push the rest */
  DO_RING_READ_PUSHING,     /* producer: pushing the rest */
  DO_RING_READ_PUSHED,      /* producer: pushed it */
  DO_RING_READ_PUSH_FAILED, /* producer: could not */
  DO_RING_READ_DONE,        /* consumer: has the body */
  DO_RING_READ_FAILED,      /* consumer: could not read it */
} DoRingRead;

typedef struct {
  guint64 probe_addr;        /* producer: where its probe bytes are */
  guint8 probe[16];          /* producer: those bytes */
  _Atomic guint32 state;     /* a DoRingRead; a futex */
  _Atomic guint32 reader_ok; /* consumer: it read the producer's probe */
  guint64 challenge_addr;    /* consumer: where the producer writes the
                              * consumer's probe to show it may push */
  guint64 dest_addr;         /* consumer (SPLIT): where the body goes ... */
  guint64 split;             /* ... and where the producer's part starts */
  guint8 pad[8];
} DoRingReadControl;
G_STATIC_ASSERT (sizeof (DoRingReadControl) == 64);

/* The words of the direction we produce on (@ours) or the peer's. */
DoRingReadControl *do_ring_read_control (DoRing *ring, gboolean ours);

/* Tests only: called by a push that found its consumer asleep on the
 * socket, just before it decides on a wake-up (a consumer may act there). */
extern void (*_do_ring_test_before_wake) (DoRing *ring);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoRing, do_ring_unref)

G_END_DECLS
