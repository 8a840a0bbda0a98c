/* Porter — tests for channels with a shared-memory ring attached, over
 * socketpairs (libdo/do-channel.c, libdo/do-ring.c, libdo/do-direct.c).
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "libdo/do-channel-private.h"
#include "libdo/do-direct-private.h"
#include "libdo/do-wire-private.h"
#include "libdo/do-error.h"
#include "do-test-util.h"

#include <glib-unix.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_SIZE 4096u
#define TIMEOUT_US (10 * G_USEC_PER_SEC)

typedef struct {
  DoChannel *a;   /* the client: created the ring */
  DoChannel *b;   /* the server: attached it */
  DoRing *ring_b;
} Pair;

static void
pair_init (Pair *p, gboolean ring_on_a)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoRing) ring = do_ring_new (RING_SIZE, &error);
  DoCredentials creds = { .pid = getpid (), .uid = getuid (), .gid = getgid () };

  g_assert_no_error (error);
  g_assert_true (do_channel_new_pair (&p->a, &p->b, &error));
  p->ring_b = test_ring_attach_copy (ring);
  if (ring_on_a)
    do_channel_attach_ring (p->a, ring, &creds);
  do_channel_attach_ring (p->b, p->ring_b, &creds);
}

static void
pair_clear (Pair *p)
{
  g_clear_pointer (&p->a, do_channel_unref);
  g_clear_pointer (&p->b, do_channel_unref);
  g_clear_pointer (&p->ring_b, do_ring_unref);
}

/* Message @i: a oneway call whose body is (u, @pad_len bytes of string). */
static DoMessage *
make_message (guint i, gsize pad_len)
{
  g_autofree gchar *pad = g_strnfill (pad_len, 'a' + i % 26);
  DoMessage *msg = do_message_new (DO_MESSAGE_ONEWAY, 1, "org.example.T", "M",
                                   g_variant_new ("(us)", i, pad));

  msg->serial = i + 1;
  return msg;
}

static void
send_message (DoChannel *channel, guint i, gsize pad_len, gboolean with_fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) msg = make_message (i, pad_len);

  if (with_fd)
    {
      int *fds = g_new (int, 1);

      fds[0] = eventfd (i, EFD_CLOEXEC);
      g_assert_true (do_message_take_fds (msg, fds, 1, &error));
    }
  g_assert_true (do_channel_send (channel, msg, g_get_monotonic_time () + TIMEOUT_US, &error));
  g_assert_no_error (error);
}

/* Receives the next message, waiting as a connection would. */
static DoMessage *
receive_waiting (DoChannel *channel, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_US;

  for (;;)
    {
      GError *local = NULL;
      DoMessage *msg = do_channel_receive (channel, &local);

      if (msg)
        return msg;
      if (!g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_propagate_error (error, local);
          return NULL;
        }
      g_error_free (local);
      if (!do_channel_wait_readable (channel, deadline, error))
        return NULL;
    }
}

static void
expect_message (DoChannel *channel, guint i, gsize pad_len, gboolean with_fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) msg = receive_waiting (channel, &error);
  g_autofree gchar *pad = NULL;
  guint32 got;

  g_assert_no_error (error);
  g_assert_cmpuint (msg->serial, ==, i + 1);
  g_assert_cmpint (msg->creds.pid, ==, getpid ());
  g_variant_get (msg->body, "(us)", &got, &pad);
  g_assert_cmpuint (got, ==, i);
  g_assert_cmpuint (strlen (pad), ==, pad_len);
  g_assert_cmpuint (msg->n_fds, ==, with_fd ? 1 : 0);
  if (with_fd)
    {
      eventfd_t value = 0;

      g_assert_cmpint (eventfd_read (msg->fds[0], &value), ==, 0);
      g_assert_cmpuint (value, ==, i);
    }
}

static gboolean
socket_readable (DoChannel *channel)
{
  struct pollfd pfd = { .fd = do_channel_get_fd (channel), .events = POLLIN };

  return poll (&pfd, 1, 0) == 1;
}

/* Which path message @i takes in the interleaving tests. */
static gsize
pad_for (guint i)
{
  return i % 7 == 3 ? 3000 : i % 50 == 25 ? 70 * 1024 : 10 + i % 40;
}

static gboolean
fd_for (guint i)
{
  return i % 5 == 1;
}

static void
test_ring_path (void)
{
  Pair p;

  pair_init (&p, TRUE);
  /* Small and fd-free: in the ring, nothing on the socket. */
  send_message (p.a, 0, 10, FALSE);
  g_assert_false (socket_readable (p.b));
  g_assert_true (do_channel_has_pending (p.b));
  expect_message (p.b, 0, 10, FALSE);
  g_assert_false (do_channel_has_pending (p.b));

  /* With an fd: a marker in the ring, the message on the socket. */
  send_message (p.a, 1, 10, TRUE);
  g_assert_true (socket_readable (p.b));
  g_assert_true (do_channel_has_pending (p.b));
  expect_message (p.b, 1, 10, TRUE);
  pair_clear (&p);
}

/* Ring and socket messages (fds, bodies too big for the ring, bodies out
 * of line) interleaved, several in flight: they arrive in order. */
