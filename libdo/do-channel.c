/* Porter — libdo: channels over SOCK_SEQPACKET sockets.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-channel-private.h"
#include "do-error.h"
#include "do-ring-private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

struct _DoChannel {
  gint ref_count;
  int fd;
  GMutex send_lock;   /* serialises sends */
  guint8 *rbuf;       /* receive buffer; used under the caller's lock */
  DoRing *ring;       /* set once, before the channel is shared */
  DoCredentials ring_creds; /* the peer's, for messages from the ring */
  gint socket_next;   /* (atomic) a marker was read: the next message is
                       * on the socket */
  DoMessage *ahead;   /* (atomic) read from the socket before its marker
                       * came out of the ring (a blocking read does that) */
  gboolean blocking_ok; /* O_NONBLOCK is off (every other call passes
                         * MSG_DONTWAIT); under the caller's lock */
  gint rcvtimeo_ms;   /* SO_RCVTIMEO set, 0 for none; under the caller's lock */
  gint generation;    /* the fork_generation it was made in */

  /* Direct reads (below) */
  guint8 probe[16];   /* random; the peer reads it to learn it can read us */
  guint8 challenge[16]; /* the peer writes our probe here to show it can
                         * write us */
  gsize peer_tested;  /* (atomic) 0, then 1 + whether we can read the peer */
  int peer_pidfd;     /* the peer, once we could read it; else -1 */
  GVariant *lent[DO_WIRE_MAX_PIECES]; /* under send_lock: our body the peer
                                       * reads or read */
  gint lending;       /* (atomic) lent[] holds a body */
};

/* Direct reads.  A body too big for a packet goes in a sealed memfd:
 * fresh shared pages, each one allocated, filled and mapped, which costs
 * several times a plain copy of the body.  When the peer can read our
 * memory (process_vm_readv(2): same user, no ptrace restriction; MPI
 * libraries use it for the same purpose), a sync call's large body stays
 * where it is instead: the packet says where its bytes are and the peer
 * copies them into its own memory before it dispatches the call.  One
 * copy, and nothing shared the peer could change under the receiver.
 *
 * The caller waits for the answer, which comes after the copy, so the
 * body stays put; the channel keeps a reference to it until the peer says,
 * in the ring's page, that it is done, so a caller that gives up early
 * does not free it under the peer.  One body at a time per direction:
 * while one is lent, other large bodies take a memfd.
 *
 * The caller has nothing to do meanwhile, so for a big body it copies half
 * itself: the receiver, having allocated the body's memory, says where
 * (SPLIT) and copies the first half while the caller pushes the second
 * there with process_vm_writev(2), on another CPU.  The receiver offers
 * that only to a peer that showed it can write its memory (it wrote the
 * receiver's probe into the receiver's private challenge slot): one that
 * cannot must not be able to claim it pushed what it did not.  The caller
 * waits for the offer only briefly, and the receiver copies the second
 * half itself when nobody claimed it, or the push failed.
 *
 * Each side learns what it can do from the other's probe, 16 random bytes
 * whose address and value are in the ring's page: the first memfd body it
 * gets, or the first body it lends, makes it try to read them and write
 * them into the peer's challenge slot.  If reading works it says so in the
 * page, and keeps a pidfd of the peer, so that a pid reused after the peer
 * dies is never read.  $PORTER_NO_DIRECT_READ=1 turns this off (we never
 * try). */

#define SPLIT_MIN (8u << 20)              /* bodies copied by both sides */
#define SPLIT_WAIT_US 2000                /* the caller waits for the offer */
#define PUSH_WAIT_US (2 * G_USEC_PER_SEC) /* the receiver waits for the push */

static gboolean
pid_alive (int pidfd)
{
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

  return poll (&pfd, 1, 0) == 0;
}

/* Waits on the futex @word while it holds @seen, until @deadline (monotonic
 * µs); returns early on a wake-up or a signal. */
