/* Porter — libnotecenter: the notification queue (NSNotificationQueue).
 *
 * Two FIFOs of pending notifications, one per deferred posting style, each
 * drained by an idle source on the queue's context while it is not empty.
 * A source posts only the entries that were queued when its dispatch began
 * (by serial number), so a notification enqueued by an observer goes out in
 * a later iteration and a callback that keeps re-enqueueing cannot starve
 * the context.
 *
 * Locking: @lock is taken before a GMainContext's lock (g_source_attach()
 * under it) and never held while a notification is posted or freed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "nc-notification-private.h"
#include "nc-private.h"

enum { STYLE_ASAP, STYLE_IDLE, N_STYLES };

typedef struct {
  NcNotification *notification;
  guint64 serial;
} Entry;

/**
 * NcQueue:
 *
 * A notification queue attached to a center and a #GMainContext.  All its
 * functions may be called from any thread; deferred notifications are
 * posted from the context, so their direct observers run on the thread
 * iterating it.
 */
struct _NcQueue {
  NcRef ref;
  NcCenter *center;            /* strong; immutable */
  GMainContext *context;       /* strong; immutable */
  NcMutex lock;
  GQueue pending[N_STYLES];    /* Entry; protected by @lock */
  GSource *source[N_STYLES];   /* (nullable) (owned) attached while
                                * pending[i] may be non-empty; each holds
                                * a reference on the queue; protected by
                                * @lock */
  guint64 next_serial;         /* protected by @lock */
  gint published;              /* (atomic) set once constructed: the context
                                * thread reads it before touching the queue,
                                * stating the hand-off for ThreadSanitizer
                                * (see nc-private.h) */
};

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  nc_notification_unref (entry->notification);
  g_free (entry);
}

static void
queue_free (NcQueue *queue)
{
  /* Normally empty: pending entries imply an attached source, which holds
   * a reference.  Not so if the context was freed under us. */
  for (guint i = 0; i < N_STYLES; i++)
    {
      g_queue_clear_full (&queue->pending[i], entry_free);
      g_clear_pointer (&queue->source[i], g_source_unref);
    }
  nc_mutex_clear (&queue->lock);
  g_main_context_unref (queue->context);
  nc_center_unref (queue->center);
  g_free (queue);
}

/**
 * nc_queue_new:
 * @center: (nullable): the center to post to; %NULL for
 *   nc_center_get_default().
 * @context: (nullable): the context deferred notifications are posted from;
 *   %NULL for the calling thread's thread-default context.
 *
 * Makes a notification queue.  Notifications still queued when the last
 * reference is dropped are still posted (the queue stays alive until
 * then); call nc_queue_clear() first to drop them.
 *
 * Thread: any.
 *
 * Returns: (transfer full): the new queue.
 */
NcQueue *
nc_queue_new (NcCenter     *center,
              GMainContext *context)
{
  NcQueue *queue = g_new0 (NcQueue, 1);

  nc_ref_init (&queue->ref);

  queue->center = nc_center_ref (center != NULL ? center : nc_center_get_default ());
  queue->context = context != NULL ? g_main_context_ref (context)
                                   : g_main_context_ref_thread_default ();
  nc_mutex_init (&queue->lock);
  for (guint i = 0; i < N_STYLES; i++)
    g_queue_init (&queue->pending[i]);
  g_atomic_int_set (&queue->published, 1);
  return queue;
}

/**
 * nc_queue_ref:
 * @queue: a queue.
 *
 * Thread: any.
 *
 * Returns: (transfer full): @queue.
 */
NcQueue *
nc_queue_ref (NcQueue *queue)
{
  g_return_val_if_fail (queue != NULL, NULL);

  nc_ref_inc (&queue->ref);
  return queue;
}

/**
 * nc_queue_unref:
 * @queue: (nullable) (transfer full): a queue.
 *
 * Drops a reference; %NULL is ignored.
 *
 * Thread: any.
 */
void
nc_queue_unref (NcQueue *queue)
{
  if (queue != NULL && nc_ref_dec (&queue->ref))
    queue_free (queue);
}

/**
 * nc_queue_get_center:
 * @queue: a queue.
 *
 * Thread: any.
 *
 * Returns: (transfer none): the center @queue posts to.
 */
NcCenter *
nc_queue_get_center (NcQueue *queue)
{
  g_return_val_if_fail (queue != NULL, NULL);

  return queue->center;
}

/**
 * nc_queue_get_context:
 * @queue: a queue.
 *
 * Thread: any.
 *
 * Returns: (transfer none): the context @queue posts from.
 */