static void
test_interleaved_order (void)
{
  Pair p;
  guint sent = 0, received = 0;

  pair_init (&p, TRUE);
  while (received < 600)
    {
      while (sent < 600 && sent < received + 6)
        {
          send_message (p.a, sent, pad_for (sent), fd_for (sent));
          sent++;
        }
      expect_message (p.b, received, pad_for (received), fd_for (received));
      received++;
    }
  pair_clear (&p);
}

typedef struct {
  DoChannel *channel;
  guint n;
} Sender;

static gpointer
sender_thread (gpointer data)
{
  Sender *s = data;

  for (guint i = 0; i < s->n; i++)
    send_message (s->channel, i, pad_for (i), fd_for (i));
  return NULL;
}

/* The same from another thread, so the ring fills and the receiver sleeps. */
static void
test_interleaved_threads (void)
{
  Pair p;
  Sender s;
  GThread *thread;

  pair_init (&p, TRUE);
  s.channel = p.a;
  s.n = 3000;
  thread = g_thread_new ("sender", sender_thread, &s);
  for (guint i = 0; i < s.n; i++)
    expect_message (p.b, i, pad_for (i), fd_for (i));
  g_thread_join (thread);
  pair_clear (&p);
}

/* Receives the next message as a reader thread does: blocking, on the
 * socket once the ring is empty. */
static DoMessage *
receive_blocking (DoChannel *channel, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_US;

  for (;;)
    {
      GError *local = NULL;
      DoMessage *msg = do_channel_receive_blocking (channel, TIMEOUT_US / 1000, &local);

      if (msg || !g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (local)
            g_propagate_error (error, local);
          return msg;
        }
      g_error_free (local);  /* a stale wake-up */
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

/* The same, received the blocking way: the sender wakes the receiver with a
 * packet on the socket, and the wake-ups do not pile up there. */
static void
test_interleaved_blocking (void)
{
  Pair p;
  Sender s;
  GThread *thread;
  guint stale = 0;
  char c;

  pair_init (&p, TRUE);
  s.channel = p.a;
  s.n = 3000;
  thread = g_thread_new ("sender", sender_thread, &s);
  for (guint i = 0; i < s.n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) msg = receive_blocking (p.b, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (msg->serial, ==, i + 1);
      g_assert_cmpuint (msg->n_fds, ==, fd_for (i) ? 1 : 0);
    }
  g_thread_join (thread);
  while (recv (do_channel_get_fd (p.b), &c, 1, MSG_DONTWAIT) == 1)
    {
      g_assert_cmpint (c, ==, 'w');
      stale++;
    }
  g_assert_cmpuint (stale, <, s.n / 100);
  pair_clear (&p);
}

typedef struct {
  DoChannel *channel;
  gint tid;         /* (atomic) */
  DoMessage *msgs[2];
} Blocked;

static gpointer
blocked_thread (gpointer data)
{
  Blocked *b = data;

  g_atomic_int_set (&b->tid, (gint) gettid ());
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GError) error = NULL;

      b->msgs[i] = receive_blocking (b->channel, &error);
      g_assert_no_error (error);
    }
  return NULL;
}

/* Waits until thread @tid sleeps (in recvmsg(), here). */
static void
wait_sleeping (gint tid)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_US;
  g_autofree gchar *path = g_strdup_printf ("/proc/self/task/%d/stat", tid);

  for (;;)
    {
      g_autofree gchar *stat = NULL;
      const char *state;

      g_assert_true (g_file_get_contents (path, &stat, NULL, NULL));
      state = strrchr (stat, ')');
      if (state && state[1] == ' ' && state[2] == 'S')
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_thread_yield ();
    }
}

/* A receiver blocked on the socket gets a socket message before the ring
 * records that precede it (here a record pushed without a wake-up): the
 * message waits until the ring reaches its marker, and order is kept. */
static void
test_socket_message_ahead (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) first = make_message (0, 10);
  g_autoptr(GBytes) packet = do_wire_encode (first, FALSE);
  Blocked b = { 0 };
  GThread *thread;
  Pair p;

  pair_init (&p, TRUE);
  b.channel = p.b;
  thread = g_thread_new ("receiver", blocked_thread, &b);
  while (!g_atomic_int_get (&b.tid))
    g_thread_yield ();
  wait_sleeping (g_atomic_int_get (&b.tid));
  g_assert_true (do_ring_push (do_channel_get_ring (p.a), g_bytes_get_data (packet, NULL),
                               g_bytes_get_size (packet), 0, -1, NULL, &error));
  send_message (p.a, 1, 10, TRUE);
  g_thread_join (thread);
  g_assert_cmpuint (b.msgs[0]->serial, ==, 1);
  g_assert_cmpuint (b.msgs[1]->serial, ==, 2);
  g_assert_cmpuint (b.msgs[1]->n_fds, ==, 1);
  do_message_unref (b.msgs[0]);
  do_message_unref (b.msgs[1]);
  pair_clear (&p);
}

/* A message on the socket whose marker never comes in the ring is a
 * protocol error, however it is received. */
