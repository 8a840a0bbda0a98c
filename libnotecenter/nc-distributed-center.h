/* Porter — libnotecenter: the distributed notification center
 * (NSDistributedNotificationCenter).  See nc.h, DISTRIBUTED CENTER.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(NC_INSIDE) && !defined(NC_COMPILATION)
#error "Only <libnotecenter/nc.h> can be included directly."
#endif

#include <libnotecenter/nc-types.h>

G_BEGIN_DECLS

typedef struct _NcDistributedCenter NcDistributedCenter;
typedef struct _NcDistributedObserver NcDistributedObserver;

/**
 * NcSuspensionBehavior:
 * @NC_SUSPENSION_DROP: while the process is suspended, the observer's
 *   notifications are dropped (the daemon does not send them).
 * @NC_SUSPENSION_COALESCE: the daemon keeps only the latest one for the
 *   observer, delivered on resume.
 * @NC_SUSPENSION_HOLD: the daemon keeps them all (up to its queue limit)
 *   and delivers them, in order, on resume.
 * @NC_SUSPENSION_DELIVER_IMMEDIATELY: delivered as if the process were not
 *   suspended.
 *
 * What an observer gets while its process is suspended
 * (nc_distributed_center_set_suspended()).  The values are Apple's.  The
 * same behaviour applies when the process does not keep up: past half the
 * daemon's per-process queue, DROP observers lose notifications and
 * COALESCE observers get only the latest.
 */
typedef enum {
  NC_SUSPENSION_DROP = 1,
  NC_SUSPENSION_COALESCE = 2,
  NC_SUSPENSION_HOLD = 3,
  NC_SUSPENSION_DELIVER_IMMEDIATELY = 4,
} NcSuspensionBehavior;

/**
 * NcDistributedPostFlags:
 * @NC_DISTRIBUTED_POST_NONE: no flags.
 * @NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY: deliver to suspended processes
 *   too, whatever their observers' behaviour.
 */
typedef enum {
  NC_DISTRIBUTED_POST_NONE = 0,
  NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY = 1 << 0,
} NcDistributedPostFlags;

/**
 * NcDistributedObserverFunc:
 * @center: the center (borrowed).
 * @notification: the notification (borrowed).
 * @user_data: as given to nc_distributed_center_add_observer().
 *
 * Called on the observer's #GMainContext for each notification the daemon
 * delivers to it.  It may post, add and remove observers.
 */
typedef void (*NcDistributedObserverFunc) (NcDistributedCenter *center,
                                           NcNotification      *notification,
                                           gpointer             user_data);

NC_API NcDistributedCenter *nc_distributed_center_get_default (void);
NC_API NcDistributedCenter *nc_distributed_center_new (void);
NC_API NcDistributedCenter *nc_distributed_center_ref (NcDistributedCenter *center);
NC_API void nc_distributed_center_unref (NcDistributedCenter *center);

NC_API gboolean nc_distributed_center_post (NcDistributedCenter     *center,
                                            const gchar             *name,
                                            const gchar             *sender,
                                            GVariant                *user_info,
                                            NcDistributedPostFlags   flags,
                                            GError                 **error);
NC_API NcDistributedObserver *
nc_distributed_center_add_observer (NcDistributedCenter        *center,
                                    const gchar                *name,
                                    const gchar                *sender,
                                    NcSuspensionBehavior        behavior,
                                    GMainContext               *context,
                                    NcDistributedObserverFunc   func,
                                    gpointer                    user_data,
                                    GDestroyNotify              destroy,
                                    GError                    **error);
NC_API gboolean nc_distributed_center_remove_observer (NcDistributedCenter   *center,
                                                       NcDistributedObserver *observer);
NC_API gboolean nc_distributed_center_set_suspended (NcDistributedCenter  *center,
                                                     gboolean              suspended,
                                                     GError              **error);
NC_API gboolean nc_distributed_center_get_suspended (NcDistributedCenter *center);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NcDistributedCenter, nc_distributed_center_unref)

G_END_DECLS
