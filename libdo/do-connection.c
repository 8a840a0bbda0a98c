/* Porter — libdo: connections (DESIGN.md §5).  Invocations are in
 * do-invocation.c, proxies and calls in do-proxy.c.
 *
 * Two kinds of DoConnection share this type:
 *
 * - a *vending* connection owns a port: the receive end of a SEQPACKET pair
 *   whose send end is registered at the broker.  Clients send CONNECT on the
 *   port carrying one end of a fresh socketpair; each accepted client becomes
 *   a *peer* connection served with the vending connection's root object.
 * - a *peer* connection is one private socket between two processes.  Calls
 *   go both ways on it.
 *
 * Reading a peer socket: whoever holds @lock may receive (non-blocking) and
 * route messages: replies complete their pending call, calls are queued on
 * @incoming and dispatched on the connection's GMainContext, or nested on a
 * thread blocked in a sync call when that thread owns the context.  A sync
 * caller reads the socket itself (no thread hop: the reply wakes the very
 * thread waiting for it); at most one sync caller polls at a time
 * (@reading), the others wait on @cond.
 *
 * Lock order: connection->lock, then channel send lock.  Callbacks, task
 * completions and user handlers never run with @lock held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-connection-private.h"
#include "do-error.h"
#include "do-broker-private.h"
#include "do-channel-private.h"
#include "do-object-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_READS_PER_DISPATCH 64
/* How long a source with a ring keeps serving (and spinning for) messages
 * before it gives its context back to other sources. */
#define MAX_SPIN_DISPATCH_US 1000

/* The GSource refers to its connection weakly: a dispatch racing the last
 * unref must not touch a freed connection.  This lock guards that edge. */
G_LOCK_DEFINE_STATIC (source_conn);

struct _ConnSource {
  GSource source;
  DoConnection *connection; /* protected by source_conn */
  gpointer tag;
  gpointer doorbell_tag;    /* the ring's doorbell, or NULL */
  gboolean spin_more;       /* yielded while the peer was still busy */
  DoChannel *channel;       /* a reference: polled without source_conn */
};

static void connection_die (DoConnection *connection, GError *error);
static void dispatch_incoming (DoConnection *connection);

/* ---------------------------------------------------------------- */

gint64
_do_deadline_after (gint timeout_ms)
{
  if (timeout_ms == DO_TIMEOUT_INFINITE || timeout_ms < 0)
    return -1;
  return g_get_monotonic_time () + (gint64) timeout_ms * 1000;
}

gint
_do_effective_timeout (gint timeout_ms, gint fallback)
{
  return timeout_ms == DO_TIMEOUT_DEFAULT || timeout_ms < 0 ? fallback : timeout_ms;
}

static void
pending_free (Pending *p)
{
  if (p->timeout_source)
    {
      g_source_destroy (p->timeout_source);
      g_source_unref (p->timeout_source);
    }
  if (p->cancel_source)
    {
      g_source_destroy (p->cancel_source);
      g_source_unref (p->cancel_source);
    }
  g_clear_object (&p->task);
  g_clear_pointer (&p->reply, do_message_unref);
  g_clear_error (&p->error);
  g_free (p);
}

static void
wake_reader (DoConnection *connection)
{
  eventfd_write (connection->wake_fd, 1);
}

static void reply_mode_wake (GMainContext *context);

/* Wakes the threads waiting on @cond for a reply another thread reads, or
 * for room to read, and those waiting for it in reply mode.  GLib's GCond
 * makes a system call even with nobody waiting: avoided on the common
 * path (one caller per connection). */
static void
wake_waiters_locked (DoConnection *connection)
{
  if (connection->n_waiters > 0)
    g_cond_broadcast (&connection->cond);
  if (connection->n_serving > 0)
    reply_mode_wake (connection->context);
}

/* Calls read but not yet run, at most, and their bodies' bytes (one body
 * may go past, up to the largest a message has): past either the
 * connection is not read until they are run, so a peer that sends faster
 * than its calls run (its ring and socket fill, its sends wait) costs it
 * time, not us memory. */
#define MAX_INCOMING 1024
#define MAX_INCOMING_BYTES (64u << 20)

static gboolean
incoming_full_locked (DoConnection *connection)
{
  return connection->incoming.length + connection->reader_calls.length >= MAX_INCOMING ||
         connection->incoming_bytes >= MAX_INCOMING_BYTES;
}

/* Queues @msg on @queue (@incoming, or the reader's @reader_calls).
 * Called with @lock held. */
static void
push_queue_locked (DoConnection *connection, GQueue *queue, DoMessage *msg)
{
  connection->incoming_bytes += g_variant_get_size (msg->body);
  g_queue_push_tail (queue, msg);
}

/* Whether the reader thread runs @msg itself: a call to a thread-safe
 * object of ours, or a RELEASE (in order with those calls).  Called with
 * @lock held. */
static gboolean
for_reader_locked (DoConnection *connection, DoMessage *msg)
{
  g_autoptr(DoObject) object = NULL;

  if (!connection->has_reader)
    return FALSE;
  if (msg->kind == DO_MESSAGE_RELEASE)
    return TRUE;
  object = msg->object_id == DO_ROOT_OBJECT_ID
           ? (connection->root ? do_object_ref (connection->root) : NULL)
           : _do_connection_lookup_export (connection, msg->object_id);
  return object && !do_object_is_proxy (object) &&
         (do_object_get_flags (object) & DO_OBJECT_FLAGS_THREAD_SAFE);
}

/* Takes the next message to run from @queue (@incoming, or the reader's
 * @reader_calls).  Called with @lock held. */
static DoMessage *
pop_queue_locked (DoConnection *connection, GQueue *queue)
{
  gboolean was_full = incoming_full_locked (connection);
  DoMessage *msg = g_queue_pop_head (queue);

  if (!msg)
    return NULL;
  connection->incoming_bytes -= g_variant_get_size (msg->body);
  /* Room again: whoever waits to read may. */
  if (was_full && !incoming_full_locked (connection))
    wake_waiters_locked (connection);
  return msg;
}

/* Routes one received message.  Called with @lock held.  Async completions
 * go on @done_tasks to run after the lock is dropped.  Object references
 * are imported here, as messages arrive, so every one is counted once.
 * Returns FALSE with @error for a message that kills the connection. */
static gboolean
route_locked (DoConnection *connection, DoMessage *msg, GQueue *done_tasks, GError **error)
{
  Pending *p;

  if ((msg->kind == DO_MESSAGE_CALL || msg->kind == DO_MESSAGE_ONEWAY ||
       msg->kind == DO_MESSAGE_REPLY) &&
      !_do_connection_import_refs (connection, msg, error))
    {
      do_message_unref (msg);  /* unchanged: it holds no objects */
      return FALSE;
    }

  switch (msg->kind)
    {
    case DO_MESSAGE_REPLY:
    case DO_MESSAGE_ERROR:
      p = g_hash_table_lookup (connection->pending, GUINT_TO_POINTER (msg->reply_serial));
      if (!p)
        {
          /* A late answer to a call that timed out or was cancelled.  It
           * may hold objects: it is dropped outside the lock. */
          push_queue_locked (connection, &connection->incoming, msg);
          return TRUE;
        }
      p->reply = msg;
      p->done = TRUE;
      if (p->task)
        {
          g_hash_table_steal (connection->pending, GUINT_TO_POINTER (msg->reply_serial));
          g_queue_push_tail (done_tasks, p);
        }
      else if (p->waiter != g_thread_self ())
        {
          wake_waiters_locked (connection);
          if (connection->reading)
            wake_reader (connection);
        }
      return TRUE;

    case DO_MESSAGE_CALL:
    case DO_MESSAGE_ONEWAY:
    case DO_MESSAGE_RELEASE:
      /* In order with the calls, on the dispatching thread: the reader
       * thread's own queue, never seen by the context, or the context's. */
      push_queue_locked (connection, for_reader_locked (connection, msg)
                                     ? &connection->reader_calls : &connection->incoming, msg);
      return TRUE;

    case DO_MESSAGE_BYE:
    case DO_MESSAGE_HELLO:
    case DO_MESSAGE_CONNECT:
    default:
      /* Not meaningful on an established connection: ignored. */
      do_message_unref (msg);
      return TRUE;
    }
}

static void
run_completions (DoConnection *connection, GQueue *done_tasks)
{
  Pending *p;

  while ((p = g_queue_pop_head (done_tasks)))
    _do_connection_complete_pending (connection, p);
}

/* Reads what is there, up to @max messages (stopping early once @until is
 * done, or after a CALL on the socket: the poll says when more came).  @socket_readable: whether a poll saw the socket readable (with a
 * ring, an empty ring then costs no system call).  Called with @lock held.  On EOF or a bad message the connection
 * dies: returns the error to pass to connection_die() after unlocking. */
static GError *
read_locked (DoConnection *connection, guint max, Pending *until, gboolean socket_readable,
             GQueue *done_tasks)
{
  for (guint i = 0; i < max && connection->alive && !incoming_full_locked (connection); i++)
    {
      GError *error = NULL;
      DoMessage *msg = do_channel_receive_full (connection->channel, socket_readable, &error);
      gboolean call;

      if (!msg)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_error_free (error);
              return NULL;
            }
          if (!g_error_matches (error, DO_ERROR, DO_ERROR_CONNECTION_DIED))
            g_message ("closing connection to pid %d: %s",
                       connection->peer_creds.pid, error->message);
          return error;
        }
      call = msg->kind == DO_MESSAGE_CALL;
      if (!route_locked (connection, msg, done_tasks, &error))
        {
          g_message ("closing connection to pid %d: %s",
                     connection->peer_creds.pid, error->message);
          return error;
        }
      if (until && until->done)
        return NULL;
      /* A caller waiting for its reply sends nothing more meanwhile: on the
       * socket, trying for a next message would only cost an EAGAIN. */
      if (call && !until && !do_channel_get_ring (connection->channel))
        return NULL;
    }
  return NULL;
}

