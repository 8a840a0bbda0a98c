/* Porter — libdo: direct reads (see do-direct-private.h).
 *
 * A body too big for a packet goes in a sealed memfd:
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
 * try, so we neither read the peer nor lend to it).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-direct-private.h"
#include "do-error.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

struct _DoDirect {
  DoRing *ring;
  pid_t pid;            /* the peer's */
  guint8 probe[16];     /* random; the peer reads it to learn it can read us */
  guint8 challenge[16]; /* the peer writes our probe here to show it can
                         * write us */
  gsize peer_tested;    /* (atomic) 0, then 1 + whether we can read the peer */
  int peer_pidfd;       /* the peer, once we could read it; else -1 */
  GVariant *lent[DO_WIRE_MAX_PIECES]; /* our body the peer reads or read;
                                       * lending is serialised by the caller */
  gint lending;         /* (atomic) lent[] holds a body */
};

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

/* Copies bytes [@from, @to) of a body between @pieces, where the sender
 * keeps it, and @flat + @from, where the receiver puts it.  One of them is
 * in the memory of @pid: @pieces when we read (the peer sends), @flat when
 * we @push (we send).  Returns 0 or an errno. */
static int
copy_range (pid_t pid, gboolean push, const DoWirePiece *pieces, guint n_pieces,
            guint8 *flat, gsize from, gsize to)
{
  while (from < to)
    {
      struct iovec dest = { flat + from, to - from }, source[DO_WIRE_MAX_PIECES];
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
          source[n].iov_base = (guint8 *) (gsize) pieces[i].addr + skip;
          source[n].iov_len = MIN (pieces[i].len - skip, left);
          left -= source[n++].iov_len;
          skip = 0;
        }
      /* A call may stop short, at a page it cannot reach: go on from
       * there until it copies nothing. */
      r = push ? process_vm_writev (pid, source, n, &dest, 1, 0)
               : process_vm_readv (pid, &dest, 1, source, n, 0);
      if (r <= 0)
        return r < 0 ? errno : EFAULT;
      from += r;
    }
  return 0;
}

/* $PORTER_NO_DIRECT_READ=1, read when a large body needs it (so a test
 * may set it). */
static gboolean
turned_off (void)
{
  const char *off = g_getenv ("PORTER_NO_DIRECT_READ");

  return off && *off && strcmp (off, "0") != 0;
}

/* Can we read (and write) the peer's memory?  Tried once, when a body
 * first comes in a memfd or we first lend one. */
static gboolean
try_reading_peer (DoDirect *direct)
{
  pid_t pid = direct->pid;
  DoRingReadControl *peer = do_ring_read_control (direct->ring, FALSE);
  DoRingReadControl *ours = do_ring_read_control (direct->ring, TRUE);
  guint8 want[sizeof direct->probe], got[sizeof direct->probe];
  struct iovec local = { got, sizeof got }, remote;
  int pidfd;

  if (turned_off () || pid <= 0)
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
  direct->peer_pidfd = pidfd;
  atomic_store (&peer->reader_ok, 1);
  /* The same rights let us write it: show the peer, for pushes. */
  remote.iov_base = (void *) (gsize) ours->challenge_addr;
  local.iov_base = want;
  if (ours->challenge_addr <= G_MAXSIZE)
    (void) process_vm_writev (pid, &local, 1, &remote, 1, 0);
  return TRUE;
}

static gboolean
can_read_peer (DoDirect *direct)
{
  if (g_once_init_enter (&direct->peer_tested))
    g_once_init_leave (&direct->peer_tested, 1 + try_reading_peer (direct));
  return direct->peer_tested == 2;
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
finish_split (DoDirect *direct, DoRingReadControl *rc, const DoWirePiece *pieces,
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
        if (!pid_alive (direct->peer_pidfd))
          return ESRCH;
        if (g_get_monotonic_time () >= deadline)
          {
            *unsafe = TRUE;
            return ETIMEDOUT;
          }
        futex_wait (&rc->state, state, MIN (deadline, g_get_monotonic_time () + 10000));
      }
  return copy_range (direct->pid, FALSE, pieces, n_pieces, b->mem, split, len);
}

