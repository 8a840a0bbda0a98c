/* Porter — libdo: shared-memory rings (layout and protocol in
 * do-ring-private.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-ring-private.h"
#include "do-channel-private.h"
#include "do-error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RING_MAGIC 0x474e5250u /* "PRNG" */
#define RING_VERSION 3u
#define HEADER_SIZE 4096u
#define CACHE_LINE 64

#define RECORD_MESSAGE 1u
#define RECORD_MARKER 2u

/* Spinning: a spin that finds a record sets the budget to twice the wait
 * it saw (the peer's answer time, with room), at most MAX_SPIN_NS (a few
 * sleep-and-wakes: a peer that slept must be caught once for both sides to
 * spin again) if that is more; one that finds nothing shrinks it by a
 * quarter.  A budget
 * under MIN_SPIN_NS is 0, and then every PROBE_EVERY-th wait spins
 * PROBE_SPIN_NS to find out whether the peer got fast again. */
#define MAX_SPIN_NS 50000
#define MIN_SPIN_NS 500
#define PROBE_SPIN_NS MAX_SPIN_NS
#define PROBE_EVERY 64

/* One direction's control words, in the shared page.  Producer-written and
 * consumer-written words sit on different cache lines, and the consumer's
 * flag, which changes seldom but is read at every push, on a line of its
 * own, away from the tail, which changes at every pop. */
typedef struct {
  _Atomic guint32 head;              /* producer: bytes written */
  _Atomic guint32 producer_waiting;  /* producer: 1 while it sleeps for room */
  _Atomic gint32 producer_cpu;       /* producer: CPU of its last push (a hint) */
  guint8 pad0[CACHE_LINE - 12];
  _Atomic guint32 tail;              /* consumer: bytes read */
  guint8 pad1[CACHE_LINE - 4];
  _Atomic guint32 consumer_sleeping; /* consumer: a DoRingSleep */
  guint8 pad2[CACHE_LINE - 4];
} RingControl;

typedef struct {
  guint32 magic;        /* written once by the creator, read once on attach */
  guint32 version;
  guint32 ring_size;
  guint32 header_size;
  guint8 pad[CACHE_LINE - 16];
  RingControl control[2];
  DoRingReadControl read[2];
} SharedHeader;
G_STATIC_ASSERT (sizeof (SharedHeader) <= HEADER_SIZE);

typedef struct {
  guint32 len;
  guint32 kind;
} RecordHeader;
G_STATIC_ASSERT (sizeof (RecordHeader) == 8);

/* What the consumer does while it does not spin, so how to wake it. */
typedef enum {
  AWAKE = 0,       /* it spins, or works through what a spin found */
  ON_DOORBELL = 1, /* asleep in poll() on its doorbell */
  ON_SOCKET = 2,   /* blocked in recvmsg() on the socket: wake it there */
} DoRingSleep;

struct _DoRing {
  gint ref_count;        /* (atomic) */
  guint8 *map;
  gsize map_size;
  guint32 size;          /* private copies: never read from the page again */
  guint32 mask;
  int fds[DO_RING_N_FDS];

  /* producing: used under the caller's send lock */
  RingControl *tx;
  guint8 *tx_data;
  guint32 tx_head;
  guint32 tx_tail;       /* the consumer's tail when we last looked */
  gint32 tx_cpu;
  int tx_doorbell;       /* the peer's data doorbell: we ring it */
  int tx_space;          /* our space doorbell: we sleep on it */
  gboolean tx_woke;      /* a socket wake-up went out at tx_wake_tail ... */
  guint32 tx_wake_tail;
  guint64 tx_since_wake; /* ... and this many bytes were pushed since */

  DoRingReadControl *tx_read;  /* the peer reads our bodies */
  DoRingReadControl *rx_read;  /* we read the peer's */

  /* consuming: popped under the caller's lock */
  RingControl *rx;
  guint8 *rx_data;
  _Atomic guint32 rx_tail;
  int rx_doorbell;       /* our data doorbell */
  int rx_space;          /* the peer's space doorbell */

  atomic_int broken;
  atomic_int spin_ns;    /* the adaptive budget */
  atomic_uint spin_calls;
};

static inline guint32
align8 (guint32 n)
{
  return (n + 7u) & ~7u;
}

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

