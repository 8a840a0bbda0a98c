/* Porter — libnotecenter: the distributed notification center (see nc.h,
 * DISTRIBUTED CENTER, and for the protocol nc-notify-private.h).
 *
 * A center holds one DoConnection to porter-notifyd, made on a private
 * GMainContext nobody iterates: every call is a sync (or oneway) call made
 * under @lock, which reads its own reply, as the notify(3) client does.
 * The daemon writes whole notifications to a delivery socket, each with
 * the ids of the observers of this process it matched.
 *
 * While every observer uses one GMainContext, the delivery socket is read
 * by a source on that context, which calls the observers itself: a
 * delivery costs the process one wake-up.  Once observers use two
 * contexts, a worker thread (started then) reads it instead and hands
 * each delivery to its observer's context in an idle source, so an
 * observer whose context does not run never delays the others.  The
 * source moves under @lock, and reads under it, so a packet read before a
 * move is delivered before any read after it: each observer keeps the
 * order of posts.
 *
 * When the daemon goes away, the delivery source sees the socket hang up
 * and connects again (starting a daemon if need be), adding every
 * observer again and restoring the suspension; what was posted in between
 * is lost.
 *
 * Lock order: @lock, then libdo's.  No user callback runs under @lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-distributed-center.h"
#include "nc-notify.h"
#include "nc-notify-private.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixfdlist.h>

#include "libdo/do.h"
#include "nc-notification.h"

/* A delivery packet at most: header, names, user info, framing. */
#define PACKET_MAX ((NC_DIST_MAX_IDS + 2) * 4 + 2 * NC_NOTIFY_NAME_MAX + \
                    NC_DIST_USER_INFO_MAX + 4096)

struct _NcDistributedObserver {
  gint ref;                   /* (atomic) the table's, and each delivery's */
  NcDistributedCenter *center; /* strong; immutable */
  guint32 id;                 /* immutable */
  gchar *name;                /* (nullable) immutable */
  gchar *sender;              /* (nullable) immutable */
  NcSuspensionBehavior behavior; /* immutable */
  GMainContext *context;      /* strong; immutable */
  gint removed;               /* (atomic) set once, under center->lock */
  guint fork_gen;             /* the process that added it (see
                               * fork_generation); immutable */
  NcDistributedObserverFunc func; /* immutable */
  gpointer user_data;         /* immutable */
  GDestroyNotify destroy;     /* (nullable) immutable */
};

/**
 * NcDistributedCenter:
 *
 * A connection to porter-notifyd's distributed center.  Every function on
 * it may be called from any thread, including from inside an observer's
 * callback.
 */
struct _NcDistributedCenter {
  gint ref;                   /* (atomic) */
  GMutex lock;
  gint quit;                  /* (atomic) */
  /* protected by @lock: */
  guint fork_gen;             /* whose the rest is: see center_lock() */
  GMainContext *conn_context;
  GMainContext *worker_context;
  GThread *worker;            /* (nullable) started on first need */
  DoConnection *conn;
  DoProxy *root;
  int delivery_fd;
  GSource *delivery_source;   /* (nullable) on @delivery_context */
  GMainContext *delivery_context; /* (nullable) the observers' one context,
                               * @worker_context, or NULL without observers */
  GHashTable *observers;      /* id -> NcDistributedObserver *, a ref each */
  guint32 next_id;
  gboolean suspended;
  guint8 *packet;             /* what the delivery source reads into */
};

/* ------------------------------------------------------------ fork */

/* How many fork()s this process is from the one that loaded the library
 * (counted in each child by a pthread_atfork() handler, as libdo's
 * channels count them).  A center and its observers remember it, so that
 * telling a child of fork() from the parent costs no getpid() system
 * call on each delivery. */
static gint fork_generation;  /* (atomic) */

static void
count_fork (void)
{
  g_atomic_int_inc (&fork_generation);
}

static guint
get_fork_generation (void)
{
  return (guint) g_atomic_int_get (&fork_generation);
}

