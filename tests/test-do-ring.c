/* Porter — tests for the shared-memory rings (libdo/do-ring.c).
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "libdo/do-ring-private.h"
#include "libdo/do-error.h"
#include "do-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMALL 4096u
#define TIMEOUT_US (10 * G_USEC_PER_SEC)

/* The shared layout, as do-ring.c lays it out (private; a test may poke it). */
#define HEADER_SIZE 4096
#define OFF_HEAD(r) (64 + 192 * (r))
#define OFF_WAITING(r) (64 + 192 * (r) + 4)
#define OFF_TAIL(r) (64 + 192 * (r) + 64)

typedef struct {
  DoRing *a;      /* creator: produces ring 0 */
  DoRing *b;      /* attached: produces ring 1 */
  guint8 *page;   /* a third, raw view for poking */
  gsize page_size;
} Pair;

static void
pair_init (Pair *p, guint32 size)
{
  g_autoptr(GError) error = NULL;
  int fds[DO_RING_N_FDS];

  p->a = do_ring_new (size, &error);
  g_assert_no_error (error);
  p->b = test_ring_attach_copy (p->a);
  g_assert_true (do_ring_dup_fds (p->a, fds, &error));
  p->page_size = HEADER_SIZE + 2 * (gsize) size;
  p->page = mmap (NULL, p->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
  g_assert_true (p->page != MAP_FAILED);
  for (guint i = 0; i < DO_RING_N_FDS; i++)
    close (fds[i]);
}

static void
pair_clear (Pair *p)
{
  g_clear_pointer (&p->a, do_ring_unref);
  g_clear_pointer (&p->b, do_ring_unref);
  munmap (p->page, p->page_size);
}

static void
fill (guint8 *buf, gsize len, guint32 seed)
{
  for (gsize i = 0; i < len; i++)
    buf[i] = (guint8) (seed * 31 + i);
}

/* Pops one MESSAGE and checks it is @len bytes made by fill(@seed). */
static void
expect_message (DoRing *ring, gsize len, guint32 seed)
{
  g_autoptr(GError) error = NULL;
  guint8 buf[SMALL], want[SMALL];
  gsize got = 0;

  g_assert_cmpint (do_ring_pop (ring, buf, sizeof buf, &got, &error), ==, DO_RING_MESSAGE);
  g_assert_no_error (error);
  fill (want, len, seed);
  g_assert_cmpmem (buf, got, want, len);
}

static void
push_seeded (DoRing *ring, gsize len, guint32 seed, gint64 deadline, GError **error)
{
  guint8 buf[SMALL];

  fill (buf, len, seed);
  do_ring_push (ring, buf, len, deadline, -1, NULL, error);
}

static gboolean
fd_readable_within (int fd, int timeout_ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  return poll (&pfd, 1, timeout_ms) == 1;
}

static gboolean
fd_readable (int fd)
{
  return fd_readable_within (fd, 0);
}

static void
test_basic (void)
{
  g_autoptr(GError) error = NULL;
  Pair p;
  guint8 buf[SMALL];
  gsize len;

  pair_init (&p, SMALL);
  g_assert_cmpuint (do_ring_get_size (p.b), ==, SMALL);
  g_assert_false (do_ring_is_readable (p.b));
  g_assert_cmpint (do_ring_pop (p.b, buf, sizeof buf, &len, &error), ==, DO_RING_EMPTY);

  push_seeded (p.a, 5, 1, 0, &error);
  g_assert_no_error (error);
  g_assert_true (do_ring_push_marker (p.a, 0, -1, &error));
  push_seeded (p.b, 100, 2, 0, &error);
  g_assert_no_error (error);

  g_assert_true (do_ring_is_readable (p.b));
  expect_message (p.b, 5, 1);
  g_assert_cmpint (do_ring_pop (p.b, buf, sizeof buf, &len, &error), ==, DO_RING_MARKER);
  g_assert_cmpint (do_ring_pop (p.b, buf, sizeof buf, &len, &error), ==, DO_RING_EMPTY);
  expect_message (p.a, 100, 2);
  g_assert_no_error (error);

  /* A consumer that was not spinning had its doorbell rung. */
  g_assert_true (fd_readable (do_ring_get_doorbell_fd (p.b)));
  do_ring_ack_doorbell (p.b);
  g_assert_false (fd_readable (do_ring_get_doorbell_fd (p.b)));
  pair_clear (&p);
}

static void
test_wrap_around (void)
{
  g_autoptr(GError) error = NULL;
  Pair p;
  guint32 pushed = 0, popped = 0;

  pair_init (&p, SMALL);
  /* Odd sizes, several in flight, wrapping the 4 KiB ring ~200 times. */
  while (popped < 4000)
    {
      while (pushed < popped + 5)
        {
          push_seeded (p.a, 1 + (pushed * 37) % 700, pushed, 0, &error);
          g_assert_no_error (error);
          pushed++;
        }
      expect_message (p.b, 1 + (popped * 37) % 700, popped);
      popped++;
    }
  pair_clear (&p);
}

static void
test_too_big (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *big = g_malloc0 (SMALL);
  Pair p;

  pair_init (&p, SMALL);
  g_assert_cmpuint (do_ring_get_max_message (p.a), ==, SMALL / 2 - 8);
  g_assert_false (do_ring_push (p.a, big, SMALL / 2, 0, -1, NULL, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED);
  g_clear_error (&error);
  g_assert_true (do_ring_push (p.a, big, SMALL / 2 - 8, 0, -1, NULL, &error));
  pair_clear (&p);
}

static guint
fill_ring (DoRing *ring, gsize len)
{
  g_autoptr(GError) error = NULL;
  guint n = 0;

  for (;;)
    {
      push_seeded (ring, len, n, 0, &error);
      if (error)
        break;
      n++;
    }
  g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
  return n;
}

static void
test_full_deadline (void)
{
  g_autoptr(GError) error = NULL;
  Pair p;
  guint n;
  gint64 start;

  pair_init (&p, SMALL);
  n = fill_ring (p.a, 100);
  g_assert_cmpuint (n, ==, SMALL / (8 + 104));

  start = g_get_monotonic_time ();
  push_seeded (p.a, 100, n, start + 20 * 1000, &error);
  g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 20 * 1000);
  g_clear_error (&error);

  /* Nothing half-written: the consumer sees exactly the @n messages, and
   * room comes back. */
  expect_message (p.b, 100, 0);
  push_seeded (p.a, 100, n, 0, &error);
  g_assert_no_error (error);
  for (guint i = 1; i <= n; i++)
    expect_message (p.b, 100, i);
  g_assert_false (do_ring_is_readable (p.b));
  pair_clear (&p);
}

#define N_BLOCKING 3000

static gpointer
producer_thread (gpointer data)
{
  DoRing *ring = data;
  GError *error = NULL;

  for (guint i = 0; i < N_BLOCKING && !error; i++)
    push_seeded (ring, 1 + (i * 13) % 900, i, g_get_monotonic_time () + TIMEOUT_US, &error);
  return error;
}

static void
test_full_blocks (void)
{
  Pair p;
  GThread *thread;
  GError *thread_error;

  pair_init (&p, SMALL);
  thread = g_thread_new ("producer", producer_thread, p.a);
  for (guint i = 0; i < N_BLOCKING; i++)
    {
      g_autoptr(GError) error = NULL;

      /* Now and then let the producer run into a full ring and sleep. */
      if (i % 500 == 0)
        {
          gint64 until = g_get_monotonic_time () + TIMEOUT_US;
          guint32 waiting = 0;

          while (!waiting && g_get_monotonic_time () < until)
            {
              g_thread_yield ();
              memcpy (&waiting, p.page + OFF_WAITING (0), sizeof waiting);
            }
          g_assert_cmpuint (waiting, ==, 1);
        }
      /* A wait may end on a stale doorbell: look again. */
      while (!do_ring_is_readable (p.b))
        g_assert_true (do_ring_wait (p.b, -1, g_get_monotonic_time () + TIMEOUT_US, &error));
      expect_message (p.b, 1 + (i * 13) % 900, i);
    }
  thread_error = g_thread_join (thread);
  g_assert_no_error (thread_error);
  g_assert_false (do_ring_is_readable (p.b));
  pair_clear (&p);
}

static void
expect_attach_fails (int *fds, guint n_fds)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (do_ring_attach (fds, n_fds, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  for (guint i = 0; i < n_fds; i++)
    g_assert_cmpint (fds[i], ==, -1);
}

static void
test_attach_rejects (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoRing) ring = do_ring_new (SMALL, &error);
  int fds[DO_RING_N_FDS], pipefd[2];
  guint32 bad_magic = 0xdeadbeef;

  g_assert_true (do_ring_dup_fds (ring, fds, &error));
  expect_attach_fails (fds, DO_RING_N_FDS - 1);
  close (fds[DO_RING_N_FDS - 1]);

  /* An unsealed memfd of the right size. */
  g_assert_true (do_ring_dup_fds (ring, fds, &error));
  close (fds[0]);
  fds[0] = memfd_create ("unsealed", MFD_CLOEXEC);
  g_assert_cmpint (ftruncate (fds[0], HEADER_SIZE + 2 * SMALL), ==, 0);
  expect_attach_fails (fds, DO_RING_N_FDS);

  /* A pipe for a doorbell. */
  g_assert_true (do_ring_dup_fds (ring, fds, &error));
  g_assert_cmpint (pipe2 (pipefd, O_CLOEXEC), ==, 0);
  close (fds[3]);
  fds[3] = pipefd[0];
  close (pipefd[1]);
  expect_attach_fails (fds, DO_RING_N_FDS);

  /* A sealed memfd whose header lies. */
  g_assert_true (do_ring_dup_fds (ring, fds, &error));
  g_assert_cmpint (pwrite (fds[0], &bad_magic, sizeof bad_magic, 0), ==, sizeof bad_magic);
  expect_attach_fails (fds, DO_RING_N_FDS);
}

/* Corruption of the indices and records, each caught by the next pop or
 * push, and sticky. */
static void
test_corrupt_fixed (void)
{
  const struct { guint off; guint32 value; } cases[] = {
    { OFF_HEAD (0), 3 },                          /* unaligned head */
    { OFF_HEAD (0), SMALL + 8 },                  /* more than a ring */
    { OFF_HEAD (0), 0xfffffff8u },                /* "negative" */
    { HEADER_SIZE, 0x7fffffff },                  /* record length */
    { HEADER_SIZE, 64 },                          /* record past the head */
    { HEADER_SIZE + 4, 99 },                      /* record kind */
    { OFF_TAIL (1), 12345 },                      /* tail seen by the producer */
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr(GError) error = NULL;
      guint8 buf[SMALL];
      gsize len;
      Pair p;

      pair_init (&p, SMALL);
      push_seeded (p.a, 8, 0, 0, &error);
      g_assert_no_error (error);
      memcpy (p.page + cases[c].off, &cases[c].value, sizeof (guint32));
      if (cases[c].off == OFF_TAIL (1))
        {
          /* The producer reads the tail again when it runs out of room. */
          for (guint i = 0; i <= SMALL / 16 && !error; i++)
            push_seeded (p.b, 8, 0, 0, &error);
        }
      else
        g_assert_cmpint (do_ring_pop (p.b, buf, sizeof buf, &len, &error), ==, DO_RING_ERROR);
      g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
      g_clear_error (&error);
      g_assert_cmpint (do_ring_pop (p.b, buf, sizeof buf, &len, &error), ==, DO_RING_ERROR);
      g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
      pair_clear (&p);
    }
}

/* Random, plausible-looking scribbles between pushes and pops: every call
 * either works or reports DO_ERROR_PROTOCOL / DO_ERROR_TIMED_OUT; ASan
 * checks that nothing reads or writes out of bounds. */
static void
test_corrupt_random (void)
{
  for (guint round = 0; round < 300; round++)
    {
      g_autoptr(GError) error = NULL;
      guint8 buf[SMALL];
      gsize len;
      Pair p;

      pair_init (&p, SMALL);
      for (guint step = 0; step < 200 && !error; step++)
        {
          guint32 value, off;

          switch (g_test_rand_int_range (0, 4))
            {
            case 0:
              push_seeded (p.a, g_test_rand_int_range (1, 300), step, 0, &error);
              if (!error)
                push_seeded (p.b, g_test_rand_int_range (1, 300), step, 0, &error);
              break;
            case 1:
              do_ring_pop (p.b, buf, sizeof buf, &len, &error);
              if (!error)
                do_ring_pop (p.a, buf, sizeof buf, &len, &error);
              break;
            case 2:
              /* An index moved by a few records, or anywhere. */
              off = g_test_rand_bit () ? OFF_HEAD (g_test_rand_int_range (0, 2))
                                       : OFF_TAIL (g_test_rand_int_range (0, 2));
              memcpy (&value, p.page + off, sizeof value);
              value = g_test_rand_bit () ? value + 8 * g_test_rand_int_range (-3, 4)
                                         : (guint32) g_test_rand_int ();
              memcpy (p.page + off, &value, sizeof value);
              break;
            default:
              /* A record header's length or kind, anywhere in the rings. */
              off = HEADER_SIZE + 8 * g_test_rand_int_range (0, 2 * SMALL / 8) +
                    4 * g_test_rand_int_range (0, 2);
              value = g_test_rand_bit () ? (guint32) g_test_rand_int_range (0, SMALL)
                                         : (guint32) g_test_rand_int_range (0, 4);
              memcpy (p.page + off, &value, sizeof value);
              break;
            }
          if (error && !g_error_matches (error, DO_ERROR, DO_ERROR_TIMED_OUT))
            g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
          if (error && error->code == DO_ERROR_TIMED_OUT)
            g_clear_error (&error);
        }
      pair_clear (&p);
    }
}

/* ---------------------------------------------------------------- */
/* Across processes */

#define N_ECHO 20000

/* The child echoes every message back until a marker comes. */
static G_NORETURN void
echo_child (int *fds)
{
  g_autoptr(GError) error = NULL;
  DoRing *ring = do_ring_attach (fds, DO_RING_N_FDS, &error);
  guint8 buf[SMALL];

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (!ring)
    _exit (2);
  for (;;)
    {
      gsize len;

      if (!do_ring_wait (ring, -1, g_get_monotonic_time () + TIMEOUT_US, &error))
        _exit (3);
      switch (do_ring_pop (ring, buf, sizeof buf, &len, &error))
        {
        case DO_RING_MESSAGE:
          if (!do_ring_push (ring, buf, len, g_get_monotonic_time () + TIMEOUT_US, -1, NULL, &error))
            _exit (4);
          break;
        case DO_RING_MARKER:
          _exit (0);
        case DO_RING_EMPTY:
          break;
        case DO_RING_ERROR:
        default:
          _exit (5);
        }
    }
}

static pid_t
fork_with_ring (DoRing *ring, void (*child) (int *fds, int sock), int *sock)
{
  g_autoptr(GError) error = NULL;
  int fds[DO_RING_N_FDS], sv[2];
  pid_t pid;

  g_assert_true (do_ring_dup_fds (ring, fds, &error));
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (sv[0]);
      child (fds, sv[1]);
      _exit (0);
    }
  close (sv[1]);
  for (guint i = 0; i < DO_RING_N_FDS; i++)
    close (fds[i]);
  if (sock)
    *sock = sv[0];
  else
    close (sv[0]);
  return pid;
}