static void
test_unannounced_socket_message (void)
{
  for (guint blocking = 0; blocking < 2; blocking++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) msg = NULL;
      Pair p;

      pair_init (&p, FALSE);   /* the sender ignores the ring */
      send_message (p.a, 0, 10, FALSE);
      msg = blocking ? do_channel_receive_blocking (p.b, TIMEOUT_US / 1000, &error)
                     : do_channel_receive (p.b, &error);
      g_assert_null (msg);
      g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
      pair_clear (&p);
    }
}

/* A peer that stops reading fills the socket: a message that must go on
 * it (here it carries an fd) then times out before its marker goes in the
 * ring, and the channel goes on.  Everything that went out arrives, in
 * order; what timed out never does. */
static void
test_socket_full (void)
{
  g_autoptr(GError) error = NULL;
  guint next = 1;   /* message 0 would carry an eventfd that reads nothing */
  Pair p;

  pair_init (&p, TRUE);
  for (;;)
    {
      g_autoptr(DoMessage) msg = make_message (next, 10);
      int *fds = g_new (int, 1);
      /* The first failure waits a little; the second does not wait. */
      gint64 deadline = error ? 0 : g_get_monotonic_time () + 20000;

      fds[0] = eventfd (next, EFD_CLOEXEC);
      g_assert_true (do_message_take_fds (msg, fds, 1, NULL));
      if (do_channel_send (p.a, msg, deadline, error ? NULL : &error))
        next++;
      else if (deadline == 0)
        break;
    }
  g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
  g_assert_cmpuint (next, >, 10);
  send_message (p.a, next, 10, FALSE);    /* the ring still takes this */
  for (guint i = 1; i < next; i++)
    expect_message (p.b, i, 10, TRUE);
  expect_message (p.b, next, 10, FALSE);
  send_message (p.a, next + 1, 10, TRUE); /* the socket has room again */
  expect_message (p.b, next + 1, 10, TRUE);
  g_assert_false (socket_readable (p.b));
  pair_clear (&p);
}

static void
test_peer_closed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) msg = NULL;
  Pair p;

  pair_init (&p, TRUE);
  for (guint i = 0; i < 3; i++)
    send_message (p.a, i, 10, FALSE);
  g_clear_pointer (&p.a, do_channel_unref);
  /* What was sent still arrives, then the hang-up. */
  for (guint i = 0; i < 3; i++)
    expect_message (p.b, i, 10, FALSE);
  msg = receive_waiting (p.b, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED);
  pair_clear (&p);
}

static void
test_wait_deadline (void)
{
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  Pair p;

  pair_init (&p, TRUE);
  g_assert_false (do_channel_wait_readable (p.b, start + 20 * 1000, &error));
  g_assert_error (error, DO_ERROR, DO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 20 * 1000);
  pair_clear (&p);
}

/* A GMainContext wakes on the doorbell. */
typedef struct {
  DoChannel *channel;
  guint received;
  guint expected;
  gboolean done;
} Watch;

static gboolean
on_doorbell (gint fd, GIOCondition condition, gpointer user_data)
{
  Watch *w = user_data;

  do_channel_ack_doorbell (w->channel);
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) msg = do_channel_receive (w->channel, &error);

      if (!msg)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          break;
        }
      g_assert_cmpuint (msg->serial, ==, w->received + 1);
      w->received++;
    }
  w->done = w->received == w->expected;
  return G_SOURCE_CONTINUE;
}

static void
test_main_context (void)
{
  Pair p;
  Sender s;
  Watch w = { 0, };
  GThread *thread;
  guint tags[2];

  pair_init (&p, TRUE);
  w.channel = p.b;
  w.expected = s.n = 200;
  s.channel = p.a;
  /* Both: after a marker the next message is on the socket. */
  tags[0] = g_unix_fd_add (do_channel_get_doorbell_fd (p.b), G_IO_IN, on_doorbell, &w);
  tags[1] = g_unix_fd_add (do_channel_get_fd (p.b), G_IO_IN, on_doorbell, &w);
  thread = g_thread_new ("sender", sender_thread, &s);
  g_assert_true (test_iterate_until (NULL, &w.done, 10000));
  g_thread_join (thread);
  g_source_remove (tags[0]);
  g_source_remove (tags[1]);
  pair_clear (&p);
}

/* A peer that sends good messages but scribbles random values over the
 * ring indices and record headers is disconnected with a protocol error;
 * the receiver neither crashes nor reads out of bounds (run under ASan). */