/* The store half of a Dekker pairing (store ours, fence, load the peer's):
 * a sequentially consistent fence rather than a sequentially consistent
 * store, which x86 makes a locked exchange on the word itself.  The peer
 * polls that word's cache line, and a locked instruction on a line
 * another core keeps reading cost 0.2 µs per push here; the fence locks
 * only our stack. */
static inline void
store_then_fence (_Atomic guint32 *word, guint32 value)
{
  atomic_store_explicit (word, value, memory_order_release);
  atomic_thread_fence (memory_order_seq_cst);
}

static inline gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static gboolean
valid_size (guint32 size)
{
  return size >= DO_RING_MIN_SIZE && size <= DO_RING_MAX_SIZE && (size & (size - 1)) == 0;
}

guint32
do_ring_configured_size (void)
{
  const char *no = g_getenv ("PORTER_NO_SHM");
  const char *size = g_getenv ("PORTER_SHM_RING_SIZE");
  guint64 value;

  if (no && g_strcmp0 (no, "0") != 0 && *no)
    return 0;
  if (size && g_ascii_string_to_unsigned (size, 10, DO_RING_MIN_SIZE, DO_RING_MAX_SIZE,
                                          &value, NULL) &&
      valid_size ((guint32) value))
    return (guint32) value;
  return DO_RING_DEFAULT_SIZE;
}

static void
close_fds (int *fds, guint n)
{
  for (guint i = 0; i < n; i++)
    if (fds[i] >= 0)
      {
        close (fds[i]);
        fds[i] = -1;
      }
}

/* Sets up the private view; @side 0 is the creator. */
static DoRing *
ring_wrap (guint8 *map, guint32 size, int fds[DO_RING_N_FDS], guint side)
{
  DoRing *ring = g_new0 (DoRing, 1);
  SharedHeader *h = (SharedHeader *) map;
  guint other = 1 - side;

  ring->ref_count = 1;
  ring->map = map;
  ring->map_size = HEADER_SIZE + 2 * (gsize) size;
  ring->size = size;
  ring->mask = size - 1;
  memcpy (ring->fds, fds, sizeof ring->fds);

  ring->tx = &h->control[side];
  ring->tx_read = &h->read[side];
  ring->rx_read = &h->read[other];
  ring->tx_data = map + HEADER_SIZE + (gsize) side * size;
  ring->tx_doorbell = fds[1 + 2 * side];
  ring->tx_space = fds[2 + 2 * side];
  ring->tx_head = atomic_load (&ring->tx->head);   /* 0 on a fresh ring */
  ring->tx_tail = atomic_load (&ring->tx->tail);
  ring->tx_cpu = -1;

  ring->rx = &h->control[other];
  ring->rx_data = map + HEADER_SIZE + (gsize) other * size;
  ring->rx_doorbell = fds[1 + 2 * other];
  ring->rx_space = fds[2 + 2 * other];
  atomic_init (&ring->rx_tail, atomic_load (&ring->rx->tail));
  atomic_init (&ring->spin_ns, MAX_SPIN_NS);
  return ring;
}

