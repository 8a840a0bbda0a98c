/* Porter — libnotecenter: the in-process notification center.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(NC_INSIDE) && !defined(NC_COMPILATION)
#error "Only <libnotecenter/nc.h> can be included directly."
#endif

#include <libnotecenter/nc-types.h>

G_BEGIN_DECLS

NC_API NcCenter *nc_center_new (void);
NC_API NcCenter *nc_center_get_default (void);
NC_API NcCenter *nc_center_ref (NcCenter *center);
NC_API void nc_center_unref (NcCenter *center);

NC_API NcObserver *nc_center_add_observer (NcCenter       *center,
                                           const gchar    *name,
                                           const gchar    *sender,
                                           NcObserverFunc  func,
                                           gpointer        user_data,
                                           GDestroyNotify  destroy) G_GNUC_WARN_UNUSED_RESULT;
NC_API NcObserver *nc_center_add_observer_on_context (NcCenter       *center,
                                                      const gchar    *name,
                                                      const gchar    *sender,
                                                      GMainContext   *context,
                                                      NcObserverFunc  func,
                                                      gpointer        user_data,
                                                      GDestroyNotify  destroy) G_GNUC_WARN_UNUSED_RESULT;
NC_API gboolean nc_center_remove_observer (NcCenter   *center,
                                           NcObserver *observer);
NC_API guint nc_center_remove_observers_for_data (NcCenter *center,
                                                  gpointer  user_data);
NC_API void nc_center_post (NcCenter       *center,
                            NcNotification *notification);
NC_API void nc_center_post_name (NcCenter    *center,
                                 const gchar *name,
                                 const gchar *sender,
                                 GVariant    *user_info);

NC_API gboolean nc_observer_is_active (NcObserver *observer);
NC_API void nc_observer_release (NcObserver *observer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NcCenter, nc_center_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NcObserver, nc_observer_release)

G_END_DECLS
