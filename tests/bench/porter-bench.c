/* porter-bench: Porter against its floor and its peers on the same work.
 *
 * Every case is the same `Add (ii) -> (i)` round trip between two processes:
 * this process is the client, a forked child is the server.
 *
 *   floor-seqpacket-rtt  a raw SOCK_SEQPACKET socketpair: 8 bytes out (two
 *                        ints), 4 bytes back (their sum).  Nothing can be
 *                        faster over a socket; Porter is measured against it.
 *   porter-call-rtt      do_proxy_call_sync() on the root proxy of a
 *                        DoConnection made from the server's port fd (no
 *                        broker involved).
 *   porter-typed-rtt     the same call through a typed proxy (a libffi
 *                        closure in the vtable of do_object_get_typed()).
 *   gdbus-daemon-rtt     g_dbus_connection_call_sync() through a private
 *                        dbus-daemon this program starts and stops itself.
 *   floor-shm-spin-rtt   the same two ints and their sum through shared
 *                        memory between two processes: the waiting side
 *                        spins up to 20 µs, then sleeps on a futex
 *                        (PORTER_BENCH_SHM_DOORBELL=eventfd: on an eventfd,
 *                        as Porter's pollable rings do; PORTER_BENCH_SHM_-
 *                        SPIN_NS=0: no spin).  The floor of the
 *                        shared-memory fast path.
 *   floor-seqpacket-samecore-rtt  floor-seqpacket-rtt with both processes
 *                        pinned to one CPU.
 *   floor-memcpy-64mib   one 64 MiB memcpy, reported as mb_per_s (MiB/s):
 *                        what copying through a ring costs at best.
 *   floor-relay-N        the floor of nc-post-dispatch-N and dbus-signal-N
 *                        (N = 1, 10, 50): a post relayed by a third process
 *                        to N observer processes that poll() and ack with
 *                        one byte, over raw SEQPACKET sockets.  No daemon
 *                        in between can do better than its three wake-ups.
 *   nc-check-ns          one nc_notify_check() on a token of a name
 *                        registered at a private porter-notifyd (a read of
 *                        its shared page): not a round trip.  Each sample
 *                        times 1000 checks; median_us and p99_us are per
 *                        check, to the nanosecond (0.004 is 4 ns).
 *
 * Each case warms up, then times every round trip on its own and prints one
 * JSON object per line:
 *
 *   {"case": "porter-call-rtt", "median_us": 23.1, "p99_us": 61.0, "ops_per_s": 41000}
 *
 * (ops_per_s is 1e6 / mean_us), then one line of ratios of the medians.
 * Case names never change, so results can be compared over time.
 *
 *   porter-bench [--iterations N] [--case PATTERN]...
 *
 * The server of the Porter and GDBus cases is this same program, re-executed
 * with --serve, so that it starts from a clean process rather than from a
 * fork of one that may already run GLib threads.  The client and the server
 * talk over a control socket on fd 3 the server inherits: the server sends
 * its port fd (or its bus name) on it and exits when it closes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include "libdo/do.h"
#include "libnotecenter/nc.h"
#include "tests/notifyd/notifyd-test-util.h"

#define CONTROL_FD 3
#define SETUP_TIMEOUT_MS 10000
#define EXIT_TIMEOUT_MS 5000

#define BENCH_INTERFACE "org.porter.Bench"
#define BENCH_PATH "/org/porter/Bench"

static const gchar bench_xml[] =
  "<node>"
  "  <interface name='" BENCH_INTERFACE "'>"
  "    <method name='Add'>"
  "      <arg type='i' name='a' direction='in'/>"
  "      <arg type='i' name='b' direction='in'/>"
  "      <arg type='i' name='sum' direction='out'/>"
  "    </method>"
  "    <method name='Ping'/>"
  "    <method name='Log'>"
  "      <arg type='ay' name='data' direction='in'/>"
  "      <annotation name='org.freedesktop.DBus.Method.NoReply' value='true'/>"
  "    </method>"
  "    <method name='Count'>"
  "      <arg type='t' name='logged' direction='out'/>"
  "    </method>"
  "    <method name='Size'>"
  "      <arg type='ay' name='data' direction='in'/>"
  "      <arg type='t' name='size' direction='out'/>"
  "      <arg type='y' name='last' direction='out'/>"
  "    </method>"
  "    <method name='Length'>"
  "      <arg type='s' name='text' direction='in'/>"
  "      <arg type='t' name='length' direction='out'/>"
  "    </method>"
  "  </interface>"
  "</node>";

/* ------------------------------------------------------------------ time */

static inline gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

typedef struct {
  double median_us;
  double p99_us;
  double mean_us;
} Stats;

static int
compare_gint64 (const void *a, const void *b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static Stats
compute_stats (gint64 *samples, gsize n)
{
  Stats st = { 0, 0, 0 };
  double sum = 0;
  gsize p99_index;

  g_assert (n > 0);
  qsort (samples, n, sizeof *samples, compare_gint64);
  for (gsize i = 0; i < n; i++)
    sum += (double) samples[i];

  if (n % 2)
    st.median_us = samples[n / 2] / 1e3;
  else
    st.median_us = (samples[n / 2 - 1] + samples[n / 2]) / 2e3;

  p99_index = (gsize) ceil (0.99 * (double) n);
  if (p99_index > 0)
    p99_index--;
  st.p99_us = samples[MIN (p99_index, n - 1)] / 1e3;
  st.mean_us = sum / (double) n / 1e3;
  return st;
}

/* ---------------------------------------------------------------- pinning */

/* By default the client runs on one CPU and every server on another, so
 * each case measures a round trip across cores, the same way every run,
 * instead of whatever placement the scheduler picks (same-core and
 * cross-core round trips differ by an order of magnitude).  The private
 * dbus-daemon gets the original mask.  --no-pin turns this off. */
static gboolean pinned;
static cpu_set_t original_cpus, client_cpus, server_cpus;

static void
pin_setup (void)
{
  int first = -1, second = -1;

  if (sched_getaffinity (0, sizeof original_cpus, &original_cpus) < 0)
    return;
  for (int cpu = 0; cpu < CPU_SETSIZE && second < 0; cpu++)
    if (CPU_ISSET (cpu, &original_cpus))
      {
        if (first < 0)
          first = cpu;
        else
          second = cpu;
      }
  if (second < 0)
    {
      g_printerr ("porter-bench: one CPU only: client and server share it\n");
      return;
    }

  CPU_ZERO (&client_cpus);
  CPU_SET (first, &client_cpus);
  CPU_ZERO (&server_cpus);
  CPU_SET (second, &server_cpus);
  if (sched_setaffinity (0, sizeof client_cpus, &client_cpus) < 0)
    return;
  pinned = TRUE;
  g_printerr ("porter-bench: client on CPU %d, servers on CPU %d\n", first, second);
}

static void
unpin_child_setup (gpointer user_data)
{
  if (pinned)
    sched_setaffinity (0, sizeof original_cpus, &original_cpus);
}

/* --------------------------------------------------------------- helpers */

static gboolean
wait_readable (int fd, int timeout_ms, GError **error)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  int r;

  do
    r = poll (&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);

  if (r < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "poll: %s", g_strerror (errno));
      return FALSE;
    }
  if (r == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "the server did not answer within %d ms", timeout_ms);
      return FALSE;
    }
  return TRUE;
}

/* Sends @len bytes and, if @fd >= 0, the fd with them. */
static gboolean
control_send (int sock, const void *data, gsize len, int fd)
{
  struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } cmsg_buf;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  ssize_t r;

  if (fd >= 0)
    {
      struct cmsghdr *cmsg;

      memset (&cmsg_buf, 0, sizeof cmsg_buf);
      msg.msg_control = cmsg_buf.buf;
      msg.msg_controllen = sizeof cmsg_buf.buf;
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cmsg), &fd, sizeof (int));
    }

  do
    r = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r == (ssize_t) len;
}

/* Receives one message of at most @size bytes (NUL-terminated when there is
 * room) and, if @out_fd is not NULL, the fd that came with it (or -1). */