static void
futex_wait (_Atomic guint32 *word, guint32 seen, gint64 deadline)
{
  gint64 left = deadline - g_get_monotonic_time ();
  struct timespec ts;

  if (left <= 0)
    return;
  ts.tv_sec = left / G_USEC_PER_SEC;
  ts.tv_nsec = (left % G_USEC_PER_SEC) * 1000;
  (void) syscall (SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void
futex_wake (_Atomic guint32 *word)
{
  (void) syscall (SYS_futex, word, FUTEX_WAKE, G_MAXINT, NULL, NULL, 0);
}

static void
set_state (DoRingReadControl *rc, DoRingRead state)
{
  atomic_store (&rc->state, state);
  futex_wake (&rc->state);
}

/* Copies bytes [@from, @to) of the body in @pieces, in the memory of @pid,
 * to @dest + @from (@write: the other way round).  Returns 0 or an errno. */
static int
copy_range (pid_t pid, gboolean write, const DoWirePiece *pieces, guint n_pieces,
            guint8 *dest, gsize from, gsize to)
{
  while (from < to)
    {
      struct iovec here = { dest + from, to - from }, there[DO_WIRE_MAX_PIECES];
      gsize skip = from, left = to - from;
      guint n = 0;
      ssize_t r;

      for (guint i = 0; i < n_pieces && left > 0; i++)
        {
          if (skip >= pieces[i].len)
            {
              skip -= pieces[i].len;
              continue;
            }
          there[n].iov_base = (guint8 *) (gsize) pieces[i].addr + skip;
          there[n].iov_len = MIN (pieces[i].len - skip, left);
          left -= there[n++].iov_len;
          skip = 0;
        }
      /* A call may stop short, at a page it cannot reach: go on from
       * there until it copies nothing. */
      r = write ? process_vm_writev (pid, there, n, &here, 1, 0)
                : process_vm_readv (pid, &here, 1, there, n, 0);
      if (r <= 0)
        return r < 0 ? errno : EFAULT;
      from += r;
    }
  return 0;
}

/* Can we read (and write) the peer's memory?  Tried once, when a body
 * first comes in a memfd or we first lend one. */
static gboolean
try_reading_peer (DoChannel *channel)
{
  const char *off = g_getenv ("PORTER_NO_DIRECT_READ");
  pid_t pid = channel->ring_creds.pid;
  DoRingReadControl *peer = do_ring_read_control (channel->ring, FALSE);
  DoRingReadControl *ours = do_ring_read_control (channel->ring, TRUE);
  guint8 want[sizeof channel->probe], got[sizeof channel->probe];
  struct iovec local = { got, sizeof got }, remote;
  int pidfd;

  if ((off && *off && strcmp (off, "0") != 0) || pid <= 0)
    return FALSE;
  remote.iov_base = (void *) (gsize) peer->probe_addr;
  remote.iov_len = sizeof want;
  memcpy (want, peer->probe, sizeof want);
  if (peer->probe_addr > G_MAXSIZE || (pidfd = pidfd_open (pid, 0)) < 0)
    return FALSE;
  if (process_vm_readv (pid, &local, 1, &remote, 1, 0) != (ssize_t) sizeof got ||
      memcmp (got, want, sizeof got) != 0 || !pid_alive (pidfd))
    {
      g_debug ("cannot read the memory of pid %d: bodies from it come in memfds", pid);
      close (pidfd);
      return FALSE;
    }
  channel->peer_pidfd = pidfd;
  atomic_store (&peer->reader_ok, 1);
  /* The same rights let us write it: show the peer, for pushes. */
  remote.iov_base = (void *) (gsize) ours->challenge_addr;
  local.iov_base = want;
  if (ours->challenge_addr <= G_MAXSIZE)
    (void) process_vm_writev (pid, &local, 1, &remote, 1, 0);
  return TRUE;
}

static gboolean
can_read_peer (DoChannel *channel)
{
  if (g_once_init_enter (&channel->peer_tested))
    g_once_init_leave (&channel->peer_tested, 1 + try_reading_peer (channel));
  return channel->peer_tested == 2;
}

/* Received bodies of 2 MiB and more land in memory aligned for huge
 * pages, and the last one freed is kept for the next: a fresh mapping
 * costs a page fault per 4 KiB, more than the copy.  One spare per
 * process, at most DO_WIRE_MAX_REMOTE_BODY bytes.  Smaller ones come from
 * malloc(), which keeps such sizes for reuse itself. */
#define HUGE_PAGE (2u << 20)

typedef struct {
  guint8 *mem;
  gsize capacity;
} BodyBuffer;

static BodyBuffer *spare_buffer;  /* (atomic) */

static void
body_buffer_free (BodyBuffer *b)
{
  free (b->mem);
  g_free (b);
}

static void
body_buffer_release (gpointer data)
{
  BodyBuffer *b = data;

  if (b->capacity < HUGE_PAGE || !g_atomic_pointer_compare_and_exchange (&spare_buffer, NULL, b))
    body_buffer_free (b);
}

static BodyBuffer *
body_buffer_new (gsize len)
{
  BodyBuffer *b = len >= HUGE_PAGE ? g_atomic_pointer_exchange (&spare_buffer, NULL) : NULL;

  if (b && b->capacity >= len && b->capacity / 2 <= len)
    return b;
  if (b)
    body_buffer_release (b);
  b = g_new (BodyBuffer, 1);
  if (len < HUGE_PAGE)
    {
      b->capacity = len;
      b->mem = malloc (len);
    }
  else
    {
      b->capacity = (len + HUGE_PAGE - 1) & ~(gsize) (HUGE_PAGE - 1);
      if (posix_memalign ((void **) &b->mem, HUGE_PAGE, b->capacity) != 0)
        b->mem = NULL;
      else
        (void) madvise (b->mem, b->capacity, MADV_HUGEPAGE);
    }
  if (!b->mem)
    {
      g_free (b);
      return NULL;
    }
  return b;
}

G_LOCK_DEFINE_STATIC (quarantine);
static GSList *quarantine;  /* of BodyBuffer */

/* After our own part of a SPLIT body: the rest, pushed by the peer or
 * copied by us.  Returns 0 or an errno; sets @unsafe when the peer may
 * still be writing into @b. */
static int
finish_split (DoChannel *channel, DoRingReadControl *rc, const DoWirePiece *pieces,
              guint n_pieces, BodyBuffer *b, gsize split, gsize len, gboolean *unsafe)
{
  gint64 deadline = g_get_monotonic_time () + PUSH_WAIT_US;
  guint32 state = DO_RING_READ_SPLIT;

  if (!atomic_compare_exchange_strong (&rc->state, &state, DO_RING_READ_COPYING))
    for (;;)
      {
        state = atomic_load (&rc->state);
        if (state == DO_RING_READ_PUSHED)
          return 0;
        if (state != DO_RING_READ_PUSHING)
          break;   /* PUSH_FAILED (or garbage): copy it ourselves */
        if (!pid_alive (channel->peer_pidfd))
          return ESRCH;
        if (g_get_monotonic_time () >= deadline)
          {
            *unsafe = TRUE;
            return ETIMEDOUT;
          }
        futex_wait (&rc->state, state, MIN (deadline, g_get_monotonic_time () + 10000));
      }
  return copy_range (channel->ring_creds.pid, FALSE, pieces, n_pieces, b->mem, split, len);
}

void (*_do_channel_test_split_offered) (DoRingReadControl *rc);

/* Copies a body the peer left in its memory (a DoWireFetch). */
static GBytes *
fetch_body (gpointer data, const DoWirePiece *pieces, guint n_pieces, gsize len, GError **error)
{
  DoChannel *channel = data;
  DoRingReadControl *rc = do_ring_read_control (channel->ring, FALSE);
  guint32 posted = DO_RING_READ_POSTED;
  gboolean unsafe = FALSE;
  BodyBuffer *b;
  gsize split = len;
  int errsv;

  if (channel->peer_pidfd < 0 ||
      !atomic_compare_exchange_strong (&rc->state, &posted, DO_RING_READ_COPYING))
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL,
                           channel->peer_pidfd < 0
                             ? "a body was left in the sender's memory, and reading it was not offered"
                             : "a body was left in the sender's memory without being posted");
      return NULL;
    }
  for (guint i = 0; i < n_pieces; i++)
    if (pieces[i].addr > G_MAXSIZE || pieces[i].len > G_MAXSIZE - pieces[i].addr)
      {
        set_state (rc, DO_RING_READ_FAILED);
        g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL,
                             "a body in the sender's memory has a piece out of range");
        return NULL;
      }
  b = body_buffer_new (len);
  if (!b)
    {
      set_state (rc, DO_RING_READ_FAILED);
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "cannot allocate %zu bytes for a body", len);
      return NULL;
    }
  if (len >= SPLIT_MIN && memcmp (channel->challenge, channel->probe, sizeof channel->probe) == 0)
    {
      split = len / 2;
      rc->dest_addr = (gsize) b->mem;
      rc->split = split;
      set_state (rc, DO_RING_READ_SPLIT);
      if (G_UNLIKELY (_do_channel_test_split_offered))
        _do_channel_test_split_offered (rc);
    }
  errsv = copy_range (channel->ring_creds.pid, FALSE, pieces, n_pieces, b->mem, 0, split);
  if (errsv == 0 && split < len)
    errsv = finish_split (channel, rc, pieces, n_pieces, b, split, len, &unsafe);
  if (errsv == 0 && !pid_alive (channel->peer_pidfd))
    errsv = ESRCH;
  set_state (rc, errsv == 0 ? DO_RING_READ_DONE : DO_RING_READ_FAILED);
  if (errsv != 0)
    {
      /* A peer still pushing into it would write into whatever reuses it:
       * never reused. */
      if (unsafe)
        {
          g_warning ("pid %d did not finish pushing its part of a body: its %zu bytes are lost",
                     channel->ring_creds.pid, len);
          G_LOCK (quarantine);
          quarantine = g_slist_prepend (quarantine, b);
          G_UNLOCK (quarantine);
        }
      else
        body_buffer_free (b);
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "cannot read a body from the sender's memory: %s", g_strerror (errsv));
      return NULL;
    }
  return g_bytes_new_with_free_func (b->mem, len, body_buffer_release, b);
}