/* Blocks in the channel for one message (@timeout_ms as
 * do_channel_receive_blocking() takes it) and routes it.  Returns with
 * @lock held, and with the error that kills the connection, if one does
 * (logged); none for a timeout or a stale wake-up: look again. */
static GError *
receive_blocking_then_lock (DoConnection *connection, gint timeout_ms, GQueue *done_tasks)
{
  GError *death = NULL;
  DoMessage *msg = do_channel_receive_blocking (connection->channel, timeout_ms, &death);

  g_mutex_lock (&connection->lock);
  if (msg)
    {
      if (!route_locked (connection, msg, done_tasks, &death))
        g_message ("closing connection to pid %d: %s",
                   connection->peer_creds.pid, death->message);
    }
  else if (g_error_matches (death, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    g_clear_error (&death);
  else if (!g_error_matches (death, DO_ERROR, DO_ERROR_CONNECTION_DIED))
    g_message ("closing connection to pid %d: %s",
               connection->peer_creds.pid, death->message);
  return death;
}

/* Moves the fds of @fd_list (nullable) into @msg; the list is emptied. */
gboolean
_do_take_fd_list (DoMessage *msg, GUnixFDList *fd_list, GError **error)
{
  gint n;
  int *fds;

  if (!fd_list || g_unix_fd_list_get_length (fd_list) == 0)
    return TRUE;
  fds = g_unix_fd_list_steal_fds (fd_list, &n);
  return do_message_take_fds (msg, fds, n, error);
}

/* We passed on a proxy, and the peer calls it: the call goes on to the
 * object's owner and its answer comes back through us (the owner sees our
 * credentials).  Synchronously: the wait reads the owner's connection
 * itself, where a blocked caller's context would not be run. */
static void
forward_call (DoInvocation *invocation, DoObject *target)
{
  DoMessage *call = invocation->call;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = do_object_call_sync (target, call->interface[0] ? call->interface : NULL,
                               call->method, call->body, invocation->fd_list,
                               call->kind == DO_MESSAGE_ONEWAY ? DO_CALL_FLAGS_ONEWAY
                                                               : DO_CALL_FLAGS_NONE,
                               DO_TIMEOUT_DEFAULT, &fds, NULL, &error);
  if (reply)
    do_invocation_return_value_with_fds (invocation, reply, fds);
  else
    do_invocation_return_gerror (invocation, error);
}

/* Runs @invocation's call on @object (local) on this thread, and answers
 * it unless the handler keeps it. */
static void
run_call (DoInvocation *invocation, DoObject *object)
{
  DoMessage *call = invocation->call;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = _do_object_dispatch (object, invocation, call->interface,
                                                   call->method, call->body, &error);

  if (reply)
    do_invocation_return_value (invocation, reply);
  else if (error)
    do_invocation_return_gerror (invocation, error);
  /* else: the handler kept the invocation and answers later */
}

typedef struct {
  DoInvocation *invocation;
  DoObject *object;
} WorkerCall;

static void
worker_run (gpointer data, gpointer unused)
{
  WorkerCall *w = data;

  run_call (w->invocation, w->object);
  do_object_unref (w->object);
  do_invocation_unref (w->invocation);
  g_free (w);
}

/* Hands a call to the process-wide worker pool (takes both references).
 * The pool grows to the number of CPUs, at least four, and is never freed. */
static void
run_on_worker (DoInvocation *invocation, DoObject *object)
{
  static GThreadPool *pool;
  WorkerCall *w = g_new (WorkerCall, 1);

  if (g_once_init_enter (&pool))
    g_once_init_leave (&pool, g_thread_pool_new (worker_run, NULL,
                                                 MAX (4, (gint) g_get_num_processors ()),
                                                 FALSE, NULL));
  w->invocation = invocation;
  w->object = object;
  g_thread_pool_push (pool, w, NULL);
}

/* Runs one incoming call on the current thread. */
static void
dispatch_call (DoConnection *connection, DoMessage *call)
{
  g_autoptr(GError) error = NULL;
  DoInvocation *invocation = _do_invocation_new (connection, call);
  DoObject *object = _do_connection_lookup_export (connection, call->object_id);

  if (!object)
    {
      g_set_error (&error, DO_ERROR, DO_ERROR_NO_SUCH_OBJECT,
                   "no object %" G_GUINT64_FORMAT " on this connection", call->object_id);
      do_invocation_return_gerror (invocation, error);
    }
  else if (do_object_is_proxy (object))
    forward_call (invocation, object);
  else if (do_object_get_flags (object) & DO_OBJECT_FLAGS_WORKER_POOL)
    {
      run_on_worker (invocation, object);
      return;
    }
  else
    run_call (invocation, object);
  do_object_unref (object);
  do_invocation_unref (invocation);
}

/* Runs one message taken from @incoming: a call, or a RELEASE. */
static void
dispatch_one (DoConnection *connection, DoMessage *msg)
{
  g_autoptr(GError) error = NULL;

  if (!do_connection_is_alive (connection))
    do_message_unref (msg);
  else if (msg->kind == DO_MESSAGE_CALL || msg->kind == DO_MESSAGE_ONEWAY)
    dispatch_call (connection, msg);
  else if (msg->kind == DO_MESSAGE_RELEASE &&
           !_do_connection_handle_release (connection, msg, &error))
    {
      do_message_unref (msg);
      g_message ("closing connection to pid %d: %s",
                 connection->peer_creds.pid, error->message);
      connection_die (connection, g_steal_pointer (&error));
    }
  else
    do_message_unref (msg);
}

/* Runs @queue's messages (@incoming, or the reader's) on this thread. */
static void
dispatch_queue (DoConnection *connection, GQueue *queue)
{
  for (;;)
    {
      DoMessage *msg;

      g_mutex_lock (&connection->lock);
      msg = pop_queue_locked (connection, queue);
      g_mutex_unlock (&connection->lock);
      if (!msg)
        return;
      dispatch_one (connection, msg);
    }
}

static void
dispatch_incoming (DoConnection *connection)
{
  dispatch_queue (connection, &connection->incoming);
}

/* ---------------------------------------------------------------- */
/* The GSource: reads the socket (or port) on the connection's context. */

static gboolean
conn_source_prepare (GSource *source, gint *timeout)
{
  ConnSource *cs = (ConnSource *) source;
  gboolean ready = FALSE;

  *timeout = -1;
  /* A record left in the ring rings no doorbell again. */
  if (cs->spin_more || (cs->doorbell_tag && do_channel_arm (cs->channel)))
    return TRUE;
  G_LOCK (source_conn);
  if (cs->connection && !cs->connection->is_vending)
    {
      g_mutex_lock (&cs->connection->lock);
      ready = cs->connection->alive && !g_queue_is_empty (&cs->connection->incoming);
      g_mutex_unlock (&cs->connection->lock);
    }
  G_UNLOCK (source_conn);
  return ready;
}

static gboolean
conn_source_check (GSource *source)
{
  ConnSource *cs = (ConnSource *) source;
  gint timeout;

  if (cs->tag && g_source_query_unix_fd (source, cs->tag) != 0)
    return TRUE;
  if (cs->doorbell_tag && g_source_query_unix_fd (source, cs->doorbell_tag) != 0)
    return TRUE;
  return conn_source_prepare (source, &timeout);
}

static DoConnection *
conn_source_get (ConnSource *cs)
{
  DoConnection *connection = NULL;

  G_LOCK (source_conn);
  if (cs->connection)
    {
      gint old;
      do
        old = g_atomic_int_get (&cs->connection->ref_count);
      while (old > 0 && !g_atomic_int_compare_and_exchange (&cs->connection->ref_count, old, old + 1));
      if (old > 0)
        connection = cs->connection;
    }
  G_UNLOCK (source_conn);
  return connection;
}

static void accept_clients (DoConnection *vending);

/* Serves what @cs's connection has: new clients on a port, calls a reader
 * thread left, or reads and runs what came (@socket_readable, @rung: what
 * a poll saw).  On the context's thread: its dispatch, or a sync caller
 * that owns the context (reply mode).  FALSE: the source is done with. */
static gboolean
serve_source (ConnSource *cs, gboolean socket_readable, gboolean rung)
{
  DoConnection *connection = conn_source_get (cs);
  GQueue done_tasks = G_QUEUE_INIT;
  GError *error;

  if (!connection)
    return TRUE;
  /* The child's copy of a parent's connection: not ours to read. */
  if (do_channel_is_inherited (connection->channel))
    {
      do_connection_unref (connection);
      return FALSE;
    }

  if (connection->is_vending)
    {
      accept_clients (connection);
      do_connection_unref (connection);
      return TRUE;
    }
  if (connection->has_reader)
    {
      dispatch_incoming (connection);
      do_connection_unref (connection);
      return TRUE;
    }

  /* With a ring, a peer that calls again soon is served without sleeping:
   * after each round the source spins (adaptively, bounded) for the next
   * message.  Past MAX_SPIN_DISPATCH_US it lets the context run its other
   * sources, and comes straight back (spin_more) rather than sleeping. */
  gint64 until = g_get_monotonic_time () + MAX_SPIN_DISPATCH_US;

  cs->spin_more = FALSE;
  for (;;)
    {
      if (rung)
        do_channel_ack_doorbell (connection->channel);
      rung = FALSE;
      g_mutex_lock (&connection->lock);
      error = read_locked (connection, MAX_READS_PER_DISPATCH, NULL, socket_readable,
                           &done_tasks);
      socket_readable = FALSE;  /* the spins below look at the ring only */
      g_mutex_unlock (&connection->lock);
      run_completions (connection, &done_tasks);
      dispatch_incoming (connection);
      if (error || !cs->doorbell_tag || !do_connection_is_alive (connection))
        break;
      if (g_get_monotonic_time () >= until)
        {
          cs->spin_more = TRUE;
          break;
        }
      if (!do_channel_spin (connection->channel, until))
        break;
    }
  if (error)
    connection_die (connection, error);
  do_connection_unref (connection);
  return TRUE;
}

static gboolean
conn_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  ConnSource *cs = (ConnSource *) source;

  return serve_source (cs, cs->tag && g_source_query_unix_fd (source, cs->tag) != 0,
                       cs->doorbell_tag && g_source_query_unix_fd (source, cs->doorbell_tag) != 0)
         ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
conn_source_finalize (GSource *source)
{
  ConnSource *cs = (ConnSource *) source;

  g_clear_pointer (&cs->channel, do_channel_unref);
}

static GSourceFuncs conn_source_funcs = {
  conn_source_prepare,
  conn_source_check,
  conn_source_dispatch,
  conn_source_finalize,
  NULL, NULL,
};

/* Reply mode (GNUstep's NSConnectionReplyMode): a sync caller that owns a
 * context serves every connection on that context while it waits, not
 * only its own, so a peer can call back over another connection (a
 * client that connects to our port meanwhile, say).  The sources of each
 * context are listed here; a reader thread that leaves calls for a
 * context rings @wake_fd when sync callers wait in it. */
typedef struct {
  GPtrArray *sources;  /* ConnSource references */
  int wake_fd;         /* eventfd */
  guint n_waiting;     /* sync callers in reply mode */
  gint generation;     /* _do_fork_generation() it was made in */
} ReplyMode;

G_LOCK_DEFINE_STATIC (reply_mode);
static GHashTable *reply_modes;  /* GMainContext -> ReplyMode */
static gint n_listed;            /* (atomic) sources listed, all contexts */

/* @context's entry, or NULL.  After fork() the child drops the parent's
 * (its eventfd is the parent's too: reading it would take the parent's
 * wake-ups).  Called with reply_mode held. */
static ReplyMode *
reply_mode_lookup_locked (GMainContext *context)
{
  ReplyMode *rm = reply_modes ? g_hash_table_lookup (reply_modes, context) : NULL;

  if (rm && rm->generation != _do_fork_generation ())
    {
      g_atomic_int_add (&n_listed, -(gint) rm->sources->len);
      g_hash_table_remove (reply_modes, context);
      rm = NULL;
    }
  return rm;
}

static void
reply_mode_free (ReplyMode *rm)
{
  g_ptr_array_unref (rm->sources);
  close (rm->wake_fd);
  g_free (rm);
}

/* Called with reply_mode held. */
static void
reply_mode_forget_locked (GMainContext *context, ReplyMode *rm)
{
  if (rm->sources->len == 0 && rm->n_waiting == 0)
    g_hash_table_remove (reply_modes, context);
}

static void
reply_mode_add (DoConnection *connection, ConnSource *cs)
{
  ReplyMode *rm;

  G_LOCK (reply_mode);
  if (!reply_modes)
    reply_modes = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) reply_mode_free);
  rm = reply_mode_lookup_locked (connection->context);
  if (!rm)
    {
      rm = g_new0 (ReplyMode, 1);
      rm->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
      rm->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      rm->generation = _do_fork_generation ();
      g_hash_table_insert (reply_modes, connection->context, rm);
    }
  g_ptr_array_add (rm->sources, g_source_ref (&cs->source));
  g_atomic_int_inc (&n_listed);
  G_UNLOCK (reply_mode);
}