static G_NORETURN void
corrupting_child (DoChannel *channel, guint32 seed)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  int fds[DO_RING_N_FDS];
  gsize size = 4096 + 2 * RING_SIZE;
  guint8 *page;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  do_channel_adopt (channel);  /* the parent dropped its copy */
  if (!do_ring_dup_fds (do_channel_get_ring (channel), fds, NULL))
    _exit (2);
  page = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
  if (page == MAP_FAILED)
    _exit (3);
  for (guint i = 0; i < 100000; i++)
    {
      g_autoptr(DoMessage) msg = make_message (i, g_rand_int_range (rand, 0, 200));
      g_autoptr(GError) error = NULL;

      if (!do_channel_send (channel, msg, g_get_monotonic_time () + G_USEC_PER_SEC, &error) &&
          g_error_matches (error, DO_ERROR, DO_ERROR_CONNECTION_DIED))
        _exit (0);
      if (i >= 50 && g_rand_int_range (rand, 0, 8) == 0)
        {
          /* An index (head or tail, either ring), or a record's length or
           * kind in ring 0. */
          guint32 value = g_rand_boolean (rand) ? g_rand_int (rand)
                                                : (guint32) g_rand_int_range (rand, 0, RING_SIZE);
          gsize off = g_rand_boolean (rand)
                        ? 64 + 192 * g_rand_int_range (rand, 0, 2) + 64 * g_rand_int_range (rand, 0, 2)
                        : 4096 + 4 * g_rand_int_range (rand, 0, RING_SIZE / 4);

          memcpy (page + off, &value, sizeof value);
        }
    }
  _exit (0);
}

static void
test_corrupting_peer (void)
{
  for (guint round = 0; round < 20; round++)
    {
      g_autoptr(GError) error = NULL;
      guint32 seed = g_test_rand_int ();
      guint n = 0;
      Pair p;
      pid_t pid;

      pair_init (&p, TRUE);
      pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        {
          close (do_channel_get_fd (p.b));
          corrupting_child (p.a, seed);
        }
      g_clear_pointer (&p.a, do_channel_unref);

      for (;;)
        {
          g_autoptr(DoMessage) msg = receive_waiting (p.b, &error);

          if (!msg)
            break;
          n++;
        }
      g_test_message ("round %u: %u messages, then: %s", round, n, error->message);
      /* Usually the ring check; a record that still frames well but holds
       * garbage fails to decode; both are protocol errors. */
      g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
      pair_clear (&p);
      g_assert_cmpint (test_wait_child (pid, 10000), ==, 0);
    }
}

/* Encodes a CALL whose body is @len raw bytes of @type, and decodes it. */
static DoMessage *
roundtrip_raw_body (const gchar *type, const guint8 *bytes, gsize len, GError **error)
{
  g_autoptr(DoMessage) msg = NULL;
  g_autoptr(GBytes) packet = NULL;

  msg = do_message_new (DO_MESSAGE_CALL, 1, NULL, "Put",
                        g_variant_new_from_data (G_VARIANT_TYPE (type), bytes, len,
                                                 TRUE, NULL, NULL));
  msg->serial = 1;
  packet = do_wire_encode (msg, FALSE);
  return do_wire_decode (g_bytes_get_data (packet, NULL), g_bytes_get_size (packet),
                         NULL, 0, NULL, NULL, error);
}

/* Bulk bodies, `(F..., aT)`, skip GLib's element-by-element normal-form
 * check: their own check must still refuse what GLib would. */
static void
test_bulk_normal_form (void)
{
  gsize len = 8 + 8 * 1000;
  g_autofree guint8 *b = g_malloc0 (len);
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) msg = NULL;

  /* (yat): y, 7 bytes of padding, then the array. */
  b[0] = 7;
  msg = roundtrip_raw_body ("(yat)", b, len, &error);
  g_assert_no_error (error);
  g_clear_pointer (&msg, do_message_unref);

  b[3] = 1;  /* padding that is not zero */
  msg = roundtrip_raw_body ("(yat)", b, len, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  g_clear_error (&error);
  b[3] = 0;

  /* An array size that is not a multiple of its element's. */
  msg = roundtrip_raw_body ("(yat)", b, len - 3, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* (uab): booleans must be 0 or 1. */
  msg = roundtrip_raw_body ("(uab)", b, len, &error);
  g_assert_no_error (error);
  g_clear_pointer (&msg, do_message_unref);
  b[len - 1] = 2;
  msg = roundtrip_raw_body ("(uab)", b, len, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* Small bodies of an array alone are checked the same way. */
  memcpy (b, (const guint8[]) { 0, 1, 1 }, 3);
  msg = roundtrip_raw_body ("(ab)", b, 3, &error);
  g_assert_no_error (error);
  g_clear_pointer (&msg, do_message_unref);
  b[2] = 2;
  msg = roundtrip_raw_body ("(ab)", b, 3, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  g_clear_error (&error);
  msg = roundtrip_raw_body ("(at)", b, 12, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* (ay): any bytes. */
  memset (b, 0xff, len);
  msg = roundtrip_raw_body ("(ay)", b, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_size (msg->body), ==, len);
}

/* The empty body, shared by every message without arguments, is the one
 * zero byte "()" serialises to, and nothing else. */
static void
test_empty_body (void)
{
  static const guint8 zero[1] = { 0 }, one[1] = { 1 };
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) msg = roundtrip_raw_body ("()", zero, 1, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (msg->body), ==, "()");
  g_assert_true (g_variant_is_normal_form (msg->body));
  g_clear_pointer (&msg, do_message_unref);

  msg = roundtrip_raw_body ("()", one, 1, &error);
  g_assert_null (msg);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
}

/* Signatures seen are remembered, a bounded number of them: far more
 * distinct ones than that still decode, and a signature that is not a
 * D-Bus tuple type is still refused after them. */
static void
test_many_signatures (void)
{
  static const guint8 zeros[16];
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) bad = NULL;

  for (guint k = 0; k < 600; k++)
    {
      g_autoptr(GString) sig = g_string_new ("(");
      g_autoptr(GVariant) empty = NULL;
      g_autoptr(GVariant) body = NULL;
      g_autoptr(DoMessage) msg = NULL;
      g_autoptr(DoMessage) back = NULL;
      g_autoptr(GBytes) packet = NULL;

      g_string_append_c (sig, "syux"[k / 150]);
      for (guint i = 0; i <= k % 150; i++)
        g_string_append_c (sig, 'i');
      g_string_append_c (sig, ')');
      empty = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (sig->str), NULL, 0,
                                                           FALSE, NULL, NULL));
      body = g_variant_get_normal_form (empty);
      msg = do_message_new (DO_MESSAGE_CALL, 1, NULL, "Put", g_variant_ref (body));
      msg->serial = 1;
      packet = do_wire_encode (msg, FALSE);
      back = do_wire_decode (g_bytes_get_data (packet, NULL), g_bytes_get_size (packet),
                             NULL, 0, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_variant_equal (back->body, body));
    }

  /* "(mi)": a GVariant type, not a D-Bus one. */
  bad = roundtrip_raw_body ("(mi)", zeros, 0, &error);
  g_assert_null (bad);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
}