/* The caller's part of a SPLIT body: waits briefly for the receiver's
 * offer, then pushes the second part. */
static void
push_split (DoChannel *channel, const DoWirePiece *pieces, guint n_pieces, gsize len)
{
  DoRingReadControl *rc = do_ring_read_control (channel->ring, TRUE);
  gint64 deadline = g_get_monotonic_time () + SPLIT_WAIT_US;
  guint32 state;
  guint64 dest, split;

  for (;;)
    {
      state = atomic_load (&rc->state);
      if (state == DO_RING_READ_SPLIT)
        break;
      if ((state != DO_RING_READ_POSTED && state != DO_RING_READ_COPYING) ||
          g_get_monotonic_time () >= deadline)
        return;
      futex_wait (&rc->state, state, deadline);
    }
  dest = rc->dest_addr;
  split = rc->split;
  if (!atomic_compare_exchange_strong (&rc->state, &state, DO_RING_READ_PUSHING))
    return;
  set_state (rc, split < len && dest <= G_MAXSIZE - len &&
                   copy_range (channel->ring_creds.pid, TRUE, pieces, n_pieces,
                               (guint8 *) (gsize) dest, split, len) == 0
                   ? DO_RING_READ_PUSHED : DO_RING_READ_PUSH_FAILED);
}

/* Bodies a peer may still be reading when their channel goes (its caller
 * gave up, then closed the connection): kept until the peer is done.  A
 * peer that never is keeps them for good; past MAX_ORPHANS, no body is
 * lent any more. */
#define MAX_ORPHANS 8

typedef struct {
  DoRing *ring;
  GVariant *lent[DO_WIRE_MAX_PIECES];
} Orphan;

G_LOCK_DEFINE_STATIC (orphans);
static GArray *orphans;