/* Locks @center.  In a child of fork() the center starts again with no
 * observers and no connection, as notify(3) clients do (nc-notify.c).
 * The parent's are abandoned, not freed: the connection's socket and ring
 * are the parent's too (closing it would say goodbye for the parent), its
 * threads do not exist here, and the observers' destroy-notifies are the
 * parent's business.  A copy of the delivery source left on a context the
 * child runs sees it is no longer the center's and goes without reading
 * the parent's deliveries.  (Forking while another thread is inside a
 * call on the center is not supported.) */
static void
center_lock (NcDistributedCenter *center)
{
  g_mutex_lock (&center->lock);
  if (center->fork_gen == get_fork_generation ())
    return;
  center->fork_gen = get_fork_generation ();
  if (center->delivery_fd >= 0)
    close (center->delivery_fd);  /* this process's copy */
  center->delivery_fd = -1;
  center->delivery_source = NULL;
  center->delivery_context = NULL;
  center->conn = NULL;
  center->root = NULL;
  center->worker = NULL;
  center->conn_context = g_main_context_new ();
  center->worker_context = g_main_context_new ();
  center->observers = g_hash_table_new (NULL, NULL);
  center->suspended = FALSE;
}

/* ------------------------------------------------------------ observers */

static gboolean
remove_source_cb (gpointer data)
{
  return G_SOURCE_REMOVE;
}

/* Runs @func on @context from an idle source, then @free (also when the
 * context goes away first). */
static void
invoke_on_context (GMainContext *context, GSourceFunc func, gpointer data, GDestroyNotify free)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[porter] NcDistributedCenter");
  g_source_set_callback (source, func, data, free);
  g_source_attach (source, context);
  g_source_unref (source);
}

/* The destroy-notify, then the memory. */
static void
observer_free (gpointer data)
{
  NcDistributedObserver *observer = data;

  if (observer->destroy != NULL)
    observer->destroy (observer->user_data);
  g_main_context_unref (observer->context);
  g_free (observer->name);
  g_free (observer->sender);
  g_free (observer);
}

static void
observer_unref (NcDistributedObserver *observer)
{
  NcDistributedCenter *center = observer->center;

  if (!g_atomic_int_dec_and_test (&observer->ref))
    return;
  /* The destroy-notify belongs on the observer's context. */
  if (observer->destroy == NULL || g_main_context_is_owner (observer->context))
    observer_free (observer);
  else
    invoke_on_context (observer->context, remove_source_cb, observer, observer_free);
  nc_distributed_center_unref (center);
}

static NcDistributedObserver *
observer_ref (NcDistributedObserver *observer)
{
  g_atomic_int_inc (&observer->ref);
  return observer;
}

static void
observer_call (NcDistributedObserver *observer, NcNotification *notification)
{
  /* (Not in a child of fork(): the parent's observers are not its own.) */
  if (!g_atomic_int_get (&observer->removed) && observer->fork_gen == get_fork_generation ())
    observer->func (observer->center, notification, observer->user_data);
}

typedef struct {
  NcDistributedObserver *observer;
  NcNotification *notification;
} Delivery;

static gboolean
delivery_dispatch (gpointer data)
{
  Delivery *d = data;

  observer_call (d->observer, d->notification);
  return G_SOURCE_REMOVE;
}

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  nc_notification_unref (d->notification);
  observer_unref (d->observer);
  g_free (d);
}

/* Calls @observer now if this thread runs its context, else hands the
 * notification to its context.  Takes the reference on @observer. */
static void
observer_deliver (NcDistributedObserver *observer, GMainContext *here,
                  NcNotification *notification)
{
  Delivery *d;

  if (observer->context == here)
    {
      observer_call (observer, notification);
      observer_unref (observer);
      return;
    }
  d = g_new (Delivery, 1);
  d->observer = observer;
  d->notification = nc_notification_ref (notification);
  invoke_on_context (observer->context, delivery_dispatch, d, delivery_free);
}

/* ------------------------------------------------------------ connection */

static gboolean connect_locked (NcDistributedCenter *center, GError **error);