/* A body of fixed-size members then an array is the bytes of its prefix,
 * then the array's; any other shape is not split. */
static void
test_body_split (void)
{
  static const guint64 ts[] = { 1, 2, 3 };
  const gchar *strv[] = { "a", "bc", NULL };
  GVariant *split[] = {
    g_variant_new ("(@ay)", g_variant_new_bytestring ("bulk")),
    g_variant_new ("(y@at)", 7, g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, ts, 3, 8)),
    g_variant_new ("(b(yq)@as)", TRUE, 1, 2, g_variant_new_strv (strv, -1)),
    g_variant_new ("(xat)", G_GINT64_CONSTANT (-1), NULL),
  };
  GVariant *whole[] = {
    g_variant_new ("()"),
    g_variant_new ("(sy)", "s", 1),
    g_variant_new ("(@ayy)", g_variant_new_bytestring ("x"), 1),
    g_variant_new ("(s@ay)", "s", g_variant_new_bytestring ("x")),
  };

  for (gsize i = 0; i < G_N_ELEMENTS (split); i++)
    {
      g_autoptr(GVariant) body = g_variant_ref_sink (split[i]);
      g_autoptr(GVariant) array = NULL;
      g_autoptr(GVariant) prefix = do_wire_body_split (body, &array);
      g_autoptr(GByteArray) bytes = g_byte_array_new ();

      g_assert_nonnull (prefix);
      g_byte_array_append (bytes, g_variant_get_data (prefix), g_variant_get_size (prefix));
      g_byte_array_append (bytes, g_variant_get_data (array), g_variant_get_size (array));
      g_assert_cmpmem (bytes->data, bytes->len, g_variant_get_data (body), g_variant_get_size (body));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (whole); i++)
    {
      g_autoptr(GVariant) body = g_variant_ref_sink (whole[i]);
      GVariant *array = NULL;

      g_assert_null (do_wire_body_split (body, &array));
      g_assert_null (array);
    }
}

/* Bodies out of line, bulk `(F..., A)` and others, arrive as sent. */
static void
test_out_of_line (void)
{
  gsize len = 3 * DO_WIRE_INLINE_MAX;
  g_autofree guint8 *data = g_malloc (len);
  g_autofree gchar *pad = g_strnfill (len, 'p');
  GVariant *bodies[] = {
    g_variant_new ("(y@ay)", 3, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1)),
    g_variant_new ("(q@at)", 5, g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, data, len / 8, 8)),
    g_variant_new ("(u^as)", 9, (const gchar *[]) { pad, "", pad, NULL }),
    g_variant_new ("(su)", pad, 11),
  };
  Pair p;

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 2654435761u >> 13);
  pair_init (&p, TRUE);
  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) msg = do_message_new (DO_MESSAGE_ONEWAY, 1, NULL, "M", bodies[i]);
      g_autoptr(DoMessage) got = NULL;

      msg->serial = 1;
      g_assert_true (do_channel_send (p.a, msg, g_get_monotonic_time () + TIMEOUT_US, &error));
      g_assert_no_error (error);
      got = receive_waiting (p.b, &error);
      g_assert_no_error (error);
      g_assert_true (g_variant_equal (got->body, msg->body));
      g_assert_cmpmem (g_variant_get_data (got->body), g_variant_get_size (got->body),
                       g_variant_get_data (msg->body), g_variant_get_size (msg->body));
    }
  pair_clear (&p);
}

typedef struct {
  gpointer mem;
  gboolean freed;
} Lent;

static void
lent_free (gpointer data)
{
  Lent *lent = data;

  g_free (lent->mem);
  lent->freed = TRUE;
}

