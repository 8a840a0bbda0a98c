/* Porter — tests: see nc-delivery-check.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-delivery-check.h"

#include <string.h>

#include "libnotecenter/nc-notify-private.h"

/* The packet's message, if GLib finds the packet well formed: "(ssa{sv})"
 * in normal form with a non-empty name, after a count of 1 to
 * NC_DIST_MAX_IDS ids and padding (transfer full). */
static GVariant *
reference_parse (const guint8 *data, gsize len, guint32 *n_ids)
{
  g_autoptr(GVariant) message = NULL;
  g_autoptr(GBytes) bytes = NULL;
  const gchar *name;
  gsize header;
  guint32 n;

  if (len < sizeof n)
    return NULL;
  memcpy (&n, data, sizeof n);
  header = (1 + (gsize) n) * sizeof (guint32);
  header += header % 8;
  if (n == 0 || n > NC_DIST_MAX_IDS || len < header)
    return NULL;
  bytes = g_bytes_new (data + header, len - header);
  message = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("(ssa{sv})"),
                                                          bytes, FALSE));
  if (!g_variant_is_normal_form (message))
    return NULL;
  g_variant_get_child (message, 0, "&s", &name);
  if (name[0] == '\0')
    return NULL;
  *n_ids = n;
  return g_steal_pointer (&message);
}

gboolean
nc_delivery_check (const guint8 *packet, gsize len, gboolean *accepted, gchar **why)
{
  g_autoptr(GVariant) user_info = NULL;
  g_autoptr(GVariant) ref_info = NULL;
  g_autoptr(GVariant) reference = NULL;
  const gchar *name = NULL, *sender = NULL, *reason = NULL, *ref_name, *ref_sender;
  guint32 n = 0, ref_n = 0;
  gboolean ok;

  ok = _nc_delivery_parse (packet, len, &n, &name, &sender, &user_info, &reason);
  reference = reference_parse (packet, len, &ref_n);
  if (accepted != NULL)
    *accepted = ok;
  if (ok != (reference != NULL))
    {
      *why = g_strdup_printf ("the parser %s it (%s), GLib %s it", ok ? "took" : "refused",
                              ok ? "" : reason, reference ? "takes" : "refuses");
      return FALSE;
    }
  if (!ok)
    return TRUE;
  g_variant_get (reference, "(&s&s@a{sv})", &ref_name, &ref_sender, &ref_info);
  if (g_variant_n_children (ref_info) == 0)
    g_clear_pointer (&ref_info, g_variant_unref);
  if (n != ref_n || strcmp (name, ref_name) != 0 || strcmp (sender, ref_sender) != 0 ||
      (user_info == NULL) != (ref_info == NULL) ||
      (user_info != NULL && !g_variant_equal (user_info, ref_info)))
    {
      *why = g_strdup_printf ("the parser read %u ids, '%s', '%s'; GLib %u ids, '%s', '%s'",
                              n, name, sender, ref_n, ref_name, ref_sender);
      return FALSE;
    }
  return TRUE;
}
