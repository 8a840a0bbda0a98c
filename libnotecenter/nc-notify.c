/* Porter — libnotecenter: the notify(3) API (see nc.h, NOTIFY).
 *
 * One client per process (@client, under @lock).  It holds one DoConnection
 * to porter-notifyd, made on a private GMainContext nobody iterates (every
 * call is a sync call made under @lock, which reads its own reply), and a
 * worker thread with its own GMainContext that reads the delivery socket
 * the daemon writes registration ids to, and turns them into pipe writes,
 * signals and dispatches on the callers' contexts.  Each name this process
 * watches is one registration at the daemon (a NameRef), whatever the
 * number of tokens on it: duplicates cost the daemon nothing.
 *
 * Tokens live in a two-level table whose chunks are never freed, so
 * nc_notify_check() needs no lock: it reads the token's entry, then the
 * counter the entry points at (in the daemon's read-only page, or in the
 * entry itself for `self.` names).  A token's value is its index and a tag
 * that changes each time the entry is reused, so a cancelled token stays
 * invalid.
 *
 * When the daemon dies, the worker sees its delivery socket hang up,
 * connects again (starting a new daemon if need be), and registers every
 * name again; tokens are pointed at the new page, and if the daemon is a
 * new one (another generation in slot 0), their next check reports TRUE.
 * A call that finds the connection dead does the same before retrying
 * once.  Old pages stay mapped: a check racing the switch may still read
 * them.
 *
 * Lock order: @lock, then libdo's.  No user callback runs under @lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-notify.h"
#include "nc-notify-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixfdlist.h>

#include "libdo/do.h"

#define INDEX_BITS 20
#define INDEX_MASK ((1u << INDEX_BITS) - 1)
#define TAG_MAX 1023u                     /* tags 1..1023: tokens < 2^30 */
#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define N_CHUNKS ((1u << INDEX_BITS) / CHUNK_SIZE)
#define NO_VALUE G_MAXUINT64              /* "never checked": first check is TRUE */

typedef enum {
  TYPE_CHECK,
  TYPE_SIGNAL,
  TYPE_FD,
  TYPE_DISPATCH,
} TokenType;

typedef struct {
  int read_fd;            /* the caller's */
  int write_fd;           /* ours, non-blocking */
  guint users;
} FdBox;

typedef struct _NameRef NameRef;

typedef struct {
  gint live;              /* (atomic) the token's value while live, else -1 */
  gint suspended;         /* (atomic) depth; changed under @lock */
  const guint64 *counter; /* (atomic) */
  guint64 last;           /* (atomic) what the last check saw */
  guint64 self_count;     /* (atomic) posts of a self. name */
  /* protected by @lock: */
  guint tag;
  gboolean missed;        /* a delivery came while suspended */
  TokenType type;
  NameRef *name;
  int sig;
  FdBox *box;
  GMainContext *context;
  NcNotifyHandler handler;
  gpointer user_data;
  GDestroyNotify destroy;
} Token;

struct _NameRef {
  gchar *name;
  guint32 id;             /* at the daemon */
  guint32 slot;
  gboolean is_self;
  gboolean registered;    /* at the current daemon */
  gboolean deliver;       /* ... asking for deliveries */
  guint n_deliver;        /* tokens wanting deliveries */
  guint64 self_state;
  GPtrArray *tokens;      /* Token * */
};

static Token *chunks[N_CHUNKS];  /* (atomic) pointers; chunks never freed */

static GMutex lock;
/* Whether this thread holds @lock: a fork() made while we hold it (by
 * GSubprocess, starting the daemon) must not wait for it in the atfork
 * handler. */
static __thread gboolean holding_lock;

static inline void
client_lock (void)
{
  g_mutex_lock (&lock);
  holding_lock = TRUE;
}

static inline void
client_unlock (void)
{
  holding_lock = FALSE;
  g_mutex_unlock (&lock);
}
static struct {
  gboolean initialized;
  GHashTable *names;      /* name -> NameRef *, owned */
  GHashTable *ids;        /* id -> NameRef * */
  GHashTable *boxes;      /* read fd -> FdBox *, owned */
  guint32 next_id;
  guint next_index;
  GArray *free_indices;

  GThread *worker;
  GMainContext *worker_context;
  GMainContext *conn_context;

  DoConnection *conn;
  DoProxy *root;
  int delivery_fd;
  GSource *delivery_source;
  const guint64 *page;
  guint32 n_slots;
  guint64 generation;
} client;

/* ------------------------------------------------------------ tokens */

static inline Token *
token_get (int token)
{
  guint index;
  Token *chunk, *t;

  if (token < 0)
    return NULL;
  index = (guint) token & INDEX_MASK;
  chunk = __atomic_load_n (&chunks[index >> CHUNK_BITS], __ATOMIC_ACQUIRE);
  if (G_UNLIKELY (chunk == NULL))
    return NULL;
  t = &chunk[index & (CHUNK_SIZE - 1)];
  if (__atomic_load_n (&t->live, __ATOMIC_ACQUIRE) != token)
    return NULL;
  return t;
}