static void
reply_mode_remove (DoConnection *connection, ConnSource *cs)
{
  ReplyMode *rm;

  G_LOCK (reply_mode);
  rm = reply_mode_lookup_locked (connection->context);
  if (rm && g_ptr_array_remove_fast (rm->sources, cs))
    {
      g_atomic_int_add (&n_listed, -1);
      reply_mode_forget_locked (connection->context, rm);
    }
  G_UNLOCK (reply_mode);
}

/* Tells sync callers serving @context that calls wait for it. */
static void
reply_mode_wake (GMainContext *context)
{
  ReplyMode *rm;

  G_LOCK (reply_mode);
  rm = reply_mode_lookup_locked (context);
  if (rm && rm->n_waiting > 0 && rm->wake_fd >= 0)
    eventfd_write (rm->wake_fd, 1);
  G_UNLOCK (reply_mode);
}

/* Calls wait for @connection's context: wake whoever serves it. */
static void
wake_context (DoConnection *connection)
{
  g_main_context_wakeup (connection->context);
  reply_mode_wake (connection->context);
}

/* What a sync caller in reply mode serves besides its own connection: the
 * other sources of its context when it began to wait (a fresh list at each
 * wait), and what the last poll saw of each. */
typedef struct {
  ConnSource *cs;  /* a reference */
  gboolean ready;  /* prepared with something to do */
  gint socket;     /* indices in the poll set, or -1 */
  gint doorbell;
} Other;

typedef struct {
  GMainContext *context;  /* NULL: nothing else to serve */
  int wake_fd;
  gint wake;              /* index of @wake_fd in the poll set */
  GArray *others;         /* Other */
} ReplyWait;

static void
reply_wait_begin (DoConnection *connection, ReplyWait *w)
{
  ReplyMode *rm;

  w->context = NULL;
  w->others = NULL;
  /* One connection in the process, the usual client's: nothing else to
   * serve, and no lock taken at each call. */
  if (g_atomic_int_get (&n_listed) < 2)
    return;
  G_LOCK (reply_mode);
  rm = reply_mode_lookup_locked (connection->context);
  for (guint i = 0; rm && i < rm->sources->len; i++)
    {
      ConnSource *cs = g_ptr_array_index (rm->sources, i);
      Other o = { cs, FALSE, -1, -1 };

      if (cs == connection->source || do_channel_is_inherited (cs->channel))
        continue;
      g_source_ref (&cs->source);
      if (!w->others)
        w->others = g_array_new (FALSE, FALSE, sizeof (Other));
      g_array_append_val (w->others, o);
    }
  if (w->others)
    {
      w->context = connection->context;
      w->wake_fd = rm->wake_fd;
      rm->n_waiting++;
    }
  G_UNLOCK (reply_mode);
}

static void
reply_wait_end (ReplyWait *w)
{
  ReplyMode *rm;

  if (!w->context)
    return;
  G_LOCK (reply_mode);
  /* Gone if we forked meanwhile (from a call this wait served). */
  rm = reply_mode_lookup_locked (w->context);
  if (rm)
    {
      rm->n_waiting--;
      reply_mode_forget_locked (w->context, rm);
    }
  G_UNLOCK (reply_mode);
  for (guint i = 0; i < w->others->len; i++)
    g_source_unref (&g_array_index (w->others, Other, i).cs->source);
  g_array_unref (w->others);
  w->context = NULL;
}

/* Before the poll: prepares the other sources (a ring is armed) and adds
 * their fds to @pfds.  Returns whether one has work already. */
static gboolean
reply_wait_prepare (ReplyWait *w, GArray *pfds)
{
  gboolean ready = FALSE;
  struct pollfd wake = { .fd = w->wake_fd, .events = POLLIN };

  w->wake = (gint) pfds->len;
  g_array_append_val (pfds, wake);
  for (guint i = 0; i < w->others->len; i++)
    {
      Other *o = &g_array_index (w->others, Other, i);
      gint timeout;

      o->socket = o->doorbell = -1;
      if (g_source_is_destroyed (&o->cs->source))
        {
          o->ready = FALSE;
          continue;
        }
      o->ready = conn_source_prepare (&o->cs->source, &timeout);
      ready |= o->ready;
      if (o->cs->tag)
        {
          struct pollfd pfd = { .fd = do_channel_get_fd (o->cs->channel), .events = POLLIN };

          o->socket = (gint) pfds->len;
          g_array_append_val (pfds, pfd);
        }
      if (o->cs->doorbell_tag)
        {
          struct pollfd pfd = { .fd = do_channel_get_doorbell_fd (o->cs->channel),
                                .events = POLLIN };

          o->doorbell = (gint) pfds->len;
          g_array_append_val (pfds, pfd);
        }
    }
  return ready;
}

/* After the poll, outside every lock: serves the sources with work. */
static void
reply_wait_serve (ReplyWait *w, GArray *pfds)
{
  struct pollfd *p = (struct pollfd *) (gpointer) pfds->data;

  if (p[w->wake].revents & POLLIN)
    {
      eventfd_t v;
      eventfd_read (w->wake_fd, &v);
    }
  for (guint i = 0; i < w->others->len; i++)
    {
      Other *o = &g_array_index (w->others, Other, i);
      gboolean socket = o->socket >= 0 && p[o->socket].revents != 0;
      gboolean rung = o->doorbell >= 0 && p[o->doorbell].revents != 0;

      if ((o->ready || socket || rung) && !g_source_is_destroyed (&o->cs->source) &&
          !serve_source (o->cs, socket, rung))
        g_source_destroy (&o->cs->source);
      o->ready = FALSE;
    }
}