GMainContext *
nc_queue_get_context (NcQueue *queue)
{
  g_return_val_if_fail (queue != NULL, NULL);

  return queue->context;
}

static gboolean
entry_matches (NcNotification  *queued,
               NcNotification  *match,
               NcCoalesceFlags  mask)
{
  if (mask == NC_COALESCE_NONE)
    return queued == match;
  if ((mask & NC_COALESCE_ON_NAME) && strcmp (queued->name, match->name) != 0)
    return FALSE;
  if ((mask & NC_COALESCE_ON_SENDER) && g_strcmp0 (queued->sender, match->sender) != 0)
    return FALSE;
  return TRUE;
}

/* Moves the entries matching @match from both FIFOs to @removed. */
static guint
queue_remove_matching_locked (NcQueue         *queue,
                              NcNotification  *match,
                              NcCoalesceFlags  mask,
                              GQueue          *removed)
{
  guint count = 0;

  for (guint i = 0; i < N_STYLES; i++)
    {
      GList *l = queue->pending[i].head;

      while (l != NULL)
        {
          GList *next = l->next;
          Entry *entry = l->data;

          if (entry_matches (entry->notification, match, mask))
            {
              g_queue_unlink (&queue->pending[i], l);
              g_queue_push_tail_link (removed, l);
              count++;
            }
          l = next;
        }
    }
  return count;
}

static gboolean
queue_dispatch (NcQueue *queue,
                guint    style)
{
  GSource *self = g_main_current_source ();
  guint64 end;

  g_assert (g_atomic_int_get (&queue->published));
  nc_mutex_lock (&queue->lock);
  end = queue->next_serial;
  nc_mutex_unlock (&queue->lock);

  for (;;)
    {
      GSource *stale = NULL;
      gboolean ret;
      Entry *entry;

      nc_mutex_lock (&queue->lock);
      if (queue->source[style] != self)
        {
          /* nc_queue_clear() detached us. */
          nc_mutex_unlock (&queue->lock);
          return G_SOURCE_REMOVE;
        }
      entry = g_queue_peek_head (&queue->pending[style]);
      if (entry == NULL || entry->serial >= end)
        {
          if (entry == NULL)
            {
              stale = g_steal_pointer (&queue->source[style]);
              ret = G_SOURCE_REMOVE;
            }
          else
            {
              ret = G_SOURCE_CONTINUE;  /* the rest next iteration */
            }
          nc_mutex_unlock (&queue->lock);
          g_clear_pointer (&stale, g_source_unref);
          return ret;
        }
      g_queue_pop_head (&queue->pending[style]);
      nc_mutex_unlock (&queue->lock);

      nc_center_post (queue->center, entry->notification);
      entry_free (entry);
    }
}

static gboolean
queue_dispatch_asap (gpointer data)
{
  return queue_dispatch (data, STYLE_ASAP);
}

static gboolean
queue_dispatch_idle (gpointer data)
{
  return queue_dispatch (data, STYLE_IDLE);
}

static void
unref_queue_cb (gpointer data)
{
  nc_queue_unref (data);
}

/**
 * nc_queue_enqueue:
 * @queue: a queue.
 * @notification: the notification; the queue takes its own reference.
 * @style: when to post it.
 * @coalesce: which queued notifications it replaces.
 *
 * Queues @notification (or, with %NC_POSTING_STYLE_NOW, posts it before
 * returning).  First, unless @coalesce is %NC_COALESCE_NONE, every queued
 * notification of either deferred style that matches @notification under
 * @coalesce is removed without being posted; then @notification goes at the
 * tail of its style's queue, so the latest of a burst wins and is posted in
 * the position of the last enqueue.
 *
 * Deferred notifications of one style are posted in the order they were
 * queued, from @queue's context: as-soon-as-possible ones at the next
 * iteration of the context, at %G_PRIORITY_DEFAULT; when-idle ones at
 * %G_PRIORITY_DEFAULT_IDLE, after every more urgent source.  A
 * notification enqueued while the queue is posting goes out in a later
 * iteration.
 *
 * Thread: any.  Direct observers of deferred notifications run on the
 * thread iterating the queue's context.
 */