static gboolean
still_reading (DoRing *ring)
{
  DoRingRead state = atomic_load (&do_ring_read_control (ring, TRUE)->state);

  return state == DO_RING_READ_POSTED || state == DO_RING_READ_COPYING ||
         state == DO_RING_READ_SPLIT || state == DO_RING_READ_PUSHING ||
         state == DO_RING_READ_PUSHED || state == DO_RING_READ_PUSH_FAILED;
}

static void
clear_lent (GVariant **lent)
{
  for (guint i = 0; i < DO_WIRE_MAX_PIECES; i++)
    g_clear_pointer (&lent[i], g_variant_unref);
}

static void
channel_clear_lent (DoChannel *channel)
{
  clear_lent (channel->lent);
  g_atomic_int_set (&channel->lending, FALSE);
}

/* Reaps the orphans the peers are done with; returns how many are left. */
static guint
reap_orphans_locked (void)
{
  for (guint i = 0; orphans && i < orphans->len;)
    {
      Orphan *o = &g_array_index (orphans, Orphan, i);

      if (still_reading (o->ring))
        {
          i++;
          continue;
        }
      clear_lent (o->lent);
      do_ring_unref (o->ring);
      g_array_remove_index_fast (orphans, i);
    }
  return orphans ? orphans->len : 0;
}

/* Under the send lock: drops the body lent to the peer once it is done
 * with it; FALSE while it may still read it. */
static gboolean
reclaim_lent (DoChannel *channel)
{
  if (channel->lent[0] == NULL)
    return TRUE;
  if (still_reading (channel->ring))
    return FALSE;
  channel_clear_lent (channel);
  return TRUE;
}

void
do_channel_reclaim (DoChannel *channel)
{
  if (!g_atomic_int_get (&channel->lending))
    return;
  g_mutex_lock (&channel->send_lock);
  reclaim_lent (channel);
  g_mutex_unlock (&channel->send_lock);
}

/* Under the send lock: lends @msg's body to the peer, filling @pieces;
 * returns their number, 0 when the body must go in a memfd. */
static guint
lend_body (DoChannel *channel, DoMessage *msg, DoWirePiece pieces[DO_WIRE_MAX_PIECES])
{
  g_autoptr(GVariant) array = NULL;
  GVariant *prefix;
  guint n = 0, left;

  if (!msg->caller_waits || msg->kind != DO_MESSAGE_CALL || !channel->ring ||
      !atomic_load (&do_ring_read_control (channel->ring, TRUE)->reader_ok) ||
      !can_read_peer (channel) ||
      g_variant_get_size (msg->body) > DO_WIRE_MAX_REMOTE_BODY || !reclaim_lent (channel))
    return 0;
  G_LOCK (orphans);
  left = reap_orphans_locked ();
  G_UNLOCK (orphans);
  if (left >= MAX_ORPHANS)
    return 0;

  prefix = do_wire_body_split (msg->body, &array);
  channel->lent[0] = prefix ? prefix : g_variant_ref (msg->body);
  channel->lent[1] = g_steal_pointer (&array);
  g_atomic_int_set (&channel->lending, TRUE);
  for (guint i = 0; i < DO_WIRE_MAX_PIECES && channel->lent[i]; i++)
    if (g_variant_get_size (channel->lent[i]) > 0)
      {
        pieces[n].addr = (gsize) g_variant_get_data (channel->lent[i]);
        pieces[n++].len = g_variant_get_size (channel->lent[i]);
      }
  atomic_store (&do_ring_read_control (channel->ring, TRUE)->state, DO_RING_READ_POSTED);
  return n;
}

/* A channel going away with its body still lent. */
static void
orphan_lent (DoChannel *channel)
{
  Orphan o = { do_ring_ref (channel->ring), { NULL, } };

  memcpy (o.lent, channel->lent, sizeof o.lent);
  memset (channel->lent, 0, sizeof channel->lent);
  g_atomic_int_set (&channel->lending, FALSE);
  G_LOCK (orphans);
  if (!orphans)
    orphans = g_array_new (FALSE, FALSE, sizeof (Orphan));
  g_array_append_val (orphans, o);
  G_UNLOCK (orphans);
}

/* After fork() the child's copies of the parent's channels are dead: their
 * socket and ring are the parent's too, and reading them, writing them,
 * flagging the ring or shutting the socket down would take the parent's
 * messages or break its connections.  The child only closes its copies of
 * the fds.  Each child counts one more generation. */
static gint fork_generation;  /* (atomic) */

static void
count_fork (void)
{
  g_atomic_int_inc (&fork_generation);
}

gboolean
do_channel_is_inherited (DoChannel *channel)
{
  return channel->generation != g_atomic_int_get (&fork_generation);
}

void
do_channel_adopt (DoChannel *channel)
{
  channel->generation = g_atomic_int_get (&fork_generation);
}

static gboolean
check_inherited (DoChannel *channel, GError **error)
{
  if (!do_channel_is_inherited (channel))
    return FALSE;
  g_set_error_literal (error, DO_ERROR, DO_ERROR_CONNECTION_DIED,
                       "the connection belongs to the parent process (made before fork())");
  return TRUE;
}

#define CMSG_FDS_SPACE CMSG_SPACE (sizeof (int) * (DO_WIRE_MAX_FDS + 1))
#define CMSG_CREDS_SPACE CMSG_SPACE (sizeof (struct ucred))

/* With a ring, a consumer blocked in recvmsg() is woken by this one-byte
 * packet (no wire message is that short); it then reads the ring. */