void (*_do_direct_test_split_offered) (DoRingReadControl *rc);

GBytes *
do_direct_fetch (gpointer data, const DoWirePiece *pieces, guint n_pieces, gsize len, GError **error)
{
  DoDirect *direct = data;
  DoRingReadControl *rc = do_ring_read_control (direct->ring, FALSE);
  guint32 posted = DO_RING_READ_POSTED;
  gboolean unsafe = FALSE;
  BodyBuffer *b;
  gsize split = len;
  int errsv;

  if (direct->peer_pidfd < 0 ||
      !atomic_compare_exchange_strong (&rc->state, &posted, DO_RING_READ_COPYING))
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL,
                           direct->peer_pidfd < 0
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
  if (len >= SPLIT_MIN && memcmp (direct->challenge, direct->probe, sizeof direct->probe) == 0)
    {
      split = len / 2;
      rc->dest_addr = (gsize) b->mem;
      rc->split = split;
      set_state (rc, DO_RING_READ_SPLIT);
      if (G_UNLIKELY (_do_direct_test_split_offered))
        _do_direct_test_split_offered (rc);
    }
  errsv = copy_range (direct->pid, FALSE, pieces, n_pieces, b->mem, 0, split);
  if (errsv == 0 && split < len)
    errsv = finish_split (direct, rc, pieces, n_pieces, b, split, len, &unsafe);
  if (errsv == 0 && !pid_alive (direct->peer_pidfd))
    errsv = ESRCH;
  set_state (rc, errsv == 0 ? DO_RING_READ_DONE : DO_RING_READ_FAILED);
  if (errsv != 0)
    {
      /* A peer still pushing into it would write into whatever reuses it:
       * never reused. */
      if (unsafe)
        {
          g_warning ("pid %d did not finish pushing its part of a body: its %zu bytes are lost",
                     direct->pid, len);
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

void
do_direct_push (DoDirect *direct, const DoWirePiece *pieces, guint n_pieces, gsize len)
{
  DoRingReadControl *rc = do_ring_read_control (direct->ring, TRUE);
  gint64 deadline = g_get_monotonic_time () + SPLIT_WAIT_US;
  guint32 state;
  guint64 dest, split;

  if (len < SPLIT_MIN || !can_read_peer (direct))
    return;
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
                   copy_range (direct->pid, TRUE, pieces, n_pieces,
                               (guint8 *) (gsize) dest, split, len) == 0
                   ? DO_RING_READ_PUSHED : DO_RING_READ_PUSH_FAILED);
}

/* Lenders that went (their channel did) while the peer might still read
 * their body: kept until it is done.  A peer that never is keeps them for
 * good; past MAX_ORPHANS, no body is lent any more. */
#define MAX_ORPHANS 8

G_LOCK_DEFINE_STATIC (orphans);
static GPtrArray *orphans;  /* of DoDirect */

static gboolean
still_reading (DoDirect *direct)
{
  DoRingRead state = atomic_load (&do_ring_read_control (direct->ring, TRUE)->state);

  return direct->lent[0] != NULL &&
         (state == DO_RING_READ_POSTED || state == DO_RING_READ_COPYING ||
          state == DO_RING_READ_SPLIT || state == DO_RING_READ_PUSHING ||
          state == DO_RING_READ_PUSHED || state == DO_RING_READ_PUSH_FAILED);
}

static void
clear_lent (DoDirect *direct)
{
  for (guint i = 0; i < DO_WIRE_MAX_PIECES; i++)
    g_clear_pointer (&direct->lent[i], g_variant_unref);
  g_atomic_int_set (&direct->lending, FALSE);
}

static void
direct_free (DoDirect *direct)
{
  clear_lent (direct);
  if (direct->peer_pidfd >= 0)
    close (direct->peer_pidfd);
  do_ring_unref (direct->ring);
  g_free (direct);
}

/* Frees the orphans the peers are done with; returns how many are left. */
static guint
reap_orphans (void)
{
  guint left;

  G_LOCK (orphans);
  for (guint i = 0; orphans && i < orphans->len;)
    {
      DoDirect *o = g_ptr_array_index (orphans, i);

      if (still_reading (o))
        i++;
      else
        {
          direct_free (o);
          g_ptr_array_remove_index_fast (orphans, i);
        }
    }
  left = orphans ? orphans->len : 0;
  G_UNLOCK (orphans);
  return left;
}

DoDirect *
do_direct_new (DoRing *ring, pid_t peer)
{
  DoDirect *direct = g_new0 (DoDirect, 1);
  DoRingReadControl *ours = do_ring_read_control (ring, TRUE);

  direct->ring = do_ring_ref (ring);
  direct->pid = peer;
  direct->peer_pidfd = -1;
  for (gsize i = 0; i < sizeof direct->probe; i += 4)
    {
      guint32 r = g_random_int ();
      memcpy (direct->probe + i, &r, 4);
    }
  ours->probe_addr = (gsize) direct->probe;
  memcpy (ours->probe, direct->probe, sizeof ours->probe);
  do_ring_read_control (ring, FALSE)->challenge_addr = (gsize) direct->challenge;
  return direct;
}

void
do_direct_free (DoDirect *direct, gboolean inherited)
{
  if (direct == NULL)
    return;
  if (!inherited && still_reading (direct))
    {
      G_LOCK (orphans);
      if (!orphans)
        orphans = g_ptr_array_new ();
      g_ptr_array_add (orphans, direct);
      G_UNLOCK (orphans);
      return;
    }
  direct_free (direct);
}

void
do_direct_try_peer (DoDirect *direct)
{
  can_read_peer (direct);
}

gboolean
do_direct_is_lending (DoDirect *direct)
{
  return g_atomic_int_get (&direct->lending);
}

void
do_direct_reclaim (DoDirect *direct)
{
  if (!still_reading (direct))
    clear_lent (direct);
}

guint
do_direct_lend (DoDirect *direct, DoMessage *msg, DoWirePiece pieces[DO_WIRE_MAX_PIECES])
{
  g_autoptr(GVariant) array = NULL;
  GVariant *prefix;
  guint n = 0;

  if (!msg->caller_waits || msg->kind != DO_MESSAGE_CALL || turned_off () ||
      g_variant_get_size (msg->body) > DO_WIRE_MAX_REMOTE_BODY ||
      !atomic_load (&do_ring_read_control (direct->ring, TRUE)->reader_ok) ||
      still_reading (direct) || reap_orphans () >= MAX_ORPHANS)
    return 0;
  /* Only the peer's rights over us matter here; ours over it, tried once,
   * let us push half of big bodies. */
  can_read_peer (direct);

  clear_lent (direct);
  prefix = do_wire_body_split (msg->body, &array);
  direct->lent[0] = prefix ? prefix : g_variant_ref (msg->body);
  direct->lent[1] = g_steal_pointer (&array);
  g_atomic_int_set (&direct->lending, TRUE);
  for (guint i = 0; i < DO_WIRE_MAX_PIECES && direct->lent[i]; i++)
    if (g_variant_get_size (direct->lent[i]) > 0)
      {
        pieces[n].addr = (gsize) g_variant_get_data (direct->lent[i]);
        pieces[n++].len = g_variant_get_size (direct->lent[i]);
      }
  atomic_store (&do_ring_read_control (direct->ring, TRUE)->state, DO_RING_READ_POSTED);
  return n;
}

void
do_direct_unlend (DoDirect *direct)
{
  atomic_store (&do_ring_read_control (direct->ring, TRUE)->state, DO_RING_READ_IDLE);
  clear_lent (direct);
}