static void
disconnect_locked (NcDistributedCenter *center)
{
  if (center->delivery_source != NULL)
    {
      g_source_destroy (center->delivery_source);
      g_clear_pointer (&center->delivery_source, g_source_unref);
    }
  if (center->delivery_fd >= 0)
    {
      close (center->delivery_fd);
      center->delivery_fd = -1;
    }
  if (center->conn != NULL)
    {
      do_connection_close (center->conn);
      g_clear_pointer (&center->root, do_proxy_unref);
      g_clear_pointer (&center->conn, do_connection_unref);
      while (g_main_context_iteration (center->conn_context, FALSE))
        ;
    }
}

static gboolean
is_connection_error (const GError *error)
{
  return g_error_matches (error, DO_ERROR, DO_ERROR_CONNECTION_DIED) ||
         g_error_matches (error, DO_ERROR, DO_ERROR_CLOSED) ||
         g_error_matches (error, DO_ERROR, DO_ERROR_TIMED_OUT);
}

/* A call expecting "(u)"; FALSE with @error unless the status is OK. */
static gboolean
call_status_locked (NcDistributedCenter *center, const gchar *method, GVariant *parameters,
                    GUnixFDList *fds, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 status;

  reply = do_proxy_call_with_fds_sync (center->root, method, parameters, fds,
                                       DO_CALL_FLAGS_NONE, DO_TIMEOUT_DEFAULT, NULL,
                                       NULL, error);
  if (reply == NULL)
    return FALSE;
  if (!g_variant_is_of_type (reply, G_VARIANT_TYPE ("(u)")))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "porter-notifyd replied %s to %s",
                   g_variant_get_type_string (reply), method);
      return FALSE;
    }
  g_variant_get (reply, "(u)", &status);
  if (status != NC_NOTIFY_STATUS_OK)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "porter-notifyd refused %s (status %u)",
                   method, status);
      return FALSE;
    }
  return TRUE;
}

static gboolean
add_observer_locked (NcDistributedCenter *center, NcDistributedObserver *observer,
                     GError **error)
{
  return call_status_locked (center, "DistAddObserver",
                             g_variant_new ("(ussu)", observer->id,
                                            observer->name ? observer->name : "",
                                            observer->sender ? observer->sender : "",
                                            (guint32) observer->behavior),
                             NULL, error);
}

static gboolean on_delivery (GIOCondition condition, gpointer user_data);
static gpointer worker_main (gpointer data);

#define DELIVERY_CONDITIONS (G_IO_IN | G_IO_HUP | G_IO_ERR)

/* The delivery socket's source.  It may recurse, so that GLib does not
 * take the fd out of the context's poll set around each dispatch and put
 * it back, which wakes the context twice and costs an iteration per
 * delivery.  A callback iterating its context would then be dispatched
 * the next packets before the rest of the current one's observers are
 * called: while a dispatch runs, prepare() leaves the fd out instead. */
typedef struct {
  GSource source;
  gpointer tag;
  GIOCondition events;        /* what @tag is polled for */
  guint depth;                /* dispatches running */
} DeliverySource;

static gboolean
delivery_source_prepare (GSource *source, gint *timeout)
{
  DeliverySource *ds = (DeliverySource *) source;
  GIOCondition want = ds->depth > 0 ? 0 : DELIVERY_CONDITIONS;

  if (ds->events != want)
    g_source_modify_unix_fd (source, ds->tag, ds->events = want);
  *timeout = -1;
  return FALSE;
}

static gboolean
delivery_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  DeliverySource *ds = (DeliverySource *) source;
  gboolean keep;

  ds->depth++;
  keep = on_delivery (g_source_query_unix_fd (source, ds->tag), user_data);
  ds->depth--;
  return keep;
}

static GSourceFuncs delivery_source_funcs = {
  .prepare = delivery_source_prepare,
  .dispatch = delivery_source_dispatch,
};

/* (Re)makes the delivery source on @delivery_context.  On an observer's
 * context it holds a reference on the center, so the center outlives a
 * dispatch running there while another thread drops the last observer;
 * the worker's needs none, as the last unref joins the worker first. */