/* A sync call's body of @len bytes, `(u@ay)`, made from @seed. */
static DoMessage *
make_call (guint32 serial, gsize len, guint8 seed)
{
  g_autofree guint8 *data = g_malloc (len);
  DoMessage *msg;

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (seed + i * 7);
  msg = do_message_new (DO_MESSAGE_CALL, 1, NULL, "M",
                        g_variant_new ("(u@ay)", serial,
                                       g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1)));
  msg->serial = serial;
  msg->caller_waits = TRUE;
  return msg;
}

/* Sends @msg from @p's a, receives it on b, checks it arrived as sent and
 * returns how (its wire flags). */
static guint8
send_call (Pair *p, DoMessage *msg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) got = NULL;

  g_assert_true (do_channel_send (p->a, msg, g_get_monotonic_time () + TIMEOUT_US, &error));
  g_assert_no_error (error);
  got = receive_waiting (p->b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->serial, ==, msg->serial);
  g_assert_cmpmem (g_variant_get_data (got->body), g_variant_get_size (got->body),
                   g_variant_get_data (msg->body), g_variant_get_size (msg->body));
  return got->flags;
}

/* A sync call's large body goes in a memfd until the peer finds it can
 * read our memory, then stays in ours for the peer to copy; one lent at a
 * time, so a second one before the first was read takes a memfd. */
static void
test_direct_read (void)
{
  gsize len = 5 * DO_WIRE_INLINE_MAX;
  g_autoptr(DoMessage) first = make_call (1, len, 1);
  g_autoptr(DoMessage) second = make_call (2, len, 2);
  g_autoptr(DoMessage) third = make_call (3, len + 1, 3);
  g_autoptr(DoMessage) oneway = make_call (4, len, 4);
  g_autoptr(DoMessage) got = NULL;
  g_autoptr(GError) error = NULL;
  Pair p;

  pair_init (&p, TRUE);
  g_assert_cmpuint (send_call (&p, first), ==, DO_WIRE_FLAG_BODY_OOL);
  g_assert_cmpuint (send_call (&p, second), ==, DO_WIRE_FLAG_BODY_REMOTE);
  g_assert_cmpint (test_lent_state (do_channel_get_ring (p.a)), ==, DO_RING_READ_DONE);
  g_assert_cmpuint (send_call (&p, third), ==, DO_WIRE_FLAG_BODY_REMOTE);
  oneway->caller_waits = FALSE;
  g_assert_cmpuint (send_call (&p, oneway), ==, DO_WIRE_FLAG_BODY_OOL);

  /* Two before the peer reads: the second waits in a memfd. */
  g_assert_true (do_channel_send (p.a, first, g_get_monotonic_time () + TIMEOUT_US, &error));
  g_assert_true (do_channel_send (p.a, second, g_get_monotonic_time () + TIMEOUT_US, &error));
  g_assert_no_error (error);
  g_assert_cmpint (test_lent_state (do_channel_get_ring (p.a)), ==, DO_RING_READ_POSTED);
  got = receive_waiting (p.b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->flags, ==, DO_WIRE_FLAG_BODY_REMOTE);
  g_assert_true (g_variant_equal (got->body, first->body));
  g_clear_pointer (&got, do_message_unref);
  got = receive_waiting (p.b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->flags, ==, DO_WIRE_FLAG_BODY_OOL);
  g_assert_true (g_variant_equal (got->body, second->body));

  /* The channel holds a lent body until the peer read it and the caller
   * is back. */
  {
    gsize n = 3 * DO_WIRE_INLINE_MAX;
    Lent lent = { g_malloc0 (n), FALSE };
    DoMessage *call = do_message_new (DO_MESSAGE_CALL, 1, NULL, "M",
                                      g_variant_new ("(@ay)", g_variant_new_from_data (
                                          G_VARIANT_TYPE_BYTESTRING, lent.mem, n, TRUE,
                                          lent_free, &lent)));

    call->serial = 5;
    call->caller_waits = TRUE;
    g_assert_cmpuint (send_call (&p, call), ==, DO_WIRE_FLAG_BODY_REMOTE);
    do_message_unref (call);
    g_assert_false (lent.freed);
    do_channel_reclaim (p.a);
    g_assert_true (lent.freed);
  }
  pair_clear (&p);
}

/* A channel that goes while its body is lent keeps the body until the
 * peer is done with it. */
static void
test_direct_read_orphan (void)
{
  g_autoptr(DoMessage) first = make_call (1, 2 * DO_WIRE_INLINE_MAX, 7);
  g_autoptr(DoRing) ring = NULL;
  g_autoptr(DoMessage) got = NULL;
  g_autoptr(GError) error = NULL;
  gsize n = 3 * DO_WIRE_INLINE_MAX;
  Lent lent = { g_malloc (n), FALSE };
  DoMessage *call;
  Pair p, other;

  memset (lent.mem, 0x5a, n);
  call = do_message_new (DO_MESSAGE_CALL, 1, NULL, "M",
                         g_variant_new ("(@ay)", g_variant_new_from_data (
                             G_VARIANT_TYPE_BYTESTRING, lent.mem, n, TRUE, lent_free, &lent)));
  call->serial = 2;
  call->caller_waits = TRUE;
  pair_init (&p, TRUE);
  send_call (&p, first);
  g_assert_true (do_channel_send (p.a, call, g_get_monotonic_time () + TIMEOUT_US, &error));
  g_assert_no_error (error);
  do_message_unref (call);
  ring = do_ring_ref (do_channel_get_ring (p.a));
  g_clear_pointer (&p.a, do_channel_unref);
  g_assert_false (lent.freed);

  got = receive_waiting (p.b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->flags, ==, DO_WIRE_FLAG_BODY_REMOTE);
  g_assert_cmpuint (g_variant_get_size (got->body), ==, n);
  g_assert_cmpuint (((const guint8 *) g_variant_get_data (got->body))[n - 1], ==, 0x5a);
  g_assert_cmpint (test_lent_state (ring), ==, DO_RING_READ_DONE);
  g_assert_false (lent.freed);

  /* The next body lent, on any channel, lets go of it. */
  pair_init (&other, TRUE);
  send_call (&other, first);
  g_assert_cmpuint (send_call (&other, first), ==, DO_WIRE_FLAG_BODY_REMOTE);
  g_assert_true (lent.freed);
  pair_clear (&other);
  pair_clear (&p);
}