static void
attach_source (DoConnection *connection)
{
  ConnSource *cs = (ConnSource *) g_source_new (&conn_source_funcs, sizeof (ConnSource));

  cs->connection = connection;
  cs->channel = do_channel_ref (connection->channel);
  connection->source = cs;
  if (connection->has_reader)
    {
      /* Its reader thread reads; the source only runs the calls it leaves
       * for the context (prepare sees them, the thread wakes the context). */
      g_source_set_name (&cs->source, "DoConnection calls");
      g_source_set_can_recurse (&cs->source, TRUE);
      g_source_attach (&cs->source, connection->context);
      reply_mode_add (connection, cs);
      return;
    }
  cs->tag = g_source_add_unix_fd (&cs->source, do_channel_get_fd (connection->channel),
                                  G_IO_IN | G_IO_HUP | G_IO_ERR);
  if (do_channel_get_doorbell_fd (connection->channel) >= 0)
    cs->doorbell_tag = g_source_add_unix_fd (&cs->source,
                                             do_channel_get_doorbell_fd (connection->channel),
                                             G_IO_IN);
  g_source_set_name (&cs->source, connection->is_vending ? "DoConnection port" : "DoConnection");
  /* Not blocked while it dispatches: blocking removes and re-adds its fds,
   * and GLib wakes the context for each (four system calls per message).
   * Dispatching nested is safe: reading is under the lock, and a sync call
   * in a handler already serves calls nested. */
  g_source_set_can_recurse (&cs->source, TRUE);
  g_source_set_priority (&cs->source, G_PRIORITY_DEFAULT);
  g_source_attach (&cs->source, connection->context);
  reply_mode_add (connection, cs);
}

static void
detach_source (DoConnection *connection)
{
  ConnSource *cs;

  G_LOCK (source_conn);
  cs = connection->source;
  connection->source = NULL;
  if (cs)
    cs->connection = NULL;
  G_UNLOCK (source_conn);
  if (cs)
    {
      reply_mode_remove (connection, cs);
      g_source_destroy (&cs->source);
      g_source_unref (&cs->source);
    }
}

/* ---------------------------------------------------------------- */
/* The reader thread of a connection whose root object is thread-safe */

/* Runs here the calls the reader's queue holds (route_locked() put the
 * calls to thread-safe objects and the RELEASEs there), after waking the
 * context for the rest. */
static void
run_thread_safe_calls (DoConnection *connection)
{
  gboolean left;

  g_mutex_lock (&connection->lock);
  left = !g_queue_is_empty (&connection->incoming);
  g_mutex_unlock (&connection->lock);
  if (left)
    wake_context (connection);
  dispatch_queue (connection, &connection->reader_calls);
}

/* The connection a reader thread reads (it holds a reference); NULL on
 * any other thread. */
static _Thread_local DoConnection *thread_reads;

/* Reads the connection in a loop, blocking (or spinning on its ring), and
 * runs calls to thread-safe objects at once: no context in between, the
 * fast path of a server.  Another thread's sync call reads in turn. */
static gpointer
reader_thread (gpointer data)
{
  DoConnection *connection = data;

  thread_reads = connection;
  for (;;)
    {
      GQueue done_tasks = G_QUEUE_INIT;
      GError *death;

      g_mutex_lock (&connection->lock);
      /* Another reads, or the context has not run what we read yet (what
       * another reader left us we run first). */
      while (connection->alive &&
             (connection->reading || (g_queue_is_empty (&connection->reader_calls) &&
                                      incoming_full_locked (connection))))
        {
          connection->n_waiters++;
          g_cond_wait (&connection->cond, &connection->lock);
          connection->n_waiters--;
        }
      if (!connection->alive)
        {
          g_mutex_unlock (&connection->lock);
          break;
        }
      if (!g_queue_is_empty (&connection->reader_calls))
        {
          g_mutex_unlock (&connection->lock);
          run_thread_safe_calls (connection);
          continue;
        }
      connection->reading = TRUE;
      g_mutex_unlock (&connection->lock);

      death = receive_blocking_then_lock (connection, 0, &done_tasks);
      connection->reading = FALSE;
      wake_waiters_locked (connection);
      g_mutex_unlock (&connection->lock);

      run_completions (connection, &done_tasks);
      if (death)
        {
          connection_die (connection, death);
          break;
        }
      run_thread_safe_calls (connection);
    }
  do_connection_unref (connection);
  return NULL;
}

/* ---------------------------------------------------------------- */
/* Life and death */

static DoConnection *
connection_alloc (gboolean is_vending, DoChannel *channel)
{
  DoConnection *connection = g_new0 (DoConnection, 1);

  connection->ref_count = 1;
  connection->is_vending = is_vending;
  connection->context = g_main_context_ref_thread_default ();
  connection->channel = channel;
  connection->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  connection->alive = TRUE;
  connection->port_send_fd = -1;
  connection->pending = g_hash_table_new (NULL, NULL);
  connection->request_timeout_ms = DO_DEFAULT_TIMEOUT_MS;
  connection->reply_timeout_ms = DO_DEFAULT_TIMEOUT_MS;
  g_mutex_init (&connection->lock);
  g_cond_init (&connection->cond);
  g_queue_init (&connection->incoming);
  _do_connection_init_refs (connection);
  return connection;
}

typedef struct {
  DoConnection *connection;
  GError *error;
} DiedData;

static gboolean
notify_died (gpointer data)
{
  DiedData *d = data;
  DoConnection *connection = d->connection;
  DoConnection *vendor;

  if (connection->died_func)
    connection->died_func (connection, d->error, connection->died_data);

  /* An accepted client: its vending connection forgets it. */
  g_mutex_lock (&connection->lock);
  vendor = connection->vendor ? do_connection_ref (connection->vendor) : NULL;
  connection->vendor = NULL;
  g_mutex_unlock (&connection->lock);
  if (vendor)
    {
      g_mutex_lock (&vendor->lock);
      g_ptr_array_remove (vendor->clients, connection);
      g_mutex_unlock (&vendor->lock);
      do_connection_unref (vendor);
    }
  return G_SOURCE_REMOVE;
}

static void
died_data_free (gpointer data)
{
  DiedData *d = data;

  g_error_free (d->error);
  do_connection_unref (d->connection);
  g_free (d);
}

/* Marks the connection dead (once), fails every pending call at once and
 * schedules the died callback on the connection's context.  Takes @error. */
static void
connection_die (DoConnection *connection, GError *error)
{
  GHashTableIter iter;
  gpointer value;
  GQueue done = G_QUEUE_INIT;
  GQueue incoming = G_QUEUE_INIT;
  DiedData *d;

  g_mutex_lock (&connection->lock);
  if (!connection->alive)
    {
      g_mutex_unlock (&connection->lock);
      g_error_free (error);
      return;
    }
  connection->alive = FALSE;
  connection->death = g_error_copy (error);
  g_hash_table_iter_init (&iter, connection->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Pending *p = value;

      p->done = TRUE;
      p->error = g_error_copy (error);
      if (p->task)
        {
          g_hash_table_iter_steal (&iter);
          g_queue_push_tail (&done, p);
        }
    }
  incoming = connection->incoming;
  g_queue_init (&connection->incoming);
  while (!g_queue_is_empty (&connection->reader_calls))
    g_queue_push_tail (&incoming, g_queue_pop_head (&connection->reader_calls));
  connection->incoming_bytes = 0;
  wake_waiters_locked (connection);
  if (connection->reading)
    wake_reader (connection);
  g_mutex_unlock (&connection->lock);

  /* Calls in, and objects the peer held, may hold the last references to
   * objects: dropped without the lock. */
  g_queue_clear_full (&incoming, (GDestroyNotify) do_message_unref);
  _do_connection_clear_refs (connection);

  do_channel_shutdown (connection->channel);
  run_completions (connection, &done);
  detach_source (connection);

  d = g_new0 (DiedData, 1);
  d->connection = do_connection_ref (connection);
  d->error = error;
  g_main_context_invoke_full (connection->context, G_PRIORITY_DEFAULT,
                              notify_died, d, died_data_free);
}

/**
 * do_connection_ref:
 * @connection: a connection.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): @connection.
 */
DoConnection *
do_connection_ref (DoConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  g_atomic_int_inc (&connection->ref_count);
  return connection;
}

static void
connection_finalize (DoConnection *connection)
{
  GPtrArray *clients = NULL;

  detach_source (connection);
  if (connection->is_vending)
    {
      g_mutex_lock (&connection->lock);
      clients = g_steal_pointer (&connection->clients);
      g_mutex_unlock (&connection->lock);
      for (guint i = 0; clients && i < clients->len; i++)
        {
          DoConnection *client = clients->pdata[i];

          g_mutex_lock (&client->lock);
          client->vendor = NULL;
          g_mutex_unlock (&client->lock);
          do_connection_close (client);
        }
      g_clear_pointer (&clients, g_ptr_array_unref);
      g_clear_pointer (&connection->broker, do_connection_unref);
      g_clear_pointer (&connection->name, g_free);
      if (connection->port_send_fd >= 0)
        close (connection->port_send_fd);
      if (connection->authorize_destroy)
        connection->authorize_destroy (connection->authorize_data);
    }
  g_assert (g_hash_table_size (connection->pending) == 0);
  g_hash_table_unref (connection->pending);
  g_queue_clear_full (&connection->incoming, (GDestroyNotify) do_message_unref);
  g_queue_clear_full (&connection->reader_calls, (GDestroyNotify) do_message_unref);
  if (connection->died_destroy)
    connection->died_destroy (connection->died_data);
  g_clear_pointer (&connection->root, do_object_unref);
  _do_connection_clear_refs (connection);
  g_hash_table_unref (connection->exports);
  g_hash_table_unref (connection->exported);
  g_hash_table_unref (connection->imports);
  g_array_unref (connection->releases);
  g_mutex_clear (&connection->refs_lock);
  g_clear_error (&connection->death);
  do_channel_unref (connection->channel);
  close (connection->wake_fd);
  g_main_context_unref (connection->context);
  g_mutex_clear (&connection->lock);
  g_cond_clear (&connection->cond);
  g_free (connection);
}

