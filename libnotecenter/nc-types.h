/* Porter — libnotecenter: basic types and the export macro.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(NC_INSIDE) && !defined(NC_COMPILATION)
#error "Only <libnotecenter/nc.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

#define NC_API __attribute__((visibility ("default"))) extern

typedef struct _NcNotification NcNotification;
typedef struct _NcCenter NcCenter;
typedef struct _NcObserver NcObserver;
typedef struct _NcQueue NcQueue;

/**
 * NcObserverFunc:
 * @center: the center the notification was posted to (borrowed).
 * @notification: the notification (borrowed; take a reference with
 *   nc_notification_ref() to keep it past the call).
 * @user_data: as given when the observer was added.
 *
 * Called once for each posted notification that matches an observer.
 * Direct observers are called on the posting thread, context observers on
 * the #GMainContext they were added with.  The callback may post, add
 * observers and remove observers (itself included) on any center.
 */
typedef void (*NcObserverFunc) (NcCenter       *center,
                                NcNotification *notification,
                                gpointer        user_data);

G_END_DECLS