static void
attach_delivery_locked (NcDistributedCenter *center)
{
  gboolean on_worker = center->delivery_context == center->worker_context;
  DeliverySource *ds;

  if (center->delivery_source != NULL)
    {
      g_source_destroy (center->delivery_source);
      g_clear_pointer (&center->delivery_source, g_source_unref);
    }
  if (center->delivery_fd < 0 || center->delivery_context == NULL)
    return;
  if (on_worker && center->worker == NULL)
    center->worker = g_thread_new ("nc-distributed", worker_main, center);
  center->delivery_source = g_source_new (&delivery_source_funcs, sizeof (DeliverySource));
  ds = (DeliverySource *) center->delivery_source;
  ds->events = DELIVERY_CONDITIONS;
  ds->tag = g_source_add_unix_fd (center->delivery_source, center->delivery_fd, ds->events);
  /* Dispatch calls on_delivery() itself; the callback's data is the
   * center, which GLib holds through each dispatch. */
  g_source_set_callback (center->delivery_source, remove_source_cb,
                         on_worker ? center : nc_distributed_center_ref (center),
                         on_worker ? NULL : (GDestroyNotify) nc_distributed_center_unref);
  g_source_set_static_name (center->delivery_source, "nc_distributed delivery");
  g_source_set_can_recurse (center->delivery_source, TRUE);
  g_source_attach (center->delivery_source, center->delivery_context);
}

/* Where the delivery source should run once @context's observer is added
 * (@context) or one is removed (NULL). */
static void
place_delivery_locked (NcDistributedCenter *center, GMainContext *context)
{
  GMainContext *want = center->delivery_context;

  if (g_hash_table_size (center->observers) == 0)
    want = NULL;
  else if (want == NULL)
    want = context;
  else if (context != NULL && context != want)
    want = center->worker_context;
  if (want == center->delivery_context)
    return;
  center->delivery_context = want;
  attach_delivery_locked (center);
}

static gboolean
connect_locked (NcDistributedCenter *center, GError **error)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  GHashTableIter iter;
  gpointer value;
  int pair[2];
  gint32 index;

  center->conn = _nc_notifyd_connect (center->conn_context, error);
  if (center->conn == NULL)
    return FALSE;
  center->root = do_connection_get_root_proxy (center->conn);
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "socketpair: %s", g_strerror (errsv));
      disconnect_locked (center);
      return FALSE;
    }
  center->delivery_fd = pair[0];
  index = g_unix_fd_list_append (fds, pair[1], NULL);
  close (pair[1]);
  if (!call_status_locked (center, "DistHello", g_variant_new ("(h)", index), fds, error))
    {
      disconnect_locked (center);
      return FALSE;
    }
  attach_delivery_locked (center);

  /* What we had at the previous daemon. */
  g_hash_table_iter_init (&iter, center->observers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!add_observer_locked (center, value, error))
      {
        disconnect_locked (center);
        return FALSE;
      }
  if (center->suspended &&
      !call_status_locked (center, "DistSetSuspended", g_variant_new ("(b)", TRUE), NULL,
                           error))
    {
      disconnect_locked (center);
      return FALSE;
    }
  return TRUE;
}

static gboolean
ensure_connected_locked (NcDistributedCenter *center, GError **error)
{
  if (center->conn != NULL && do_connection_is_alive (center->conn))
    return TRUE;
  disconnect_locked (center);
  return connect_locked (center, error);
}

/* ------------------------------------------------------------ delivery */

/* A malformed packet: the daemon is trusted no more than any peer, so its
 * socket is closed (and a connection made again) with the reason logged. */
static gboolean
packet_refused (const gchar *why, gboolean *hung_up)
{
  g_message ("porter-notifyd sent %s: closing its delivery socket", why);
  *hung_up = TRUE;
  return FALSE;
}

/* Reads one packet into its notification and its observers (a reference
 * each; those removed since are left out).  FALSE when there is nothing
 * to read, or the packet is malformed (@hung_up is set then). */