static void
run_echo_child (int *fds, int sock)
{
  echo_child (fds);
}

static void
test_cross_process (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoRing) ring = do_ring_new (SMALL, &error);
  pid_t pid = fork_with_ring (ring, run_echo_child, NULL);
  guint sent = 0, received = 0;
  int status;

  /* Up to 8 in flight both ways, so both rings wrap and fill. */
  while (received < N_ECHO)
    {
      while (sent < N_ECHO && sent < received + 8)
        {
          push_seeded (ring, 1 + (sent * 7) % 500, sent, g_get_monotonic_time () + TIMEOUT_US, &error);
          g_assert_no_error (error);
          sent++;
        }
      g_assert_true (do_ring_wait (ring, -1, g_get_monotonic_time () + TIMEOUT_US, &error));
      while (do_ring_is_readable (ring) && received < sent)
        {
          expect_message (ring, 1 + (received * 7) % 500, received);
          received++;
        }
    }
  g_assert_true (do_ring_push_marker (ring, g_get_monotonic_time () + TIMEOUT_US, -1, &error));
  status = test_wait_child (pid, 10000);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
}

/* Lost wake-ups.  Both sides wait as a connection does: spin for the
 * adaptive budget, then arm and sleep on the doorbell, so arms race with
 * the peer's pushes.  The parent sends bursts into a small ring (so it
 * also waits for room) and waits for the child's answer to each burst's
 * last record, both pausing at random around the spin budget; a wake-up
 * either side missed stalls the exchange until a deadline fails it.
 * Without arm()'s second look at the head, or with the producer's head
 * published without its fence, it failed in most runs here. */