/* Returns a free entry (not yet live) and its token value, or NULL. */
static Token *
token_alloc_locked (int *out_value)
{
  guint index;
  Token *chunk, *t;

  if (client.free_indices->len > 0)
    {
      index = g_array_index (client.free_indices, guint, client.free_indices->len - 1);
      g_array_set_size (client.free_indices, client.free_indices->len - 1);
    }
  else if (client.next_index <= INDEX_MASK)
    index = client.next_index++;
  else
    return NULL;

  chunk = chunks[index >> CHUNK_BITS];
  if (chunk == NULL)
    {
      chunk = g_new0 (Token, CHUNK_SIZE);
      for (guint i = 0; i < CHUNK_SIZE; i++)
        chunk[i].live = -1;
      __atomic_store_n (&chunks[index >> CHUNK_BITS], chunk, __ATOMIC_RELEASE);
    }
  t = &chunk[index & (CHUNK_SIZE - 1)];
  t->tag = t->tag % TAG_MAX + 1;
  *out_value = (int) (index | (t->tag << INDEX_BITS));
  return t;
}

static void
token_free_locked (Token *t, int value)
{
  guint index = (guint) value & INDEX_MASK;

  __atomic_store_n (&t->live, -1, __ATOMIC_RELEASE);
  t->name = NULL;
  t->box = NULL;
  t->context = NULL;
  t->handler = NULL;
  t->user_data = NULL;
  t->destroy = NULL;
  g_atomic_int_set (&t->suspended, 0);
  t->missed = FALSE;
  g_array_append_val (client.free_indices, index);
}

/* ------------------------------------------------------------ set-up */

static void
name_ref_free (gpointer data)
{
  NameRef *ref = data;

  g_ptr_array_unref (ref->tokens);
  g_free (ref->name);
  g_free (ref);
}

static gpointer
worker_main (gpointer data)
{
  GMainContext *context = data;

  g_main_context_push_thread_default (context);
  for (;;)
    g_main_context_iteration (context, TRUE);
  return NULL;
}

static void atfork_prepare (void);
static void atfork_parent (void);
static void atfork_child (void);

static void
init_locked (void)
{
  static gboolean atfork_done;

  if (client.initialized)
    return;
  client.initialized = TRUE;
  client.names = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, name_ref_free);
  client.ids = g_hash_table_new (NULL, NULL);
  client.boxes = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  client.next_id = 1;
  client.free_indices = g_array_new (FALSE, FALSE, sizeof (guint));
  client.delivery_fd = -1;
  client.conn_context = g_main_context_new ();
  client.worker_context = g_main_context_new ();
  client.worker = g_thread_new ("nc-notify", worker_main, client.worker_context);
  if (!atfork_done)
    {
      pthread_atfork (atfork_prepare, atfork_parent, atfork_child);
      atfork_done = TRUE;
    }
}

/* ------------------------------------------------------------ delivery */

static gboolean
dispatch_cb (gpointer data)
{
  int token = GPOINTER_TO_INT (data);
  NcNotifyHandler handler = NULL;
  gpointer user_data = NULL;
  Token *t;

  client_lock ();
  t = token_get (token);
  if (t != NULL && t->type == TYPE_DISPATCH)
    {
      handler = t->handler;
      user_data = t->user_data;
    }
  client_unlock ();
  /* A cancel now queues the destroy-notify behind us on this context, so
   * @user_data outlives the call. */
  if (handler != NULL)
    handler (token, user_data);
  return G_SOURCE_REMOVE;
}

/* Delivers one (coalesced) post to @t.  Under @lock. */
static void
deliver_token_locked (Token *t, int value)
{
  switch (t->type)
    {
    case TYPE_CHECK:
      return;
    case TYPE_SIGNAL:
      kill (getpid (), t->sig);
      return;
    case TYPE_FD:
      {
        guint32 net = htonl ((guint32) value);
        ssize_t n;
        do
          n = write (t->box->write_fd, &net, sizeof net);
        while (n < 0 && errno == EINTR);
        /* A full pipe loses the notification, as notify(3) warns. */
        return;
      }
    case TYPE_DISPATCH:
      {
        GSource *idle = g_idle_source_new ();
        g_source_set_priority (idle, G_PRIORITY_DEFAULT);
        g_source_set_callback (idle, dispatch_cb, GINT_TO_POINTER (value), NULL);
        g_source_set_static_name (idle, "nc_notify dispatch");
        g_source_attach (idle, t->context);
        g_source_unref (idle);
        return;
      }
    default:
      g_assert_not_reached ();
    }
}

static void
deliver_name_locked (NameRef *ref)
{
  for (guint i = 0; i < ref->tokens->len; i++)
    {
      Token *t = ref->tokens->pdata[i];
      int value = __atomic_load_n (&t->live, __ATOMIC_RELAXED);

      if (t->type == TYPE_CHECK)
        continue;
      if (g_atomic_int_get (&t->suspended) > 0)
        t->missed = TRUE;
      else
        deliver_token_locked (t, value);
    }
}