static gboolean
read_packet_locked (NcDistributedCenter *center, gboolean *hung_up,
                    NcNotification **notification, NcDistributedObserver **observers,
                    guint *n_observers)
{
  const guint8 *data = center->packet;
  g_autoptr(GVariant) user_info = NULL;
  gssize len = _nc_delivery_recv (center->delivery_fd, center->packet, PACKET_MAX,
                                  MSG_TRUNC, hung_up);
  const gchar *name, *sender, *why = NULL;
  guint32 n = 0;

  *n_observers = 0;
  if (len <= 0)
    return FALSE;
  if (len > PACKET_MAX)
    return packet_refused ("a packet larger than any notification", hung_up);
  if (!_nc_delivery_parse (data, len, &n, &name, &sender, &user_info, &why))
    return packet_refused (why, hung_up);

  for (guint32 i = 0; i < n; i++)
    {
      NcDistributedObserver *observer;
      guint32 id;

      memcpy (&id, data + (1 + i) * sizeof id, sizeof id);
      observer = g_hash_table_lookup (center->observers, GUINT_TO_POINTER (id));
      if (observer != NULL)
        observers[(*n_observers)++] = observer_ref (observer);
    }
  if (*n_observers > 0)
    *notification = nc_notification_new (name, sender[0] != '\0' ? sender : NULL, user_info);
  return TRUE;
}

static gboolean
on_delivery (GIOCondition condition, gpointer user_data)
{
  NcDistributedCenter *center = user_data;
  GSource *self = g_main_current_source ();
  GMainContext *here = g_source_get_context (self);
  gboolean hung_up = FALSE;

  for (;;)
    {
      NcDistributedObserver *observers[NC_DIST_MAX_IDS];
      g_autoptr(NcNotification) notification = NULL;
      guint n = 0;
      gboolean more;

      center_lock (center);
      /* Moved to another context (or gone) since: it reads from now on. */
      if (self != center->delivery_source)
        {
          g_mutex_unlock (&center->lock);
          return G_SOURCE_REMOVE;
        }
      more = read_packet_locked (center, &hung_up, &notification, observers, &n);
      g_mutex_unlock (&center->lock);
      if (!more)
        break;
      for (guint i = 0; i < n; i++)
        observer_deliver (observers[i], here, notification);
      /* One packet a dispatch: the fd stays readable if there are more,
       * and the usual lone delivery costs no recv() that finds nothing. */
      if (!(condition & (G_IO_HUP | G_IO_ERR)))
        return G_SOURCE_CONTINUE;
    }
  if (!hung_up && !(condition & (G_IO_HUP | G_IO_ERR)))
    return G_SOURCE_CONTINUE;

  /* The daemon went away (or let us go): start again if anybody listens. */
  center_lock (center);
  if (self == center->delivery_source)
    {
      g_autoptr(GError) error = NULL;

      disconnect_locked (center);
      if (g_hash_table_size (center->observers) > 0 && !g_atomic_int_get (&center->quit) &&
          !connect_locked (center, &error))
        g_warning ("Cannot reach porter-notifyd again: %s", error->message);
    }
  g_mutex_unlock (&center->lock);
  return G_SOURCE_REMOVE;
}

static gpointer
worker_main (gpointer data)
{
  NcDistributedCenter *center = data;

  g_main_context_push_thread_default (center->worker_context);
  while (!g_atomic_int_get (&center->quit))
    g_main_context_iteration (center->worker_context, TRUE);
  g_main_context_pop_thread_default (center->worker_context);
  return NULL;
}

/* ------------------------------------------------------------ API */

/**
 * nc_distributed_center_new:
 *
 * Makes a distributed center with a connection of its own to
 * porter-notifyd (made, and the daemon started if none runs, on first
 * use).  Most programs want nc_distributed_center_get_default().
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): a new center.
 */
