/* Porter — helpers shared by the libdo tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-test-util.h"
#include "do.h"
#include "libdo/do-ring-private.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

gboolean
test_send_fd (int sock, int fd)
{
  char byte = 'F';
  struct iovec iov = { &byte, 1 };
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);

  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &fd, sizeof fd);
  return sendmsg (sock, &mh, MSG_NOSIGNAL) == 1;
}

int
test_recv_fd (int sock, int timeout_ms)
{
  char byte;
  struct iovec iov = { &byte, 1 };
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct pollfd pfd = { .fd = sock, .events = POLLIN };
  int fd = -1;

  if (poll (&pfd, 1, timeout_ms) != 1 || recvmsg (sock, &mh, MSG_CMSG_CLOEXEC) != 1)
    return -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      memcpy (&fd, CMSG_DATA (cm), sizeof fd);
  return fd;
}

static int
pidfd_open (pid_t pid)
{
  return (int) syscall (SYS_pidfd_open, pid, 0);
}

gboolean
test_wait_exit (pid_t pid, int timeout_ms)
{
  int pidfd = pidfd_open (pid);
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
  gboolean exited;

  if (pidfd < 0)
    return errno == ESRCH;
  exited = poll (&pfd, 1, timeout_ms) == 1;
  close (pidfd);
  return exited;
}

int
test_wait_child (pid_t pid, int timeout_ms)
{
  int status;

  if (!test_wait_exit (pid, timeout_ms))
    {
      kill (pid, SIGKILL);
      waitpid (pid, &status, 0);
      return -1;
    }
  if (waitpid (pid, &status, 0) != pid)
    return -1;
  return status;
}

void
test_read_into (int fd, GString *s, int timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      gint64 left = MAX (deadline - g_get_monotonic_time (), 0) / 1000;
      char buf[4096];
      ssize_t n;

      if (poll (&pfd, 1, (int) left) != 1)
        break;
      n = read (fd, buf, sizeof buf);
      if (n <= 0)
        break;
      g_string_append_len (s, buf, n);
    }
}

gchar *
test_read_all (int fd, int timeout_ms)
{
  GString *s = g_string_new (NULL);

  test_read_into (fd, s, timeout_ms);
  return g_string_free (s, FALSE);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
test_iterate_until (GMainContext *context, gboolean *flag, int timeout_ms)
{
  gboolean timed_out = FALSE;
  GSource *timeout = g_timeout_source_new (timeout_ms);

  g_source_set_callback (timeout, set_flag, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (!*flag && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  return *flag;
}

gchar *
test_private_broker (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("porter-test-XXXXXX", &error);
  gchar *path;

  g_assert_no_error (error);
  path = g_build_filename (dir, "run", "broker", NULL);
  g_setenv ("PORTER_BROKER", path, TRUE);
  return path;
}

void
test_kill_broker (const gchar *socket_path)
{
  g_autofree gchar *pidfile = g_strconcat (socket_path, ".pid", NULL);
  g_autofree gchar *contents = NULL;

  if (g_file_get_contents (pidfile, &contents, NULL, NULL))
    {
      pid_t pid = (pid_t) g_ascii_strtoll (contents, NULL, 10);
      if (pid > 1)
        {
          kill (pid, SIGTERM);
          if (!test_wait_exit (pid, 5000))
            kill (pid, SIGKILL);
        }
    }
}

/* ---------------------------------------------------------------- */
/* A DoConnection served by a thread of this process. */

struct _TestServer {
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  DoObject *object;
  GMutex lock;
  GCond cond;
  int port_fd;     /* protected by @lock; -2 until the server is up */
};

static gpointer
server_thread (gpointer data)
{
  TestServer *server = data;
  g_autoptr(GError) error = NULL;
  DoConnection *connection;
  int port_fd;

  g_main_context_push_thread_default (server->context);
  connection = do_connection_new (&error);
  g_assert_no_error (error);
  do_connection_set_root_object (connection, server->object);
  port_fd = do_connection_dup_port_fd (connection, &error);
  g_assert_no_error (error);
  g_mutex_lock (&server->lock);
  server->port_fd = port_fd;
  g_cond_signal (&server->cond);
  g_mutex_unlock (&server->lock);

  g_main_loop_run (server->loop);
  do_connection_close (connection);
  do_connection_unref (connection);
  g_main_context_pop_thread_default (server->context);
  return NULL;
}

TestServer *
test_server_start (DoObject *object, int *port_fd)
{
  TestServer *server = g_new0 (TestServer, 1);
  gint64 deadline = g_get_monotonic_time () + 5000 * G_TIME_SPAN_MILLISECOND;

  server->context = g_main_context_new ();
  server->loop = g_main_loop_new (server->context, FALSE);
  server->object = do_object_ref (object);
  server->port_fd = -2;
  g_mutex_init (&server->lock);
  g_cond_init (&server->cond);
  server->thread = g_thread_new ("typed-server", server_thread, server);
  g_mutex_lock (&server->lock);
  while (server->port_fd == -2)
    if (!g_cond_wait_until (&server->cond, &server->lock, deadline))
      g_error ("the server thread did not start");
  *port_fd = server->port_fd;
  g_mutex_unlock (&server->lock);
  return server;
}

void
test_server_stop (TestServer *server)
{
  g_main_loop_quit (server->loop);
  g_thread_join (server->thread);
  g_main_loop_unref (server->loop);
  g_main_context_unref (server->context);
  do_object_unref (server->object);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->cond);
  g_free (server);
}

int
test_lent_state (DoRing *ring)
{
  return atomic_load (&do_ring_read_control (ring, TRUE)->state);
}

DoRing *
test_ring_attach_copy (DoRing *ring)
{
  g_autoptr(GError) error = NULL;
  int fds[DO_RING_N_FDS];
  DoRing *other;

  g_assert_true (do_ring_dup_fds (ring, fds, &error));
  other = do_ring_attach (fds, DO_RING_N_FDS, &error);
  g_assert_no_error (error);
  return other;
}
