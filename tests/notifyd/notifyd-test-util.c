/* Porter — helpers shared by the porter-notifyd tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notifyd-test-util.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
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

pid_t
notifyd_test_daemon_pid (const gchar *path)
{
  g_autofree gchar *pid_path = g_strconcat (path, ".pid", NULL);
  g_autofree gchar *text = NULL;

  if (!g_file_get_contents (pid_path, &text, NULL, NULL))
    return 0;
  return (pid_t) g_ascii_strtoll (text, NULL, 10);
}

void
notifyd_test_stop_daemon (const gchar *path, int sig, int timeout_ms)
{
  pid_t pid = notifyd_test_daemon_pid (path);

  if (pid > 1 && kill (pid, sig) == 0)
    g_assert_true (notifyd_test_wait_exit (pid, timeout_ms));
}

GSubprocess *
notifyd_test_spawn_child (const gchar *self_exe, GSubprocessFlags flags,
                          const gchar *notifyd_path, const gchar *const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  if (notifyd_path != NULL)
    g_subprocess_launcher_setenv (launcher, "PORTER_NOTIFYD", notifyd_path, TRUE);
  g_ptr_array_add (argv, (gpointer) self_exe);
  g_ptr_array_add (argv, (gpointer) "--child");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const gchar *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

static int
remove_entry (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  return remove (path);
}

gboolean
notifyd_test_remove_tree (const gchar *dir)
{
  return nftw (dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}
