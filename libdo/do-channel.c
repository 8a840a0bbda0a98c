/* Porter — libdo: channels over SOCK_SEQPACKET sockets.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-channel-private.h"
#include "do-direct-private.h"
#include "do-error.h"
#include "do-ring-private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
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
  int sndbuf;         /* SO_SNDBUF, read when the ring is attached; 0 if
                       * unknown */

  DoDirect *direct;   /* with a ring: large bodies of sync calls */
};

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

gint
_do_fork_generation (void)
{
  return g_atomic_int_get (&fork_generation);
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
  do_direct_free (channel->direct, do_channel_is_inherited (channel));
  close (channel->fd);
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
  socklen_t len = sizeof channel->sndbuf;

  g_return_if_fail (channel->ring == NULL);
  channel->ring = do_ring_ref (ring);
  channel->ring_creds = *peer;
  channel->direct = do_direct_new (ring, peer->pid);
  if (getsockopt (channel->fd, SOL_SOCKET, SO_SNDBUF, &channel->sndbuf, &len) < 0)
    channel->sndbuf = 0;
}

void
do_channel_reclaim (DoChannel *channel)
{
  if (!channel->direct || !do_direct_is_lending (channel->direct))
    return;
  g_mutex_lock (&channel->send_lock);
  do_direct_reclaim (channel->direct);
  g_mutex_unlock (&channel->send_lock);
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

/* Waits until the socket takes a packet without waiting: the kernel makes
 * a send wait only while what we sent and the peer has not read
 * (SIOCOUTQ) fills our send buffer.  Called with the send lock held, so
 * nobody else adds to it meanwhile. */
static gboolean
wait_socket_room_locked (DoChannel *channel, gint64 deadline, GError **error)
{
  for (;;)
    {
      struct pollfd pfd = { .fd = channel->fd, .events = POLLOUT };
      int queued;

      /* Unknown: send, and find out. */
      if (channel->sndbuf <= 0 || ioctl (channel->fd, SIOCOUTQ, &queued) < 0 ||
          queued < channel->sndbuf)
        return TRUE;
      if (deadline == 0)
        {
          g_set_error_literal (error, DO_ERROR, DO_ERROR_TIMED_OUT, "the peer's queue is full");
          return FALSE;
        }
      if (!do_poll (&pfd, 1, deadline, error))
        return FALSE;
      if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
        {
          g_set_error_literal (error, DO_ERROR, DO_ERROR_CONNECTION_DIED,
                               "the peer closed the connection");
          return FALSE;
        }
    }
}

/* With a ring: a message that fits and carries no fds goes in the ring;
 * any other goes on the socket after a marker in the ring, so the peer
 * reads both paths in order.  The socket must take the message at once
 * before its marker goes in; waiting for that, or for room in the ring,
 * may time out, and then nothing was sent.  A socket send that fails
 * after its marker went in (no fds allowed in flight) shuts the channel
 * down: the peer would wait for it forever.  Called with the send lock
 * held. */
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
      ok = wait_socket_room_locked (channel, deadline, error) &&
           do_ring_push_marker (channel->ring, deadline, channel->fd, error);
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
      if (channel->direct)
        {
          g_mutex_lock (&channel->send_lock);
          n_pieces = do_direct_lend (channel->direct, msg, pieces);
          locked = n_pieces > 0;
          if (!locked)
            g_mutex_unlock (&channel->send_lock);
        }
      place = locked ? DO_WIRE_BODY_REMOTE : DO_WIRE_BODY_MEMFD;
      if (!locked)
        {
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
      do_direct_unlend (channel->direct);
    }
  g_mutex_unlock (&channel->send_lock);
  if (body_fd >= 0)
    close (body_fd);
  if (ok && place == DO_WIRE_BODY_REMOTE)
    do_direct_push (channel->direct, pieces, n_pieces, g_variant_get_size (msg->body));
  return ok;
}

static DoMessage *
decode (DoChannel *channel, const guint8 *data, gsize len, int *fds, guint n_fds, GError **error)
{
  DoMessage *msg = do_wire_decode (data, len, fds, n_fds, channel->direct ? do_direct_fetch : NULL,
                                   channel->direct, error);

  if (msg && (msg->flags & DO_WIRE_FLAG_BODY_OOL) && channel->direct)
    do_direct_try_peer (channel->direct);
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