#define N_BURSTS 30000
#define STREAM_WAIT_MS 5000
#define LAST_OF_BURST 0x80000000u

/* Takes the next message, waiting at most STREAM_WAIT_MS. */
static gboolean
wait_pop (DoRing *ring, guint32 *value, DoRingRecord *kind)
{
  g_autoptr(GError) error = NULL;
  guint8 buf[SMALL];
  gsize len;

  for (;;)
    {
      *kind = do_ring_pop (ring, buf, sizeof buf, &len, &error);
      if (*kind != DO_RING_EMPTY)
        {
          if (*kind == DO_RING_MESSAGE)
            memcpy (value, buf, sizeof *value);
          return *kind != DO_RING_ERROR && (*kind != DO_RING_MESSAGE || len >= sizeof *value);
        }
      if (!do_ring_wait (ring, -1, g_get_monotonic_time () + STREAM_WAIT_MS * 1000, &error))
        return FALSE;
    }
}

/* Busy for about @ns nanoseconds. */
static void
pause_ns (gint64 ns)
{
  gint64 end = g_get_monotonic_time () * 1000 + ns;

  while (g_get_monotonic_time () * 1000 < end)
    ;
}

static void
burst_child (int *fds, int sock)
{
  g_autoptr(GError) error = NULL;
  DoRing *ring = do_ring_attach (fds, DO_RING_N_FDS, &error);
  guint32 next = 0, value;
  DoRingRecord kind;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (!ring)
    _exit (2);
  for (;;)
    {
      if (!wait_pop (ring, &value, &kind))
        _exit (3);
      if (kind == DO_RING_MARKER)
        _exit (next == N_BURSTS ? 0 : 6);
      if ((value & ~LAST_OF_BURST) != next)
        _exit (4);
      if (!(value & LAST_OF_BURST))
        continue;
      next++;
      pause_ns (g_random_int_range (0, 3) * g_random_int_range (0, 30000));
      if (!do_ring_push (ring, &value, sizeof value,
                         g_get_monotonic_time () + STREAM_WAIT_MS * 1000, -1, NULL, &error))
        _exit (5);
    }
}

