/* Porter — libnotecenter: notification internals shared by the center and
 * the queue.  Never installed.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libnotecenter/nc.h>

#include "nc-private.h"

G_BEGIN_DECLS

/* Immutable after construction except @name_quark, a cache. */
struct _NcNotification {
  NcRef ref;
  const gchar *name;      /* points into the same allocation */
  const gchar *sender;    /* (nullable) likewise */
  GVariant *user_info;    /* (nullable) a{sv}, owned */
  gint name_quark;        /* (atomic) GQuark of @name, 0 until looked up
                           * and found */
};

/* The GQuark of @notification's name, or 0 if no quark for that name
 * exists yet (then no observer can be registered for it either). */
static inline GQuark
nc_notification_get_name_quark (NcNotification *notification)
{
  GQuark q = (GQuark) g_atomic_int_get (&notification->name_quark);

  if (G_UNLIKELY (q == 0))
    {
      /* Not looked up yet, or not found: observers intern their name with
       * g_quark_from_string(), so a name nobody observes has no quark, and
       * one may have appeared since.  Quarks are never freed, so caching
       * is safe. */
      q = g_quark_try_string (notification->name);
      if (q != 0)
        g_atomic_int_set (&notification->name_quark, (gint) q);
    }
  return q;
}

G_END_DECLS