static gssize
control_recv (int sock, void *buf, gsize size, int *out_fd, GError **error)
{
  struct iovec iov = { .iov_base = buf, .iov_len = size };
  union {
    char buf[CMSG_SPACE (sizeof (int) * 4)];
    struct cmsghdr align;
  } cmsg_buf;
  struct msghdr msg = {
    .msg_iov = &iov, .msg_iovlen = 1,
    .msg_control = cmsg_buf.buf, .msg_controllen = sizeof cmsg_buf.buf,
  };
  ssize_t r;

  if (out_fd)
    *out_fd = -1;
  if (!wait_readable (sock, SETUP_TIMEOUT_MS, error))
    return -1;

  do
    r = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "recvmsg: %s", g_strerror (errno));
      return -1;
    }

  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c))
    {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      gsize n = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (gsize i = 0; i < n; i++)
        {
          int fd;

          memcpy (&fd, CMSG_DATA (c) + i * sizeof (int), sizeof (int));
          if (out_fd && *out_fd < 0)
            *out_fd = fd;
          else
            close (fd);
        }
    }

  if (r == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                   "the server exited during set-up");
      return -1;
    }
  if ((gsize) r < size)
    ((char *) buf)[r] = '\0';
  return r;
}

/* Waits for @pid to exit, at most EXIT_TIMEOUT_MS, then kills it. */
static void
reap_child (pid_t pid)
{
  int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  int status;

  if (pidfd >= 0)
    {
      struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
      int r;

      do
        r = poll (&pfd, 1, EXIT_TIMEOUT_MS);
      while (r < 0 && errno == EINTR);
      if (r == 0)
        {
          g_printerr ("porter-bench: child %d did not exit, killing it\n", (int) pid);
          kill (pid, SIGKILL);
        }
      close (pidfd);
    }
  else
    {
      /* No pidfds: do not risk waiting forever. */
      kill (pid, SIGKILL);
    }

  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
}

/* Forks a child that dies with us, on @cpus when pinned.  Only
 * async-signal-safe calls in the child, up to exec or plain system calls. */
static pid_t
fork_child (const cpu_set_t *cpus, GError **error)
{
  pid_t pid = fork ();

  if (pid < 0)
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                 "fork: %s", g_strerror (errno));
  else if (pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (pinned)
        sched_setaffinity (0, sizeof *cpus, cpus);
    }
  return pid;
}

/* Forks a server: this program again, with --serve=@role and the control
 * socket on fd 3.  Returns the client's end of the control socket. */
static int
spawn_server (const char *role, const char *arg, pid_t *out_pid, GError **error)
{
  int sv[2];
  pid_t pid;
  g_autofree char *serve = g_strdup_printf ("--serve=%s", role);

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "socketpair: %s", g_strerror (errno));
      return -1;
    }

  pid = fork_child (&server_cpus, error);
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      return -1;
    }

  if (pid == 0)
    {
      /* Only async-signal-safe calls until exec. */
      char *argv[] = { (char *) "porter-bench", serve, (char *) arg, NULL };

      if (dup2 (sv[1], CONTROL_FD) < 0)
        _exit (127);
      execv ("/proc/self/exe", argv);
      _exit (127);
    }

  close (sv[1]);
  *out_pid = pid;
  return sv[0];
}

/* ------------------------------------------------------------------ cases */

typedef struct {
  guint iterations;
  guint warmup;
} CaseParams;

typedef gboolean (*CaseFunc) (const CaseParams *params,
                              gint64           *samples,
                              GError          **error);

/* floor-seqpacket-rtt --------------------------------------------------- */

static gboolean
case_floor_seqpacket (const CaseParams *params, gint64 *samples, GError **error)
{
  int sv[2];
  pid_t pid;
  gboolean ok = TRUE;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "socketpair: %s", g_strerror (errno));
      return FALSE;
    }

  pid = fork_child (&server_cpus, error);
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      return FALSE;
    }

  if (pid == 0)
    {
      /* The server: add, reply, until the client hangs up.  Plain system
       * calls only, so forking without exec is safe here. */
      gint32 in[2], sum;

      close (sv[0]);
      for (;;)
        {
          ssize_t r = recv (sv[1], in, sizeof in, 0);

          if (r < 0 && errno == EINTR)
            continue;
          if (r != sizeof in)
            _exit (r == 0 ? 0 : 1);
          sum = in[0] + in[1];
          if (send (sv[1], &sum, sizeof sum, MSG_NOSIGNAL) != sizeof sum)
            _exit (1);
        }
    }

  close (sv[1]);
  for (guint i = 0; i < params->warmup + params->iterations && ok; i++)
    {
      gint32 in[2] = { (gint32) i, 7 }, sum = 0;
      gint64 t0 = now_ns ();
      ssize_t r;

      if (send (sv[0], in, sizeof in, MSG_NOSIGNAL) != sizeof in)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "send: %s", g_strerror (errno));
          ok = FALSE;
          break;
        }
      do
        r = recv (sv[0], &sum, sizeof sum, 0);
      while (r < 0 && errno == EINTR);
      if (r != sizeof sum || sum != in[0] + in[1])
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "bad reply from the server (%zd bytes, sum %d)", r, sum);
          ok = FALSE;
          break;
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = now_ns () - t0;
    }

  close (sv[0]);
  reap_child (pid);
  return ok;
}

/* porter-call-rtt ------------------------------------------------------- */

static GVariant *
porter_add (DoObject      *object,
            DoInvocation  *invocation,
            const gchar   *method,
            GVariant      *parameters,
            gpointer       user_data,
            GError       **error)
{
  static guint64 logged;
  gint32 a, b;

  if (g_strcmp0 (method, "Log") == 0)
    {
      logged++;
      return NULL;
    }
  if (g_strcmp0 (method, "Count") == 0)
    return g_variant_new ("(t)", logged);
  if (g_strcmp0 (method, "Ping") == 0)
    return g_variant_new ("()");
  if (g_strcmp0 (method, "Size") == 0)
    {
      g_autoptr(GVariant) data = g_variant_get_child_value (parameters, 0);
      gsize n = g_variant_n_children (data);
      const guint8 *bytes = g_variant_get_fixed_array (data, &n, 1);

      return g_variant_new ("(ty)", (guint64) n, n ? bytes[n - 1] : 0);
    }
  if (g_strcmp0 (method, "Length") == 0)
    {
      g_autoptr(GVariant) text = g_variant_get_child_value (parameters, 0);
      gsize n = 0;

      g_variant_get_string (text, &n);
      return g_variant_new ("(t)", (guint64) n);
    }
  if (g_strcmp0 (method, "Add") != 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD,
                   "no method %s", method);
      return NULL;
    }
  g_variant_get (parameters, "(ii)", &a, &b);
  return g_variant_new ("(i)", a + b);
}

static gboolean
quit_on_hangup (gint fd, GIOCondition condition, gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static int
serve_porter (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) conn = NULL;
  g_autoptr(DoObject) object = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  int port_fd;

  conn = do_connection_new (&error);
  if (conn)
    object = do_object_new_for_xml (bench_xml, BENCH_INTERFACE, porter_add,
                                    NULL, NULL, &error);
  /* Add is thread-safe: calls run on each connection's reader thread, the
   * way a server gets full speed (PORTER_BENCH_CONTEXT=1: on the main
   * loop instead, for comparison). */
  if (object && !g_getenv ("PORTER_BENCH_CONTEXT"))
    do_object_set_flags (object, DO_OBJECT_FLAGS_THREAD_SAFE, NULL);
  if (object)
    do_connection_set_root_object (conn, object);
  port_fd = object ? do_connection_dup_port_fd (conn, &error) : -1;
  if (port_fd < 0)
    {
      g_printerr ("porter-bench: server: %s\n", error->message);
      control_send (CONTROL_FD, "E", 1, -1);
      return 1;
    }

  if (!control_send (CONTROL_FD, "P", 1, port_fd))
    return 1;
  close (port_fd);

  g_unix_fd_add (CONTROL_FD, G_IO_IN | G_IO_HUP | G_IO_ERR, quit_on_hangup, loop);
  g_main_loop_run (loop);
  do_connection_close (conn);
  return 0;
}

/* A Porter server process and a connection to it. */
typedef struct {
  pid_t pid;
  int ctl;
  DoConnection *conn;
  DoProxy *proxy;
} PorterPeer;