NcDistributedCenter *
nc_distributed_center_new (void)
{
  static gsize atfork_done;
  NcDistributedCenter *center;

  if (g_once_init_enter (&atfork_done))
    {
      pthread_atfork (NULL, NULL, count_fork);
      g_once_init_leave (&atfork_done, 1);
    }
  center = g_new0 (NcDistributedCenter, 1);
  center->ref = 1;
  g_mutex_init (&center->lock);
  center->fork_gen = get_fork_generation ();
  center->conn_context = g_main_context_new ();
  center->worker_context = g_main_context_new ();
  center->delivery_fd = -1;
  center->observers = g_hash_table_new (NULL, NULL);
  center->next_id = 1;
  center->packet = g_malloc (PACKET_MAX);
  return center;
}

/**
 * nc_distributed_center_get_default:
 *
 * The process's distributed center, made on first call and never freed.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): the default center.
 */
NcDistributedCenter *
nc_distributed_center_get_default (void)
{
  static NcDistributedCenter *default_center;

  if (g_once_init_enter (&default_center))
    g_once_init_leave (&default_center, nc_distributed_center_new ());
  return default_center;
}

/**
 * nc_distributed_center_ref:
 * @center: a center.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer full): @center.
 */
NcDistributedCenter *
nc_distributed_center_ref (NcDistributedCenter *center)
{
  g_return_val_if_fail (center != NULL, NULL);
  g_atomic_int_inc (&center->ref);
  return center;
}

/**
 * nc_distributed_center_unref:
 * @center: (nullable): a center.
 *
 * Drops a reference.  Each observer holds one on its center until it is
 * removed, so the last unref finds none.
 *
 * Thread rules: any thread but inside an observer callback of @center.
 */
void
nc_distributed_center_unref (NcDistributedCenter *center)
{
  GThread *worker;

  if (center == NULL || !g_atomic_int_dec_and_test (&center->ref))
    return;
  g_atomic_int_set (&center->quit, 1);
  center_lock (center);
  worker = g_steal_pointer (&center->worker);
  g_mutex_unlock (&center->lock);
  if (worker != NULL)
    {
      /* Not g_main_context_invoke(): between two iterations the worker
       * does not own its context, and the call would run here, waking
       * nobody, while the worker goes on to sleep in poll(). */
      g_main_context_wakeup (center->worker_context);
      g_thread_join (worker);
    }
  center_lock (center);
  disconnect_locked (center);
  g_mutex_unlock (&center->lock);
  g_assert (g_hash_table_size (center->observers) == 0);
  g_hash_table_unref (center->observers);
  g_main_context_unref (center->conn_context);
  g_main_context_unref (center->worker_context);
  g_mutex_clear (&center->lock);
  g_free (center->packet);
  g_free (center);
}

static gboolean
check_name (const gchar *what, const gchar *name, gboolean nullable, GError **error)
{
  if (name == NULL && nullable)
    return TRUE;
  if (name == NULL || name[0] == '\0' || strlen (name) > NC_NOTIFY_NAME_MAX ||
      !g_utf8_validate (name, -1, NULL))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "a %s must be 1 to %u bytes of UTF-8", what, NC_NOTIFY_NAME_MAX);
      return FALSE;
    }
  return TRUE;
}

/**
 * nc_distributed_center_post:
 * @center: a center.
 * @name: the notification's name (1 to 1024 bytes of UTF-8).
 * @sender: (nullable): its sender, a string (same limits).
 * @user_info: (nullable): an `a{sv}`, at most 64 KiB serialized; a
 *   floating reference is sunk.  An empty one arrives as %NULL, as
 *   nc_notification_new_with_info() makes it from no pairs.
 * @flags: %NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY to reach suspended
 *   processes too.
 * @error: return location for an error.
 *
 * Sends a notification to every process whose observers match it (this
 * one included), through porter-notifyd.  It does not wait for delivery:
 * it returns once the daemon has been sent the post.  Posts from one
 * thread reach each observer in order (unless coalesced or dropped by its
 * suspension behaviour).
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE if the daemon was sent the post.
 */
