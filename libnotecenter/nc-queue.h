/* Porter — libnotecenter: the notification queue.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(NC_INSIDE) && !defined(NC_COMPILATION)
#error "Only <libnotecenter/nc.h> can be included directly."
#endif

#include <libnotecenter/nc-types.h>

G_BEGIN_DECLS

/**
 * NcPostingStyle:
 * @NC_POSTING_STYLE_NOW: post at once, on the calling thread, after
 *   coalescing (NSPostNow).
 * @NC_POSTING_STYLE_ASAP: post from the queue's context at the next
 *   iteration, at %G_PRIORITY_DEFAULT (NSPostASAP).
 * @NC_POSTING_STYLE_WHEN_IDLE: post from the queue's context when it has
 *   nothing more urgent to do, at %G_PRIORITY_DEFAULT_IDLE (NSPostWhenIdle).
 *
 * When an enqueued notification is posted.
 */
typedef enum {
  NC_POSTING_STYLE_NOW,
  NC_POSTING_STYLE_ASAP,
  NC_POSTING_STYLE_WHEN_IDLE,
} NcPostingStyle;

/**
 * NcCoalesceFlags:
 * @NC_COALESCE_NONE: do not coalesce.  As a dequeue mask: match only the
 *   very same #NcNotification object.
 * @NC_COALESCE_ON_NAME: notifications with the same name match.
 * @NC_COALESCE_ON_SENDER: notifications with the same sender (or both
 *   without one) match.
 *
 * Which queued notifications a new one replaces, or a dequeue removes.
 * With both flags, name and sender must both be equal.
 */
typedef enum {
  NC_COALESCE_NONE = 0,
  NC_COALESCE_ON_NAME = 1 << 0,
  NC_COALESCE_ON_SENDER = 1 << 1,
} NcCoalesceFlags;

NC_API NcQueue *nc_queue_new (NcCenter     *center,
                              GMainContext *context);
NC_API NcQueue *nc_queue_ref (NcQueue *queue);
NC_API void nc_queue_unref (NcQueue *queue);
NC_API NcCenter *nc_queue_get_center (NcQueue *queue);
NC_API GMainContext *nc_queue_get_context (NcQueue *queue);
NC_API void nc_queue_enqueue (NcQueue         *queue,
                              NcNotification  *notification,
                              NcPostingStyle   style,
                              NcCoalesceFlags  coalesce);
NC_API guint nc_queue_dequeue (NcQueue         *queue,
                               NcNotification  *match,
                               NcCoalesceFlags  mask);
NC_API guint nc_queue_get_length (NcQueue *queue);
NC_API void nc_queue_clear (NcQueue *queue);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NcQueue, nc_queue_unref)

G_END_DECLS