typedef struct {
  Pair *pair;
  DoMessage *msg;
} Lender;

static gpointer
lend_thread (gpointer data)
{
  Lender *l = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (do_channel_send (l->pair->a, l->msg, g_get_monotonic_time () + TIMEOUT_US, &error));
  g_assert_no_error (error);
  return NULL;
}

/* A big body is copied in two halves, the second pushed by the caller
 * while the receiver copies the first; when the caller does not push, the
 * receiver copies it all. */
static void
test_direct_read_split (void)
{
  gsize len = (9u << 20) + 3;
  g_autoptr(DoMessage) small = make_call (1, 2 * DO_WIRE_INLINE_MAX, 8);
  g_autoptr(DoMessage) big = make_call (2, len, 9);
  Pair p;

  pair_init (&p, TRUE);
  send_call (&p, small);
  for (guint round = 0; round < 4; round++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) got = NULL;
      Lender sender = { &p, big };
      GThread *thread = NULL;

      if (round % 2 == 0)
        thread = g_thread_new ("sender", lend_thread, &sender);
      else   /* the send gives up waiting for the offer before we read */
        lend_thread (&sender);
      got = receive_waiting (p.b, &error);
      g_assert_no_error (error);
      g_clear_pointer (&thread, g_thread_join);
      g_assert_cmpuint (got->flags, ==, DO_WIRE_FLAG_BODY_REMOTE);
      g_assert_cmpmem (g_variant_get_data (got->body), g_variant_get_size (got->body),
                       g_variant_get_data (big->body), g_variant_get_size (big->body));
      g_assert_cmpuint (do_ring_read_control (do_channel_get_ring (p.a), TRUE)->split, ==,
                        g_variant_get_size (big->body) / 2);
      g_assert_cmpint (test_lent_state (do_channel_get_ring (p.a)), ==, DO_RING_READ_DONE);
      do_channel_reclaim (p.a);
    }
  pair_clear (&p);
}

/* A caller that claims the push and never does it: the receiver gives up
 * on that message (and its memory) after a while, with a protocol error. */
static void
claim_push (DoRingReadControl *rc)
{
  guint32 split = DO_RING_READ_SPLIT;

  g_assert_true (atomic_compare_exchange_strong (&rc->state, &split, DO_RING_READ_PUSHING));
}

static void
test_direct_read_stalled_push (void)
{
  g_autoptr(DoMessage) small = make_call (1, 2 * DO_WIRE_INLINE_MAX, 10);
  g_autoptr(DoMessage) big = make_call (2, 9u << 20, 11);
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) got = NULL;
  DoWirePiece piece;
  guint8 packet[256];
  gsize size;
  Pair p;

  pair_init (&p, TRUE);
  send_call (&p, small);   /* b learns it can read a */
  send_call (&p, small);   /* a, that it can write b */
  piece.addr = (gsize) g_variant_get_data (big->body);
  piece.len = g_variant_get_size (big->body);
  size = do_wire_encode_into (big, DO_WIRE_BODY_REMOTE, &piece, 1, packet, sizeof packet);
  atomic_store (&do_ring_read_control (do_channel_get_ring (p.a), TRUE)->state, DO_RING_READ_POSTED);
  g_assert_true (do_ring_push (do_channel_get_ring (p.a), packet, size, 0, -1, NULL, &error));
  _do_direct_test_split_offered = claim_push;
  g_test_expect_message ("Porter", G_LOG_LEVEL_WARNING, "*did not finish pushing*");
  got = receive_waiting (p.b, &error);
  g_test_assert_expected_messages ();
  _do_direct_test_split_offered = NULL;
  g_assert_null (got);
  g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "timed out"));
  pair_clear (&p);
}

/* Lending needs only the peer's rights over the lender: a lender that
 * cannot read the peer (here, the peer's probe is not what its page says)
 * still lends, and the peer copies big bodies alone. */
