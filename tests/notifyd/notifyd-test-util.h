/* Porter — helpers shared by the porter-notifyd tests: bounded waits for
 * processes, a daemon's pid and stopping it, and running the test program
 * again as a child.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

/* Waits until @pid has exited (reaped or not), at most @timeout_ms;
 * returns whether it has. */
gboolean notifyd_test_wait_exit (pid_t pid, int timeout_ms);

/* The pid of the daemon listening at @path (from "@path.pid"), or 0. */
pid_t notifyd_test_daemon_pid (const gchar *path);

/* Stops the daemon listening at @path with @sig and waits, at most
 * @timeout_ms, for it to exit; asserts that it did. */
void notifyd_test_stop_daemon (const gchar *path, int sig, int timeout_ms);

/* Removes @dir and everything under it (symbolic links are not
 * followed); returns whether all of it went. */
gboolean notifyd_test_remove_tree (const gchar *dir);

/* Runs @self_exe again as "@self_exe --child ARGS..." with $PORTER_NOTIFYD
 * set to @notifyd_path (if not NULL) for it alone: setenv() while the
 * library's threads run is not safe. */
GSubprocess *notifyd_test_spawn_child (const gchar *self_exe, GSubprocessFlags flags,
                                       const gchar *notifyd_path, const gchar *const *args);