static guint32 reconnect_locked (void);
static void disconnect_locked (void);

static gboolean
on_delivery (gint fd, GIOCondition condition, gpointer user_data)
{
  guint32 ids[NC_NOTIFY_MAX_BATCH];
  gboolean hung_up = FALSE;

  client_lock ();
  /* A source we have let go of (its fd number may be a new socket's by
   * now: read nothing). */
  if (g_main_current_source () != client.delivery_source)
    {
      client_unlock ();
      return G_SOURCE_REMOVE;
    }
  for (;;)
    {
      gssize n = _nc_delivery_recv (fd, ids, sizeof ids, MSG_TRUNC, &hung_up);

      if (n <= 0)
        break;
      /* The daemon is trusted no more than any peer. */
      if ((gsize) n > sizeof ids || n % sizeof ids[0] != 0)
        {
          g_message ("porter-notifyd sent a delivery of %zd bytes: closing its socket", n);
          hung_up = TRUE;
          break;
        }
      for (gsize i = 0; i < (gsize) n / sizeof ids[0]; i++)
        {
          NameRef *ref = g_hash_table_lookup (client.ids, GUINT_TO_POINTER (ids[i]));
          if (ref != NULL)
            deliver_name_locked (ref);
        }
    }
  if (!hung_up && (condition & (G_IO_HUP | G_IO_ERR)))
    hung_up = TRUE;
  if (hung_up)
    {
      /* The daemon went away: start again at once if anything is
       * registered (otherwise the next call will). */
      disconnect_locked ();
      if (g_hash_table_size (client.ids) > 0)
        reconnect_locked ();
    }
  client_unlock ();
  return hung_up ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ the daemon */

static void
disconnect_locked (void)
{
  GHashTableIter iter;
  gpointer value;

  if (client.delivery_source != NULL)
    {
      g_source_destroy (client.delivery_source);
      g_clear_pointer (&client.delivery_source, g_source_unref);
    }
  if (client.delivery_fd >= 0)
    {
      close (client.delivery_fd);
      client.delivery_fd = -1;
    }
  if (client.conn != NULL)
    {
      do_connection_close (client.conn);
      g_clear_pointer (&client.root, do_proxy_unref);
      g_clear_pointer (&client.conn, do_connection_unref);
      /* Run what the connection queued on its context (its death). */
      while (g_main_context_iteration (client.conn_context, FALSE))
        ;
    }
  g_hash_table_iter_init (&iter, client.names);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((NameRef *) value)->registered = FALSE;
}

static gboolean
call_failed_for_connection (const GError *error)
{
  return g_error_matches (error, DO_ERROR, DO_ERROR_CONNECTION_DIED) ||
         g_error_matches (error, DO_ERROR, DO_ERROR_CLOSED) ||
         g_error_matches (error, DO_ERROR, DO_ERROR_TIMED_OUT);
}

/* One call on the current connection.  Returns the reply (checked against
 * @type) or NULL with *@status set. */
static GVariant *
call_once_locked (const gchar *method, GVariant *parameters, const gchar *type,
                  GUnixFDList *fds, GUnixFDList **out_fds, guint32 *status,
                  gboolean *connection_lost)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  *connection_lost = FALSE;
  reply = do_proxy_call_with_fds_sync (client.root, method, parameters, fds,
                                       DO_CALL_FLAGS_NONE, DO_TIMEOUT_DEFAULT,
                                       out_fds, NULL, &error);
  if (reply == NULL)
    {
      *connection_lost = call_failed_for_connection (error);
      *status = *connection_lost ? NC_NOTIFY_STATUS_SERVER_NOT_FOUND : NC_NOTIFY_STATUS_FAILED;
      return NULL;
    }
  if (!g_variant_is_of_type (reply, G_VARIANT_TYPE (type)))
    {
      g_variant_unref (reply);
      *status = NC_NOTIFY_STATUS_FAILED;
      return NULL;
    }
  return reply;
}

static guint32
register_name_locked (NameRef *ref, gboolean deliver, gboolean *connection_lost)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 status, slot;

  reply = call_once_locked ("Register", g_variant_new ("(sub)", ref->name, ref->id, deliver),
                            "(uu)", NULL, NULL, &status, connection_lost);
  if (reply == NULL)
    return status;
  g_variant_get (reply, "(uu)", &status, &slot);
  if (status != NC_NOTIFY_STATUS_OK)
    return status;
  if (slot == 0 || slot >= client.n_slots)
    return NC_NOTIFY_STATUS_FAILED;
  ref->slot = slot;
  ref->registered = TRUE;
  ref->deliver = deliver;
  return NC_NOTIFY_STATUS_OK;
}