static void
test_direct_read_one_way (void)
{
  g_autoptr(DoMessage) small = make_call (1, 2 * DO_WIRE_INLINE_MAX, 12);
  g_autoptr(DoMessage) big = make_call (2, 9u << 20, 13);
  Pair p;

  pair_init (&p, TRUE);
  do_ring_read_control (p.ring_b, TRUE)->probe[0] ^= 0xff;
  g_assert_cmpuint (send_call (&p, small), ==, DO_WIRE_FLAG_BODY_OOL);
  g_assert_cmpuint (send_call (&p, small), ==, DO_WIRE_FLAG_BODY_REMOTE);
  g_assert_cmpuint (send_call (&p, big), ==, DO_WIRE_FLAG_BODY_REMOTE);
  g_assert_cmpuint (do_ring_read_control (do_channel_get_ring (p.a), TRUE)->split, ==, 0);
  pair_clear (&p);
}

/* With $PORTER_NO_DIRECT_READ=1 the peer never offers to read us. */
static void
test_direct_read_off (void)
{
  g_autoptr(DoMessage) msg = make_call (1, 2 * DO_WIRE_INLINE_MAX, 5);
  Pair p;

  g_setenv ("PORTER_NO_DIRECT_READ", "1", TRUE);
  pair_init (&p, TRUE);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpuint (send_call (&p, msg), ==, DO_WIRE_FLAG_BODY_OOL);
  g_assert_false (do_ring_read_control (do_channel_get_ring (p.a), TRUE)->reader_ok);
  pair_clear (&p);
  g_unsetenv ("PORTER_NO_DIRECT_READ");
}

/* A body left in the sender's memory that cannot be read, was not posted,
 * or was never offered is a protocol error. */
static void
test_direct_read_bad (void)
{
  g_autoptr(DoMessage) msg = make_call (1, 2 * DO_WIRE_INLINE_MAX, 6);
  struct {
    gboolean offered, post;
    guint64 addr;
    const char *why;
  } cases[] = {
    { TRUE, TRUE, 4096, "Bad address" },
    { TRUE, TRUE, G_MAXUINT64 - 8, "out of range" },
    { TRUE, FALSE, 0, "without being posted" },
    { FALSE, TRUE, 0, "not offered" },
  };

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) got = NULL;
      gsize len = g_variant_get_size (msg->body);
      DoWirePiece piece = { cases[c].addr, len };
      guint8 packet[256];
      gsize size;
      Pair p;

      pair_init (&p, TRUE);
      if (cases[c].offered)
        send_call (&p, msg);   /* b learns it can read a */
      if (piece.addr == 0)
        piece.addr = (gsize) g_variant_get_data (msg->body);
      size = do_wire_encode_into (msg, DO_WIRE_BODY_REMOTE, &piece, 1, packet, sizeof packet);
      g_assert_cmpuint (size, <=, sizeof packet);
      if (cases[c].post)
        atomic_store (&do_ring_read_control (do_channel_get_ring (p.a), TRUE)->state,
                      DO_RING_READ_POSTED);
      g_assert_true (do_ring_push (do_channel_get_ring (p.a), packet, size, 0, -1, NULL, &error));
      g_assert_no_error (error);
      got = receive_waiting (p.b, &error);
      g_assert_null (got);
      g_assert_error (error, DO_ERROR, DO_ERROR_PROTOCOL);
      g_assert_nonnull (strstr (error->message, cases[c].why));
      pair_clear (&p);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/do/channel/ring/path", test_ring_path);
  g_test_add_func ("/do/channel/ring/interleaved-order", test_interleaved_order);
  g_test_add_func ("/do/channel/ring/interleaved-threads", test_interleaved_threads);
  g_test_add_func ("/do/channel/ring/interleaved-blocking", test_interleaved_blocking);
  g_test_add_func ("/do/channel/ring/socket-message-ahead", test_socket_message_ahead);
  g_test_add_func ("/do/channel/ring/unannounced-socket-message", test_unannounced_socket_message);
  g_test_add_func ("/do/channel/ring/peer-closed", test_peer_closed);
  g_test_add_func ("/do/channel/ring/socket-full", test_socket_full);
  g_test_add_func ("/do/channel/ring/wait-deadline", test_wait_deadline);
  g_test_add_func ("/do/channel/ring/main-context", test_main_context);
  g_test_add_func ("/do/channel/ring/corrupting-peer", test_corrupting_peer);
  g_test_add_func ("/do/wire/bulk-normal-form", test_bulk_normal_form);
  g_test_add_func ("/do/wire/body-split", test_body_split);
  g_test_add_func ("/do/wire/many-signatures", test_many_signatures);
  g_test_add_func ("/do/wire/empty-body", test_empty_body);
  g_test_add_func ("/do/channel/out-of-line", test_out_of_line);
  g_test_add_func ("/do/channel/direct-read", test_direct_read);
  g_test_add_func ("/do/channel/direct-read-off", test_direct_read_off);
  g_test_add_func ("/do/channel/direct-read-one-way", test_direct_read_one_way);
  g_test_add_func ("/do/channel/direct-read-orphan", test_direct_read_orphan);
  g_test_add_func ("/do/channel/direct-read-split", test_direct_read_split);
  g_test_add_func ("/do/channel/direct-read-stalled-push", test_direct_read_stalled_push);
  g_test_add_func ("/do/channel/direct-read-bad", test_direct_read_bad);
  return g_test_run ();
}
