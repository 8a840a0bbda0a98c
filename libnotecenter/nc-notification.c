/* Porter — libnotecenter: notifications.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <string.h>

#include "nc-notification-private.h"

/**
 * NcNotification:
 *
 * A named notification: a name, an optional sender and an optional user
 * info dictionary (`a{sv}`), as NSNotification carries.  Immutable and
 * reference counted; a notification may be shared between threads freely.
 */

/**
 * nc_notification_new:
 * @name: the notification's name; not empty.  By convention a reverse-DNS
 *   name such as `org.example.Editor.DidSave`.
 * @sender: (nullable): who sent it, as a string (a bus name, an object
 *   path, any identifier); %NULL for none.
 * @user_info: (nullable): extra data, a `a{sv}` dictionary; a floating
 *   reference is sunk.
 *
 * Makes a notification.  The strings are copied.
 *
 * Thread: any.
 *
 * Returns: (transfer full): the new notification.
 */
NcNotification *
nc_notification_new (const gchar *name,
                     const gchar *sender,
                     GVariant    *user_info)
{
  NcNotification *notification;
  gsize name_len, sender_len;
  gchar *p;

  g_return_val_if_fail (name != NULL && *name != '\0', NULL);
  g_return_val_if_fail (user_info == NULL ||
                        g_variant_is_of_type (user_info, G_VARIANT_TYPE_VARDICT), NULL);

  /* One allocation for the struct and both strings. */
  name_len = strlen (name) + 1;
  sender_len = sender != NULL ? strlen (sender) + 1 : 0;
  notification = g_malloc0 (sizeof (NcNotification) + name_len + sender_len);
  nc_ref_init (&notification->ref);
  p = (gchar *) (notification + 1);
  memcpy (p, name, name_len);
  notification->name = p;
  if (sender != NULL)
    {
      memcpy (p + name_len, sender, sender_len);
      notification->sender = p + name_len;
    }
  if (user_info != NULL)
    notification->user_info = g_variant_ref_sink (user_info);
  /* name_quark: looked up by the first NcCenter post that needs it. */

  return notification;
}

/**
 * nc_notification_new_with_info:
 * @name: the notification's name; not empty.
 * @sender: (nullable): who sent it.
 * @...: user info keys (`const gchar *`) each followed by its value (a
 *   `GVariant *`; a floating reference is sunk), ending with %NULL.
 *
 * Makes a notification whose user info is built from key/value pairs:
 *
 * |[<!-- language="C" -->
 * n = nc_notification_new_with_info ("org.example.DidSave", "editor-1",
 *                                    "path", g_variant_new_string (path),
 *                                    "bytes", g_variant_new_uint64 (size),
 *                                    NULL);
 * ]|
 *
 * With no pairs the user info is %NULL.  A key given twice keeps the last
 * value.
 *
 * Thread: any.
 *
 * Returns: (transfer full): the new notification.
 */
NcNotification *
nc_notification_new_with_info (const gchar *name,
                               const gchar *sender,
                               ...)
{
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);
  const gchar *key;
  va_list ap;

  g_return_val_if_fail (name != NULL && *name != '\0', NULL);

  va_start (ap, sender);
  key = va_arg (ap, const gchar *);
  if (key == NULL)
    {
      va_end (ap);
      return nc_notification_new (name, sender, NULL);
    }
  for (; key != NULL; key = va_arg (ap, const gchar *))
    {
      GVariant *value = va_arg (ap, GVariant *);

      if (value == NULL)
        {
          va_end (ap);
          g_return_val_if_fail (value != NULL, NULL);
        }
      g_variant_dict_insert_value (&dict, key, value);
    }
  va_end (ap);

  return nc_notification_new (name, sender, g_variant_dict_end (&dict));
}

/**
 * nc_notification_ref:
 * @notification: a notification.
 *
 * Thread: any.
 *
 * Returns: (transfer full): @notification.
 */
NcNotification *
nc_notification_ref (NcNotification *notification)
{
  g_return_val_if_fail (notification != NULL, NULL);

  nc_ref_inc (&notification->ref);
  return notification;
}

