/* Porter — libnotecenter: the in-process notification center
 * (NSNotificationCenter).
 *
 * How it works.  Observers are kept in immutable, reference-counted arrays
 * (ObsList): one per observed name, in a hash table keyed by the name's
 * GQuark, and one for observers of any name.  Adding or removing an observer
 * builds a new array under @lock and swaps it in (copy on write); posting
 * takes @lock only long enough to take a reference on the one or two arrays
 * that can match, then walks them without any lock, merging the two by
 * registration number so observers are called in registration order.  So a
 * post costs one short critical section and no allocation, observers added
 * during a post are not in its arrays, and callbacks may do anything.
 *
 * An observer is removed by setting its @removed flag under @lock and
 * swapping in an array without it; a post still walking an older array
 * checks the flag before each call, so an observer removed before its turn
 * is skipped.  Each array holds a reference on each of its observers, and
 * the handle holds one more: the destroy-notify runs when the last
 * reference goes, which is after every post that could still call the
 * observer has finished with it.
 *
 * Locking: @lock is a leaf lock.  No callback, destroy-notify or unref of an
 * observer or array ever runs under it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "nc-center-private.h"
#include "nc-notification-private.h"
#include "nc-private.h"

/* An immutable array of observers, in registration order. */
typedef struct {
  NcRef ref;
  guint len;
  NcObserver *items[];
} ObsList;

struct _NcObserver {
  NcRef ref;
  NcCenter *center;           /* strong; immutable */
  GQuark name;                /* 0 for any name; immutable */
  gchar *sender;              /* (nullable) NULL for any sender; immutable */
  NcObserverFunc func;        /* immutable */
  gpointer user_data;         /* immutable */
  GDestroyNotify destroy;     /* (nullable) immutable */
  GMainContext *context;      /* (nullable) strong; NULL: call on the posting
                               * thread; immutable */
  guint64 seq;                /* registration number; protected by
                               * center->lock until added, then immutable */
  gint removed;               /* (atomic) set once, under center->lock */
};

/**
 * NcCenter:
 *
 * An in-process notification center.  Every function on it may be called
 * from any thread, including from inside an observer's callback.
 */
struct _NcCenter {
  NcRef ref;
  NcMutex lock;
  GHashTable *by_name;        /* GQuark -> ObsList (owned); protected by @lock */
  ObsList *any_name;          /* (nullable) (owned); protected by @lock */
  guint64 next_seq;           /* protected by @lock */
};

/* ----------------------------------------------------------------------- */
/* Observers */

static void observer_unref (NcObserver *observer);

/* Hand-offs to a context carry a flag set with release semantics before
 * the source is attached and read with acquire semantics when it runs.
 * GLib's context lock already orders them; the flag states the hand-off
 * where ThreadSanitizer can see it (see nc-private.h). */
typedef struct {
  GDestroyNotify destroy;
  gpointer user_data;
  gint published;   /* (atomic) */
} DeferredDestroy;

static gboolean
deferred_destroy_dispatch (gpointer data)
{
  DeferredDestroy *d = data;

  g_assert (g_atomic_int_get (&d->published));
  d->destroy (d->user_data);
  d->destroy = NULL;
  return G_SOURCE_REMOVE;
}

static void
deferred_destroy_free (gpointer data)
{
  DeferredDestroy *d = data;

  /* The context went away before it ran the source: run it here rather
   * than never. */
  g_assert (g_atomic_int_get (&d->published));
  if (d->destroy != NULL)
    d->destroy (d->user_data);
  g_free (d);
}

static void
observer_free (NcObserver *observer)
{
  if (observer->destroy != NULL)
    {
      if (observer->context == NULL || g_main_context_is_owner (observer->context))
        {
          observer->destroy (observer->user_data);
        }
      else
        {
          DeferredDestroy *d = g_new (DeferredDestroy, 1);
          GSource *source = g_idle_source_new ();

          d->destroy = observer->destroy;
          d->user_data = observer->user_data;
          g_atomic_int_set (&d->published, 1);
          g_source_set_priority (source, G_PRIORITY_DEFAULT);
          g_source_set_static_name (source, "[porter] NcObserver destroy");
          g_source_set_callback (source, deferred_destroy_dispatch, d,
                                 deferred_destroy_free);
          g_source_attach (source, observer->context);
          g_source_unref (source);
        }
    }

  g_clear_pointer (&observer->context, g_main_context_unref);
  g_free (observer->sender);
  nc_center_unref (observer->center);
  g_free (observer);
}

static inline NcObserver *
observer_ref (NcObserver *observer)
{
  nc_ref_inc (&observer->ref);
  return observer;
}