static void
porter_close (PorterPeer *peer)
{
  g_clear_pointer (&peer->proxy, do_proxy_unref);
  if (peer->conn)
    do_connection_close (peer->conn);
  g_clear_pointer (&peer->conn, do_connection_unref);
  if (peer->ctl >= 0)
    {
      close (peer->ctl);
      reap_child (peer->pid);
    }
  peer->ctl = -1;
}

/* Starts a server and connects to it, over the shared-memory fast path if
 * @shm, else over the socket alone (the client does not offer a ring). */
static gboolean
porter_open (PorterPeer *peer, gboolean shm, GError **error)
{
  gboolean had_no_shm = g_getenv ("PORTER_NO_SHM") != NULL;
  g_autofree gchar *saved = g_strdup (g_getenv ("PORTER_NO_SHM"));
  int port_fd = -1;
  char tag[8];

  peer->ctl = spawn_server ("porter", NULL, &peer->pid, error);
  if (peer->ctl < 0)
    return FALSE;
  if (control_recv (peer->ctl, tag, sizeof tag, &port_fd, error) < 0)
    return FALSE;
  if (port_fd < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "the server could not vend its object");
      return FALSE;
    }

  /* The port fd is borrowed: the connection has its own socket. */
  if (shm)
    g_unsetenv ("PORTER_NO_SHM");
  else
    g_setenv ("PORTER_NO_SHM", "1", TRUE);
  peer->conn = do_connection_new_for_port_fd (port_fd, error);
  if (had_no_shm)
    g_setenv ("PORTER_NO_SHM", saved, TRUE);
  else
    g_unsetenv ("PORTER_NO_SHM");
  close (port_fd);
  if (!peer->conn)
    return FALSE;
  peer->proxy = do_connection_get_root_proxy (peer->conn);
  return TRUE;
}

/* Add(i, 7) -> (i + 7), checked; or with @null_call, Ping() -> (). */
static gboolean
porter_rtt (PorterPeer *peer, const CaseParams *params, gboolean null_call,
            gint64 *samples, GError **error)
{
  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint32 a = (gint32) i, b = 7, sum = 0;
      const gchar *reply_type = null_call ? "()" : "(i)";
      gint64 t0 = now_ns ();
      g_autoptr(GVariant) reply =
        null_call ? do_proxy_call_sync (peer->proxy, "Ping", NULL,
                                        DO_CALL_FLAGS_NONE, -1, NULL, error)
                  : do_proxy_call_sync (peer->proxy, "Add", g_variant_new ("(ii)", a, b),
                                        DO_CALL_FLAGS_NONE, -1, NULL, error);
      gint64 t1 = now_ns ();

      if (!reply)
        return FALSE;
      if (!g_variant_is_of_type (reply, G_VARIANT_TYPE (reply_type)))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "reply of type %s, expected %s",
                       g_variant_get_type_string (reply), reply_type);
          return FALSE;
        }
      if (!null_call)
        g_variant_get (reply, "(i)", &sum);
      if (!null_call && sum != a + b)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%d + %d gave %d", a, b, sum);
          return FALSE;
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = t1 - t0;
    }
  return TRUE;
}

/* porter-call-rtt: the socket path (no shared-memory ring). */
static gboolean
case_porter_call (const CaseParams *params, gint64 *samples, GError **error)
{
  PorterPeer peer = { .ctl = -1 };
  gboolean ok = porter_open (&peer, FALSE, error) &&
                porter_rtt (&peer, params, FALSE, samples, error);

  porter_close (&peer);
  return ok;
}

/* porter-shm-rtt: a null call over the shared-memory fast path;
 * porter-shm-add-rtt: Add over it, as porter-call-rtt. */
static gboolean
porter_shm (const CaseParams *params, gboolean null_call, gint64 *samples, GError **error)
{
  PorterPeer peer = { .ctl = -1 };
  gboolean ok = porter_open (&peer, TRUE, error) &&
                porter_rtt (&peer, params, null_call, samples, error);

  if (ok && !do_connection_uses_shm (peer.conn))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the server declined the ring");
      ok = FALSE;
    }
  porter_close (&peer);
  return ok;
}

static gboolean
case_porter_shm (const CaseParams *params, gint64 *samples, GError **error)
{
  return porter_shm (params, TRUE, samples, error);
}

static gboolean
case_porter_shm_add (const CaseParams *params, gint64 *samples, GError **error)
{
  return porter_shm (params, FALSE, samples, error);
}

/* porter-oneway-throughput: 64-byte oneway calls, timed per batch. */
#define ONEWAY_BATCH 1000

static gboolean
case_porter_oneway (const CaseParams *params, gint64 *samples, GError **error)
{
  PorterPeer peer = { .ctl = -1 };
  guint8 payload[64];
  guint64 sent = 0, logged = 0;
  gboolean ok = porter_open (&peer, TRUE, error);

  memset (payload, 0x5a, sizeof payload);
  for (guint i = 0; ok && i < params->warmup + params->iterations; i += ONEWAY_BATCH)
    {
      gint64 t0 = now_ns (), per_call;
      guint n = MIN (ONEWAY_BATCH, params->warmup + params->iterations - i);

      for (guint j = 0; ok && j < n; j++, sent++)
        ok = do_proxy_call_oneway (peer.proxy, "Log",
                                   g_variant_new ("(@ay)",
                                                  g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                             payload, sizeof payload, 1)),
                                   error);
      /* One clock read per batch: a read per sample would bill the
       * later samples for the earlier reads. */
      per_call = (now_ns () - t0) / n;
      for (guint j = 0; ok && j < n; j++)
        if (i + j >= params->warmup)
          samples[i + j - params->warmup] = per_call;
    }
  if (ok)
    {
      /* Every one arrived: the count comes back after them, in order. */
      g_autoptr(GVariant) reply = do_proxy_call_sync (peer.proxy, "Count", NULL,
                                                      DO_CALL_FLAGS_NONE, -1, NULL, error);
      ok = reply != NULL;
      if (ok)
        g_variant_get (reply, "(t)", &logged);
      if (ok && logged != sent)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "sent %" G_GUINT64_FORMAT " oneway calls, %" G_GUINT64_FORMAT " arrived",
                       sent, logged);
          ok = FALSE;
        }
    }
  porter_close (&peer);
  return ok;
}

/* porter-string-8mib: an 8 MiB string argument, out of line, and its
 * length back: a large body of another shape than `(F..., aT)`, made in
 * memory (a tuple around the caller's string). */
#define STRING_BYTES (8u << 20)

static gboolean
case_porter_string (const CaseParams *params, gint64 *samples, GError **error)
{
  PorterPeer peer = { .ctl = -1 };
  g_autofree gchar *text = g_malloc (STRING_BYTES + 1);
  g_autoptr(GVariant) string = NULL;
  gboolean ok = porter_open (&peer, TRUE, error);

  memset (text, 'p', STRING_BYTES);
  text[STRING_BYTES] = '\0';
  string = g_variant_ref_sink (g_variant_new_string (text));
  for (guint i = 0; ok && i < params->warmup + params->iterations; i++)
    {
      g_autoptr(GVariant) reply = NULL;
      gint64 t0 = now_ns ();
      guint64 length = 0;

      reply = do_proxy_call_sync (peer.proxy, "Length", g_variant_new ("(@s)", string),
                                  DO_CALL_FLAGS_NONE, -1, NULL, error);
      if (i >= params->warmup)
        samples[i - params->warmup] = now_ns () - t0;
      ok = reply != NULL;
      if (ok)
        g_variant_get (reply, "(t)", &length);
      if (ok && length != STRING_BYTES)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "sent %u bytes, the server saw %" G_GUINT64_FORMAT, STRING_BYTES, length);
          ok = FALSE;
        }
    }
  porter_close (&peer);
  return ok;
}

/* porter-bulk-64mib: a 64 MiB `ay` argument, out of line, and its size
 * back. */
#define BULK_BYTES (64u << 20)