/* Connects, says hello, maps the page and registers every name again. */
static guint32
connect_locked (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) out_fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  GHashTableIter iter;
  gpointer value;
  guint32 status, n_slots;
  guint64 generation;
  gint32 index;
  int pair[2], page_fd;
  gboolean lost;
  struct stat st;
  void *page;

  client.conn = _nc_notifyd_connect (client.conn_context, &error);
  if (client.conn == NULL)
    return NC_NOTIFY_STATUS_SERVER_NOT_FOUND;
  client.root = do_connection_get_root_proxy (client.conn);

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
    {
      disconnect_locked ();
      return NC_NOTIFY_STATUS_FAILED;
    }
  client.delivery_fd = pair[0];
  index = g_unix_fd_list_append (fds, pair[1], NULL);
  close (pair[1]);
  reply = call_once_locked ("Hello", g_variant_new ("(h)", index), "(uhtu)", fds,
                            &out_fds, &status, &lost);
  if (reply == NULL)
    {
      disconnect_locked ();
      return status;
    }
  g_variant_get (reply, "(uhtu)", &status, &index, &generation, &n_slots);
  if (status != NC_NOTIFY_STATUS_OK)
    {
      disconnect_locked ();
      return status;
    }
  page_fd = out_fds != NULL && index >= 0 && index < g_unix_fd_list_get_length (out_fds)
            ? g_unix_fd_list_get (out_fds, index, NULL) : -1;
  if (page_fd < 0 || n_slots < 2 || n_slots > (1u << 24) || fstat (page_fd, &st) < 0 ||
      (guint64) st.st_size < (guint64) n_slots * sizeof (guint64))
    {
      if (page_fd >= 0)
        close (page_fd);
      disconnect_locked ();
      return NC_NOTIFY_STATUS_FAILED;
    }
  page = mmap (NULL, (gsize) n_slots * sizeof (guint64), PROT_READ, MAP_SHARED, page_fd, 0);
  close (page_fd);
  if (page == MAP_FAILED || ((const guint64 *) page)[0] != generation)
    {
      if (page != MAP_FAILED)
        munmap (page, (gsize) n_slots * sizeof (guint64));
      disconnect_locked ();
      return NC_NOTIFY_STATUS_FAILED;
    }
  /* The previous page, if any, stays mapped (see the top of the file). */
  client.page = page;
  client.n_slots = n_slots;

  client.delivery_source = g_unix_fd_source_new (client.delivery_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (client.delivery_source, (GSourceFunc) (void (*) (void)) on_delivery,
                         NULL, NULL);
  g_source_set_static_name (client.delivery_source, "nc_notify delivery");
  g_source_attach (client.delivery_source, client.worker_context);

  /* Register again whatever we watched before. */
  g_hash_table_iter_init (&iter, client.names);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      NameRef *ref = value;

      if (ref->is_self || ref->registered)
        continue;
      if (register_name_locked (ref, ref->n_deliver > 0, &lost) != NC_NOTIFY_STATUS_OK)
        {
          if (lost)
            {
              disconnect_locked ();
              return NC_NOTIFY_STATUS_SERVER_NOT_FOUND;
            }
          continue;  /* refused now: its tokens keep their old counter */
        }
      for (guint i = 0; i < ref->tokens->len; i++)
        {
          Token *t = ref->tokens->pdata[i];
          __atomic_store_n (&t->counter, &client.page[ref->slot], __ATOMIC_RELEASE);
          if (generation != client.generation)
            __atomic_store_n (&t->last, NO_VALUE, __ATOMIC_RELAXED);
        }
    }
  client.generation = generation;
  return NC_NOTIFY_STATUS_OK;
}

static guint32
reconnect_locked (void)
{
  disconnect_locked ();
  return connect_locked ();
}

static guint32
ensure_connected_locked (void)
{
  if (client.conn != NULL && do_connection_is_alive (client.conn))
    return NC_NOTIFY_STATUS_OK;
  return reconnect_locked ();
}

/* A call, reconnecting and retrying once if the connection was lost. */
static GVariant *
call_locked (const gchar *method, GVariant *parameters, const gchar *type, guint32 *status)
{
  gboolean lost;
  GVariant *reply;

  g_variant_ref_sink (parameters);
  *status = ensure_connected_locked ();
  if (*status != NC_NOTIFY_STATUS_OK)
    {
      g_variant_unref (parameters);
      return NULL;
    }
  reply = call_once_locked (method, parameters, type, NULL, NULL, status, &lost);
  if (reply == NULL && lost && reconnect_locked () == NC_NOTIFY_STATUS_OK)
    reply = call_once_locked (method, parameters, type, NULL, NULL, status, &lost);
  g_variant_unref (parameters);
  return reply;
}

/* ------------------------------------------------------------ fork */

static gboolean forked_while_holding;

static void
atfork_prepare (void)
{
  if (holding_lock)
    forked_while_holding = TRUE;  /* this thread already holds it */
  else
    client_lock ();
}