static void
observer_unref (NcObserver *observer)
{
  if (nc_ref_dec (&observer->ref))
    observer_free (observer);
}

/* ----------------------------------------------------------------------- */
/* Observer arrays */

static ObsList *
obs_list_alloc (guint len)
{
  ObsList *list = g_malloc (sizeof (ObsList) + len * sizeof (NcObserver *));

  nc_ref_init (&list->ref);
  list->len = len;
  return list;
}

static inline void
obs_list_ref (ObsList *list)
{
  nc_ref_inc (&list->ref);
}

static void
obs_list_unref (gpointer data)
{
  ObsList *list = data;

  if (list != NULL && nc_ref_dec (&list->ref))
    {
      for (guint i = 0; i < list->len; i++)
        observer_unref (list->items[i]);
      g_free (list);
    }
}

/* A new array: @list (nullable) with @observer appended. */
static ObsList *
obs_list_append (ObsList    *list,
                 NcObserver *observer)
{
  guint len = list != NULL ? list->len : 0;
  ObsList *copy = obs_list_alloc (len + 1);

  for (guint i = 0; i < len; i++)
    copy->items[i] = observer_ref (list->items[i]);
  copy->items[len] = observer_ref (observer);
  return copy;
}

/* A new array: @list without the observers that are marked removed, or
 * %NULL if none is left. */
static ObsList *
obs_list_without_removed (ObsList *list)
{
  guint kept = 0, j = 0;
  ObsList *copy;

  for (guint i = 0; i < list->len; i++)
    if (!g_atomic_int_get (&list->items[i]->removed))
      kept++;
  if (kept == 0)
    return NULL;

  copy = obs_list_alloc (kept);
  for (guint i = 0; i < list->len; i++)
    if (!g_atomic_int_get (&list->items[i]->removed))
      copy->items[j++] = observer_ref (list->items[i]);
  return copy;
}

/* ----------------------------------------------------------------------- */
/* Centers */

static void
center_free (NcCenter *center)
{
  /* Every observer holds a reference on its center, so none is left. */
  g_assert (center->any_name == NULL);
  g_assert (g_hash_table_size (center->by_name) == 0);
  g_hash_table_unref (center->by_name);
  nc_mutex_clear (&center->lock);
  g_free (center);
}

/**
 * nc_center_new:
 *
 * Makes a private notification center, independent of the default one.
 *
 * Thread: any.
 *
 * Returns: (transfer full): the new center.
 */
NcCenter *
nc_center_new (void)
{
  NcCenter *center = g_new0 (NcCenter, 1);

  nc_ref_init (&center->ref);
  nc_mutex_init (&center->lock);
  center->by_name = g_hash_table_new (g_direct_hash, g_direct_equal);
  center->next_seq = 1;
  return center;
}

/**
 * nc_center_get_default:
 *
 * The process's default center, made on first use and never freed
 * (NSNotificationCenter's `defaultCenter`).
 *
 * Thread: any.
 *
 * Returns: (transfer none): the default center.
 */
NcCenter *
nc_center_get_default (void)
{
  static NcCenter *default_center;

  if (g_once_init_enter (&default_center))
    g_once_init_leave (&default_center, nc_center_new ());
  return default_center;
}

/**
 * nc_center_ref:
 * @center: a center.
 *
 * Thread: any.
 *
 * Returns: (transfer full): @center.
 */
NcCenter *
nc_center_ref (NcCenter *center)
{
  g_return_val_if_fail (center != NULL, NULL);

  nc_ref_inc (&center->ref);
  return center;
}

/**
 * nc_center_unref:
 * @center: (nullable) (transfer full): a center.
 *
 * Drops a reference; %NULL is ignored.  Each observer keeps its center alive
 * until it is removed, so a center is freed once it has no references and no
 * observers.
 *
 * Thread: any.
 */
void
nc_center_unref (NcCenter *center)
{
  if (center != NULL && nc_ref_dec (&center->ref))
    center_free (center);
}