gboolean
nc_distributed_center_post (NcDistributedCenter *center, const gchar *name, const gchar *sender,
                            GVariant *user_info, NcDistributedPostFlags flags, GError **error)
{
  g_autoptr(GVariant) parameters = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean ok = FALSE;

  g_return_val_if_fail (center != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (user_info == NULL ||
                        g_variant_is_of_type (user_info, G_VARIANT_TYPE_VARDICT), FALSE);
  g_return_val_if_fail ((flags & ~NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY) == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (user_info != NULL)
    g_variant_ref_sink (user_info);
  if (!check_name ("name", name, FALSE, error) || !check_name ("sender", sender, TRUE, error))
    goto out;
  if (user_info != NULL && g_variant_get_size (user_info) > NC_DIST_USER_INFO_MAX)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "the user info is over %u bytes", NC_DIST_USER_INFO_MAX);
      goto out;
    }
  parameters = g_variant_ref_sink (
    g_variant_new ("(ss@a{sv}u)", name, sender ? sender : "",
                   user_info ? user_info : g_variant_new ("a{sv}", NULL), (guint32) flags));

  center_lock (center);
  for (int attempt = 0; attempt < 2 && !ok; attempt++)
    {
      g_clear_error (&local_error);
      if (attempt > 0)
        disconnect_locked (center);
      if (!ensure_connected_locked (center, &local_error))
        break;
      ok = do_proxy_call_oneway (center->root, "DistPost", parameters, &local_error);
      if (!ok && !is_connection_error (local_error))
        break;
    }
  g_mutex_unlock (&center->lock);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local_error));
out:
  if (user_info != NULL)
    g_variant_unref (user_info);
  return ok;
}

/**
 * nc_distributed_center_add_observer:
 * @center: a center.
 * @name: (nullable): the name to observe, or %NULL for any.
 * @sender: (nullable): the sender to observe, or %NULL for any.
 * @behavior: what to do with notifications while this process is
 *   suspended (#NcSuspensionBehavior).
 * @context: (nullable): where @func runs; %NULL for the thread-default
 *   context of the calling thread.
 * @func: called for each matching notification.
 * @user_data: passed to @func.
 * @destroy: (nullable): called on @user_data on @context after the last
 *   call of @func, once the observer is removed.
 * @error: return location for an error.
 *
 * Observes notifications posted by any process.  The daemon does the
 * matching, so the process is sent only what its observers want.  Once
 * this returns, every later post is matched against the observer.  The
 * observer holds a reference on @center until it is removed.
 *
 * Thread rules: any thread.
 *
 * Returns: (transfer none): a handle, valid until it is passed to
 * nc_distributed_center_remove_observer(); %NULL with @error set if the
 * daemon cannot be reached or refuses (over its per-process limit).
 */
NcDistributedObserver *
nc_distributed_center_add_observer (NcDistributedCenter *center, const gchar *name,
                                    const gchar *sender, NcSuspensionBehavior behavior,
                                    GMainContext *context, NcDistributedObserverFunc func,
                                    gpointer user_data, GDestroyNotify destroy, GError **error)
{
  NcDistributedObserver *observer;
  gboolean ok = FALSE;

  g_return_val_if_fail (center != NULL, NULL);
  g_return_val_if_fail (behavior >= NC_SUSPENSION_DROP &&
                        behavior <= NC_SUSPENSION_DELIVER_IMMEDIATELY, NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_name ("name", name, TRUE, error) || !check_name ("sender", sender, TRUE, error))
    return NULL;

  observer = g_new0 (NcDistributedObserver, 1);
  observer->ref = 1;
  observer->center = nc_distributed_center_ref (center);
  observer->name = g_strdup (name);
  observer->sender = g_strdup (sender);
  observer->behavior = behavior;
  observer->context = context ? g_main_context_ref (context)
                              : g_main_context_ref_thread_default ();
  observer->func = func;
  observer->user_data = user_data;
  observer->destroy = destroy;
  observer->fork_gen = get_fork_generation ();

  center_lock (center);
  observer->id = center->next_id++;
  if (center->next_id == 0)
    center->next_id = 1;
  for (int attempt = 0; attempt < 2 && !ok; attempt++)
    {
      g_autoptr(GError) local_error = NULL;

      if (attempt > 0)
        disconnect_locked (center);
      if (!ensure_connected_locked (center, &local_error))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          break;
        }
      ok = add_observer_locked (center, observer, &local_error);
      if (!ok && (attempt > 0 || !is_connection_error (local_error)))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          break;
        }
    }
  if (ok)
    {
      g_hash_table_insert (center->observers, GUINT_TO_POINTER (observer->id), observer);
      place_delivery_locked (center, observer->context);
    }
  g_mutex_unlock (&center->lock);
  if (!ok)
    {
      observer_unref (observer);
      return NULL;
    }
  return observer;
}