static gboolean
case_porter_bulk (const CaseParams *params, gint64 *samples, GError **error)
{
  PorterPeer peer = { .ctl = -1 };
  g_autofree guint8 *data = g_malloc (BULK_BYTES);
  gboolean ok = porter_open (&peer, TRUE, error);

  for (gsize i = 0; i < BULK_BYTES; i += 4096)
    data[i] = (guint8) (i >> 12);
  for (guint i = 0; ok && i < params->warmup + params->iterations; i++)
    {
      g_autoptr(GVariant) reply = NULL;
      gint64 t0 = now_ns ();
      guint64 size = 0;
      guint8 last = 0;

      data[BULK_BYTES - 1] = (guint8) i;
      /* The caller's buffer, not a copy: the copy into the message is the
       * one being measured. */
      reply = do_proxy_call_sync (peer.proxy, "Size",
                                  g_variant_new ("(@ay)",
                                                 g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING,
                                                                          data, BULK_BYTES, TRUE,
                                                                          NULL, NULL)),
                                  DO_CALL_FLAGS_NONE, -1, NULL, error);
      if (i >= params->warmup)
        samples[i - params->warmup] = now_ns () - t0;
      ok = reply != NULL;
      if (ok)
        g_variant_get (reply, "(ty)", &size, &last);
      if (ok && (size != BULK_BYTES || last != (guint8) i))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "sent %u bytes ending in %u, the server saw %" G_GUINT64_FORMAT " ending in %u",
                       BULK_BYTES, (guint8) i, size, last);
          ok = FALSE;
        }
    }
  porter_close (&peer);
  return ok;
}

/* porter-typed-rtt ------------------------------------------------------ */

/* The same Add (ii) -> (i) on the same server as porter-call-rtt, called
 * through a typed proxy: C arguments, libffi closure, GVariant, and back. */
static gboolean
case_porter_typed (const CaseParams *params, gint64 *samples, GError **error)
{
  typedef struct _BenchCalc BenchCalc;
  struct _BenchCalc {
    gboolean (*add) (BenchCalc *self, gint32 a, gint32 b, gint32 *sum, GError **error);
  };
  g_autoptr(DoInterface) iface = NULL;
  PorterPeer peer = { .ctl = -1 };
  BenchCalc *calc = NULL;
  gboolean ok = FALSE;

  /* The socket path, as porter-call-rtt, so the two compare. */
  iface = do_interface_new_for_xml (bench_xml, BENCH_INTERFACE, error);
  if (iface && porter_open (&peer, FALSE, error))
    calc = do_object_get_typed ((DoObject *) peer.proxy, iface, error);
  if (!calc)
    goto out;

  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint32 a = (gint32) i, b = 7, sum = 0;
      gint64 t0 = now_ns ();
      gboolean called = calc->add (calc, a, b, &sum, error);
      gint64 t1 = now_ns ();

      if (!called)
        goto out;
      if (sum != a + b)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%d + %d gave %d", a, b, sum);
          goto out;
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = t1 - t0;
    }
  ok = TRUE;

out:
  porter_close (&peer);
  return ok;
}

/* gdbus-daemon-rtt ------------------------------------------------------ */

static const gchar dbus_config[] =
  "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
  "<busconfig>\n"
  "  <type>session</type>\n"
  "  <listen>unix:dir=%s</listen>\n"
  "  <auth>EXTERNAL</auth>\n"
  "  <policy context=\"default\">\n"
  "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
  "    <allow eavesdrop=\"true\"/>\n"
  "    <allow own=\"*\"/>\n"
  "  </policy>\n"
  "</busconfig>\n";

static void
gdbus_method_call (GDBusConnection       *connection,
                   const gchar           *sender,
                   const gchar           *object_path,
                   const gchar           *interface_name,
                   const gchar           *method_name,
                   GVariant              *parameters,
                   GDBusMethodInvocation *invocation,
                   gpointer               user_data)
{
  gint32 a, b;

  g_variant_get (parameters, "(ii)", &a, &b);
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(i)", a + b));
}

static const GDBusInterfaceVTable gdbus_vtable = { gdbus_method_call, NULL, NULL, { 0 } };

static int
serve_gdbus (const char *address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) conn = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  const gchar *unique;

  conn = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  if (conn)
    node = g_dbus_node_info_new_for_xml (bench_xml, &error);
  if (node && g_dbus_connection_register_object (conn, BENCH_PATH,
                                                 node->interfaces[0],
                                                 &gdbus_vtable, NULL, NULL,
                                                 &error) == 0)
    g_clear_pointer (&node, g_dbus_node_info_unref);
  if (!node)
    {
      g_printerr ("porter-bench: gdbus server: %s\n", error->message);
      control_send (CONTROL_FD, "", 0, -1);
      return 1;
    }

  unique = g_dbus_connection_get_unique_name (conn);
  if (!control_send (CONTROL_FD, unique, strlen (unique), -1))
    return 1;

  g_unix_fd_add (CONTROL_FD, G_IO_IN | G_IO_HUP | G_IO_ERR, quit_on_hangup, loop);
  g_main_loop_run (loop);
  g_dbus_connection_close_sync (conn, NULL, NULL);
  return 0;
}

/* Starts a private dbus-daemon; returns its address, read from the pipe it
 * prints it on (no sleeping). */
static gchar *
start_dbus_daemon (const gchar *tmpdir, GPid *out_pid, GError **error)
{
  g_autofree gchar *config_path = g_build_filename (tmpdir, "bus.conf", NULL);
  g_autofree gchar *config = g_strdup_printf (dbus_config, tmpdir);
  g_autofree gchar *config_arg = NULL;
  g_autoptr(GString) address = g_string_new (NULL);
  const gchar *daemon = g_getenv ("PORTER_BENCH_DBUS_DAEMON");
  int out_fd = -1;
  gint64 deadline;

  if (!g_file_set_contents (config_path, config, -1, error))
    return NULL;
  config_arg = g_strdup_printf ("--config-file=%s", config_path);

  const gchar *argv[] = {
    daemon ? daemon : "dbus-daemon",
    config_arg, "--nofork", "--print-address=1", NULL,
  };
  if (!g_spawn_async_with_pipes (NULL, (gchar **) argv, NULL,
                                 G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                 unpin_child_setup, NULL, out_pid, NULL, &out_fd, NULL, error))
    return NULL;

  deadline = g_get_monotonic_time () + SETUP_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  while (!strchr (address->str, '\n'))
    {
      char buf[256];
      gint64 left = (deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND;
      ssize_t r;

      if (left <= 0 || !wait_readable (out_fd, (int) left, error))
        {
          if (error && !*error)
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         "dbus-daemon printed no address");
          goto fail;
        }
      r = read (out_fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "dbus-daemon exited before printing its address");
          goto fail;
        }
      g_string_append_len (address, buf, r);
    }
  close (out_fd);
  *strchr (address->str, '\n') = '\0';
  return g_string_free (g_steal_pointer (&address), FALSE);

fail:
  close (out_fd);
  kill (*out_pid, SIGTERM);
  reap_child (*out_pid);
  g_spawn_close_pid (*out_pid);
  return NULL;
}

/* Stops a daemon start_dbus_daemon() started and removes its directory. */
static void
stop_dbus_daemon (GPid daemon_pid, const gchar *tmpdir)
{
  if (daemon_pid > 0)
    {
      kill (daemon_pid, SIGTERM);
      reap_child (daemon_pid);
      g_spawn_close_pid (daemon_pid);
    }
  if (tmpdir)
    {
      /* The daemon made its socket in tmpdir (unix:dir=, not abstract). */
      g_autoptr(GDir) dir = g_dir_open (tmpdir, 0, NULL);
      const gchar *entry;

      while (dir && (entry = g_dir_read_name (dir)))
        {
          g_autofree gchar *path = g_build_filename (tmpdir, entry, NULL);
          g_unlink (path);
        }
      g_rmdir (tmpdir);
    }
}