DoRing *
do_ring_new (guint32 ring_size, GError **error)
{
  int fds[DO_RING_N_FDS] = { -1, -1, -1, -1, -1 };
  gsize total = HEADER_SIZE + 2 * (gsize) ring_size;
  SharedHeader *h;
  void *map = MAP_FAILED;

  if (!valid_size (ring_size))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "ring size %u is not a power of two in [%u, %u]",
                   ring_size, DO_RING_MIN_SIZE, DO_RING_MAX_SIZE);
      return NULL;
    }
  fds[0] = memfd_create ("porter-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fds[0] < 0 || ftruncate (fds[0], total) < 0)
    goto fail;
  map = mmap (NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
  if (map == MAP_FAILED)
    goto fail;
  if (fcntl (fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
    goto fail;
  for (guint i = 1; i < DO_RING_N_FDS; i++)
    if ((fds[i] = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
      goto fail;

  h = map;
  h->magic = RING_MAGIC;
  h->version = RING_VERSION;
  h->ring_size = ring_size;
  h->header_size = HEADER_SIZE;
  for (guint i = 0; i < 2; i++)
    {
      atomic_store (&h->control[i].consumer_sleeping, ON_DOORBELL);
      atomic_store (&h->control[i].producer_cpu, -1);  /* not pushed yet */
    }
  return ring_wrap (map, ring_size, fds, 0);

fail:
  {
    int errsv = errno;

    if (map != MAP_FAILED)
      munmap (map, total);
    close_fds (fds, DO_RING_N_FDS);
    g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                 "cannot create the shared ring: %s", g_strerror (errsv));
    return NULL;
  }
}

gboolean
do_ring_dup_fds (DoRing *ring, int fds[DO_RING_N_FDS], GError **error)
{
  for (guint i = 0; i < DO_RING_N_FDS; i++)
    {
      fds[i] = fcntl (ring->fds[i], F_DUPFD_CLOEXEC, 3);
      if (fds[i] < 0)
        {
          int errsv = errno;

          close_fds (fds, i);
          g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "dup: %s", g_strerror (errsv));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
is_eventfd (int fd)
{
  char path[64], target[64];
  ssize_t n;

  g_snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  n = readlink (path, target, sizeof target - 1);
  if (n < 0)
    return FALSE;
  target[n] = '\0';
  return strcmp (target, "anon_inode:[eventfd]") == 0;
}

DoRing *
do_ring_attach (int *fds, guint n_fds, GError **error)
{
  int own[DO_RING_N_FDS];
  struct stat st;
  int seals;
  void *map;
  SharedHeader header;
  const char *why = NULL;

  if (n_fds != DO_RING_N_FDS)
    {
      close_fds (fds, n_fds);
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "a ring comes with %d file descriptors, not %u", DO_RING_N_FDS, n_fds);
      return NULL;
    }
  memcpy (own, fds, sizeof own);
  for (guint i = 0; i < n_fds; i++)
    fds[i] = -1;

  seals = fcntl (own[0], F_GET_SEALS);
  if (fstat (own[0], &st) < 0 || !S_ISREG (st.st_mode))
    why = "the ring is not a memfd";
  else if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    why = "the ring's size is not sealed";
  else if (st.st_size < (off_t) (HEADER_SIZE + 2 * DO_RING_MIN_SIZE) ||
           st.st_size > (off_t) (HEADER_SIZE + 2 * (gsize) DO_RING_MAX_SIZE))
    why = "the ring's memfd has a bad size";
  for (guint i = 1; i < DO_RING_N_FDS && !why; i++)
    if (!is_eventfd (own[i]) ||
        fcntl (own[i], F_SETFL, fcntl (own[i], F_GETFL) | O_NONBLOCK) < 0)
      why = "a ring doorbell is not an eventfd";
  if (why)
    {
      close_fds (own, DO_RING_N_FDS);
      g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL, why);
      return NULL;
    }

  map = mmap (NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, own[0], 0);
  if (map == MAP_FAILED)
    {
      int errsv = errno;

      close_fds (own, DO_RING_N_FDS);
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "cannot map the ring: %s", g_strerror (errsv));
      return NULL;
    }
  /* One read of the header; the copies are all that is used afterwards. */
  memcpy (&header, map, sizeof header);
  if (header.magic != RING_MAGIC || header.version != RING_VERSION ||
      header.header_size != HEADER_SIZE || !valid_size (header.ring_size) ||
      (off_t) (HEADER_SIZE + 2 * (gsize) header.ring_size) != st.st_size)
    {
      munmap (map, st.st_size);
      close_fds (own, DO_RING_N_FDS);
      g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL,
                           "the ring's header is not one this version understands");
      return NULL;
    }
  return ring_wrap (map, header.ring_size, own, 1);
}

DoRing *
do_ring_ref (DoRing *ring)
{
  g_atomic_int_inc (&ring->ref_count);
  return ring;
}

void
do_ring_unref (DoRing *ring)
{
  if (ring == NULL || !g_atomic_int_dec_and_test (&ring->ref_count))
    return;
  munmap (ring->map, ring->map_size);
  close_fds (ring->fds, DO_RING_N_FDS);
  g_free (ring);
}

guint32
do_ring_get_size (DoRing *ring)
{
  return ring->size;
}

gsize
do_ring_get_max_message (DoRing *ring)
{
  return ring->size / 2 - sizeof (RecordHeader);
}

DoRingReadControl *
do_ring_read_control (DoRing *ring, gboolean ours)
{
  return ours ? ring->tx_read : ring->rx_read;
}

static gboolean
ring_broken (DoRing *ring, const char *why, GError **error)
{
  atomic_store (&ring->broken, 1);
  g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
               "the peer corrupted the shared ring: %s", why);
  return FALSE;
}

static DoRingRecord
pop_broken (DoRing *ring, const char *why, GError **error)
{
  ring_broken (ring, why, error);
  return DO_RING_ERROR;
}

static gboolean
check_broken (DoRing *ring, GError **error)
{
  if (!atomic_load_explicit (&ring->broken, memory_order_relaxed))
    return TRUE;
  g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL, "the shared ring is broken");
  return FALSE;
}