static void
test_no_lost_wakeup (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoRing) ring = do_ring_new (SMALL, &error);
  pid_t pid = fork_with_ring (ring, burst_child, NULL);
  guint8 buf[400] = { 0, };
  int status;

  for (guint32 burst = 0; burst < N_BURSTS; burst++)
    {
      guint n = 1 + g_test_rand_int_range (0, 24);
      guint32 value;
      DoRingRecord kind;

      /* Records of 8 to 400 bytes: 24 of them may not fit 4 KiB. */
      for (guint i = 0; i < n; i++)
        {
          value = burst | (i == n - 1 ? LAST_OF_BURST : 0);
          memcpy (buf, &value, sizeof value);
          g_assert_true (do_ring_push (ring, buf, 8 * g_test_rand_int_range (1, 51),
                                       g_get_monotonic_time () + STREAM_WAIT_MS * 1000, -1,
                                       NULL, &error));
          g_assert_no_error (error);
        }
      g_assert_true (wait_pop (ring, &value, &kind));
      g_assert_cmpint (kind, ==, DO_RING_MESSAGE);
      g_assert_cmpuint (value, ==, burst | LAST_OF_BURST);
      pause_ns (g_test_rand_int_range (0, 3) * g_test_rand_int_range (0, 60000));
    }
  g_assert_true (do_ring_push_marker (ring, g_get_monotonic_time () + TIMEOUT_US, -1, &error));
  status = test_wait_child (pid, 60000);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
}