static gboolean
case_gdbus_daemon (const CaseParams *params, gint64 *samples, GError **error)
{
  g_autoptr(GDBusConnection) conn = NULL;
  g_autofree gchar *tmpdir = NULL;
  g_autofree gchar *address = NULL;
  gboolean ok = TRUE;
  GPid daemon_pid = 0;
  pid_t pid = 0;
  int ctl = -1;
  char name[256];

  tmpdir = g_dir_make_tmp ("porter-bench-XXXXXX", error);
  if (!tmpdir)
    return FALSE;

  address = start_dbus_daemon (tmpdir, &daemon_pid, error);
  if (!address)
    goto fail;

  ctl = spawn_server ("gdbus", address, &pid, error);
  if (ctl < 0)
    goto fail;
  if (control_recv (ctl, name, sizeof name - 1, NULL, error) < 0)
    goto fail;
  if (!g_dbus_is_unique_name (name))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "the GDBus server could not export its object");
      goto fail;
    }

  conn = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, error);
  if (!conn)
    goto fail;

  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint32 a = (gint32) i, b = 7, sum = 0;
      gint64 t0 = now_ns ();
      g_autoptr(GVariant) reply =
        g_dbus_connection_call_sync (conn, name, BENCH_PATH, BENCH_INTERFACE,
                                     "Add", g_variant_new ("(ii)", a, b),
                                     G_VARIANT_TYPE ("(i)"),
                                     G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
      gint64 t1 = now_ns ();

      if (!reply)
        goto fail;
      g_variant_get (reply, "(i)", &sum);
      if (sum != a + b)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%d + %d gave %d", a, b, sum);
          goto fail;
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = t1 - t0;
    }
  goto out;

fail:
  ok = FALSE;
out:
  if (conn)
    g_dbus_connection_close_sync (conn, NULL, NULL);
  if (ctl >= 0)
    close (ctl);
  if (pid > 0)
    reap_child (pid);
  stop_dbus_daemon (daemon_pid, tmpdir);
  return ok;
}

/* floor-seqpacket-samecore-rtt ------------------------------------------ */

/* Runs @func with the client and the server on the client's CPU. */
static gboolean
run_samecore (CaseFunc func, const CaseParams *params, gint64 *samples, GError **error)
{
  cpu_set_t saved_self, saved_server = server_cpus, one;
  gboolean saved_pinned = pinned, ok;
  int cpu = sched_getcpu ();

  if (sched_getaffinity (0, sizeof saved_self, &saved_self) < 0 || cpu < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "cannot read the CPU affinity: %s", g_strerror (errno));
      return FALSE;
    }
  CPU_ZERO (&one);
  CPU_SET (cpu, &one);
  if (sched_setaffinity (0, sizeof one, &one) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "cannot pin to CPU %d: %s", cpu, g_strerror (errno));
      return FALSE;
    }
  server_cpus = one;
  pinned = TRUE;
  ok = func (params, samples, error);
  server_cpus = saved_server;
  pinned = saved_pinned;
  sched_setaffinity (0, sizeof saved_self, &saved_self);
  return ok;
}

static gboolean
case_floor_seqpacket_samecore (const CaseParams *params, gint64 *samples, GError **error)
{
  return run_samecore (case_floor_seqpacket, params, samples, error);
}

static gboolean
case_porter_shm_samecore (const CaseParams *params, gint64 *samples, GError **error)
{
  return run_samecore (case_porter_shm, params, samples, error);
}

/* floor-shm-spin-rtt ---------------------------------------------------- */

#define SHM_QUIT G_MAXUINT32

/* PORTER_BENCH_SHM_SPIN_NS overrides the 20 µs spin (0: sleep at once). */
static gint64 shm_spin_ns = 20000;

/* One direction: the writer fills @payload, then bumps @seq; the reader
 * spins on @seq, then sets @sleeping (only it writes it), looks again and
 * sleeps; the writer rings only a sleeping reader. */
typedef struct {
  _Atomic guint32 seq;
  _Atomic guint32 sleeping;
  gint32 payload[2];
  char pad[64 - 16];
} ShmSlot;

typedef struct {
  ShmSlot request;
  ShmSlot reply;
} ShmPage;

static void
shm_post (ShmSlot *slot, int efd, guint32 seq)
{
  atomic_store (&slot->seq, seq);
  if (atomic_load (&slot->sleeping))
    {
      if (efd >= 0)
        eventfd_write (efd, 1);
      else
        syscall (SYS_futex, &slot->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
}

/* Waits until @slot's seq is not @old, at most @timeout_ms once asleep. */
static guint32
shm_wait (ShmSlot *slot, int efd, guint32 old, int timeout_ms)
{
  gint64 end = now_ns () + shm_spin_ns;
  guint32 seq;

  while ((seq = atomic_load_explicit (&slot->seq, memory_order_acquire)) == old)
    {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause ();
#endif
      if (now_ns () < end)
        continue;
      atomic_store (&slot->sleeping, 1);
      while ((seq = atomic_load (&slot->seq)) == old)
        {
          struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
          struct pollfd pfd = { .fd = efd, .events = POLLIN };
          eventfd_t value;
          long r;

          if (efd >= 0)
            r = poll (&pfd, 1, timeout_ms) > 0 ? eventfd_read (efd, &value) : -1;
          else
            r = syscall (SYS_futex, &slot->seq, FUTEX_WAIT, old, &ts, NULL, 0);
          if (r < 0 && errno == ETIMEDOUT)
            break;
          if (r < 0 && efd >= 0 && atomic_load (&slot->seq) == old)
            break;
        }
      atomic_store (&slot->sleeping, 0);
      break;
    }
  return seq;
}

static gboolean
case_floor_shm_spin (const CaseParams *params, gint64 *samples, GError **error)
{
  gboolean use_eventfd = g_strcmp0 (g_getenv ("PORTER_BENCH_SHM_DOORBELL"), "eventfd") == 0;
  const char *spin = g_getenv ("PORTER_BENCH_SHM_SPIN_NS");
  int efd[2] = { -1, -1 };   /* request, reply */
  ShmPage *page;
  gboolean ok = TRUE;
  pid_t pid;

  page = mmap (NULL, sizeof *page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "mmap: %s", g_strerror (errno));
      return FALSE;
    }
  memset (page, 0, sizeof *page);
  if (spin)
    shm_spin_ns = g_ascii_strtoll (spin, NULL, 10);
  if (use_eventfd)
    for (guint i = 0; i < 2; i++)
      efd[i] = eventfd (0, EFD_CLOEXEC);

  pid = fork_child (&server_cpus, error);
  if (pid < 0)
    {
      ok = FALSE;
      goto out;
    }
  if (pid == 0)
    {
      /* The server: add, reply, until the client says quit or goes. */
      guint32 seq = 0;

      for (;;)
        {
          guint32 next = shm_wait (&page->request, efd[0], seq, 1000);

          if (next == SHM_QUIT)
            _exit (0);
          if (next == seq)
            continue;
          seq = next;
          page->reply.payload[0] = page->request.payload[0] + page->request.payload[1];
          shm_post (&page->reply, efd[1], seq);
        }
    }

  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint32 a = (gint32) i, b = 7;
      gint64 t0 = now_ns ();
      guint32 seq = i + 1;

      page->request.payload[0] = a;
      page->request.payload[1] = b;
      shm_post (&page->request, efd[0], seq);
      if (shm_wait (&page->reply, efd[1], seq - 1, SETUP_TIMEOUT_MS) != seq ||
          page->reply.payload[0] != a + b)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "no reply, or a wrong one, from the server");
          ok = FALSE;
          break;
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = now_ns () - t0;
    }
  shm_post (&page->request, efd[0], SHM_QUIT);
  reap_child (pid);

out:
  for (guint i = 0; i < 2; i++)
    if (efd[i] >= 0)
      close (efd[i]);
  munmap (page, sizeof *page);
  return ok;
}

/* floor-memcpy-64mib ---------------------------------------------------- */

#define MEMCPY_BYTES (64u << 20)

static gboolean
case_floor_memcpy (const CaseParams *params, gint64 *samples, GError **error)
{
  g_autofree guint8 *src = g_malloc (MEMCPY_BYTES);
  g_autofree guint8 *dst = g_malloc (MEMCPY_BYTES);

  memset (src, 0x5a, MEMCPY_BYTES);
  memset (dst, 0, MEMCPY_BYTES);
  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint64 t0 = now_ns ();

      memcpy (dst, src, MEMCPY_BYTES);
      if (i >= params->warmup)
        samples[i - params->warmup] = now_ns () - t0;
      src[i % MEMCPY_BYTES] ^= dst[(i * 4099) % MEMCPY_BYTES];   /* keep the copy */
    }
  return TRUE;
}

