/* Porter — helpers shared by the porter-notifyd tests: bounded waits for
 * processes, and stopping a daemon they started.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Waits until @pid has exited (reaped or not), at most @timeout_ms;
 * returns whether it has. */
gboolean notifyd_test_wait_exit (pid_t pid, int timeout_ms);

/* Stops the daemon listening at @path (its pid is in "@path.pid") with
 * SIGTERM and waits, at most @timeout_ms, for it to exit; asserts that it
 * did. */
void notifyd_test_stop_daemon (const gchar *path, int timeout_ms);