/**
 * nc_distributed_center_remove_observer:
 * @center: a center.
 * @observer: (transfer full): a handle from
 *   nc_distributed_center_add_observer() on @center.
 *
 * Stops the observer: @func is not called after this returns (on
 * @context's thread; a call already running elsewhere finishes), and the
 * daemon no longer sends its notifications.  Its destroy-notify runs on
 * its context afterwards.
 *
 * Thread rules: any thread, also from inside a callback.
 *
 * Returns: %TRUE if @observer was an observer of @center.
 */
gboolean
nc_distributed_center_remove_observer (NcDistributedCenter *center,
                                       NcDistributedObserver *observer)
{
  g_return_val_if_fail (center != NULL, FALSE);
  g_return_val_if_fail (observer != NULL, FALSE);

  center_lock (center);
  if (g_hash_table_lookup (center->observers, GUINT_TO_POINTER (observer->id)) != observer)
    {
      g_mutex_unlock (&center->lock);
      /* One the parent added before fork(): gone, as in notify(3). */
      if (observer->fork_gen != get_fork_generation ())
        return FALSE;
      g_return_val_if_reached (FALSE);
    }
  g_hash_table_remove (center->observers, GUINT_TO_POINTER (observer->id));
  g_atomic_int_set (&observer->removed, 1);
  place_delivery_locked (center, NULL);
  if (center->conn != NULL && do_connection_is_alive (center->conn))
    {
      g_autoptr(GError) error = NULL;
      /* A failure means the daemon is gone, and the observer with it. */
      call_status_locked (center, "DistRemoveObserver", g_variant_new ("(u)", observer->id),
                          NULL, &error);
    }
  g_mutex_unlock (&center->lock);

  observer_unref (observer);  /* the table's */
  return TRUE;
}

/**
 * nc_distributed_center_set_suspended:
 * @center: a center.
 * @suspended: whether to suspend delivery to this center.
 * @error: return location for an error.
 *
 * Suspends or resumes delivery (NSDistributedNotificationCenter's
 * setSuspended:).  While suspended, the daemon treats each observer's
 * notifications per its #NcSuspensionBehavior; on resume it sends what it
 * held at once, without waiting for another post.
 *
 * Thread rules: any thread.
 *
 * Returns: %TRUE once the daemon has applied it.
 */
gboolean
nc_distributed_center_set_suspended (NcDistributedCenter *center, gboolean suspended,
                                     GError **error)
{
  gboolean ok;

  g_return_val_if_fail (center != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  center_lock (center);
  center->suspended = !!suspended;
  ok = ensure_connected_locked (center, error) &&
       call_status_locked (center, "DistSetSuspended", g_variant_new ("(b)", !!suspended),
                           NULL, error);
  g_mutex_unlock (&center->lock);
  return ok;
}

/**
 * nc_distributed_center_get_suspended:
 * @center: a center.
 *
 * Thread rules: any thread.
 *
 * Returns: whether @center was last set suspended.
 */
gboolean
nc_distributed_center_get_suspended (NcDistributedCenter *center)
{
  gboolean suspended;

  g_return_val_if_fail (center != NULL, FALSE);
  center_lock (center);
  suspended = center->suspended;
  g_mutex_unlock (&center->lock);
  return suspended;
}