void
nc_queue_enqueue (NcQueue         *queue,
                  NcNotification  *notification,
                  NcPostingStyle   style,
                  NcCoalesceFlags  coalesce)
{
  GQueue removed = G_QUEUE_INIT;
  Entry *entry;
  guint i;

  g_return_if_fail (queue != NULL);
  g_return_if_fail (notification != NULL);
  g_return_if_fail (style <= NC_POSTING_STYLE_WHEN_IDLE);
  g_return_if_fail ((coalesce & ~(NC_COALESCE_ON_NAME | NC_COALESCE_ON_SENDER)) == 0);

  nc_mutex_lock (&queue->lock);
  if (coalesce != NC_COALESCE_NONE)
    queue_remove_matching_locked (queue, notification, coalesce, &removed);

  if (style == NC_POSTING_STYLE_NOW)
    {
      nc_mutex_unlock (&queue->lock);
      g_queue_clear_full (&removed, entry_free);
      nc_center_post (queue->center, notification);
      return;
    }

  i = style == NC_POSTING_STYLE_ASAP ? STYLE_ASAP : STYLE_IDLE;
  entry = g_new (Entry, 1);
  entry->notification = nc_notification_ref (notification);
  entry->serial = queue->next_serial++;
  g_queue_push_tail (&queue->pending[i], entry);

  if (queue->source[i] == NULL)
    {
      GSource *source = g_idle_source_new ();

      if (i == STYLE_ASAP)
        {
          g_source_set_priority (source, G_PRIORITY_DEFAULT);
          g_source_set_static_name (source, "[porter] NcQueue ASAP");
          g_source_set_callback (source, queue_dispatch_asap,
                                 nc_queue_ref (queue), unref_queue_cb);
        }
      else
        {
          g_source_set_priority (source, G_PRIORITY_DEFAULT_IDLE);
          g_source_set_static_name (source, "[porter] NcQueue idle");
          g_source_set_callback (source, queue_dispatch_idle,
                                 nc_queue_ref (queue), unref_queue_cb);
        }
      queue->source[i] = source;
      g_source_attach (source, queue->context);
    }
  nc_mutex_unlock (&queue->lock);

  g_queue_clear_full (&removed, entry_free);
}

/**
 * nc_queue_dequeue:
 * @queue: a queue.
 * @match: a notification to compare the queued ones with.
 * @mask: how to compare: by name, by sender, by both, or with
 *   %NC_COALESCE_NONE only @match itself (the same object).
 *
 * Removes the queued notifications that match @match, of both deferred
 * styles, without posting them.
 *
 * Thread: any.
 *
 * Returns: how many were removed.
 */
guint
nc_queue_dequeue (NcQueue         *queue,
                  NcNotification  *match,
                  NcCoalesceFlags  mask)
{
  GQueue removed = G_QUEUE_INIT;
  guint count;

  g_return_val_if_fail (queue != NULL, 0);
  g_return_val_if_fail (match != NULL, 0);
  g_return_val_if_fail ((mask & ~(NC_COALESCE_ON_NAME | NC_COALESCE_ON_SENDER)) == 0, 0);

  nc_mutex_lock (&queue->lock);
  count = queue_remove_matching_locked (queue, match, mask, &removed);
  nc_mutex_unlock (&queue->lock);

  g_queue_clear_full (&removed, entry_free);
  return count;
}

/**
 * nc_queue_get_length:
 * @queue: a queue.
 *
 * Thread: any.
 *
 * Returns: how many notifications are waiting to be posted.
 */
guint
nc_queue_get_length (NcQueue *queue)
{
  guint length = 0;

  g_return_val_if_fail (queue != NULL, 0);

  nc_mutex_lock (&queue->lock);
  for (guint i = 0; i < N_STYLES; i++)
    length += queue->pending[i].length;
  nc_mutex_unlock (&queue->lock);
  return length;
}

/**
 * nc_queue_clear:
 * @queue: a queue.
 *
 * Drops every queued notification without posting it and detaches the
 * queue's sources from its context (so the context no longer keeps the
 * queue alive).
 *
 * Thread: any.
 */
void
nc_queue_clear (NcQueue *queue)
{
  GQueue removed = G_QUEUE_INIT;
  GSource *sources[N_STYLES];

  g_return_if_fail (queue != NULL);

  nc_mutex_lock (&queue->lock);
  for (guint i = 0; i < N_STYLES; i++)
    {
      GList *l;

      while ((l = g_queue_pop_head_link (&queue->pending[i])) != NULL)
        g_queue_push_tail_link (&removed, l);
      sources[i] = g_steal_pointer (&queue->source[i]);
    }
  nc_mutex_unlock (&queue->lock);

  for (guint i = 0; i < N_STYLES; i++)
    if (sources[i] != NULL)
      {
        g_source_destroy (sources[i]);
        g_source_unref (sources[i]);
      }
  g_queue_clear_full (&removed, entry_free);
}