static void
atfork_parent (void)
{
  if (forked_while_holding)
    forked_while_holding = FALSE;
  else
    client_unlock ();
}

/* The child starts with no registrations (as with Apple's notify(3)): its
 * tokens become invalid, the parent's connection and worker are left
 * behind (the worker thread does not exist here), and the next call
 * connects afresh.  Only plain memory writes and close() here. */
static void
atfork_child (void)
{
  GHashTableIter iter;
  gpointer value;

  for (guint c = 0; c < N_CHUNKS; c++)
    if (chunks[c] != NULL)
      for (guint i = 0; i < CHUNK_SIZE; i++)
        chunks[c][i].live = -1;
  if (client.initialized)
    {
      if (client.delivery_fd >= 0)
        close (client.delivery_fd);
      g_hash_table_iter_init (&iter, client.boxes);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        close (((FdBox *) value)->write_fd);
    }
  /* The parent's structures are abandoned, not freed: they may refer to
   * threads and contexts that only exist there. */
  memset (&client, 0, sizeof client);
  if (forked_while_holding)
    forked_while_holding = FALSE;  /* a child about to exec: leave it held */
  else
    client_unlock ();
}

/* ------------------------------------------------------------ API */

static guint32
check_name (const char *name)
{
  gsize len;

  if (name == NULL)
    return NC_NOTIFY_STATUS_NULL_INPUT;
  len = strlen (name);
  if (len == 0 || len > NC_NOTIFY_NAME_MAX || !g_utf8_validate (name, len, NULL))
    return NC_NOTIFY_STATUS_INVALID_NAME;
  return NC_NOTIFY_STATUS_OK;
}

static gboolean
is_self_name (const char *name)
{
  return g_str_has_prefix (name, "self.");
}

typedef struct {
  TokenType type;
  int sig;
  FdBox *box;
  GMainContext *context;
  NcNotifyHandler handler;
  gpointer user_data;
  GDestroyNotify destroy;
} TokenSpec;

static void
name_ref_drop_locked (NameRef *ref)
{
  if (ref->tokens->len > 0)
    return;
  if (!ref->is_self && ref->registered && client.conn != NULL)
    {
      g_autoptr(GVariant) reply = NULL;
      guint32 status;
      gboolean lost;

      reply = call_once_locked ("Cancel", g_variant_new ("(u)", ref->id), "(u)",
                                NULL, NULL, &status, &lost);
    }
  g_hash_table_remove (client.ids, GUINT_TO_POINTER (ref->id));
  g_hash_table_remove (client.names, ref->name);
}

static guint32
register_token (const char *name, const TokenSpec *spec, int *out_token)
{
  gboolean wants_delivery = spec->type != TYPE_CHECK;
  guint32 status = NC_NOTIFY_STATUS_OK;
  NameRef *ref;
  Token *t;
  int value;

  ref = g_hash_table_lookup (client.names, name);
  if (ref == NULL)
    {
      ref = g_new0 (NameRef, 1);
      ref->name = g_strdup (name);
      ref->is_self = is_self_name (name);
      ref->tokens = g_ptr_array_new ();
      do
        ref->id = client.next_id++;
      while (ref->id == 0 || g_hash_table_contains (client.ids, GUINT_TO_POINTER (ref->id)));
      g_hash_table_insert (client.names, ref->name, ref);
      g_hash_table_insert (client.ids, GUINT_TO_POINTER (ref->id), ref);
    }

  if (!ref->is_self)
    {
      status = ensure_connected_locked ();
      if (status == NC_NOTIFY_STATUS_OK &&
          (!ref->registered || (wants_delivery && !ref->deliver)))
        {
          gboolean lost;

          status = register_name_locked (ref, wants_delivery || ref->n_deliver > 0, &lost);
          if (lost && reconnect_locked () == NC_NOTIFY_STATUS_OK &&
              (!ref->registered || (wants_delivery && !ref->deliver)))
            status = register_name_locked (ref, wants_delivery || ref->n_deliver > 0, &lost);
        }
      if (status != NC_NOTIFY_STATUS_OK)
        {
          name_ref_drop_locked (ref);
          return status;
        }
    }

  t = token_alloc_locked (&value);
  if (t == NULL)
    {
      name_ref_drop_locked (ref);
      return NC_NOTIFY_STATUS_FAILED;
    }
  t->type = spec->type;
  t->name = ref;
  t->sig = spec->sig;
  t->box = spec->box;
  t->context = spec->context != NULL ? g_main_context_ref (spec->context) : NULL;
  t->handler = spec->handler;
  t->user_data = spec->user_data;
  t->destroy = spec->destroy;
  t->missed = FALSE;
  g_atomic_int_set (&t->suspended, 0);
  __atomic_store_n (&t->self_count, 0, __ATOMIC_RELAXED);
  __atomic_store_n (&t->last, NO_VALUE, __ATOMIC_RELAXED);
  __atomic_store_n (&t->counter,
                    ref->is_self ? &t->self_count : &client.page[ref->slot],
                    __ATOMIC_RELAXED);
  if (t->box != NULL)
    t->box->users++;
  g_ptr_array_add (ref->tokens, t);
  if (wants_delivery)
    ref->n_deliver++;
  __atomic_store_n (&t->live, value, __ATOMIC_RELEASE);
  *out_token = value;
  return NC_NOTIFY_STATUS_OK;
}

