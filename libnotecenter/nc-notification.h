/* Porter — libnotecenter: notifications.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(NC_INSIDE) && !defined(NC_COMPILATION)
#error "Only <libnotecenter/nc.h> can be included directly."
#endif

#include <libnotecenter/nc-types.h>

G_BEGIN_DECLS

NC_API NcNotification *nc_notification_new (const gchar *name,
                                            const gchar *sender,
                                            GVariant    *user_info);
NC_API NcNotification *nc_notification_new_with_info (const gchar *name,
                                                      const gchar *sender,
                                                      ...) G_GNUC_NULL_TERMINATED;
NC_API NcNotification *nc_notification_ref (NcNotification *notification);
NC_API void nc_notification_unref (NcNotification *notification);
NC_API const gchar *nc_notification_get_name (NcNotification *notification);
NC_API const gchar *nc_notification_get_sender (NcNotification *notification);
NC_API GVariant *nc_notification_get_user_info (NcNotification *notification);
NC_API GVariant *nc_notification_lookup_value (NcNotification     *notification,
                                               const gchar        *key,
                                               const GVariantType *expected_type);
NC_API gboolean nc_notification_lookup (NcNotification *notification,
                                        const gchar    *key,
                                        const gchar    *format_string,
                                        ...);
NC_API gboolean nc_notification_equal (NcNotification *a,
                                       NcNotification *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NcNotification, nc_notification_unref)

G_END_DECLS