#define CHECK_BATCH 1000

/* The case's daemon: a private one, on a socket of our own ($PORTER_NOTIFYD
 * is set in main(), before any thread), stopped at exit. */
static gchar *bench_notifyd_path;

static gboolean
case_nc_check (const CaseParams *params, gint64 *samples, GError **error)
{
  int token, check;
  guint32 status;
  guint hits = 0;

  status = nc_notify_register_check ("org.porter.bench.check", &token);
  if (status != NC_NOTIFY_STATUS_OK)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "nc_notify_register_check: status %u", status);
      return FALSE;
    }
  nc_notify_check (token, &check);
  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint64 t0 = now_ns ();

      for (guint j = 0; j < CHECK_BATCH; j++)
        {
          nc_notify_check (token, &check);
          hits += (guint) check;
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = (now_ns () - t0 + CHECK_BATCH / 2) / CHECK_BATCH;
    }
  nc_notify_cancel (token);
  if (hits != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "nc_notify_check saw %u posts nobody made", hits);
      return FALSE;
    }
  return TRUE;
}

static void
bench_notifyd_stop (void)
{
  pid_t pid = bench_notifyd_path ? notifyd_test_daemon_pid (bench_notifyd_path) : 0;
  g_autofree gchar *dir = NULL;
  g_autoptr(GDir) entries = NULL;
  const gchar *entry;

  /* Once it has exited, its directory can go. */
  if (pid <= 1 || kill (pid, SIGTERM) < 0 || !notifyd_test_wait_exit (pid, SETUP_TIMEOUT_MS))
    return;
  dir = g_path_get_dirname (bench_notifyd_path);
  if (!(entries = g_dir_open (dir, 0, NULL)))
    return;
  while ((entry = g_dir_read_name (entries)))
    {
      g_autofree gchar *file = g_build_filename (dir, entry, NULL);
      g_unlink (file);
    }
  g_rmdir (dir);
}

/* nc-post-dispatch-N and dbus-signal-N ----------------------------------- */

/* One post (a distributed notification, or a D-Bus signal) to N observer
 * processes, timed until every one of them has been called back on its
 * main loop: each observer writes a byte on its control socket then. */

#define DISPATCH_NAME "org.porter.bench.Changed"
#define DISPATCH_MAX 50

static void
dispatch_ack (void)
{
  if (write (CONTROL_FD, "n", 1) != 1)
    _exit (1);
}

static void
nc_observed (NcDistributedCenter *center, NcNotification *notification, gpointer data)
{
  dispatch_ack ();
}

static void
dbus_observed (GDBusConnection *connection, const gchar *sender, const gchar *path,
               const gchar *iface, const gchar *signal, GVariant *params, gpointer data)
{
  dispatch_ack ();
}

/* An observer process: --serve=nc-observer, or --serve=dbus-observer ADDRESS. */
static int
serve_observer (const char *address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) id = NULL;

  if (!address)
    {
      if (!nc_distributed_center_add_observer (nc_distributed_center_get_default (),
                                               DISPATCH_NAME, NULL, NC_SUSPENSION_HOLD,
                                               NULL, nc_observed, NULL, NULL, &error))
        goto fail;
    }
  else
    {
      bus = g_dbus_connection_new_for_address_sync (
          address,
          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
          NULL, NULL, &error);
      if (!bus)
        goto fail;
      g_dbus_connection_signal_subscribe (bus, NULL, BENCH_INTERFACE, "Changed", BENCH_PATH,
                                          NULL, G_DBUS_SIGNAL_FLAGS_NONE, dbus_observed,
                                          NULL, NULL);
      /* The bus has our match rule once it answers a later call. */
      id = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "GetId", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
      if (!id)
        goto fail;
    }
  if (!control_send (CONTROL_FD, "R", 1, -1))
    return 1;
  g_unix_fd_add (CONTROL_FD, G_IO_IN | G_IO_HUP | G_IO_ERR, quit_on_hangup, loop);
  g_main_loop_run (loop);
  return 0;

fail:
  g_printerr ("porter-bench: observer: %s\n", error->message);
  control_send (CONTROL_FD, "E", 1, -1);
  return 1;
}

typedef gboolean (*PostFunc) (gpointer data, GError **error);

/* Times each post until all @n observers acked it (a byte on @pfds). */
static gboolean
time_posts (struct pollfd *pfds, guint n, PostFunc post, gpointer data,
            const CaseParams *params, gint64 *samples, GError **error)
{
  for (guint i = 0; i < params->warmup + params->iterations; i++)
    {
      gint64 t0 = now_ns ();
      guint got = 0;

      if (!post (data, error))
        return FALSE;
      while (got < n)
        {
          int r = poll (pfds, n, SETUP_TIMEOUT_MS);

          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "%u of %u observers got post %u", got, n, i);
              return FALSE;
            }
          for (guint j = 0; j < n; j++)
            {
              char c;

              if (!(pfds[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
              if (read (pfds[j].fd, &c, 1) != 1)
                {
                  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "an observer died");
                  return FALSE;
                }
              got++;
            }
        }
      if (i >= params->warmup)
        samples[i - params->warmup] = now_ns () - t0;
    }
  return TRUE;
}

static gboolean
run_dispatch (const char *role, const char *address, guint n, PostFunc post, gpointer data,
              const CaseParams *params, gint64 *samples, GError **error)
{
  pid_t pids[DISPATCH_MAX];
  struct pollfd pfds[DISPATCH_MAX];
  guint started = 0;
  gboolean ok = FALSE;

  for (; started < n; started++)
    {
      char tag = 0;

      pfds[started].fd = spawn_server (role, address, &pids[started], error);
      pfds[started].events = POLLIN;
      if (pfds[started].fd < 0)
        goto out;
      if (control_recv (pfds[started].fd, &tag, 1, NULL, error) < 0)
        {
          started++;
          goto out;
        }
      if (tag != 'R')
        {
          started++;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "an observer could not subscribe");
          goto out;
        }
    }

  ok = time_posts (pfds, n, post, data, params, samples, error);

out:
  for (guint j = 0; j < started; j++)
    {
      if (pfds[j].fd >= 0)
        close (pfds[j].fd);
      reap_child (pids[j]);
    }
  return ok;
}

static gboolean
nc_post (gpointer data, GError **error)
{
  return nc_distributed_center_post (nc_distributed_center_get_default (), DISPATCH_NAME,
                                     "porter-bench", NULL, NC_DISTRIBUTED_POST_NONE, error);
}

static gboolean
case_nc_dispatch (guint n, const CaseParams *params, gint64 *samples, GError **error)
{
  /* Start the daemon from here, then let it run on any CPU, as the
   * dbus-daemon of dbus-signal-N does (started by an observer, it would
   * share the observers' CPU). */
  if (!nc_post (NULL, error))
    return FALSE;
  if (pinned)
    sched_setaffinity (notifyd_test_daemon_pid (bench_notifyd_path), sizeof original_cpus,
                       &original_cpus);
  return run_dispatch ("nc-observer", NULL, n, nc_post, NULL, params, samples, error);
}

static gboolean
dbus_post (gpointer data, GError **error)
{
  return g_dbus_connection_emit_signal (data, NULL, BENCH_PATH, BENCH_INTERFACE, "Changed",
                                        NULL, error);
}

static gboolean
case_dbus_signal (guint n, const CaseParams *params, gint64 *samples, GError **error)
{
  g_autofree gchar *tmpdir = g_dir_make_tmp ("porter-bench-XXXXXX", error);
  g_autofree gchar *address = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  GPid daemon_pid = 0;
  gboolean ok = FALSE;

  if (!tmpdir)
    return FALSE;
  address = start_dbus_daemon (tmpdir, &daemon_pid, error);
  if (address)
    bus = g_dbus_connection_new_for_address_sync (
        address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, NULL, error);
  if (bus)
    ok = run_dispatch ("dbus-observer", address, n, dbus_post, bus, params, samples, error);
  if (bus)
    g_dbus_connection_close_sync (bus, NULL, NULL);
  stop_dbus_daemon (daemon_pid, tmpdir);
  return ok;
}