#define WAKE_BYTE 'w'
/* Packets up to this size are encoded on the stack. */
#define SMALL_PACKET 2048

DoChannel *
do_channel_new (int fd, GError **error)
{
  static gsize atfork_done;
  DoChannel *channel;
  int one = 1, type = 0;
  socklen_t len = sizeof type;
  int flags;

  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
    {
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "file descriptor is not a SOCK_SEQPACKET socket");
      return NULL;
    }
  flags = fcntl (fd, F_GETFL);
  if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
      fcntl (fd, F_SETFD, FD_CLOEXEC) < 0 ||
      setsockopt (fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    {
      int errsv = errno;
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "cannot set up socket: %s", g_strerror (errsv));
      return NULL;
    }
  if (g_once_init_enter (&atfork_done))
    {
      pthread_atfork (NULL, NULL, count_fork);
      g_once_init_leave (&atfork_done, 1);
    }
  channel = g_new0 (DoChannel, 1);
  channel->ref_count = 1;
  channel->fd = fd;
  channel->generation = g_atomic_int_get (&fork_generation);
  channel->peer_pidfd = -1;
  g_mutex_init (&channel->send_lock);
  return channel;
}

gboolean
do_channel_new_pair (DoChannel **a, DoChannel **b, GError **error)
{
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "socketpair: %s", g_strerror (errsv));
      return FALSE;
    }
  *a = do_channel_new (sv[0], error);
  if (!*a)
    {
      close (sv[1]);
      return FALSE;
    }
  *b = do_channel_new (sv[1], error);
  if (!*b)
    {
      g_clear_pointer (a, do_channel_unref);
      return FALSE;
    }
  return TRUE;
}

DoChannel *
do_channel_ref (DoChannel *channel)
{
  g_atomic_int_inc (&channel->ref_count);
  return channel;
}

void
do_channel_unref (DoChannel *channel)
{
  if (channel == NULL || !g_atomic_int_dec_and_test (&channel->ref_count))
    return;
  if (channel->lent[0] && !do_channel_is_inherited (channel) && !reclaim_lent (channel))
    orphan_lent (channel);
  clear_lent (channel->lent);
  close (channel->fd);
  if (channel->peer_pidfd >= 0)
    close (channel->peer_pidfd);
  do_ring_unref (channel->ring);
  do_message_unref (channel->ahead);
  g_mutex_clear (&channel->send_lock);
  g_free (channel->rbuf);
  g_free (channel);
}

int
do_channel_get_fd (DoChannel *channel)
{
  return channel->fd;
}

void
do_channel_shutdown (DoChannel *channel)
{
  if (!do_channel_is_inherited (channel))
    shutdown (channel->fd, SHUT_RDWR);
}

void
do_channel_attach_ring (DoChannel *channel, DoRing *ring, const DoCredentials *peer)
{
  DoRingReadControl *ours = do_ring_read_control (ring, TRUE);

  g_return_if_fail (channel->ring == NULL);
  channel->ring = do_ring_ref (ring);
  channel->ring_creds = *peer;
  for (gsize i = 0; i < sizeof channel->probe; i += 4)
    {
      guint32 r = g_random_int ();
      memcpy (channel->probe + i, &r, 4);
    }
  ours->probe_addr = (gsize) channel->probe;
  memcpy (ours->probe, channel->probe, sizeof ours->probe);
  do_ring_read_control (ring, FALSE)->challenge_addr = (gsize) channel->challenge;
}

DoRing *
do_channel_get_ring (DoChannel *channel)
{
  return channel->ring;
}

/* Whether the next message must come from the socket. */
static gboolean
reads_socket (DoChannel *channel)
{
  return !channel->ring || g_atomic_int_get (&channel->socket_next) ||
         do_channel_is_inherited (channel);
}

static gboolean
has_ahead (DoChannel *channel)
{
  return g_atomic_pointer_get (&channel->ahead) != NULL;
}

gboolean
do_channel_spin (DoChannel *channel, gint64 deadline)
{
  return !reads_socket (channel) && do_ring_spin (channel->ring, deadline);
}

gboolean
do_channel_has_pending (DoChannel *channel)
{
  return !reads_socket (channel) && (do_ring_is_readable (channel->ring) || has_ahead (channel));
}

void
do_channel_rearm (DoChannel *channel)
{
  if (channel->ring && !do_channel_is_inherited (channel))
    do_ring_rearm (channel->ring);
}

gboolean
do_channel_arm (DoChannel *channel)
{
  return channel->ring && !do_channel_is_inherited (channel) && do_ring_arm (channel->ring) &&
         !reads_socket (channel);
}

int
do_channel_get_doorbell_fd (DoChannel *channel)
{
  return channel->ring ? do_ring_get_doorbell_fd (channel->ring) : -1;
}

void
do_channel_ack_doorbell (DoChannel *channel)
{
  if (channel->ring && !do_channel_is_inherited (channel))
    do_ring_ack_doorbell (channel->ring);
}

int
do_poll_timeout (gint64 deadline)
{
  gint64 now;

  if (deadline < 0)
    return -1;
  now = g_get_monotonic_time ();
  return now >= deadline ? 0 : (int) MIN ((deadline - now + 999) / 1000, G_MAXINT);
}