/* register_token(), taking the client's lock itself. */
static guint32
register_token_unlocked (const char *name, const TokenSpec *spec, int *out_token)
{
  guint32 status;

  client_lock ();
  init_locked ();
  status = register_token (name, spec, out_token);
  client_unlock ();
  return status;
}

/**
 * nc_notify_post:
 * @name: the name.
 *
 * Posts @name: every process registered for it is notified (deliveries of
 * one name to one registration coalesce while undelivered), and counters
 * checked by nc_notify_check() move on.  `self.` names are posted within
 * this process only.  Returns once porter-notifyd has handled the post, so
 * a check right after, in any process, sees it.
 *
 * Thread rules: any thread; blocks on a round trip to porter-notifyd
 * (starting it if none runs).
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_post (const char *name)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 status = check_name (name);

  if (status != NC_NOTIFY_STATUS_OK)
    return status;

  client_lock ();
  init_locked ();
  if (is_self_name (name))
    {
      NameRef *ref = g_hash_table_lookup (client.names, name);
      if (ref != NULL)
        {
          for (guint i = 0; i < ref->tokens->len; i++)
            __atomic_fetch_add (&((Token *) ref->tokens->pdata[i])->self_count, 1,
                                __ATOMIC_RELEASE);
          deliver_name_locked (ref);
        }
      client_unlock ();
      return NC_NOTIFY_STATUS_OK;
    }
  reply = call_locked ("Post", g_variant_new ("(s)", name), "(u)", &status);
  client_unlock ();
  if (reply != NULL)
    g_variant_get (reply, "(u)", &status);
  return status;
}

/**
 * nc_notify_register_check:
 * @name: the name.
 * @out_token: (out): the token.
 *
 * Registers for nc_notify_check() only: nothing is delivered.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_register_check (const char *name, int *out_token)
{
  TokenSpec spec = { .type = TYPE_CHECK };
  guint32 status = check_name (name);

  if (status != NC_NOTIFY_STATUS_OK)
    return status;
  if (out_token == NULL)
    return NC_NOTIFY_STATUS_NULL_INPUT;
  return register_token_unlocked (name, &spec, out_token);
}

/**
 * nc_notify_register_signal:
 * @name: the name.
 * @sig: the signal to raise in this process for each (coalesced) post.
 * @out_token: (out): the token.
 *
 * The signal is sent to this process with kill(); use nc_notify_check() on
 * each signal token to tell which name was posted.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: an %NcNotifyStatus (%NC_NOTIFY_STATUS_INVALID_SIGNAL for a bad
 * @sig).
 */
guint32
nc_notify_register_signal (const char *name, int sig, int *out_token)
{
  TokenSpec spec = { .type = TYPE_SIGNAL, .sig = sig };
  guint32 status = check_name (name);

  if (status != NC_NOTIFY_STATUS_OK)
    return status;
  if (out_token == NULL)
    return NC_NOTIFY_STATUS_NULL_INPUT;
  if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
    return NC_NOTIFY_STATUS_INVALID_SIGNAL;
  return register_token_unlocked (name, &spec, out_token);
}

/**
 * nc_notify_register_file_descriptor:
 * @name: the name.
 * @notify_fd: (inout): without %NC_NOTIFY_REUSE, receives a new fd (the
 *   read end of a pipe); with it, an fd an earlier call returned, to share.
 * @flags: 0 or %NC_NOTIFY_REUSE.
 * @out_token: (out): the token.
 *
 * Each (coalesced) post writes the token, 4 bytes in network byte order, to
 * the fd.  A full pipe loses notifications.  The fd is closed when the last
 * token using it is cancelled.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: an %NcNotifyStatus (%NC_NOTIFY_STATUS_INVALID_FILE when a reused
 * fd is not one of ours).
 */