static NcObserver *
center_add (NcCenter       *center,
            const gchar    *name,
            const gchar    *sender,
            GMainContext   *context,
            NcObserverFunc  func,
            gpointer        user_data,
            GDestroyNotify  destroy)
{
  NcObserver *observer = g_new0 (NcObserver, 1);

  nc_ref_init (&observer->ref);  /* the handle's */
  ObsList *old;

  observer->center = nc_center_ref (center);
  observer->name = name != NULL ? g_quark_from_string (name) : 0;
  observer->sender = g_strdup (sender);
  observer->func = func;
  observer->user_data = user_data;
  observer->destroy = destroy;
  observer->context = context != NULL ? g_main_context_ref (context) : NULL;

  nc_mutex_lock (&center->lock);
  observer->seq = center->next_seq++;
  if (observer->name != 0)
    {
      gpointer key = GUINT_TO_POINTER (observer->name);

      old = g_hash_table_lookup (center->by_name, key);
      g_hash_table_insert (center->by_name, key, obs_list_append (old, observer));
    }
  else
    {
      old = center->any_name;
      center->any_name = obs_list_append (old, observer);
    }
  nc_mutex_unlock (&center->lock);

  obs_list_unref (old);
  return observer;
}

/**
 * nc_center_add_observer:
 * @center: a center.
 * @name: (nullable): the notification name to observe, or %NULL for every
 *   name.
 * @sender: (nullable): the sender to observe, or %NULL for every sender
 *   (including none).
 * @func: (scope notified): called for each matching notification, on the
 *   posting thread, synchronously, before nc_center_post() returns.
 * @user_data: (closure): passed to @func.
 * @destroy: (nullable): called on @user_data once the observer is removed
 *   and no call to @func is in progress or can start.  It runs on the
 *   thread that removes the observer, or, if a post on another thread is
 *   calling @func at that moment, on that thread when @func returns.
 *
 * Adds a direct observer.  Observers are called in the order they were
 * added; adding the same @func and @user_data twice makes two observers,
 * each called once per post.
 *
 * The observer stays until nc_observer_release() (or
 * nc_center_remove_observer(), or nc_center_remove_observers_for_data())
 * removes it.  A post already running when this returns does not call it;
 * a post that starts after it returns, on any thread, does.
 *
 * Thread: any, including from inside a callback.
 *
 * Returns: (transfer full): the handle.  Release it with
 *   nc_observer_release(), which removes the observer.
 */
NcObserver *
nc_center_add_observer (NcCenter       *center,
                        const gchar    *name,
                        const gchar    *sender,
                        NcObserverFunc  func,
                        gpointer        user_data,
                        GDestroyNotify  destroy)
{
  g_return_val_if_fail (center != NULL, NULL);
  g_return_val_if_fail (name == NULL || *name != '\0', NULL);
  g_return_val_if_fail (func != NULL, NULL);

  return center_add (center, name, sender, NULL, func, user_data, destroy);
}

/**
 * nc_center_add_observer_on_context:
 * @center: a center.
 * @name: (nullable): the notification name to observe, or %NULL for every
 *   name.
 * @sender: (nullable): the sender to observe, or %NULL for every sender.
 * @context: (nullable): where @func runs; %NULL for the calling thread's
 *   thread-default context (g_main_context_ref_thread_default()).
 * @func: (scope notified): called for each matching notification, from
 *   @context.
 * @user_data: (closure): passed to @func.
 * @destroy: (nullable): called on @user_data from @context once the
 *   observer is removed and every delivery queued for it has run or been
 *   dropped (immediately if the thread dropping the last reference owns
 *   @context, otherwise from an idle source on @context).
 *
 * Adds an observer whose callback runs on @context instead of the posting
 * thread.  A post queues one delivery per matching observer at
 * %G_PRIORITY_DEFAULT and returns without waiting, even when the posting
 * thread owns @context.  Deliveries to one context run in the order they
 * were posted.  A delivery still queued when the observer is removed is
 * dropped.
 *
 * Thread: any.
 *
 * Returns: (transfer full): the handle.  Release it with
 *   nc_observer_release(), which removes the observer.
 */
NcObserver *
nc_center_add_observer_on_context (NcCenter       *center,
                                   const gchar    *name,
                                   const gchar    *sender,
                                   GMainContext   *context,
                                   NcObserverFunc  func,
                                   gpointer        user_data,
                                   GDestroyNotify  destroy)
{
  g_autoptr(GMainContext) ctx = NULL;

  g_return_val_if_fail (center != NULL, NULL);
  g_return_val_if_fail (name == NULL || *name != '\0', NULL);
  g_return_val_if_fail (func != NULL, NULL);

  ctx = context != NULL ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
  return center_add (center, name, sender, ctx, func, user_data, destroy);
}

/* Drops the removed observers from the array they live in.  Called with
 * @lock held; the old array is appended to @garbage, to be released
 * after unlocking. */