gboolean
do_poll (struct pollfd *pfds, guint n_fds, gint64 deadline, GError **error)
{
  for (;;)
    {
      int r = poll (pfds, n_fds, do_poll_timeout (deadline));

      if (r > 0)
        return TRUE;
      if (r == 0)
        {
          g_set_error (error, DO_ERROR, DO_ERROR_TIMED_OUT,
                       "timed out waiting for the peer");
          return FALSE;
        }
      if (errno != EINTR)
        {
          int errsv = errno;
          g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "poll: %s", g_strerror (errsv));
          return FALSE;
        }
    }
}

static gboolean
wait_fd (int fd, short events, gint64 deadline, GError **error)
{
  struct pollfd pfd = { .fd = fd, .events = events };

  return do_poll (&pfd, 1, deadline, error);
}

gboolean
do_channel_wait_readable (DoChannel *channel, gint64 deadline, GError **error)
{
  if (check_inherited (channel, error))
    return FALSE;
  if (reads_socket (channel))
    return wait_fd (channel->fd, POLLIN, deadline, error);
  return do_ring_wait (channel->ring, channel->fd, deadline, error);
}

/* A sealed memfd holding the body, for the out-of-line path.  The body is
 * written with write(), not stored through a mapping: faulting in each new
 * shared page costs more than copying it.  A bulk body `(F..., A)` is
 * written as its prefix and its array's own bytes, so a large array the
 * caller made from its buffer is copied once, not first serialised anew.
 * Every body gets a fresh memfd: the write seal that lets the receiver use
 * it without copying also means it can never be written again. */
static int
body_memfd (GVariant *body, GError **error)
{
  g_autoptr(GVariant) array = NULL;
  g_autoptr(GVariant) prefix = do_wire_body_split (body, &array);
  GVariant *pieces[] = { prefix ? prefix : body, array };
  int fd = memfd_create ("porter-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (fd < 0)
    goto fail;
  for (guint i = 0; i < G_N_ELEMENTS (pieces) && pieces[i]; i++)
    {
      const guint8 *p = g_variant_get_data (pieces[i]);
      gsize n = g_variant_get_size (pieces[i]);

      while (n > 0)
        {
          ssize_t r = write (fd, p, n);

          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0)
            goto fail;
          p += r;
          n -= r;
        }
    }
  if (fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    goto fail;
  return fd;

fail:
  {
    int errsv = errno;
    if (fd >= 0)
      close (fd);
    g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                 "cannot put a %zu-byte body out of line: %s",
                 g_variant_get_size (body), g_strerror (errsv));
    return -1;
  }
}

/* Sends one packet (and its fds) on the socket.  Called with the send lock
 * held. */
static gboolean
send_packet_locked (DoChannel *channel, struct msghdr *mh, gint64 deadline, GError **error)
{
  for (;;)
    {
      ssize_t r = sendmsg (channel->fd, mh, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (r >= 0)
        return TRUE;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        {
          if (deadline == 0)
            {
              g_set_error (error, DO_ERROR, DO_ERROR_TIMED_OUT,
                           "the peer's queue is full");
              return FALSE;
            }
          if (!wait_fd (channel->fd, POLLOUT, deadline, error))
            return FALSE;
          continue;
        }
      if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN || errno == ECONNREFUSED)
        g_set_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED,
                     "the peer closed the connection");
      else
        {
          int errsv = errno;
          g_set_error (error, DO_ERROR,
                       errsv == EMSGSIZE || errsv == ETOOMANYREFS || errsv == ENOBUFS
                         ? DO_ERROR_LIMITS_EXCEEDED : DO_ERROR_FAILED,
                       "sendmsg: %s", g_strerror (errsv));
        }
      return FALSE;
    }
}

/* With a ring: a message that fits and carries no fds goes in the ring;
 * any other goes on the socket after a marker in the ring, so the peer
 * reads both paths in order.  A socket send that fails after its marker
 * went in shuts the channel down: the peer would wait for it forever.
 * Called with the send lock held. */