static void
ring_doorbell (int fd)
{
  /* EAGAIN (a saturated counter) still leaves the doorbell readable. */
  if (eventfd_write (fd, 1) < 0 && errno != EAGAIN)
    g_debug ("ringing a doorbell: %s", g_strerror (errno));
}

static void
drain_doorbell (int fd)
{
  eventfd_t value;

  (void) eventfd_read (fd, &value);
}

/* Sleeps until the consumer made room, @deadline, or @hangup_fd hangs up. */
static gboolean
wait_for_room (DoRing *ring, guint32 record, gint64 deadline, int hangup_fd, GError **error)
{
  struct pollfd pfd[2] = {
    { .fd = ring->tx_space, .events = POLLIN },
    { .fd = hangup_fd, .events = 0 },
  };
  gboolean ready;

  store_then_fence (&ring->tx->producer_waiting, 1);
  if (ring->size - (ring->tx_head - atomic_load_explicit (&ring->tx->tail, memory_order_acquire)) >=
      record)
    {
      atomic_store (&ring->tx->producer_waiting, 0);
      return TRUE;
    }
  ready = do_poll (pfd, hangup_fd >= 0 ? 2 : 1, deadline, error);
  atomic_store (&ring->tx->producer_waiting, 0);
  if (!ready)
    return FALSE;
  if (pfd[0].revents & POLLIN)
    drain_doorbell (ring->tx_space);
  if (hangup_fd >= 0 && (pfd[1].revents & (POLLHUP | POLLERR | POLLNVAL)))
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_CONNECTION_DIED,
                           "the peer closed the connection");
      return FALSE;
    }
  return TRUE;
}

static void
copy_in (DoRing *ring, guint32 pos, const void *data, gsize len)
{
  guint32 start = pos & ring->mask;
  gsize first = MIN (len, (gsize) (ring->size - start));

  memcpy (ring->tx_data + start, data, first);
  memcpy (ring->tx_data, (const guint8 *) data + first, len - first);
}

/* Whether the consumer needs a wake-up on the socket for the record of
 * @record bytes we just pushed.  Our last wake-up went out for a record
 * the consumer reads right after it: while its tail is still at that
 * record's start, that wake-up is unread (or read, and the consumer is
 * about to take the record, awake: it reads up to the head before it
 * sleeps again), and no other is needed.  The record's start, not the tail
 * seen now: a consumer may already have taken the record (its arm found
 * it), and then reads that wake-up with nothing to take, and sleeps again.
 * The byte count rules out a tail that went round to the same value. */
void (*_do_ring_test_before_wake) (DoRing *ring);

static gboolean
wake_on_socket (DoRing *ring, guint32 record)
{
  guint32 tail = atomic_load_explicit (&ring->tx->tail, memory_order_relaxed);
  gboolean pending = ring->tx_woke && tail == ring->tx_wake_tail &&
                     ring->tx_since_wake < ring->size;

  ring->tx_since_wake += record;
  if (pending)
    return FALSE;
  ring->tx_woke = TRUE;
  ring->tx_wake_tail = ring->tx_head - record;
  ring->tx_since_wake = record;
  return TRUE;
}