/* A consumer that never reads, holding the socket until it is killed. */
static void
stuck_child (int *fds, int sock)
{
  g_autoptr(GError) error = NULL;
  DoRing *ring = do_ring_attach (fds, DO_RING_N_FDS, &error);
  char byte = 'R';

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (!ring || write (sock, &byte, 1) != 1)
    _exit (2);
  for (;;)
    pause ();
}

typedef struct {
  DoRing *ring;
  int sock;
  gint64 start;
  gint64 end;
} BlockedPush;

static gpointer
blocked_push_thread (gpointer data)
{
  BlockedPush *bp = data;
  GError *error = NULL;
  guint8 buf[100] = { 0, };

  bp->start = g_get_monotonic_time ();
  do_ring_push (bp->ring, buf, sizeof buf, bp->start + TIMEOUT_US, bp->sock, NULL, &error);
  bp->end = g_get_monotonic_time ();
  return error;
}

static void
test_peer_killed_while_full (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoRing) ring = do_ring_new (SMALL, &error);
  g_autoptr(GError) push_error = NULL;
  BlockedPush bp = { ring, -1, 0, 0 };
  GThread *thread;
  pid_t pid;
  char ready = 0;

  pid = fork_with_ring (ring, stuck_child, &bp.sock);
  g_assert_true (fd_readable_within (bp.sock, 10000));
  g_assert_cmpint (read (bp.sock, &ready, 1), ==, 1);
  g_assert_cmpint (ready, ==, 'R');
  fill_ring (ring, 100);

  thread = g_thread_new ("push", blocked_push_thread, &bp);
  kill (pid, SIGKILL);
  test_wait_child (pid, 10000);
  push_error = g_thread_join (thread);
  /* It does not wait for its deadline. */
  g_assert_error (push_error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  g_assert_cmpint (bp.end - bp.start, <, TIMEOUT_US / 2);
  close (bp.sock);
}