static void
center_prune_locked (NcCenter  *center,
                     GQuark     name,
                     GPtrArray *garbage)
{
  if (name != 0)
    {
      gpointer key = GUINT_TO_POINTER (name);
      ObsList *old = g_hash_table_lookup (center->by_name, key);
      ObsList *pruned = obs_list_without_removed (old);

      if (pruned != NULL)
        g_hash_table_insert (center->by_name, key, pruned);
      else
        g_hash_table_remove (center->by_name, key);
      g_ptr_array_add (garbage, old);
    }
  else
    {
      g_ptr_array_add (garbage, center->any_name);
      center->any_name = obs_list_without_removed (center->any_name);
    }
}

/**
 * nc_center_remove_observer:
 * @center: the center @observer was added to.
 * @observer: an observer handle.
 *
 * Removes the observer without releasing the handle (release it later with
 * nc_observer_release()).  Once this returns, no post on this thread calls
 * the observer again, including a post further up the stack that has not
 * reached it yet, and no post that starts afterwards on any thread does.  A
 * call already running on another thread finishes; the destroy-notify runs
 * after it.  Removing an observer twice does nothing.
 *
 * Thread: any, including from inside a callback (also the observer's own).
 *
 * Returns: %TRUE if the observer was registered until now.
 */
gboolean
nc_center_remove_observer (NcCenter   *center,
                           NcObserver *observer)
{
  g_autoptr(GPtrArray) garbage = NULL;

  g_return_val_if_fail (center != NULL, FALSE);
  g_return_val_if_fail (observer != NULL, FALSE);
  g_return_val_if_fail (observer->center == center, FALSE);

  nc_mutex_lock (&center->lock);
  if (g_atomic_int_get (&observer->removed))
    {
      nc_mutex_unlock (&center->lock);
      return FALSE;
    }
  garbage = g_ptr_array_new_with_free_func (obs_list_unref);
  g_atomic_int_set (&observer->removed, 1);
  center_prune_locked (center, observer->name, garbage);
  nc_mutex_unlock (&center->lock);

  return TRUE;  /* @garbage is released here, unlocked */
}

/**
 * nc_center_remove_observers_for_data:
 * @center: a center.
 * @user_data: the user data the observers were added with.
 *
 * Removes every observer of @center whose user data is @user_data, as
 * `-[NSNotificationCenter removeObserver:]` does for an object.  The same
 * guarantees as nc_center_remove_observer() apply to each.  Their handles
 * stay valid and must still be released.
 *
 * Thread: any, including from inside a callback.
 *
 * Returns: how many observers were removed.
 */
guint
nc_center_remove_observers_for_data (NcCenter *center,
                                     gpointer  user_data)
{
  g_autoptr(GPtrArray) garbage = g_ptr_array_new_with_free_func (obs_list_unref);
  g_autoptr(GArray) names = g_array_new (FALSE, FALSE, sizeof (GQuark));
  GHashTableIter iter;
  gpointer key, value;
  guint removed = 0;
  gboolean any_name = FALSE;

  g_return_val_if_fail (center != NULL, 0);

  nc_mutex_lock (&center->lock);
  g_hash_table_iter_init (&iter, center->by_name);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      ObsList *list = value;
      gboolean hit = FALSE;

      for (guint i = 0; i < list->len; i++)
        if (list->items[i]->user_data == user_data)
          {
            g_atomic_int_set (&list->items[i]->removed, 1);
            removed++;
            hit = TRUE;
          }
      if (hit)
        {
          GQuark q = GPOINTER_TO_UINT (key);
          g_array_append_val (names, q);
        }
    }
  if (center->any_name != NULL)
    for (guint i = 0; i < center->any_name->len; i++)
      if (center->any_name->items[i]->user_data == user_data)
        {
          g_atomic_int_set (&center->any_name->items[i]->removed, 1);
          removed++;
          any_name = TRUE;
        }

  for (guint i = 0; i < names->len; i++)
    center_prune_locked (center, g_array_index (names, GQuark, i), garbage);
  if (any_name)
    center_prune_locked (center, 0, garbage);
  nc_mutex_unlock (&center->lock);

  return removed;
}

typedef struct {
  NcObserver *observer;
  NcNotification *notification;
  gint published;   /* (atomic) see DeferredDestroy */
} Delivery;

static gboolean
delivery_dispatch (gpointer data)
{
  Delivery *d = data;
  NcObserver *observer;

  g_assert (g_atomic_int_get (&d->published));
  observer = d->observer;

  if (!g_atomic_int_get (&observer->removed))
    observer->func (observer->center, d->notification, observer->user_data);
  return G_SOURCE_REMOVE;
}

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  g_assert (g_atomic_int_get (&d->published));
  nc_notification_unref (d->notification);
  observer_unref (d->observer);
  g_free (d);
}