guint32
nc_notify_register_file_descriptor (const char *name, int *notify_fd, int flags,
                                    int *out_token)
{
  TokenSpec spec = { .type = TYPE_FD };
  guint32 status = check_name (name);
  FdBox *box = NULL;
  gboolean made = FALSE;

  if (status != NC_NOTIFY_STATUS_OK)
    return status;
  if (notify_fd == NULL || out_token == NULL)
    return NC_NOTIFY_STATUS_NULL_INPUT;
  if (flags & ~NC_NOTIFY_REUSE)
    return NC_NOTIFY_STATUS_INVALID_REQUEST;

  client_lock ();
  init_locked ();
  if (flags & NC_NOTIFY_REUSE)
    {
      box = g_hash_table_lookup (client.boxes, GINT_TO_POINTER (*notify_fd));
      if (box == NULL)
        {
          client_unlock ();
          return NC_NOTIFY_STATUS_INVALID_FILE;
        }
    }
  else
    {
      int p[2];

      if (pipe2 (p, O_CLOEXEC) < 0)
        {
          client_unlock ();
          return NC_NOTIFY_STATUS_FAILED;
        }
      fcntl (p[1], F_SETFL, fcntl (p[1], F_GETFL) | O_NONBLOCK);
      box = g_new0 (FdBox, 1);
      box->read_fd = p[0];
      box->write_fd = p[1];
      g_hash_table_insert (client.boxes, GINT_TO_POINTER (p[0]), box);
      made = TRUE;
    }
  spec.box = box;
  status = register_token (name, &spec, out_token);
  if (status != NC_NOTIFY_STATUS_OK && made)
    {
      close (box->read_fd);
      close (box->write_fd);
      g_hash_table_remove (client.boxes, GINT_TO_POINTER (box->read_fd));
    }
  else if (status == NC_NOTIFY_STATUS_OK && made)
    *notify_fd = box->read_fd;
  client_unlock ();
  return status;
}

/**
 * nc_notify_register_dispatch:
 * @name: the name.
 * @out_token: (out): the token.
 * @context: (nullable): where @handler runs; %NULL: the global default
 *   context.
 * @handler: called with the token for each (coalesced) post.
 * @user_data: for @handler.
 * @destroy: (nullable): frees @user_data after nc_notify_cancel(), on
 *   @context.
 *
 * Apple's notify_register_dispatch() with a GMainContext for the queue.
 * @handler never runs after nc_notify_cancel() returns on @context's
 * thread.
 *
 * Thread rules: any thread; blocks.
 *
 * Returns: an %NcNotifyStatus.  On failure neither @handler nor @destroy
 * is ever called.
 */
guint32
nc_notify_register_dispatch (const char *name, int *out_token, GMainContext *context,
                             NcNotifyHandler handler, gpointer user_data,
                             GDestroyNotify destroy)
{
  TokenSpec spec = { .type = TYPE_DISPATCH, .handler = handler,
                     .user_data = user_data, .destroy = destroy };
  guint32 status = check_name (name);

  if (status != NC_NOTIFY_STATUS_OK)
    return status;
  if (out_token == NULL || handler == NULL)
    return NC_NOTIFY_STATUS_NULL_INPUT;
  spec.context = context != NULL ? context : g_main_context_default ();
  return register_token_unlocked (name, &spec, out_token);
}

/**
 * nc_notify_check:
 * @token: a token.
 * @check: (out): 1 if the token's name was posted since the last check
 *   (or, for the first check, ever), else 0.
 *
 * Reads the name's counter in the page porter-notifyd shares read-only:
 * no system call, no lock.  May report a false positive (several names
 * share a counter once the page is full, and after the daemon restarts),
 * never a false negative.  A suspended token reports 0 and keeps what it
 * missed for after nc_notify_resume().
 *
 * Thread rules: any thread; never blocks.
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_check (int token, int *check)
{
  const guint64 *counter;
  guint64 value;
  Token *t;

  if (G_UNLIKELY (check == NULL))
    return NC_NOTIFY_STATUS_NULL_INPUT;
  t = token_get (token);
  if (G_UNLIKELY (t == NULL))
    return NC_NOTIFY_STATUS_INVALID_TOKEN;
  if (G_UNLIKELY (__atomic_load_n (&t->suspended, __ATOMIC_RELAXED) > 0))
    {
      *check = 0;
      return NC_NOTIFY_STATUS_OK;
    }
  counter = __atomic_load_n (&t->counter, __ATOMIC_ACQUIRE);
  value = __atomic_load_n (counter, __ATOMIC_ACQUIRE);
  if (value != __atomic_load_n (&t->last, __ATOMIC_RELAXED))
    {
      __atomic_store_n (&t->last, value, __ATOMIC_RELAXED);
      *check = 1;
    }
  else
    *check = 0;
  return NC_NOTIFY_STATUS_OK;
}

/**
 * nc_notify_get_state:
 * @token: a token.
 * @state: (out): the state of the token's name (0 if never set).
 *
 * Thread rules: any thread; blocks (not for `self.` names).
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_get_state (int token, guint64 *state)
{
  g_autoptr(GVariant) reply = NULL;
  g_autofree gchar *name = NULL;
  guint32 status;
  Token *t;

  if (state == NULL)
    return NC_NOTIFY_STATUS_NULL_INPUT;
  client_lock ();
  t = token_get (token);
  if (t == NULL)
    {
      client_unlock ();
      return NC_NOTIFY_STATUS_INVALID_TOKEN;
    }
  if (t->name->is_self)
    {
      *state = t->name->self_state;
      client_unlock ();
      return NC_NOTIFY_STATUS_OK;
    }
  reply = call_locked ("GetState", g_variant_new ("(s)", t->name->name), "(ut)", &status);
  client_unlock ();
  if (reply != NULL)
    {
      guint64 value;
      g_variant_get (reply, "(ut)", &status, &value);
      if (status == NC_NOTIFY_STATUS_OK)
        *state = value;
    }
  return status;
}

/**
 * nc_notify_set_state:
 * @token: a token.
 * @state: the new state of the token's name.
 *
 * Sets the name's 64-bit state, which every process can read with
 * nc_notify_get_state().  Does not post.
 *
 * Thread rules: any thread; blocks (not for `self.` names).
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_set_state (int token, guint64 state)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 status;
  Token *t;

  client_lock ();
  t = token_get (token);
  if (t == NULL)
    {
      client_unlock ();
      return NC_NOTIFY_STATUS_INVALID_TOKEN;
    }
  if (t->name->is_self)
    {
      t->name->self_state = state;
      client_unlock ();
      return NC_NOTIFY_STATUS_OK;
    }
  reply = call_locked ("SetState", g_variant_new ("(st)", t->name->name, state), "(u)", &status);
  client_unlock ();
  if (reply != NULL)
    g_variant_get (reply, "(u)", &status);
  return status;
}

/**
 * nc_notify_suspend:
 * @token: a token.
 *
 * Holds the token's deliveries (and makes its checks report 0) until as
 * many nc_notify_resume() calls; posts meanwhile collapse into one
 * delivery at the last resume.
 *
 * Thread rules: any thread.
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_suspend (int token)
{
  Token *t;

  client_lock ();
  t = token_get (token);
  if (t != NULL)
    g_atomic_int_inc (&t->suspended);
  client_unlock ();
  return t != NULL ? NC_NOTIFY_STATUS_OK : NC_NOTIFY_STATUS_INVALID_TOKEN;
}

/**
 * nc_notify_resume:
 * @token: a token.
 *
 * Undoes one nc_notify_suspend().
 *
 * Thread rules: any thread.
 *
 * Returns: an %NcNotifyStatus (%NC_NOTIFY_STATUS_INVALID_REQUEST if the
 * token is not suspended).
 */
