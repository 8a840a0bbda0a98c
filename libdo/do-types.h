/* Porter — libdo: basic types and the export macro.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(DO_INSIDE) && !defined(DO_COMPILATION)
#error "Only <libdo/do.h> can be included directly."
#endif

#include <glib.h>
#include <gio/gio.h>

G_BEGIN_DECLS

#define DO_API __attribute__((visibility ("default"))) extern

typedef struct _DoConnection DoConnection;
typedef struct _DoObject DoObject;
/* A proxy is an object whose methods run in another process: every
 * function taking a DoObject takes a DoProxy, and the other way round. */
typedef struct _DoObject DoProxy;
typedef struct _DoInvocation DoInvocation;
typedef struct _DoCredentials DoCredentials;

/**
 * DoCallFlags:
 * @DO_CALL_FLAGS_NONE: an ordinary call that waits for its reply.
 * @DO_CALL_FLAGS_ONEWAY: send and do not wait; no reply or error comes back
 *   (D-Bus's NoReply, DO's `oneway`).
 */
typedef enum {
  DO_CALL_FLAGS_NONE = 0,
  DO_CALL_FLAGS_ONEWAY = 1 << 0,
} DoCallFlags;

/**
 * DoObjectFlags:
 * @DO_OBJECT_FLAGS_NONE: calls run on the connection's #GMainContext, one
 *   at a time, in the order sent.
 * @DO_OBJECT_FLAGS_THREAD_SAFE: the handlers may run on any thread, and
 *   concurrently.  A vending connection whose root object is thread-safe
 *   (and not on the pool) gives each client connection a reader thread
 *   that runs calls to thread-safe objects as they arrive.
 * @DO_OBJECT_FLAGS_WORKER_POOL: (with %DO_OBJECT_FLAGS_THREAD_SAFE) calls
 *   run on a process-wide pool of worker threads, concurrently and in no
 *   particular order, so a slow handler holds up neither the context nor
 *   the other calls.
 *
 * How a connection runs calls to a local object (do_object_set_flags()).
 */
typedef enum {
  DO_OBJECT_FLAGS_NONE = 0,
  DO_OBJECT_FLAGS_THREAD_SAFE = 1 << 0,
  DO_OBJECT_FLAGS_WORKER_POOL = 1 << 1,
} DoObjectFlags;

/**
 * DoCredentials:
 * @pid: the sender's process id, as the kernel reported it for the message.
 * @uid: its user id.
 * @gid: its group id.
 *
 * Who sent a message. Filled from SCM_CREDENTIALS, which the kernel checks:
 * a peer cannot claim someone else's ids.
 */
struct _DoCredentials {
  gint32 pid;
  guint32 uid;
  guint32 gid;
};

/* Timeouts are in milliseconds; these two values have special meanings. */
#define DO_TIMEOUT_DEFAULT (-1)  /* the connection's timeout (25 s unless set) */
#define DO_TIMEOUT_INFINITE G_MAXINT

G_END_DECLS