static gboolean
push_record (DoRing *ring, guint32 kind, const void *data, gsize len,
             gint64 deadline, int hangup_fd, gboolean *wake_socket, GError **error)
{
  RecordHeader rh = { .len = (guint32) len, .kind = kind };
  guint32 record;
  gint32 cpu;

  if (len > do_ring_get_max_message (ring))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "a %zu-byte message does not fit a %u-byte ring", len, ring->size);
      return FALSE;
    }
  record = sizeof rh + align8 ((guint32) len);
  if (!check_broken (ring, error))
    return FALSE;
  /* The tail is read again only when the last one seen leaves no room:
   * its cache line moves at every pop. */
  while (ring->size - (ring->tx_head - ring->tx_tail) < record)
    {
      guint32 used;

      if (!check_broken (ring, error))
        return FALSE;
      ring->tx_tail = atomic_load_explicit (&ring->tx->tail, memory_order_acquire);
      used = ring->tx_head - ring->tx_tail;
      if (used > ring->size || (used & 7) != 0)
        return ring_broken (ring, "its tail is out of range", error);
      if (ring->size - used >= record)
        break;
      if (deadline == 0)
        {
          g_set_error_literal (error, DO_ERROR, DO_ERROR_TIMED_OUT, "the peer's ring is full");
          return FALSE;
        }
      if (!wait_for_room (ring, record, deadline, hangup_fd, error))
        return FALSE;
    }

  /* Headers are 8-aligned and never straddle the end. */
  memcpy (ring->tx_data + (ring->tx_head & ring->mask), &rh, sizeof rh);
  if (len > 0)
    copy_in (ring, ring->tx_head + sizeof rh, data, len);
  ring->tx_head += record;
  cpu = sched_getcpu ();
  if (cpu != ring->tx_cpu)
    {
      ring->tx_cpu = cpu;
      atomic_store_explicit (&ring->tx->producer_cpu, cpu, memory_order_relaxed);
    }
  /* Publish, then look at the flag: with the consumer's store-flag,
   * fence, load-head, one of us sees the other. */
  store_then_fence (&ring->tx->head, ring->tx_head);
  switch (atomic_load_explicit (&ring->tx->consumer_sleeping, memory_order_relaxed))
    {
    case AWAKE:
      ring->tx_woke = FALSE;
      break;
    case ON_SOCKET:
      if (wake_socket)
        {
          if (G_UNLIKELY (_do_ring_test_before_wake))
            _do_ring_test_before_wake (ring);
          *wake_socket = wake_on_socket (ring, record);
          break;
        }
      G_GNUC_FALLTHROUGH;
    default:  /* ON_DOORBELL, or garbage: ring */
      ring_doorbell (ring->tx_doorbell);
    }
  return TRUE;
}

gboolean
do_ring_push (DoRing *ring, const void *data, gsize len, gint64 deadline,
              int hangup_fd, gboolean *wake_socket, GError **error)
{
  g_return_val_if_fail (ring != NULL, FALSE);
  g_return_val_if_fail (data != NULL && len > 0, FALSE);
  if (wake_socket)
    *wake_socket = FALSE;
  return push_record (ring, RECORD_MESSAGE, data, len, deadline, hangup_fd, wake_socket, error);
}

gboolean
do_ring_push_marker (DoRing *ring, gint64 deadline, int hangup_fd, GError **error)
{
  gboolean on_socket;  /* the message on the socket wakes a consumer there */

  g_return_val_if_fail (ring != NULL, FALSE);
  return push_record (ring, RECORD_MARKER, NULL, 0, deadline, hangup_fd, &on_socket, error);
}

DoRingRecord
do_ring_pop (DoRing *ring, guint8 *buf, gsize buf_size, gsize *len, GError **error)
{
  guint32 tail = atomic_load_explicit (&ring->rx_tail, memory_order_relaxed);
  guint32 used, start, record;
  gsize first;
  RecordHeader rh;

  if (!check_broken (ring, error))
    return DO_RING_ERROR;
  used = atomic_load_explicit (&ring->rx->head, memory_order_acquire) - tail;
  if (used == 0)
    return DO_RING_EMPTY;
  if (used > ring->size || used < sizeof rh || (used & 7) != 0)
    return pop_broken (ring, "its head is out of range", error);

  /* Every field is read once from the page, then checked. */
  memcpy (&rh, ring->rx_data + (tail & ring->mask), sizeof rh);
  if (rh.kind == RECORD_MARKER ? rh.len != 0
      : rh.kind != RECORD_MESSAGE || rh.len == 0 || rh.len > do_ring_get_max_message (ring) ||
        rh.len > buf_size)
    return pop_broken (ring, "a record has a bad kind or length", error);
  record = sizeof rh + align8 (rh.len);
  if (record > used)
    return pop_broken (ring, "a record runs past its head", error);

  start = (tail + sizeof rh) & ring->mask;
  first = MIN ((gsize) rh.len, (gsize) (ring->size - start));
  memcpy (buf, ring->rx_data + start, first);
  memcpy (buf + first, ring->rx_data, rh.len - first);
  *len = rh.len;

  atomic_store_explicit (&ring->rx_tail, tail + record, memory_order_relaxed);
  store_then_fence (&ring->rx->tail, tail + record);
  if (atomic_load_explicit (&ring->rx->producer_waiting, memory_order_relaxed))
    ring_doorbell (ring->rx_space);
  return rh.kind == RECORD_MARKER ? DO_RING_MARKER : DO_RING_MESSAGE;
}