/**
 * do_connection_unref:
 * @connection: (nullable): a connection.
 *
 * Drops a reference.  The last one closes the connection: a client
 * connection's peer sees it go; a vending connection stops serving, closes
 * its clients and gives up its name.  Proxies and pending async calls hold
 * references.  Thread rules: any thread.
 */
void
do_connection_unref (DoConnection *connection)
{
  if (connection == NULL || !g_atomic_int_dec_and_test (&connection->ref_count))
    return;
  connection_finalize (connection);
}

/**
 * do_connection_close:
 * @connection: a connection.
 *
 * Closes the connection now.  Pending calls fail with %DO_ERROR_CLOSED; the
 * died callback runs.  Thread rules: any thread.
 */
void
do_connection_close (DoConnection *connection)
{
  g_return_if_fail (connection != NULL);

  if (connection->is_vending)
    {
      g_clear_pointer (&connection->broker, do_connection_unref);
      g_clear_pointer (&connection->name, g_free);
      detach_source (connection);
      return;
    }
  connection_die (connection, g_error_new_literal (DO_ERROR, DO_ERROR_CLOSED,
                                                   "the connection was closed"));
}

/**
 * do_connection_is_alive:
 * @connection: a connection.
 *
 * Thread rules: any thread.
 *
 * Returns: %FALSE once the peer has died or the connection was closed.
 */
gboolean
do_connection_is_alive (DoConnection *connection)
{
  gboolean alive;

  g_return_val_if_fail (connection != NULL, FALSE);
  g_mutex_lock (&connection->lock);
  alive = connection->alive;
  g_mutex_unlock (&connection->lock);
  return alive;
}

/**
 * do_connection_uses_shm:
 * @connection: a peer connection.
 *
 * Whether calls on @connection take the shared-memory fast path: the
 * client offered a ring and the server took it (neither side has
 * `PORTER_NO_SHM=1`).  Messages with fds or too big for the ring go over
 * the socket either way, in order.
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE with a shared-memory ring.
 */
gboolean
do_connection_uses_shm (DoConnection *connection)
{
  g_return_val_if_fail (connection != NULL, FALSE);
  return do_channel_get_ring (connection->channel) != NULL;
}

/**
 * do_connection_get_peer_credentials:
 * @connection: a peer connection.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): who is at the other end, as the kernel reported
 * it when the connection was made.
 */
const DoCredentials *
do_connection_get_peer_credentials (DoConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  return &connection->peer_creds;
}

/**
 * do_connection_set_timeouts:
 * @connection: a connection.
 * @request_timeout_ms: how long a send may wait for room in the peer's
 *   queue; -1 keeps the current value (25 s by default).
 * @reply_timeout_ms: how long a call waits for its reply when the call
 *   passes %DO_TIMEOUT_DEFAULT; -1 keeps the current value (25 s).
 *
 * Thread rules: call before the connection is shared between threads.
 */
void
do_connection_set_timeouts (DoConnection *connection,
                            gint          request_timeout_ms,
                            gint          reply_timeout_ms)
{
  g_return_if_fail (connection != NULL);
  if (request_timeout_ms >= 0)
    connection->request_timeout_ms = request_timeout_ms;
  if (reply_timeout_ms >= 0)
    connection->reply_timeout_ms = reply_timeout_ms;
}

/**
 * do_connection_set_died_func:
 * @connection: a connection.
 * @func: (nullable): called once when the peer dies or the connection is
 *   closed, on the connection's GMainContext.
 * @user_data: for @func.
 * @destroy: (nullable): frees @user_data when the connection is finalized.
 *
 * Thread rules: the connection's context thread.
 */
void
do_connection_set_died_func (DoConnection         *connection,
                             DoConnectionDiedFunc  func,
                             gpointer              user_data,
                             GDestroyNotify        destroy)
{
  g_return_if_fail (connection != NULL);
  if (connection->died_destroy)
    connection->died_destroy (connection->died_data);
  connection->died_func = func;
  connection->died_data = user_data;
  connection->died_destroy = destroy;
}

static void
read_peer_creds (DoConnection *connection)
{
  struct ucred uc;
  socklen_t len = sizeof uc;

  if (getsockopt (do_channel_get_fd (connection->channel), SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0)
    {
      connection->peer_creds.pid = uc.pid;
      connection->peer_creds.uid = uc.uid;
      connection->peer_creds.gid = uc.gid;
    }
}

DoConnection *
_do_connection_new_for_socket (int fd, DoObject *root, GError **error)
{
  DoChannel *channel = do_channel_new (fd, error);
  DoConnection *connection;

  if (!channel)
    return NULL;
  connection = connection_alloc (FALSE, channel);
  connection->root = root ? do_object_ref (root) : NULL;
  read_peer_creds (connection);
  attach_source (connection);
  return connection;
}

/* ---------------------------------------------------------------- */
/* Vending side */

/**
 * do_connection_new:
 * @error: return location for a #GError.
 *
 * Makes a vending connection: a port clients connect to once it has a name
 * (do_connection_register_name()) or by its port fd.  Clients' calls are
 * dispatched on the thread-default GMainContext of the calling thread,
 * which must be running for anything to be served.
 *
 * Thread rules: any thread; it binds to that thread's default context.
 *
 * Returns: (transfer full) (nullable): the connection.
 */
DoConnection *
do_connection_new (GError **error)
{
  DoChannel *recv_end, *send_end;
  DoConnection *connection;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!do_channel_new_pair (&recv_end, &send_end, error))
    return NULL;
  connection = connection_alloc (TRUE, recv_end);
  connection->port_send_fd = dup (do_channel_get_fd (send_end));
  do_channel_unref (send_end);
  connection->clients = g_ptr_array_new_with_free_func ((GDestroyNotify) do_connection_unref);
  connection->peer_creds.pid = getpid ();
  connection->peer_creds.uid = getuid ();
  connection->peer_creds.gid = getgid ();
  attach_source (connection);
  return connection;
}

/**
 * do_connection_set_root_object:
 * @connection: a vending connection.
 * @object: (nullable): the object clients' root proxies reach.
 *
 * Clients connecting from now on are served @object.
 * Thread rules: any thread.
 */
void
do_connection_set_root_object (DoConnection *connection,
                               DoObject     *object)
{
  DoObject *old;

  g_return_if_fail (connection != NULL);
  g_return_if_fail (connection->is_vending);

  g_mutex_lock (&connection->lock);
  old = connection->root;
  connection->root = object ? do_object_ref (object) : NULL;
  g_mutex_unlock (&connection->lock);
  do_object_unref (old);
}

/**
 * do_connection_set_authorize_func:
 * @connection: a vending connection.
 * @func: (nullable): decides who may connect; %NULL accepts everyone.
 * @user_data: for @func.
 * @destroy: (nullable): frees @user_data.
 *
 * Thread rules: the connection's context thread.
 */
void
do_connection_set_authorize_func (DoConnection    *connection,
                                  DoAuthorizeFunc  func,
                                  gpointer         user_data,
                                  GDestroyNotify   destroy)
{
  g_return_if_fail (connection != NULL);
  g_return_if_fail (connection->is_vending);
  if (connection->authorize_destroy)
    connection->authorize_destroy (connection->authorize_data);
  connection->authorize = func;
  connection->authorize_data = user_data;
  connection->authorize_destroy = destroy;
}

/**
 * do_connection_get_n_clients:
 * @connection: a vending connection.
 *
 * Thread rules: any thread.
 *
 * Returns: how many clients are connected.
 */
guint
do_connection_get_n_clients (DoConnection *connection)
{
  guint n;

  g_return_val_if_fail (connection != NULL, 0);
  g_return_val_if_fail (connection->is_vending, 0);
  g_mutex_lock (&connection->lock);
  n = connection->clients ? connection->clients->len : 0;
  g_mutex_unlock (&connection->lock);
  return n;
}

/**
 * do_connection_dup_port_fd:
 * @connection: a vending connection.
 * @error: return location for a #GError.
 *
 * A send right to the connection's port, for handing to a client by other
 * means than the broker (a socketpair, fork).  Connect with
 * do_connection_new_for_port_fd().
 *
 * Thread rules: any thread.
 *
 * Returns: a new fd (close-on-exec) that the caller owns, or -1.
 */
int
do_connection_dup_port_fd (DoConnection  *connection,
                           GError       **error)
{
  int fd;

  g_return_val_if_fail (connection != NULL, -1);
  g_return_val_if_fail (connection->is_vending, -1);

  fd = fcntl (connection->port_send_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "dup: %s", g_strerror (errsv));
    }
  return fd;
}

static void
send_refusal (DoChannel *channel, GError *why)
{
  DoMessage *msg = do_message_new_error (1, why);

  do_channel_send (channel, msg, 0, NULL);
  do_message_unref (msg);
}

