/* Porter — libdo: channels (ports), DESIGN.md §3.
 *
 * A channel is one end of a SOCK_SEQPACKET socket: every message is atomic,
 * carries fds with SCM_RIGHTS and the sender's credentials with
 * SCM_CREDENTIALS, and EOF / POLLHUP means the peer is gone.  Bodies too big
 * for one packet go out of line in a sealed memfd.
 *
 * Thread rules: do_channel_send() may be called from any thread (sends are
 * serialised); do_channel_receive() from one thread at a time (the
 * connection's lock).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-wire-private.h"

#include <poll.h>

G_BEGIN_DECLS

typedef struct _DoChannel DoChannel;

/* Takes @fd; makes it non-blocking, close-on-exec, SO_PASSCRED. */
DoChannel *do_channel_new (int fd, GError **error);
DoChannel *do_channel_ref (DoChannel *channel);
void do_channel_unref (DoChannel *channel);
int do_channel_get_fd (DoChannel *channel);
/* Shuts the socket down (peers see EOF); the fd stays open until unref. */
void do_channel_shutdown (DoChannel *channel);

/* Sends @msg with its fds.  Waits for room until @deadline (monotonic
 * microseconds; -1: forever; 0: don't wait).  Errors: DO_ERROR_TIMED_OUT,
 * DO_ERROR_CONNECTION_DIED, DO_ERROR_LIMITS_EXCEEDED. */
gboolean do_channel_send (DoChannel *channel,
                          DoMessage *msg,
                          gint64 deadline,
                          GError **error);

/* Receives one message without blocking.  NULL with G_IO_ERROR_WOULD_BLOCK
 * when nothing is there; DO_ERROR_CONNECTION_DIED on EOF; DO_ERROR_PROTOCOL
 * for a malformed message (the caller closes the connection). */
DoMessage *do_channel_receive (DoChannel *channel, GError **error);

/* Waits until the channel is readable, hung up, or @deadline passes.
 * Returns FALSE with DO_ERROR_TIMED_OUT on timeout. */
gboolean do_channel_wait_readable (DoChannel *channel, gint64 deadline, GError **error);

/* poll()'s timeout for a monotonic @deadline in microseconds (-1: none). */
int do_poll_timeout (gint64 deadline);

/* poll() until one of @pfds is ready (TRUE) or @deadline passes (FALSE,
 * DO_ERROR_TIMED_OUT); retries on EINTR. */
gboolean do_poll (struct pollfd *pfds, guint n_fds, gint64 deadline, GError **error);

/* Makes a connected pair (both ends wrapped). */
gboolean do_channel_new_pair (DoChannel **a, DoChannel **b, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoChannel, do_channel_unref)

G_END_DECLS