/* floor-relay-N: the floor of nc-post-dispatch-N and dbus-signal-N, with
 * raw sockets.  The post goes to a relay process (on any CPU, as the
 * daemons are), which sends it on to N observer processes (on the servers'
 * CPU) in turn; each waits in poll() as a main loop does and acks with one
 * byte on its own socket, as run_dispatch()'s observers do.  Each hop is a
 * wake-up. */
static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* Plain system calls only in the children, so forking without exec is
 * safe; each exits when its input hangs up. */
static G_GNUC_NORETURN void
relay_main (int in, const int *out, guint n)
{
  guint8 buf[64];

  for (;;)
    {
      ssize_t r = recv (in, buf, sizeof buf, 0);

      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        _exit (r == 0 ? 0 : 1);
      for (guint j = 0; j < n; j++)
        if (send (out[j], buf, (size_t) r, MSG_NOSIGNAL) != r)
          _exit (1);
    }
}

static G_GNUC_NORETURN void
relay_observer_main (int in, int ack)
{
  struct pollfd pfd = { .fd = in, .events = POLLIN };
  guint8 buf[64];

  for (;;)
    {
      ssize_t r;

      if (poll (&pfd, 1, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          _exit (1);
        }
      r = recv (in, buf, sizeof buf, MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (r <= 0 || send (ack, "n", 1, MSG_NOSIGNAL) != 1)
        _exit (r == 0 ? 0 : 1);
    }
}

static gboolean
relay_post (gpointer data, GError **error)
{
  if (send (*(int *) data, DISPATCH_NAME, strlen (DISPATCH_NAME), MSG_NOSIGNAL) >= 0)
    return TRUE;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "send: %s", g_strerror (errno));
  return FALSE;
}

static gboolean
case_floor_relay (guint n, const CaseParams *params, gint64 *samples, GError **error)
{
  /* post: bench -> relay; deliver: relay -> observer; ack: observer -> bench */
  int post[2] = { -1, -1 }, deliver[DISPATCH_MAX][2], ack[DISPATCH_MAX][2];
  int relay_out[DISPATCH_MAX];
  struct pollfd pfds[DISPATCH_MAX];
  pid_t relay = -1, observers[DISPATCH_MAX];
  guint started = 0;
  gboolean ok = FALSE;

  for (guint j = 0; j < n; j++)
    deliver[j][0] = deliver[j][1] = ack[j][0] = ack[j][1] = -1;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, post) < 0)
    goto failed;
  for (guint j = 0; j < n; j++)
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, deliver[j]) < 0 ||
        socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ack[j]) < 0)
      goto failed;
  /* Each child closes the ends it does not use, so that hang-ups get
   * through: the bench's closes the relay's input, which closes each
   * observer's. */
  for (; started < n; started++)
    {
      observers[started] = fork_child (&server_cpus, error);
      if (observers[started] == 0)
        {
          close (post[0]);
          close (post[1]);
          for (guint j = 0; j < n; j++)
            {
              close (deliver[j][0]);
              close (ack[j][0]);
              if (j != started)
                {
                  close (deliver[j][1]);
                  close (ack[j][1]);
                }
            }
          relay_observer_main (deliver[started][1], ack[started][1]);
        }
      if (observers[started] < 0)
        goto out;
    }
  for (guint j = 0; j < n; j++)
    relay_out[j] = deliver[j][0];
  relay = fork_child (&original_cpus, error);
  if (relay == 0)
    {
      close (post[0]);
      for (guint j = 0; j < n; j++)
        {
          close (deliver[j][1]);
          close (ack[j][0]);
          close (ack[j][1]);
        }
      relay_main (post[1], relay_out, n);
    }
  if (relay < 0)
    goto out;
  close_fd (&post[1]);
  for (guint j = 0; j < n; j++)
    {
      close_fd (&deliver[j][0]);
      close_fd (&deliver[j][1]);
      close_fd (&ack[j][1]);
      pfds[j].fd = ack[j][0];
      pfds[j].events = POLLIN;
    }

  ok = time_posts (pfds, n, relay_post, &post[0], params, samples, error);
  goto out;

failed:
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "%s", g_strerror (errno));
out:
  close_fd (&post[0]);
  close_fd (&post[1]);
  for (guint j = 0; j < n; j++)
    {
      close_fd (&deliver[j][0]);
      close_fd (&deliver[j][1]);
      close_fd (&ack[j][0]);
      close_fd (&ack[j][1]);
    }
  if (relay > 0)
    reap_child (relay);
  for (guint j = 0; j < started; j++)
    reap_child (observers[j]);
  return ok;
}

#define DISPATCH_CASES(n) \
  static gboolean case_nc_dispatch_##n (const CaseParams *p, gint64 *s, GError **e) \
  { return case_nc_dispatch (n, p, s, e); } \
  static gboolean case_dbus_signal_##n (const CaseParams *p, gint64 *s, GError **e) \
  { return case_dbus_signal (n, p, s, e); } \
  static gboolean case_floor_relay_##n (const CaseParams *p, gint64 *s, GError **e) \
  { return case_floor_relay (n, p, s, e); }
DISPATCH_CASES (1)
DISPATCH_CASES (10)
DISPATCH_CASES (50)

/* Bytes moved per operation for bandwidth cases (mb_per_s), else 0. */
static gsize
case_bytes (const char *name)
{
  if (strcmp (name, "floor-memcpy-64mib") == 0)
    return MEMCPY_BYTES;
  if (strcmp (name, "porter-bulk-64mib") == 0)
    return BULK_BYTES;
  if (strcmp (name, "porter-string-8mib") == 0)
    return STRING_BYTES;
  return 0;
}

/* ------------------------------------------------------------------- main */

typedef struct {
  const char *name;
  CaseFunc func;
  guint default_iterations;
  Stats stats;
  gboolean done;
  guint max_iterations;   /* 0: none; bulk cases cap --iterations */
} Case;

static Case cases[] = {
  { "floor-seqpacket-rtt", case_floor_seqpacket, 20000, { 0, 0, 0 }, FALSE },
  { "porter-call-rtt", case_porter_call, 20000, { 0, 0, 0 }, FALSE },
  { "porter-typed-rtt", case_porter_typed, 20000, { 0, 0, 0 }, FALSE },
  { "gdbus-daemon-rtt", case_gdbus_daemon, 5000, { 0, 0, 0 }, FALSE },
  { "floor-shm-spin-rtt", case_floor_shm_spin, 20000, { 0, 0, 0 }, FALSE },
  { "floor-seqpacket-samecore-rtt", case_floor_seqpacket_samecore, 20000, { 0, 0, 0 }, FALSE },
  { "porter-shm-rtt", case_porter_shm, 20000, { 0, 0, 0 }, FALSE },
  { "porter-shm-samecore-rtt", case_porter_shm_samecore, 20000, { 0, 0, 0 }, FALSE },
  { "porter-shm-add-rtt", case_porter_shm_add, 20000, { 0, 0, 0 }, FALSE },
  { "porter-oneway-throughput", case_porter_oneway, 1000000, { 0, 0, 0 }, FALSE },
  { "floor-memcpy-64mib", case_floor_memcpy, 50, { 0, 0, 0 }, FALSE, 50 },
  { "porter-bulk-64mib", case_porter_bulk, 50, { 0, 0, 0 }, FALSE, 50 },
  { "porter-string-8mib", case_porter_string, 50, { 0, 0, 0 }, FALSE, 50 },
  { "nc-check-ns", case_nc_check, 20000, { 0, 0, 0 }, FALSE },
  { "floor-relay-1", case_floor_relay_1, 5000, { 0, 0, 0 }, FALSE },
  { "floor-relay-10", case_floor_relay_10, 2000, { 0, 0, 0 }, FALSE },
  { "floor-relay-50", case_floor_relay_50, 500, { 0, 0, 0 }, FALSE, 500 },
  { "nc-post-dispatch-1", case_nc_dispatch_1, 5000, { 0, 0, 0 }, FALSE },
  { "nc-post-dispatch-10", case_nc_dispatch_10, 2000, { 0, 0, 0 }, FALSE },
  { "nc-post-dispatch-50", case_nc_dispatch_50, 500, { 0, 0, 0 }, FALSE, 500 },
  { "dbus-signal-1", case_dbus_signal_1, 5000, { 0, 0, 0 }, FALSE },
  { "dbus-signal-10", case_dbus_signal_10, 2000, { 0, 0, 0 }, FALSE },
  { "dbus-signal-50", case_dbus_signal_50, 500, { 0, 0, 0 }, FALSE, 500 },
};