/**
 * nc_notification_unref:
 * @notification: (nullable) (transfer full): a notification.
 *
 * Drops a reference; %NULL is ignored.
 *
 * Thread: any.
 */
void
nc_notification_unref (NcNotification *notification)
{
  if (notification != NULL && nc_ref_dec (&notification->ref))
    {
      g_clear_pointer (&notification->user_info, g_variant_unref);
      g_free (notification);
    }
}

/**
 * nc_notification_get_name:
 * @notification: a notification.
 *
 * Thread: any.
 *
 * Returns: (transfer none): the name, valid as long as @notification.
 */
const gchar *
nc_notification_get_name (NcNotification *notification)
{
  g_return_val_if_fail (notification != NULL, NULL);

  return notification->name;
}

/**
 * nc_notification_get_sender:
 * @notification: a notification.
 *
 * Thread: any.
 *
 * Returns: (transfer none) (nullable): the sender, valid as long as
 *   @notification.
 */
const gchar *
nc_notification_get_sender (NcNotification *notification)
{
  g_return_val_if_fail (notification != NULL, NULL);

  return notification->sender;
}

/**
 * nc_notification_get_user_info:
 * @notification: a notification.
 *
 * Thread: any.
 *
 * Returns: (transfer none) (nullable): the user info, an `a{sv}`, or %NULL.
 */
GVariant *
nc_notification_get_user_info (NcNotification *notification)
{
  g_return_val_if_fail (notification != NULL, NULL);

  return notification->user_info;
}

/**
 * nc_notification_lookup_value:
 * @notification: a notification.
 * @key: the user info key.
 * @expected_type: (nullable): the type the value must have, or %NULL for
 *   any.
 *
 * Looks a value up in the user info, as g_variant_lookup_value() does.
 *
 * Thread: any.
 *
 * Returns: (transfer full) (nullable): the value, or %NULL if there is no
 *   user info, no such key, or the value has another type.
 */
GVariant *
nc_notification_lookup_value (NcNotification     *notification,
                              const gchar        *key,
                              const GVariantType *expected_type)
{
  g_return_val_if_fail (notification != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  if (notification->user_info == NULL)
    return NULL;
  return g_variant_lookup_value (notification->user_info, key, expected_type);
}

/**
 * nc_notification_lookup:
 * @notification: a notification.
 * @key: the user info key.
 * @format_string: a #GVariant format string for the value.
 * @...: where to store the value, as for g_variant_get().
 *
 * Looks a value up in the user info and unpacks it, as g_variant_lookup()
 * does.
 *
 * Thread: any.
 *
 * Returns: %TRUE if the key was found with a matching type.
 */
gboolean
nc_notification_lookup (NcNotification *notification,
                        const gchar    *key,
                        const gchar    *format_string,
                        ...)
{
  g_autoptr(GVariant) value = NULL;
  va_list ap;

  g_return_val_if_fail (notification != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (format_string != NULL, FALSE);

  if (notification->user_info == NULL)
    return FALSE;

  value = g_variant_lookup_value (notification->user_info, key, NULL);
  if (value == NULL ||
      !g_variant_check_format_string (value, format_string, FALSE))
    return FALSE;

  va_start (ap, format_string);
  g_variant_get_va (value, format_string, NULL, &ap);
  va_end (ap);
  return TRUE;
}

/**
 * nc_notification_equal:
 * @a: a notification.
 * @b: another notification.
 *
 * Compares two notifications by value: name, sender and user info.
 *
 * Thread: any.
 *
 * Returns: %TRUE if they are equal.
 */
gboolean
nc_notification_equal (NcNotification *a,
                       NcNotification *b)
{
  g_return_val_if_fail (a != NULL, FALSE);
  g_return_val_if_fail (b != NULL, FALSE);

  if (a == b)
    return TRUE;
  if (strcmp (a->name, b->name) != 0 || g_strcmp0 (a->sender, b->sender) != 0)
    return FALSE;
  if (a->user_info == NULL || b->user_info == NULL)
    return a->user_info == b->user_info;
  return g_variant_equal (a->user_info, b->user_info);
}