/* A consumer may take a record between its push and the producer's
 * wake-up decision (its arm saw the record).  The wake-up then reaches it
 * with nothing to read; the next record, once it sleeps again, must still
 * wake it. */
static DoRing *early_consumer;

static void
take_before_wake (DoRing *producer)
{
  g_autoptr(GError) error = NULL;
  guint8 buf[SMALL];
  gsize len;

  g_assert_true (do_ring_arm_socket (early_consumer));
  g_assert_cmpint (do_ring_pop (early_consumer, buf, sizeof buf, &len, &error), ==,
                   DO_RING_MESSAGE);
  g_assert_no_error (error);
}

static void
test_wake_after_early_take (void)
{
  g_autoptr(GError) error = NULL;
  guint8 buf[64];
  gboolean wake = FALSE;
  Pair p;

  pair_init (&p, SMALL);
  fill (buf, sizeof buf, 1);
  g_assert_false (do_ring_arm_socket (p.b));  /* empty: asleep on the socket */

  early_consumer = p.b;
  _do_ring_test_before_wake = take_before_wake;
  g_assert_true (do_ring_push (p.a, buf, sizeof buf, -1, -1, &wake, &error));
  _do_ring_test_before_wake = NULL;
  g_assert_no_error (error);
  g_assert_true (wake);

  /* The consumer reads that wake-up, finds nothing, and sleeps again. */
  do_ring_set_awake (p.b);
  g_assert_false (do_ring_arm_socket (p.b));
  g_assert_true (do_ring_push (p.a, buf, sizeof buf, -1, -1, &wake, &error));
  g_assert_no_error (error);
  g_assert_true (wake);

  /* Woken, it has not read yet: a further record needs no other wake-up. */
  g_assert_true (do_ring_push (p.a, buf, sizeof buf, -1, -1, &wake, &error));
  g_assert_false (wake);
  expect_message (p.b, sizeof buf, 1);
  expect_message (p.b, sizeof buf, 1);
  pair_clear (&p);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/do/ring/basic", test_basic);
  g_test_add_func ("/do/ring/wake-after-early-take", test_wake_after_early_take);
  g_test_add_func ("/do/ring/wrap-around", test_wrap_around);
  g_test_add_func ("/do/ring/too-big", test_too_big);
  g_test_add_func ("/do/ring/full-deadline", test_full_deadline);
  g_test_add_func ("/do/ring/full-blocks", test_full_blocks);
  g_test_add_func ("/do/ring/attach-rejects", test_attach_rejects);
  g_test_add_func ("/do/ring/corrupt-fixed", test_corrupt_fixed);
  g_test_add_func ("/do/ring/corrupt-random", test_corrupt_random);
  g_test_add_func ("/do/ring/cross-process", test_cross_process);
  g_test_add_func ("/do/ring/no-lost-wakeup", test_no_lost_wakeup);
  g_test_add_func ("/do/ring/peer-killed-while-full", test_peer_killed_while_full);
  return g_test_run ();
}