gboolean
do_ring_is_readable (DoRing *ring)
{
  return atomic_load_explicit (&ring->rx->head, memory_order_acquire) !=
         atomic_load_explicit (&ring->rx_tail, memory_order_relaxed);
}

void
do_ring_set_awake (DoRing *ring)
{
  /* Written only when it changes: the producer reads it at every push. */
  if (atomic_load_explicit (&ring->rx->consumer_sleeping, memory_order_relaxed) != AWAKE)
    atomic_store_explicit (&ring->rx->consumer_sleeping, AWAKE, memory_order_relaxed);
}

/* Back to "asleep": from here on the producer wakes us.  Then look again:
 * with a record there we stay awake. */
static gboolean
arm (DoRing *ring, DoRingSleep how)
{
  store_then_fence (&ring->rx->consumer_sleeping, how);
  if (atomic_load_explicit (&ring->rx->head, memory_order_acquire) ==
      atomic_load_explicit (&ring->rx_tail, memory_order_relaxed))
    return FALSE;
  do_ring_set_awake (ring);
  return TRUE;
}

gboolean
do_ring_arm (DoRing *ring)
{
  return arm (ring, ON_DOORBELL);
}

gboolean
do_ring_arm_socket (DoRing *ring)
{
  return arm (ring, ON_SOCKET);
}

void
do_ring_rearm (DoRing *ring)
{
  store_then_fence (&ring->rx->consumer_sleeping, ON_DOORBELL);
}

gboolean
do_ring_spin (DoRing *ring, gint64 deadline)
{
  gint budget = atomic_load_explicit (&ring->spin_ns, memory_order_relaxed);
  guint calls = atomic_fetch_add_explicit (&ring->spin_calls, 1, memory_order_relaxed);
  gint64 start, end, now;
  gboolean found = FALSE;
  int cpu;

  if (do_ring_is_readable (ring))
    return TRUE;
  if (budget == 0)
    {
      if (calls % PROBE_EVERY != 0)
        return do_ring_arm (ring);
      budget = PROBE_SPIN_NS;
    }
  /* The peer last ran here: spinning would only keep it off the CPU. */
  cpu = sched_getcpu ();
  if (cpu >= 0 && cpu == atomic_load_explicit (&ring->rx->producer_cpu, memory_order_relaxed))
    return do_ring_arm (ring);

  do_ring_set_awake (ring);
  start = now = now_ns ();
  end = start + budget;
  if (deadline >= 0)
    end = MIN (end, deadline * 1000);
  /* The head is looked at after every pause, the clock less often. */
  while (!found)
    {
      for (guint i = 0; i < 16 && !found; i++)
        {
          cpu_relax ();
          found = do_ring_is_readable (ring);
        }
      now = now_ns ();
      if (now >= end)
        break;
    }
  if (found)
    budget = CLAMP (MAX (budget, 2 * (now - start)), MIN_SPIN_NS, MAX_SPIN_NS);
  else
    budget = budget - budget / 4 < MIN_SPIN_NS ? 0 : budget - budget / 4;
  atomic_store_explicit (&ring->spin_ns, budget, memory_order_relaxed);
  /* Found: stay awake (unrung) while the caller works through it. */
  return found || do_ring_arm (ring);
}

int
do_ring_get_doorbell_fd (DoRing *ring)
{
  return ring->rx_doorbell;
}

void
do_ring_ack_doorbell (DoRing *ring)
{
  drain_doorbell (ring->rx_doorbell);
}

gboolean
do_ring_wait (DoRing *ring, int fd, gint64 deadline, GError **error)
{
  struct pollfd pfd[2] = {
    { .fd = ring->rx_doorbell, .events = POLLIN },
    { .fd = fd, .events = POLLIN },
  };

  if (do_ring_spin (ring, deadline))
    {
      do_ring_rearm (ring);  /* our caller may sleep some other way next */
      return TRUE;
    }
  if (!do_poll (pfd, fd >= 0 ? 2 : 1, deadline, error))
    return FALSE;
  if (pfd[0].revents & POLLIN)
    do_ring_ack_doorbell (ring);
  return TRUE;
}
