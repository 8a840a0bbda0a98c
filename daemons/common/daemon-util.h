/* Porter — what porter-broker and porter-notifyd share as processes:
 * logging, daemonizing, one instance per socket, listening and accepting.
 *
 * A daemon listens on a SOCK_SEQPACKET socket.  One daemon per socket: it
 * holds an flock on "PATH.pid" (which holds its pid) while it runs; a
 * second one exits 0 at once.  The socket is bound under a temporary name
 * and renamed into place once it listens, so a client never meets a
 * half-ready socket, and a stale socket left by a killed daemon is simply
 * replaced.
 *
 * With --daemonize the first process exits only once the daemon it forked
 * listens (status 0) or has failed (status 1): clients wait for that (see
 * do_connection_new_for_socket_path()).  Logs go to stderr: warnings and
 * lifecycle always, details with --verbose.  A daemon sends them to
 * "PATH.log" once it holds its lock (emptied at each start): a daemon
 * keeping the stderr of the client that started it would hold that
 * client's pipe open, and `out=$(porterctl list 2>&1)` would never finish.
 * Failures before that still reach the starting client's stderr.  SIGTERM
 * and SIGINT end it cleanly, removing its socket.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Installs the log writer: "PROGRAM[PID]: message" on stderr, info and
 * debug only when *@verbose. */
void daemon_log_init (const gchar *program, const gboolean *verbose);

/* Forks.  The parent waits for the child's status byte and exits with it
 * (1 if the child died first); the child returns the pipe's write end,
 * for daemon_serve(). */
int daemon_daemonize (void);

/* Tells the waiting parent of daemon_daemonize() @status (0: serving, 1:
 * failed) through *@ready_fd, then closes it and sets it to -1.  Nothing
 * when *@ready_fd is -1. */
void daemon_report_ready (int *ready_fd, guint8 status);

/* Takes @fd, an accepted client socket. */
typedef gboolean (*DaemonAcceptFunc) (int fd, gpointer user_data, GError **error);

typedef enum {
  DAEMON_SERVE_NONE = 0,
  DAEMON_SERVE_REDIRECT_LOG = 1 << 0,  /* logs go to PATH.log (daemonized) */
  DAEMON_SERVE_SHARED_DIR = 1 << 1,    /* a system daemon: the directory is
                                        * ours but others may enter it (0755) */
} DaemonServeFlags;

/* Runs a daemon on @path until SIGTERM or SIGINT: checks (or makes) its
 * directory, takes the instance lock, listens, reports to @ready_fd (-1:
 * nobody waits) and hands every accepted socket to @accept on the
 * thread-default main context.  Returns the exit status. */
int daemon_serve (const gchar *path,
                  int ready_fd,
                  DaemonServeFlags flags,
                  DaemonAcceptFunc accept,
                  gpointer user_data);

G_END_DECLS
