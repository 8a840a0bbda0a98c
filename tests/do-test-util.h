/* Porter — helpers shared by the libdo tests: forked servers, fd passing,
 * bounded waits on child processes.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Sends/receives one fd over a unix socket. */
gboolean test_send_fd (int sock, int fd);
int test_recv_fd (int sock, int timeout_ms);

/* Waits for @pid to exit, at most @timeout_ms; returns its wait status, or
 * -1 on timeout (the child is then killed). */
int test_wait_child (pid_t pid, int timeout_ms);
/* Waits until @pid has exited (reaped or not), at most @timeout_ms. */
gboolean test_wait_exit (pid_t pid, int timeout_ms);

/* Reads what is available on @fd within @timeout_ms into a string. */
gchar *test_read_all (int fd, int timeout_ms);
/* Appends to @s what @fd gives until EOF or until @timeout_ms has passed
 * (0: only what is there now). */
void test_read_into (int fd, GString *s, int timeout_ms);

/* Runs @context until *@flag is TRUE or @timeout_ms passes. */
gboolean test_iterate_until (GMainContext *context, gboolean *flag, int timeout_ms);

/* A fresh private broker socket path under a temp dir; sets $PORTER_BROKER. */
gchar *test_private_broker (void);
/* Kills the broker started for @socket_path (its pid is in broker.pid beside it). */
void test_kill_broker (const gchar *socket_path);

/* Serves @object as the root object of a new DoConnection on a thread with
 * its own GMainContext; *@port_fd gets a send right to its port (close it).
 * test_server_stop() closes the connection and joins the thread. */
typedef struct _DoObject DoObject;
typedef struct _TestServer TestServer;
TestServer *test_server_start (DoObject *object, int *port_fd);
void test_server_stop (TestServer *server);
/* The peer's view of @ring, attached from duplicates of its fds. */
typedef struct _DoRing DoRing;
DoRing *test_ring_attach_copy (DoRing *ring);
/* The state of the body we lend on @ring (a DoRingRead). */
int test_lent_state (DoRing *ring);