static gboolean
send_on_ring_locked (DoChannel *channel, const void *data, gsize size, struct msghdr *mh,
                     gint64 deadline, GError **error)
{
  gboolean ok;

  if (mh->msg_controllen == 0 &&
      size <= MIN (do_ring_get_max_message (channel->ring), DO_WIRE_MAX_PACKET))
    {
      gboolean wake = FALSE;

      ok = do_ring_push (channel->ring, data, size, deadline, channel->fd, &wake, error);
      /* A full socket is readable already; a dead peer is found by the
       * next receive.  Neither fails this send. */
      if (ok && wake)
        (void) send (channel->fd, (const char[]) { WAKE_BYTE }, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  else
    {
      ok = do_ring_push_marker (channel->ring, deadline, channel->fd, error);
      if (ok && !send_packet_locked (channel, mh, deadline, error))
        {
          shutdown (channel->fd, SHUT_RDWR);
          ok = FALSE;
        }
    }
  return ok;
}

gboolean
do_channel_send (DoChannel *channel,
                 DoMessage *msg,
                 gint64 deadline,
                 GError **error)
{
  DoWireBodyPlace place = DO_WIRE_BODY_INLINE;
  DoWirePiece pieces[DO_WIRE_MAX_PIECES];
  guint n_pieces = 0;
  guint8 small[SMALL_PACKET];
  g_autofree guint8 *large = NULL;
  union {
    char buf[CMSG_FDS_SPACE];
    struct cmsghdr align;
  } control;
  struct iovec iov;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  guint n_fds = msg->n_fds;
  int body_fd = -1;
  gboolean ok, locked = FALSE;
  gsize size;

  if (check_inherited (channel, error))
    return FALSE;
  if (g_variant_get_size (msg->body) > DO_WIRE_INLINE_MAX)
    {
      /* Lent under the lock, which it keeps until the packet is out: a
       * body lent is the one the peer reads next. */
      g_mutex_lock (&channel->send_lock);
      n_pieces = lend_body (channel, msg, pieces);
      locked = n_pieces > 0;
      if (locked)
        place = DO_WIRE_BODY_REMOTE;
      else
        {
          g_mutex_unlock (&channel->send_lock);
          place = DO_WIRE_BODY_MEMFD;
          body_fd = body_memfd (msg->body, error);
          if (body_fd < 0)
            return FALSE;
          n_fds++;
        }
    }
  size = do_wire_encode_into (msg, place, pieces, n_pieces, small, sizeof small);
  if (size > sizeof small)
    do_wire_encode_into (msg, place, pieces, n_pieces, large = g_malloc (size), size);
  iov.iov_base = large ? large : small;
  iov.iov_len = size;
  if (n_fds > 0)
    {
      struct cmsghdr *cm;

      memset (&control, 0, sizeof control);
      mh.msg_control = control.buf;
      mh.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      cm = CMSG_FIRSTHDR (&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      if (msg->n_fds)
        memcpy (CMSG_DATA (cm), msg->fds, sizeof (int) * msg->n_fds);
      if (body_fd >= 0)
        memcpy (CMSG_DATA (cm) + sizeof (int) * msg->n_fds, &body_fd, sizeof (int));
    }

  if (!locked)
    g_mutex_lock (&channel->send_lock);
  ok = channel->ring ? send_on_ring_locked (channel, iov.iov_base, size, &mh, deadline, error)
                     : send_packet_locked (channel, &mh, deadline, error);
  if (!ok && place == DO_WIRE_BODY_REMOTE)
    {
      /* Never sent: the peer will not read it. */
      atomic_store (&do_ring_read_control (channel->ring, TRUE)->state, DO_RING_READ_IDLE);
      channel_clear_lent (channel);
    }
  g_mutex_unlock (&channel->send_lock);
  if (body_fd >= 0)
    close (body_fd);
  if (ok && place == DO_WIRE_BODY_REMOTE && g_variant_get_size (msg->body) >= SPLIT_MIN)
    push_split (channel, pieces, n_pieces, g_variant_get_size (msg->body));
  return ok;
}

static DoMessage *
decode (DoChannel *channel, const guint8 *data, gsize len, int *fds, guint n_fds, GError **error)
{
  DoMessage *msg = do_wire_decode (data, len, fds, n_fds, channel->ring ? fetch_body : NULL,
                                   channel, error);

  if (msg && (msg->flags & DO_WIRE_FLAG_BODY_OOL) && channel->ring)
    can_read_peer (channel);
  return msg;
}

/* Receives one packet.  With a ring, a wake-up packet sets @woken and
 * returns NULL without an error. */
static DoMessage *
receive_socket_full (DoChannel *channel, gboolean block, gboolean *woken, GError **error)
{
  union {
    char buf[CMSG_FDS_SPACE + CMSG_CREDS_SPACE];
    struct cmsghdr align;
  } control;
  struct iovec iov;
  struct msghdr mh = {
    .msg_iov = &iov,
    .msg_iovlen = 1,
    .msg_control = control.buf,
    .msg_controllen = sizeof control.buf,
  };
  int fds[DO_WIRE_MAX_FDS + 1];
  guint n_fds = 0;
  DoCredentials creds = { 0, };
  gboolean have_creds = FALSE;
  ssize_t r;
  DoMessage *msg;

  iov.iov_base = channel->rbuf;
  iov.iov_len = DO_WIRE_MAX_PACKET;

  do
    r = recvmsg (channel->fd, &mh, (block ? 0 : MSG_DONTWAIT) | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);

  if (r < 0)
    {
      int errsv = errno;
      if (errsv == EAGAIN)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "no message");
      else if (errsv == ECONNRESET || errsv == ENOTCONN)
        g_set_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED, "the peer closed the connection");
      else
        g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "recvmsg: %s", g_strerror (errsv));
      return NULL;
    }

  for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm))
    {
      if (cm->cmsg_level != SOL_SOCKET)
        continue;
      if (cm->cmsg_type == SCM_RIGHTS)
        {
          guint n = (cm->cmsg_len - CMSG_LEN (0)) / sizeof (int);
          guint room = G_N_ELEMENTS (fds) - n_fds;
          int *in = (int *) CMSG_DATA (cm);

          for (guint i = 0; i < n; i++)
            {
              int fd;
              memcpy (&fd, in + i, sizeof fd);
              if (i < room)
                fds[n_fds++] = fd;
              else
                close (fd);
            }
          if (n > room)
            mh.msg_flags |= MSG_CTRUNC;
        }
      else if (cm->cmsg_type == SCM_CREDENTIALS &&
               cm->cmsg_len == CMSG_LEN (sizeof (struct ucred)))
        {
          struct ucred uc;
          memcpy (&uc, CMSG_DATA (cm), sizeof uc);
          creds.pid = uc.pid;
          creds.uid = uc.uid;
          creds.gid = uc.gid;
          have_creds = TRUE;
        }
    }

  if (r == 0 && n_fds == 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED, "the peer closed the connection");
      return NULL;
    }
  if (woken && r == 1 && n_fds == 0 && channel->rbuf[0] == WAKE_BYTE)
    {
      *woken = TRUE;
      return NULL;
    }
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
    {
      for (guint i = 0; i < n_fds; i++)
        close (fds[i]);
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   (mh.msg_flags & MSG_TRUNC) ? "message larger than %d bytes"
                                              : "too many file descriptors (limit %d)",
                   (mh.msg_flags & MSG_TRUNC) ? DO_WIRE_MAX_PACKET : DO_WIRE_MAX_FDS);
      return NULL;
    }

  msg = decode (channel, channel->rbuf, r, fds, n_fds, error);
  if (msg && have_creds)
    msg->creds = creds;
  return msg;
}

