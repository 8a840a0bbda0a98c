/* Writes the seed corpus of fuzz-nc-delivery: delivery packets as
 * porter-notifyd sends them (a count, observer ids, padding, then a
 * GVariant "(ssa{sv})"), with and without user info, with framing offsets
 * one, two and four bytes wide.
 *
 *   gen-delivery-corpus DIR    (DIR is tests/fuzz/corpus/delivery)
 *
 * Run once by hand when the packet format changes; its output is
 * committed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nc-delivery-check.h"

static const char *out_dir;

static void
seed (const char *name, guint32 n_ids, const gchar *text)
{
  g_autoptr(GVariant) message = g_variant_ref_sink (g_variant_new_parsed (text));
  g_autoptr(GByteArray) packet = g_byte_array_new ();
  g_autofree gchar *path = g_build_filename (out_dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *why = NULL;
  gsize header = (1 + n_ids) * sizeof (guint32);
  gboolean accepted;

  g_byte_array_append (packet, (const guint8 *) &n_ids, sizeof n_ids);
  for (guint32 i = 1; i <= n_ids; i++)
    g_byte_array_append (packet, (const guint8 *) &i, sizeof i);
  for (; header % 8 != 0; header++)
    g_byte_array_append (packet, (const guint8 *) "", 1);
  g_byte_array_append (packet, g_variant_get_data (message), g_variant_get_size (message));
  if (!nc_delivery_check (packet->data, packet->len, &accepted, &why))
    g_error ("%s: %s", name, why);
  if (!accepted)
    g_error ("%s: refused", name);
  if (!g_file_set_contents (path, (const gchar *) packet->data, packet->len, &error))
    g_error ("%s", error->message);
}

int
main (int argc, char **argv)
{
  g_autofree gchar *long_name = g_strnfill (300, 'n');
  g_autofree gchar *long_info = g_strnfill (70000, 'i');
  g_autofree gchar *medium = g_strdup_printf ("('%s', 'sender', {'k': <'v'>})", long_name);
  g_autofree gchar *large = g_strdup_printf ("('n', 's', {'big': <'%s'>})", long_info);

  if (argc != 2)
    {
      fprintf (stderr, "usage: %s DIR\n", argv[0]);
      return 2;
    }
  out_dir = argv[1];
  seed ("no-user-info", 1, "('org.example.Changed', 'me', @a{sv} {})");
  seed ("no-sender", 3, "('org.example.Changed', '', @a{sv} {})");
  seed ("user-info", 2, "('org.example.Changed', 'me', {'k': <1>, 'l': <('x', [1, 2])>})");
  seed ("utf8", 1, "('é.x', 'sé', {'k': <byte 7>, '': <@mv nothing>})");
  seed ("offsets-2", 1, medium);
  seed ("offsets-4", 1, large);
  return 0;
}