/* The shared-memory ring a CONNECT offers, if it offers one and we take
 * it (not with $PORTER_NO_SHM=1).  A bad offer is declined, not fatal: the
 * socket still works. */
static DoRing *
accept_ring (DoMessage *connect)
{
  g_autoptr(GError) error = NULL;
  DoRing *ring;

  if (connect->n_fds != 1 + DO_RING_N_FDS)
    return NULL;
  if (do_ring_configured_size () == 0)
    return NULL;  /* the fds are closed with the message */
  ring = do_ring_attach (connect->fds + 1, DO_RING_N_FDS, &error);
  for (guint i = 1; i < connect->n_fds; i++)
    connect->fds[i] = -1;  /* taken */
  if (!ring)
    g_message ("declining the shared-memory offer of pid %d: %s",
               connect->creds.pid, error->message);
  return ring;
}

static void
accept_one (DoConnection *vending, DoMessage *connect)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoRing) ring = NULL;
  GVariantDict answer;
  DoChannel *channel;
  DoConnection *client;
  DoMessage *hello;
  int fd = connect->fds[0];

  connect->fds[0] = -1;
  ring = accept_ring (connect);
  channel = do_channel_new (fd, &error);
  if (!channel)
    {
      g_message ("refusing CONNECT from pid %d: %s", connect->creds.pid, error->message);
      return;
    }
  if (vending->authorize && !vending->authorize (vending, &connect->creds, vending->authorize_data))
    {
      error = g_error_new (DO_ERROR, DO_ERROR_ACCESS_DENIED,
                           "the server refused the connection from pid %d", connect->creds.pid);
      send_refusal (channel, error);
      do_channel_unref (channel);
      return;
    }

  client = connection_alloc (FALSE, channel);
  client->peer_creds = connect->creds;
  client->request_timeout_ms = vending->request_timeout_ms;
  client->reply_timeout_ms = vending->reply_timeout_ms;
  g_mutex_lock (&vending->lock);
  client->root = vending->root ? do_object_ref (vending->root) : NULL;
  client->vendor = vending;
  g_ptr_array_add (vending->clients, do_connection_ref (client));
  g_mutex_unlock (&vending->lock);

  g_variant_dict_init (&answer, NULL);
  g_variant_dict_insert (&answer, "shm-ring", "b", ring != NULL);
  hello = do_message_new (DO_MESSAGE_HELLO, 0, NULL, NULL,
                          g_variant_new ("(@a{sv})", g_variant_dict_end (&answer)));
  if (!do_channel_send (channel, hello, 0, &error))
    connection_die (client, g_steal_pointer (&error));
  else
    {
      /* Both ends switch right after HELLO, before any other message. */
      if (ring)
        do_channel_attach_ring (channel, ring, &connect->creds);
      client->has_reader = client->root &&
                           (do_object_get_flags (client->root) & DO_OBJECT_FLAGS_THREAD_SAFE) &&
                           !(do_object_get_flags (client->root) & DO_OBJECT_FLAGS_WORKER_POOL);
      attach_source (client);
      if (client->has_reader)
        g_thread_unref (g_thread_new ("porter-reader", reader_thread, do_connection_ref (client)));
    }
  do_message_unref (hello);
  do_connection_unref (client);
}

static void
accept_clients (DoConnection *vending)
{
  for (guint i = 0; i < MAX_READS_PER_DISPATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DoMessage) msg = do_channel_receive (vending->channel, &error);

      if (!msg)
        {
          /* The port is shared by every client: a bad message is dropped,
           * the port stays. */
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_message ("dropping a bad message on the port: %s", error->message);
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
              g_error_matches (error, DO_ERROR, DO_ERROR_CONNECTION_DIED))
            return;
          continue;
        }
      if (msg->kind != DO_MESSAGE_CONNECT)
        {
          g_message ("dropping a %s message from pid %d on the port",
                     do_message_kind_to_string (msg->kind), msg->creds.pid);
          continue;
        }
      accept_one (vending, msg);
    }
}

/**
 * do_connection_register_name:
 * @connection: a vending connection.
 * @name: the name, e.g. "org.example.Calc".
 * @error: return location for a #GError.
 *
 * Registers the connection's port under @name at the per-user broker,
 * starting the broker if none runs.  The name is the connection's until
 * do_connection_unregister_name(), the connection's end, or the process's.
 * Fails with %DO_ERROR_NAME_TAKEN if a live server holds it.
 *
 * Thread rules: any thread; blocks until the broker answers.
 *
 * Returns: %TRUE on success.
 */
gboolean
do_connection_register_name (DoConnection  *connection,
                             const gchar   *name,
                             GError       **error)
{
  int fd;
  DoConnection *broker;

  g_return_val_if_fail (connection != NULL, FALSE);
  g_return_val_if_fail (connection->is_vending, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (connection->broker)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "this connection already has a name");
      return FALSE;
    }
  fd = do_connection_dup_port_fd (connection, error);
  if (fd < 0)
    return FALSE;
  broker = do_broker_register (name, fd, error);
  close (fd);
  if (!broker)
    return FALSE;
  connection->broker = broker;
  connection->name = g_strdup (name);
  return TRUE;
}

/**
 * do_connection_unregister_name:
 * @connection: a vending connection.
 * @error: return location for a #GError.
 *
 * Gives the name up; clients already connected stay connected.
 *
 * Thread rules: any thread; blocks on the broker.
 *
 * Returns: %TRUE on success.
 */
gboolean
do_connection_unregister_name (DoConnection  *connection,
                               GError       **error)
{
  gboolean ok;

  g_return_val_if_fail (connection != NULL, FALSE);
  g_return_val_if_fail (connection->is_vending, FALSE);

  if (!connection->broker)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_NAME_NOT_FOUND,
                   "this connection has no name");
      return FALSE;
    }
  /* Unregister explicitly, so a look-up right after no longer finds the
   * name; the name would die with the broker connection anyway. */
  ok = do_broker_unregister (connection->broker, connection->name, error);
  g_clear_pointer (&connection->broker, do_connection_unref);
  g_clear_pointer (&connection->name, g_free);
  return ok;
}

/* ---------------------------------------------------------------- */
/* Client side */

/* The shared-memory ring to offer with CONNECT, or NULL (turned off, or
 * no memfd: the socket alone works). */
static DoRing *
offer_ring (void)
{
  g_autoptr(GError) error = NULL;
  guint32 size = do_ring_configured_size ();
  DoRing *ring;

  if (size == 0)
    return NULL;
  ring = do_ring_new (size, &error);
  if (!ring)
    g_message ("no shared-memory fast path: %s", error->message);
  return ring;
}

/* Whether the server's HELLO took our ring. */
static gboolean
ring_accepted (DoMessage *hello)
{
  g_autoptr(GVariant) dict = NULL;
  gboolean accepted = FALSE;

  if (!g_variant_is_of_type (hello->body, G_VARIANT_TYPE ("(a{sv})")))
    return FALSE;
  g_variant_get (hello->body, "(@a{sv})", &dict);
  return g_variant_lookup (dict, "shm-ring", "b", &accepted) && accepted;
}

/**
 * do_connection_new_for_port_fd:
 * @port_fd: a send right to a vending connection's port (borrowed).
 * @error: return location for a #GError.
 *
 * Connects to the server behind @port_fd: sends it one end of a fresh
 * socketpair and waits (up to 25 s) for it to accept.  Replies and calls
 * from the server are dispatched on the thread-default GMainContext.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: (transfer full) (nullable): the connection.
 */
DoConnection *
do_connection_new_for_port_fd (int      port_fd,
                               GError **error)
{
  g_autoptr(DoChannel) port = NULL;
  g_autoptr(DoMessage) connect = NULL;
  g_autoptr(DoMessage) answer = NULL;
  g_autoptr(DoRing) ring = NULL;
  DoChannel *ours, *theirs;
  DoConnection *connection;
  gint64 deadline = _do_deadline_after (DO_DEFAULT_TIMEOUT_MS);
  int dupfd, *fds;

  g_return_val_if_fail (port_fd >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  dupfd = fcntl (port_fd, F_DUPFD_CLOEXEC, 3);
  if (dupfd < 0 || !(port = do_channel_new (dupfd, error)))
    {
      if (dupfd < 0)
        g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT, "bad port fd");
      return NULL;
    }
  if (!do_channel_new_pair (&ours, &theirs, error))
    return NULL;

  ring = offer_ring ();
  connect = do_message_new (DO_MESSAGE_CONNECT, 0, NULL, NULL, NULL);
  fds = g_new (int, 1 + DO_RING_N_FDS);
  fds[0] = fcntl (do_channel_get_fd (theirs), F_DUPFD_CLOEXEC, 3);
  do_channel_unref (theirs);
  if (ring && !do_ring_dup_fds (ring, fds + 1, NULL))
    g_clear_pointer (&ring, do_ring_unref);
  do_message_take_fds (connect, fds, ring ? 1 + DO_RING_N_FDS : 1, NULL);
  if (!do_channel_send (port, connect, deadline, error))
    {
      do_channel_unref (ours);
      return NULL;
    }

  /* The server answers HELLO, or ERROR if it refuses us. */
  while (!answer)
    {
      g_autoptr(GError) local = NULL;

      if (!do_channel_wait_readable (ours, deadline, error))
        {
          do_channel_unref (ours);
          return NULL;
        }
      answer = do_channel_receive (ours, &local);
      if (!answer && !g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          do_channel_unref (ours);
          return NULL;
        }
    }
  if (answer->kind == DO_MESSAGE_ERROR)
    {
      g_propagate_error (error, do_message_to_gerror (answer));
      do_channel_unref (ours);
      return NULL;
    }
  if (answer->kind != DO_MESSAGE_HELLO)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "the server answered CONNECT with %s", do_message_kind_to_string (answer->kind));
      do_channel_unref (ours);
      return NULL;
    }

  if (ring && ring_accepted (answer))
    do_channel_attach_ring (ours, ring, &answer->creds);
  connection = connection_alloc (FALSE, ours);
  connection->peer_creds = answer->creds;
  attach_source (connection);
  return connection;
}