static DoMessage *
receive_socket (DoChannel *channel, GError **error)
{
  return receive_socket_full (channel, FALSE, NULL, error);
}

/* With a ring: the ring first; its marker sends us to the socket (an empty
 * ring still looks at the socket when it is readable, for EOF and
 * wake-ups).  A message read from the socket before its marker waits in
 * @ahead while the ring's records before the marker go first; one with no
 * marker at all is a protocol error.  @block: the consumer is armed on the
 * socket and found the ring empty, so block in recvmsg() until something
 * comes (a record pushed meanwhile comes with a wake-up). */
static DoMessage *
receive_ring (DoChannel *channel, gboolean socket_readable, gboolean block, GError **error)
{
  for (;;)
    {
      gboolean woken = FALSE;
      DoMessage *msg;
      gsize len;

      if (!block && (has_ahead (channel) || !g_atomic_int_get (&channel->socket_next)))
        switch (do_ring_pop (channel->ring, channel->rbuf, DO_WIRE_MAX_PACKET, &len, error))
          {
          case DO_RING_MESSAGE:
            msg = decode (channel, channel->rbuf, len, NULL, 0, error);
            if (msg)
              msg->creds = channel->ring_creds;
            return msg;
          case DO_RING_MARKER:
            if (has_ahead (channel))
              return g_atomic_pointer_exchange (&channel->ahead, NULL);
            g_atomic_int_set (&channel->socket_next, TRUE);
            break;
          case DO_RING_EMPTY:
            if (has_ahead (channel))
              {
                g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                             "a message came on the socket without its marker in the ring");
                return NULL;
              }
            if (!socket_readable)
              {
                /* Nothing in the ring, and the caller saw nothing on the
                 * socket: no system call for it. */
                g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                                     "nothing to receive");
                return NULL;
              }
            break;
          case DO_RING_ERROR:
          default:
            return NULL;
          }

      msg = receive_socket_full (channel, block, &woken, error);
      if (woken)
        {
          /* Awake: look at the ring again (a marker's message follows its
           * wake-ups), then drain further wake-ups without blocking. */
          do_ring_set_awake (channel->ring);
          if (!g_atomic_int_get (&channel->socket_next))
            block = FALSE;
          socket_readable = TRUE;
          continue;
        }
      if (!msg)
        return NULL;
      if (g_atomic_int_get (&channel->socket_next))
        {
          g_atomic_int_set (&channel->socket_next, FALSE);
          return msg;
        }
      g_atomic_pointer_set (&channel->ahead, msg);
      block = socket_readable = FALSE;
    }
}

DoMessage *
do_channel_receive_full (DoChannel *channel, gboolean socket_readable, GError **error)
{
  if (check_inherited (channel, error))
    return NULL;
  if (!channel->rbuf)
    channel->rbuf = g_malloc (DO_WIRE_MAX_PACKET);
  return channel->ring ? receive_ring (channel, socket_readable, FALSE, error)
                       : receive_socket (channel, error);
}

DoMessage *
do_channel_receive_blocking (DoChannel *channel, gint timeout_ms, GError **error)
{
  if (check_inherited (channel, error))
    return NULL;
  if (!channel->rbuf)
    channel->rbuf = g_malloc (DO_WIRE_MAX_PACKET);
  /* With a ring: spin first; block only once armed on the socket with the
   * ring still empty (a marker already read means its message comes). */
  if (channel->ring && !reads_socket (channel) &&
      (has_ahead (channel) || do_ring_spin (channel->ring, -1) ||
       do_ring_arm_socket (channel->ring)))
    return receive_ring (channel, FALSE, FALSE, error);
  if (!channel->blocking_ok)
    {
      int flags = fcntl (channel->fd, F_GETFL);

      if (flags < 0 || fcntl (channel->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return do_channel_receive_full (channel, TRUE, error);
      channel->blocking_ok = TRUE;
    }
  if (timeout_ms < 0)
    timeout_ms = 0;
  if (timeout_ms != channel->rcvtimeo_ms)
    {
      struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

      if (setsockopt (channel->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        return do_channel_receive_full (channel, TRUE, error);
      channel->rcvtimeo_ms = timeout_ms;
    }
  return channel->ring ? receive_ring (channel, FALSE, TRUE, error)
                       : receive_socket_full (channel, TRUE, NULL, error);
}

DoMessage *
do_channel_receive (DoChannel *channel, GError **error)
{
  return do_channel_receive_full (channel, TRUE, error);
}
