/* Porter — helpers shared by the porter-notifyd tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notifyd-test-util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

gboolean
notifyd_test_wait_exit (pid_t pid, int timeout_ms)
{
  int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
  gboolean gone;

  /* No such process: it has exited and been reaped. */
  if (pidfd < 0)
    return errno == ESRCH;
  gone = poll (&pfd, 1, timeout_ms) == 1;
  close (pidfd);
  return gone;
}

void
notifyd_test_stop_daemon (const gchar *path, int timeout_ms)
{
  g_autofree gchar *pid_path = g_strconcat (path, ".pid", NULL);
  g_autofree gchar *text = NULL;

  if (g_file_get_contents (pid_path, &text, NULL, NULL))
    {
      pid_t pid = (pid_t) g_ascii_strtoll (text, NULL, 10);
      if (pid > 1 && kill (pid, SIGTERM) == 0)
        g_assert_true (notifyd_test_wait_exit (pid, timeout_ms));
    }
}