/**
 * do_connection_new_for_name:
 * @name: a registered name.
 * @wait_timeout_ms: how long to wait for the name to appear (0: not at
 *   all).
 * @cancellable: (nullable): a #GCancellable.
 * @error: return location for a #GError.
 *
 * Looks @name up at the broker (starting the broker if none runs) and
 * connects to its server.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: (transfer full) (nullable): the connection.
 */
DoConnection *
do_connection_new_for_name (const gchar   *name,
                            gint           wait_timeout_ms,
                            GCancellable  *cancellable,
                            GError       **error)
{
  DoConnection *connection;
  int fd;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  fd = do_broker_lookup (name, MAX (wait_timeout_ms, 0), cancellable, error);
  if (fd < 0)
    return NULL;
  connection = do_connection_new_for_port_fd (fd, error);
  close (fd);
  return connection;
}

static GError *
dead_error_locked (DoConnection *connection)
{
  return connection->death ? g_error_copy (connection->death)
                           : g_error_new_literal (DO_ERROR, DO_ERROR_CONNECTION_DIED,
                                                  "the connection is closed");
}

/* Sends @msg (a CALL) registered as @p. */
gboolean
_do_connection_send_call (DoConnection *connection, DoMessage *msg, Pending *p, GError **error)
{
  GError *local = NULL;

  g_mutex_lock (&connection->lock);
  if (!connection->alive)
    {
      g_propagate_error (error, dead_error_locked (connection));
      g_mutex_unlock (&connection->lock);
      return FALSE;
    }
  if (p)
    g_hash_table_insert (connection->pending, GUINT_TO_POINTER (msg->serial), p);
  g_mutex_unlock (&connection->lock);

  /* Releases go first: the call may pass the same objects again. */
  _do_connection_flush_releases (connection);

  if (do_channel_send (connection->channel, msg,
                       _do_deadline_after (connection->request_timeout_ms), &local))
    return TRUE;

  if (p)
    {
      g_mutex_lock (&connection->lock);
      g_hash_table_steal (connection->pending, GUINT_TO_POINTER (msg->serial));
      g_mutex_unlock (&connection->lock);
    }
  _do_connection_unexport_refs (connection, msg);
  if (g_error_matches (local, DO_ERROR, DO_ERROR_CONNECTION_DIED))
    connection_die (connection, g_error_copy (local));
  g_propagate_error (error, local);
  return FALSE;
}

/* A reader thread's sync wait on another connection also reads its own
 * connection, when nobody else does, so that a call back over it (the
 * peer we wait for calls us there to answer) is served, nested, rather
 * than waiting for our timeout. */
typedef struct {
  DoConnection *connection;  /* NULL: not read this round */
  gint socket, doorbell;     /* indices in the poll set, or -1 */
  gboolean ready;            /* its ring had records already */
} OwnRead;

static void
own_read_begin (OwnRead *r, DoConnection *own)
{
  r->connection = NULL;
  r->socket = r->doorbell = -1;
  r->ready = FALSE;
  if (!own)
    return;
  g_mutex_lock (&own->lock);
  if (own->alive && !own->reading && !incoming_full_locked (own))
    {
      own->reading = TRUE;
      r->connection = own;
    }
  g_mutex_unlock (&own->lock);
}

/* Before the poll: arms its ring and adds its fds to @pfds.  Returns
 * whether it has records already. */
static gboolean
own_read_prepare (OwnRead *r, GArray *pfds)
{
  DoChannel *channel = r->connection->channel;
  struct pollfd socket = { .fd = do_channel_get_fd (channel), .events = POLLIN };
  struct pollfd doorbell = { .fd = do_channel_get_doorbell_fd (channel), .events = POLLIN };

  r->ready = do_channel_arm (channel);
  r->socket = (gint) pfds->len;
  g_array_append_val (pfds, socket);
  if (doorbell.fd >= 0)
    {
      r->doorbell = (gint) pfds->len;
      g_array_append_val (pfds, doorbell);
    }
  return r->ready;
}

/* After the poll, outside every lock: reads what came, and lets others
 * read again.  Its calls to thread-safe objects wait in its reader queue
 * for the caller to run; others are the context's. */
static void
own_read_end (OwnRead *r, GArray *pfds)
{
  DoConnection *own = r->connection;
  struct pollfd *p = pfds ? (struct pollfd *) (gpointer) pfds->data : NULL;
  gboolean socket = r->socket >= 0 && p[r->socket].revents != 0;
  gboolean rung = r->doorbell >= 0 && p[r->doorbell].revents != 0;
  GQueue done_tasks = G_QUEUE_INIT;
  GError *death = NULL;
  gboolean for_context;

  if (!own)
    return;
  if (rung)
    do_channel_ack_doorbell (own->channel);
  g_mutex_lock (&own->lock);
  if (r->ready || socket || rung)
    death = read_locked (own, G_MAXUINT, NULL, socket, &done_tasks);
  own->reading = FALSE;
  wake_waiters_locked (own);
  for_context = !g_queue_is_empty (&own->incoming);
  g_mutex_unlock (&own->lock);
  run_completions (own, &done_tasks);
  if (death)
    connection_die (own, death);
  if (for_context)
    wake_context (own);
  r->connection = NULL;
}

/* Waits for something to read; returns whether the socket itself is
 * readable (else only the ring, or a wake-up).  In reply mode (@w) it
 * also waits for the context's other connections, and for a reader thread
 * (@r) for its own connection; @pfds is the poll set, for
 * reply_wait_serve() and own_read_end() after. */
static gboolean
wait_readable (DoConnection *connection, gint64 deadline, GCancellable *cancellable,
               ReplyWait *w, OwnRead *r, GArray *pfds)
{
  struct pollfd own[4] = {
    { .fd = do_channel_get_fd (connection->channel), .events = POLLIN },
    { .fd = connection->wake_fd, .events = POLLIN },
    { .fd = do_channel_get_doorbell_fd (connection->channel), .events = POLLIN },
    { .fd = -1, .events = POLLIN },
  };
  struct pollfd *pfd;
  gboolean socket_readable, busy = FALSE;
  int cancel_fd = -1;

  /* With a ring the reply often comes within a spin: no sleep at all.
   * Rung again at once: we may stop reading before the ring is empty, and
   * the context's thread may be asleep on its doorbell. */
  if (do_channel_spin (connection->channel, deadline))
    {
      do_channel_rearm (connection->channel);
      return FALSE;
    }
  if (cancellable)
    own[3].fd = cancel_fd = g_cancellable_get_fd (cancellable);
  g_array_append_vals (pfds, own, cancel_fd >= 0 ? 4 : 3);
  if (w->context)
    busy = reply_wait_prepare (w, pfds);
  if (r->connection)
    busy |= own_read_prepare (r, pfds);
  pfd = (struct pollfd *) (gpointer) pfds->data;
  if (poll (pfd, pfds->len, busy ? 0 : do_poll_timeout (deadline)) > 0 &&
      (pfd[1].revents & POLLIN))
    {
      eventfd_t v;
      eventfd_read (connection->wake_fd, &v);
    }
  /* Without a ring the socket is all there is: a wake-up with nothing
   * there costs one EAGAIN, as before. */
  socket_readable = pfd[0].revents != 0 || pfd[2].fd < 0;
  if (pfd[2].fd >= 0)
    do_channel_ack_doorbell (connection->channel);
  if (cancel_fd >= 0)
    g_cancellable_release_fd (cancellable);
  return socket_readable;
}

/* Reply mode while another thread reads @connection: we own its context,
 * so we wait for our reply in poll(), serving the context's other
 * connections, rather than on @cond (wake_waiters_locked() rings the
 * context's reply-mode eventfd for us).  Called and returns with @lock
 * held; FALSE, at once, when the context has no other connection. */
static gboolean
wait_serving_others (DoConnection *connection, Pending *p, gint64 until)
{
  g_autoptr(GArray) pfds = NULL;
  ReplyWait w;
  gboolean done;

  g_mutex_unlock (&connection->lock);
  reply_wait_begin (connection, &w);
  g_mutex_lock (&connection->lock);
  if (!w.context)
    return FALSE;
  /* From here on a reply, or the reader leaving, rings us. */
  done = p->done || !connection->reading;
  connection->n_serving++;
  g_mutex_unlock (&connection->lock);
  if (!done)
    {
      gboolean busy;

      pfds = g_array_sized_new (FALSE, FALSE, sizeof (struct pollfd), 8);
      busy = reply_wait_prepare (&w, pfds);
      /* Interrupted, it saw nothing: the loop comes back. */
      (void) poll ((struct pollfd *) (gpointer) pfds->data, pfds->len,
                   busy ? 0 : do_poll_timeout (until));
    }
  g_mutex_lock (&connection->lock);
  connection->n_serving--;
  done = done || p->done;
  g_mutex_unlock (&connection->lock);
  if (!done)
    reply_wait_serve (&w, pfds);
  reply_wait_end (&w);
  g_mutex_lock (&connection->lock);
  return TRUE;
}