guint32
nc_notify_resume (int token)
{
  guint32 status = NC_NOTIFY_STATUS_OK;
  Token *t;

  client_lock ();
  t = token_get (token);
  if (t == NULL)
    status = NC_NOTIFY_STATUS_INVALID_TOKEN;
  else if (g_atomic_int_get (&t->suspended) == 0)
    status = NC_NOTIFY_STATUS_INVALID_REQUEST;
  else if (g_atomic_int_dec_and_test (&t->suspended) && t->missed)
    {
      t->missed = FALSE;
      deliver_token_locked (t, token);
    }
  client_unlock ();
  return status;
}

typedef struct {
  GDestroyNotify destroy;
  gpointer user_data;
} DestroyLater;

static gboolean
destroy_later_cb (gpointer data)
{
  DestroyLater *later = data;

  later->destroy (later->user_data);
  g_free (later);
  return G_SOURCE_REMOVE;
}

/**
 * nc_notify_cancel:
 * @token: a token.
 *
 * Ends the registration.  The token becomes invalid; its fd is closed if no
 * other token shares it; a dispatch registration's destroy-notify runs on
 * its context.
 *
 * Thread rules: any thread; may block on a round trip to porter-notifyd.
 *
 * Returns: an %NcNotifyStatus.
 */
guint32
nc_notify_cancel (int token)
{
  NameRef *ref;
  Token *t;

  client_lock ();
  t = token_get (token);
  if (t == NULL)
    {
      client_unlock ();
      return NC_NOTIFY_STATUS_INVALID_TOKEN;
    }
  ref = t->name;
  g_ptr_array_remove_fast (ref->tokens, t);
  if (t->type != TYPE_CHECK)
    ref->n_deliver--;
  if (t->box != NULL && --t->box->users == 0)
    {
      close (t->box->write_fd);
      close (t->box->read_fd);
      g_hash_table_remove (client.boxes, GINT_TO_POINTER (t->box->read_fd));
    }
  if (t->destroy != NULL)
    {
      DestroyLater *later = g_new0 (DestroyLater, 1);
      GSource *idle = g_idle_source_new ();

      later->destroy = t->destroy;
      later->user_data = t->user_data;
      g_source_set_callback (idle, destroy_later_cb, later, NULL);
      g_source_attach (idle, t->context);
      g_source_unref (idle);
    }
  if (t->context != NULL)
    g_main_context_unref (t->context);
  token_free_locked (t, token);
  name_ref_drop_locked (ref);
  client_unlock ();
  return NC_NOTIFY_STATUS_OK;
}

/**
 * nc_notify_is_valid_token:
 * @val: an integer.
 *
 * Thread rules: any thread; never blocks.
 *
 * Returns: %TRUE if @val is a token registered and not cancelled.
 */
gboolean
nc_notify_is_valid_token (int val)
{
  return token_get (val) != NULL;
}