static const Case *
find_case (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    if (strcmp (cases[i].name, name) == 0)
      return &cases[i];
  return NULL;
}

/* Whether @name is run: some pattern matches it, or there is none. */
static gboolean
case_selected (GStrv patterns, const char *name)
{
  if (patterns == NULL)
    return TRUE;
  for (guint p = 0; patterns[p] != NULL; p++)
    if (g_pattern_match_simple (patterns[p], name))
      return TRUE;
  return FALSE;
}

static void
print_ratio (GString *out, const char *num, const char *den)
{
  const Case *a = find_case (num), *b = find_case (den);

  if (!a || !b || !a->done || !b->done || b->stats.median_us <= 0)
    return;
  g_string_append_printf (out, "%s\"%s/%s\": %.2f",
                          out->len ? ", " : "", num, den,
                          a->stats.median_us / b->stats.median_us);
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) ratios = g_string_new (NULL);
  gint iterations = 0;
  gint warmup = -1;
  g_auto(GStrv) patterns = NULL;
  g_autofree gchar *serve = NULL;
  gboolean list = FALSE;
  gboolean no_pin = FALSE;
  int status = 0;
  guint n_run = 0;
  GOptionEntry entries[] = {
    { "iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
      "Round trips per case (default: 20000; 5000 for gdbus-daemon-rtt; the 64 MiB cases at most 50)", "N" },
    { "warmup", 'w', 0, G_OPTION_ARG_INT, &warmup,
      "Untimed round trips first (default: iterations / 10, at most 1000)", "N" },
    { "case", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &patterns,
      "Run only the cases whose names match this glob (may be repeated)", "PATTERN" },
    { "list", 'l', 0, G_OPTION_ARG_NONE, &list, "List the cases and exit", NULL },
    { "no-pin", 0, 0, G_OPTION_ARG_NONE, &no_pin,
      "Do not pin the client and the servers to two different CPUs", NULL },
    { "serve", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &serve, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };

  context = g_option_context_new ("- Porter round-trip benchmarks");
  g_option_context_set_summary (context,
    "Times the same Add(ii)->(i) round trip between two processes over a raw\n"
    "SEQPACKET socketpair, over Porter and over GDBus through a private\n"
    "dbus-daemon; a null call and Add over Porter's shared-memory rings;\n"
    "oneway calls, bulk arguments and notifications. Prints one JSON object\n"
    "per case, then the ratios.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("porter-bench: %s\n", error->message);
      return 2;
    }

  signal (SIGPIPE, SIG_IGN);

  if (serve)
    {
      if (strcmp (serve, "porter") == 0)
        return serve_porter ();
      if (strcmp (serve, "nc-observer") == 0)
        return serve_observer (NULL);
      if (strcmp (serve, "dbus-observer") == 0 && argc >= 2)
        return serve_observer (argv[1]);
      if (strcmp (serve, "gdbus") == 0 && argc >= 2)
        return serve_gdbus (argv[1]);
      g_printerr ("porter-bench: unknown server role %s\n", serve);
      return 2;
    }

  if (list)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
        g_print ("%s\n", cases[i].name);
      return 0;
    }

  if (iterations < 0 || warmup < -1)
    {
      g_printerr ("porter-bench: counts must not be negative\n");
      return 2;
    }

  if (!no_pin)
    pin_setup ();

  /* A private porter-notifyd for the nc-* cases (set before any thread):
   * a shared one could be another build's, or busy with others' work. */
  for (gsize i = 0; i < G_N_ELEMENTS (cases) && !bench_notifyd_path; i++)
    if (g_str_has_prefix (cases[i].name, "nc-") && case_selected (patterns, cases[i].name))
      {
        bench_notifyd_path = g_strdup_printf ("%s/porter-bench-%d/notifyd",
                                              g_get_tmp_dir (), (int) getpid ());
        g_setenv ("PORTER_NOTIFYD", bench_notifyd_path, TRUE);
      }

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Case *c = &cases[i];
      CaseParams params;
      g_autofree gint64 *samples = NULL;
      g_autoptr(GError) case_error = NULL;

      if (!case_selected (patterns, c->name))
        continue;
      n_run++;

      params.iterations = iterations > 0 ? (guint) iterations : c->default_iterations;
      if (c->max_iterations && params.iterations > c->max_iterations)
        params.iterations = c->max_iterations;
      params.warmup = warmup >= 0 ? (guint) warmup : MIN (params.iterations / 10, 1000);
      samples = g_new0 (gint64, params.iterations);

      if (!c->func (&params, samples, &case_error))
        {
          g_printerr ("porter-bench: %s: %s\n", c->name, case_error->message);
          status = 1;
          continue;
        }

      c->stats = compute_stats (samples, params.iterations);
      c->done = TRUE;
      if (case_bytes (c->name))
        g_print ("{\"case\": \"%s\", \"median_us\": %.2f, \"p99_us\": %.2f, "
                 "\"mb_per_s\": %.0f}\n",
                 c->name, c->stats.median_us, c->stats.p99_us,
                 case_bytes (c->name) / 1048576.0 / (c->stats.mean_us / 1e6));
      else if (g_str_has_suffix (c->name, "-ns"))
        /* Nanosecond cases: keep the nanoseconds. */
        g_print ("{\"case\": \"%s\", \"median_us\": %.4f, \"p99_us\": %.4f, "
                 "\"ops_per_s\": %.0f}\n",
                 c->name, c->stats.median_us, c->stats.p99_us,
                 1e6 / c->stats.mean_us);
      else
        g_print ("{\"case\": \"%s\", \"median_us\": %.2f, \"p99_us\": %.2f, "
                 "\"ops_per_s\": %.0f}\n",
                 c->name, c->stats.median_us, c->stats.p99_us,
                 1e6 / c->stats.mean_us);
      fflush (stdout);
    }

  if (n_run == 0)
    {
      g_printerr ("porter-bench: no case matches\n");
      return 2;
    }

  print_ratio (ratios, "porter-call-rtt", "floor-seqpacket-rtt");
  print_ratio (ratios, "gdbus-daemon-rtt", "porter-call-rtt");
  print_ratio (ratios, "gdbus-daemon-rtt", "floor-seqpacket-rtt");
  print_ratio (ratios, "porter-typed-rtt", "porter-call-rtt");
  print_ratio (ratios, "porter-shm-rtt", "floor-shm-spin-rtt");
  print_ratio (ratios, "floor-seqpacket-rtt", "porter-shm-rtt");
  print_ratio (ratios, "porter-shm-add-rtt", "floor-shm-spin-rtt");
  print_ratio (ratios, "porter-shm-samecore-rtt", "floor-seqpacket-samecore-rtt");
  print_ratio (ratios, "floor-memcpy-64mib", "porter-bulk-64mib");
  print_ratio (ratios, "dbus-signal-1", "nc-post-dispatch-1");
  for (guint i = 0; i < 3; i++)
    {
      guint n = (const guint[]) { 1, 10, 50 }[i];
      g_autofree gchar *floor = g_strdup_printf ("floor-relay-%u", n);
      g_autofree gchar *nc = g_strdup_printf ("nc-post-dispatch-%u", n);
      g_autofree gchar *dbus = g_strdup_printf ("dbus-signal-%u", n);

      print_ratio (ratios, nc, floor);
      print_ratio (ratios, dbus, floor);
    }
  print_ratio (ratios, "dbus-signal-10", "nc-post-dispatch-10");
  print_ratio (ratios, "dbus-signal-50", "nc-post-dispatch-50");
  g_print ("{\"ratios\": {%s}}\n", ratios->str);
  bench_notifyd_stop ();

  return status;
}