static void
deliver_on_context (NcObserver     *observer,
                    NcNotification *notification)
{
  Delivery *d = g_new (Delivery, 1);
  GSource *source = g_idle_source_new ();

  d->observer = observer_ref (observer);
  d->notification = nc_notification_ref (notification);
  g_atomic_int_set (&d->published, 1);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[porter] NcCenter delivery");
  g_source_set_callback (source, delivery_dispatch, d, delivery_free);
  g_source_attach (source, observer->context);
  g_source_unref (source);
}

static inline void
deliver (NcCenter       *center,
         NcObserver     *observer,
         NcNotification *notification)
{
  if (g_atomic_int_get (&observer->removed))
    return;
  if (observer->sender != NULL &&
      (notification->sender == NULL || strcmp (observer->sender, notification->sender) != 0))
    return;
  if (G_LIKELY (observer->context == NULL))
    observer->func (center, notification, observer->user_data);
  else
    deliver_on_context (observer, notification);
}

/**
 * nc_center_post:
 * @center: a center.
 * @notification: the notification.
 *
 * Posts @notification to every observer of @center whose name and sender
 * match it.  Direct observers are called here, on this thread, one after
 * another in the order they were added, before this returns; context
 * observers get a delivery queued on their context.  The set of observers
 * is taken when the post starts: observers added meanwhile (by a callback
 * or another thread) do not get this notification, and observers removed
 * before their turn are skipped.  No lock is held while callbacks run, so
 * they may post (recursively), add and remove observers.
 *
 * Thread: any.
 */
void
nc_center_post (NcCenter       *center,
                NcNotification *notification)
{
  ObsList *named = NULL, *any;
  GQuark name;

  g_return_if_fail (center != NULL);
  g_return_if_fail (notification != NULL);

  name = nc_notification_get_name_quark (notification);

  nc_mutex_lock (&center->lock);
  if (name != 0)
    named = g_hash_table_lookup (center->by_name, GUINT_TO_POINTER (name));
  if (named != NULL)
    obs_list_ref (named);
  any = center->any_name;
  if (any != NULL)
    obs_list_ref (any);
  nc_mutex_unlock (&center->lock);

  if (any == NULL)
    {
      if (named == NULL)
        return;
      for (guint i = 0; i < named->len; i++)
        deliver (center, named->items[i], notification);
    }
  else if (named == NULL)
    {
      for (guint i = 0; i < any->len; i++)
        deliver (center, any->items[i], notification);
    }
  else
    {
      /* Merge by registration number to keep registration order. */
      guint i = 0, j = 0;

      while (i < named->len || j < any->len)
        {
          NcObserver *observer;

          if (j >= any->len || (i < named->len && named->items[i]->seq < any->items[j]->seq))
            observer = named->items[i++];
          else
            observer = any->items[j++];
          deliver (center, observer, notification);
        }
    }

  obs_list_unref (named);
  obs_list_unref (any);
}

/**
 * nc_center_post_name:
 * @center: a center.
 * @name: the notification's name; not empty.
 * @sender: (nullable): its sender.
 * @user_info: (nullable): its user info, an `a{sv}`; a floating reference
 *   is sunk.
 *
 * Makes a notification with nc_notification_new() and posts it with
 * nc_center_post().
 *
 * Thread: any.
 */
void
nc_center_post_name (NcCenter    *center,
                     const gchar *name,
                     const gchar *sender,
                     GVariant    *user_info)
{
  g_autoptr(NcNotification) notification = NULL;

  g_return_if_fail (center != NULL);
  g_return_if_fail (name != NULL && *name != '\0');

  notification = nc_notification_new (name, sender, user_info);
  nc_center_post (center, notification);
}

/**
 * nc_observer_is_active:
 * @observer: an observer handle.
 *
 * Thread: any.
 *
 * Returns: %TRUE if the observer has not been removed.
 */
gboolean
nc_observer_is_active (NcObserver *observer)
{
  g_return_val_if_fail (observer != NULL, FALSE);

  return !g_atomic_int_get (&observer->removed);
}

/**
 * nc_observer_release:
 * @observer: (nullable) (transfer full): an observer handle.
 *
 * Removes the observer, as nc_center_remove_observer() does, and releases
 * the handle, which must not be used again.  %NULL is ignored.  This is the
 * cleanup function for `g_autoptr(NcObserver)`.
 *
 * Thread: any, including from inside a callback (also the observer's own:
 * the observer stays valid until its callback returns).
 */
void
nc_observer_release (NcObserver *observer)
{
  if (observer == NULL)
    return;

  nc_center_remove_observer (observer->center, observer);
  observer_unref (observer);
}