/* Whether a sync caller can block in recvmsg() for its reply (>= 0: with
 * that SO_RCVTIMEO, 0 for none) rather than poll() and then read: when it
 * watches nothing but the socket.  No ring (it spins and polls its
 * doorbell), no cancellable, and the thread owns the context (no source
 * reads the socket behind its back).  The timeout is the time left
 * rounded down to a power of two, so it rarely changes between calls (each
 * change is a setsockopt()); woken early, the caller simply blocks again. */
static gint
blocking_receive_ms (DoConnection *connection, gboolean may_dispatch, gint64 deadline,
                     GCancellable *cancellable)
{
  gint64 left_ms;

  if (!may_dispatch || cancellable)
    return -1;
  if (deadline < 0)
    return 0;
  left_ms = (deadline - g_get_monotonic_time ()) / 1000;
  if (left_ms < 2)
    return -1;
  return 1 << g_bit_storage ((gulong) MIN (left_ms, G_MAXINT) >> 1);
}

/* When a wait for another thread next looks at its deadline and its
 * cancellable: at most 50 ms on. */
static gint64
look_again_by (gint64 deadline)
{
  gint64 until = g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND;

  return deadline >= 0 ? MIN (until, deadline) : until;
}

/* Waits on @cond for a wake-up, or until @until.  Called with @lock held. */
static void
cond_wait_locked (DoConnection *connection, gint64 until)
{
  connection->n_waiters++;
  g_cond_wait_until (&connection->cond, &connection->lock, until);
  connection->n_waiters--;
}

/* Sync waits on this thread that serve calls: each runs the calls it
 * serves one level deeper.  Past MAX_SERVING_DEPTH a wait serves nothing
 * more, and refuses the calls it would have nested (a peer that answers
 * each callback with another call would otherwise overflow our stack). */
#define MAX_SERVING_DEPTH 64
static _Thread_local guint serving_depth;

/* The queue of calls a wait on this thread serves nested: the reader
 * thread's own, the context's on the thread that owns it, else none. */
static GQueue *
nested_queue (DoConnection *connection, gboolean is_reader, gboolean may_dispatch)
{
  return is_reader ? &connection->reader_calls : may_dispatch ? &connection->incoming : NULL;
}

/* Whether a wait has nested work in @queue: any message, or when it may
 * not nest, a call to refuse at the head.  Called with @lock held. */
static gboolean
has_nested_work_locked (GQueue *queue, gboolean may_nest)
{
  DoMessage *head = queue ? g_queue_peek_head (queue) : NULL;

  return head && (may_nest || head->kind == DO_MESSAGE_CALL);
}

/* Answers the calls at the head of @queue with an error, in order, up to
 * the first message of another kind (it waits for the stack to unwind). */
static void
refuse_nested_calls (DoConnection *connection, GQueue *queue)
{
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      DoInvocation *invocation;
      DoMessage *call;

      g_mutex_lock (&connection->lock);
      call = has_nested_work_locked (queue, FALSE) ? pop_queue_locked (connection, queue) : NULL;
      g_mutex_unlock (&connection->lock);
      if (!call)
        return;
      g_set_error (&error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "calls nested deeper than %d on one thread", MAX_SERVING_DEPTH);
      invocation = _do_invocation_new (connection, call);
      do_invocation_return_gerror (invocation, error);
      do_invocation_unref (invocation);
    }
}

/* Runs @queue's calls nested on this thread or, nested too deep, refuses
 * those at its head. */
static void
serve_nested (DoConnection *connection, GQueue *queue, gboolean may_nest)
{
  if (may_nest)
    dispatch_queue (connection, queue);
  else
    refuse_nested_calls (connection, queue);
}

/* serve_nested() for @own's reader queue, if it has work.  Returns
 * whether it had. */
static gboolean
serve_own_calls (DoConnection *own, gboolean may_nest)
{
  gboolean work;

  g_mutex_lock (&own->lock);
  work = has_nested_work_locked (&own->reader_calls, may_nest);
  g_mutex_unlock (&own->lock);
  if (work)
    serve_nested (own, &own->reader_calls, may_nest);
  return work;
}

/* Waits for @p on the calling thread, reading the socket itself and
 * serving calls that arrive meanwhile when this thread owns the
 * connection's context (so callbacks into a blocked caller work). */
void
_do_connection_wait_pending (DoConnection *connection, Pending *p, gint64 deadline, GCancellable *cancellable)
{
  /* A reader thread serves its own queue: it leaves the context to the
   * thread that runs it. */
  gboolean is_reader = thread_reads == connection;
  gboolean may_dispatch = !is_reader && g_main_context_acquire (connection->context);
  GQueue *nested = nested_queue (connection, is_reader, may_dispatch);
  gboolean may_nest = nested && serving_depth < MAX_SERVING_DEPTH;
  /* A reader thread waiting on another connection: its own's calls too. */
  DoConnection *own = is_reader ? NULL : thread_reads;
  gboolean may_nest_own = own && serving_depth < MAX_SERVING_DEPTH;
  GQueue done_tasks = G_QUEUE_INIT;

  if (nested || own)
    serving_depth++;
  g_mutex_lock (&connection->lock);
  while (!p->done)
    {
      if (deadline >= 0 && g_get_monotonic_time () >= deadline)
        {
          p->error = g_error_new (DO_ERROR, DO_ERROR_TIMED_OUT,
                                  "no reply within the timeout");
          break;
        }
      if (g_cancellable_is_cancelled (cancellable))
        {
          p->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "the call was cancelled");
          break;
        }
      if (has_nested_work_locked (nested, may_nest))
        {
          g_mutex_unlock (&connection->lock);
          serve_nested (connection, nested, may_nest);
          g_mutex_lock (&connection->lock);
          continue;
        }
      if (own)
        {
          gboolean ran;

          g_mutex_unlock (&connection->lock);
          ran = serve_own_calls (own, may_nest_own);
          g_mutex_lock (&connection->lock);
          if (ran)
            continue;
        }
      if (!connection->reading && incoming_full_locked (connection))
        {
          /* Not read until the context runs what came (we cannot, or not
           * now: the calls nested too deep wait for it). */
          cond_wait_locked (connection, look_again_by (deadline));
        }
      else if (!connection->reading)
        {
          ReplyWait w = { NULL, };
          OwnRead r;
          g_autoptr(GArray) pfds = NULL;
          GError *death;
          gint block_ms = -1;

          connection->reading = TRUE;
          g_mutex_unlock (&connection->lock);
          if (may_dispatch && may_nest)
            reply_wait_begin (connection, &w);
          own_read_begin (&r, may_nest_own ? own : NULL);
          if (!w.context && !r.connection)
            block_ms = blocking_receive_ms (connection, may_dispatch, deadline, cancellable);
          if (block_ms >= 0)  /* nothing else to watch: one blocking recvmsg */
            death = receive_blocking_then_lock (connection, block_ms, &done_tasks);
          else
            {
              /* Poll first: a reply from another process is never already
               * in, and a speculative recvmsg costs a system call. */
              gboolean socket_readable;

              pfds = g_array_sized_new (FALSE, FALSE, sizeof (struct pollfd), 8);
              /* Another reads our own connection: look at its queue
               * again soon (it does not wake us). */
              socket_readable = wait_readable (connection,
                                               own && !r.connection ? look_again_by (deadline)
                                                                    : deadline,
                                               cancellable, &w, &r, pfds);
              g_mutex_lock (&connection->lock);
              death = read_locked (connection, G_MAXUINT, p, socket_readable, &done_tasks);
            }
          connection->reading = FALSE;
          wake_waiters_locked (connection);
          if (death || !g_queue_is_empty (&done_tasks) || w.context || r.connection)
            {
              gboolean done = p->done;

              g_mutex_unlock (&connection->lock);
              run_completions (connection, &done_tasks);
              if (death)
                connection_die (connection, death);
              /* Reply mode: the others' calls, nested here, as GNUstep's
               * NSConnectionReplyMode runs them (not once ours is done: the
               * context serves them when we are back). */
              if (w.context && pfds->len > 0 && !done)
                reply_wait_serve (&w, pfds);
              reply_wait_end (&w);
              own_read_end (&r, pfds);
              g_mutex_lock (&connection->lock);
            }
          /* Calls that arrived while we read are for the context, and so
           * are records we left in the ring (they ring no doorbell). */
          if ((!may_dispatch && !g_queue_is_empty (&connection->incoming)) ||
              do_channel_has_pending (connection->channel))
            wake_context (connection);
        }
      else
        {
          /* Another thread reads; it wakes us when our reply comes. */
          gint64 until = look_again_by (deadline);

          if (!may_dispatch || !may_nest || !wait_serving_others (connection, p, until))
            cond_wait_locked (connection, until);
        }
    }
  g_hash_table_remove (connection->pending, GUINT_TO_POINTER (p->serial));
  g_mutex_unlock (&connection->lock);
  if (nested || own)
    serving_depth--;
  if (may_dispatch)
    g_main_context_release (connection->context);
}

void
_do_connection_complete_pending (DoConnection *connection, Pending *p)
{
  GTask *task = g_steal_pointer (&p->task);

  if (p->reply)
    g_task_return_pointer (task, do_message_ref (p->reply), (GDestroyNotify) do_message_unref);
  else
    g_task_return_error (task, g_steal_pointer (&p->error));
  g_object_unref (task);
  pending_free (p);
}

