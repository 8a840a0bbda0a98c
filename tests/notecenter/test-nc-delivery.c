/* Porter — tests for the check of distributed delivery packets, what
 * porter-notifyd writes to a client's delivery socket
 * (libnotecenter/nc-notifyd-connect.c).  A malformed packet closes the
 * socket with the reason logged; here, each reason.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libnotecenter/nc.h>
#include "libnotecenter/nc-notify-private.h"
#include "nc-delivery-check.h"

#include <string.h>

/* A packet: the count @n, @n_ids ids, padding, then @message's bytes. */
static GByteArray *
packet_new (guint32 n, guint32 n_ids, GVariant *message)
{
  GByteArray *packet = g_byte_array_new ();
  gsize header = (1 + n_ids) * sizeof (guint32);

  g_byte_array_append (packet, (const guint8 *) &n, sizeof n);
  for (guint32 i = 0; i < n_ids; i++)
    {
      guint32 id = i + 1;
      g_byte_array_append (packet, (const guint8 *) &id, sizeof id);
    }
  g_byte_array_set_size (packet, header + header % 8);
  memset (packet->data + header, 0, header % 8);
  if (message)
    {
      g_variant_ref_sink (message);
      g_byte_array_append (packet, g_variant_get_data (message), g_variant_get_size (message));
      g_variant_unref (message);
    }
  return packet;
}

static GVariant *
notification (const gchar *name)
{
  return g_variant_new_parsed ("(%s, 'me', {'k': <1>})", name);
}

static void
test_good (void)
{
  g_autoptr(GByteArray) packet = packet_new (3, 3, notification ("org.example.x"));
  g_autoptr(GByteArray) bare = packet_new (1, 1, g_variant_new_parsed ("('x', '', @a{sv} {})"));
  g_autoptr(GVariant) user_info = NULL;
  g_autofree gchar *text = NULL;
  const gchar *why = NULL, *name, *sender;
  guint32 n = 0;

  g_assert_true (_nc_delivery_parse (packet->data, packet->len, &n, &name, &sender, &user_info,
                                     &why));
  g_assert_null (why);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpstr (name, ==, "org.example.x");
  g_assert_cmpstr (sender, ==, "me");
  text = g_variant_print (user_info, FALSE);
  g_assert_cmpstr (text, ==, "{'k': <1>}");
  g_clear_pointer (&user_info, g_variant_unref);

  /* No user info: none made. */
  g_assert_true (_nc_delivery_parse (bare->data, bare->len, &n, &name, &sender, &user_info,
                                     &why));
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpstr (name, ==, "x");
  g_assert_cmpstr (sender, ==, "");
  g_assert_null (user_info);
}

/* Checks that @packet, less its last @cut bytes, is refused for @reason;
 * frees it. */
static void
expect_refused (GByteArray *packet, gsize cut, const gchar *reason)
{
  g_autoptr(GVariant) user_info = NULL;
  const gchar *why = NULL, *name, *sender;
  guint32 n = 0;

  g_assert_false (_nc_delivery_parse (packet->data, packet->len - cut, &n, &name, &sender,
                                      &user_info, &why));
  g_assert_null (user_info);
  g_assert_nonnull (why);
  g_assert_nonnull (strstr (why, reason));
  g_byte_array_unref (packet);
}

static void
test_malformed (void)
{
  GByteArray *good = packet_new (1, 1, notification ("a"));
  GByteArray *not_normal = packet_new (1, 1, notification ("a"));
  GByteArray *bad_padding = packet_new (1, 1, notification ("a"));
  GByteArray *bad_info = packet_new (1, 1, notification ("a"));

  expect_refused (packet_new (1, 0, NULL), 6, "shorter than its count");
  expect_refused (packet_new (0, 0, notification ("a")), 0, "no observer");
  expect_refused (packet_new (NC_DIST_MAX_IDS + 1, 1, notification ("a")), 0, "too many");
  expect_refused (packet_new (4, 1, NULL), 0, "its observer ids");
  expect_refused (packet_new (1, 1, notification ("")), 0, "without a name");
  expect_refused (packet_new (1, 1, g_variant_new_parsed ("('', '', @a{sv} {})")), 0,
                  "without a name");
  expect_refused (packet_new (1, 1, NULL), 0, "normal form");
  /* The message cut short, and its name's terminator overwritten. */
  expect_refused (good, 3, "normal form");
  not_normal->data[8 + 1] = 'x';
  expect_refused (not_normal, 0, "normal form");
  /* Not zero between the sender and the user info; the user info's key
   * not terminated. */
  bad_padding->data[8 + 5] = 1;
  expect_refused (bad_padding, 0, "normal form");
  bad_info->data[8 + 9] = 'x';
  expect_refused (bad_info, 0, "normal form");
}

/* @message, less its last @cut bytes, in a packet for one observer:
 * FALSE (with the difference logged) if the parser and GLib disagree. */
static gboolean
same_as_glib (GByteArray *message, gsize cut)
{
  g_autoptr(GByteArray) packet = packet_new (1, 1, NULL);
  g_autofree gchar *why = NULL;

  g_byte_array_append (packet, message->data, message->len - cut);
  if (nc_delivery_check (packet->data, packet->len, NULL, &why))
    return TRUE;
  g_test_message ("cut %" G_GSIZE_FORMAT ": %s", cut, why);
  return FALSE;
}

/* Every byte of @text's message (or, when @window is not 0, the first and
 * last @window bytes and those around its sender) set to other values,
 * and every length of it: the parser and GLib agree on each. */
static void
check_mutations (const gchar *text, gsize window)
{
  g_autoptr(GVariant) message = g_variant_ref_sink (g_variant_new_parsed (text));
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  gsize len = g_variant_get_size (message);
  gsize sender_at;
  const gchar *name;

  g_variant_get_child (message, 0, "&s", &name);
  sender_at = strlen (name) + 1;
  g_byte_array_append (bytes, g_variant_get_data (message), len);
  g_assert_true (same_as_glib (bytes, 0));
  for (gsize cut = 1; cut <= len; cut++)
    if (window == 0 || cut <= window || len - cut <= window)
      g_assert_true (same_as_glib (bytes, cut));
  for (gsize i = 0; i < len; i++)
    {
      const guint8 was = bytes->data[i];
      const guint8 values[] = { 0, 0xff, 0x80, 'a', was ^ 1, was + 1, was - 1, was + 8 };

      if (window != 0 && i >= window && i + window < len &&
          (i + window < sender_at || i > sender_at + window))
        continue;
      for (gsize v = 0; v < G_N_ELEMENTS (values); v++)
        {
          bytes->data[i] = values[v];
          if (!same_as_glib (bytes, 0))
            g_error ("byte %" G_GSIZE_FORMAT " of %s set to 0x%02x: parsed unlike GLib", i,
                     text, values[v]);
        }
      bytes->data[i] = was;
    }
}

static gsize
offset_size (gsize size)
{
  return size <= G_MAXUINT8 ? 1 : size <= G_MAXUINT16 ? 2 : 4;
}

/* @text's message with its two framing offsets written 1, 2 and 4 bytes
 * wide, whatever its size says they are: the parser and GLib agree on
 * each, and so on where the width changes with the size. */
static void
check_reframed (const gchar *text)
{
  g_autoptr(GVariant) message = g_variant_ref_sink (g_variant_new_parsed (text));
  const guint8 *data = g_variant_get_data (message);
  gsize len = g_variant_get_size (message);
  gsize width = offset_size (len);
  gsize body = len - 2 * width;
  guint32 ends[2] = { 0, 0 };  /* the sender's, the name's */

  for (gsize i = 0; i < 2; i++)
    for (gsize b = width; b > 0; b--)
      ends[i] = ends[i] << 8 | data[body + i * width + b - 1];
  for (gsize w = 1; w <= 4; w *= 2)
    {
      g_autoptr(GByteArray) bytes = g_byte_array_new ();

      g_byte_array_append (bytes, data, body);
      for (gsize i = 0; i < 2; i++)
        for (gsize b = 0; b < w; b++)
          {
            guint8 byte = (ends[i] >> (8 * b)) & 0xff;
            g_byte_array_append (bytes, &byte, 1);
          }
      g_assert_true (same_as_glib (bytes, 0));
    }
}

static void
test_same_as_glib (void)
{
  g_autofree gchar *long_name = g_strnfill (300, 'n');
  g_autofree gchar *long_info = g_strnfill (70000, 'i');
  g_autofree gchar *medium = g_strdup_printf ("('%s', 'sender', {'k': <'v'>})", long_name);
  g_autofree gchar *large = g_strdup_printf ("('n', 's', {'big': <'%s'>})", long_info);

  check_mutations ("('org.example.x', 'me', @a{sv} {})", 0);
  check_mutations ("('n', '', @a{sv} {})", 0);
  check_mutations ("('n', 'sé', {'k': <1>, 'l': <('x', [1, 2])>})", 0);
  check_mutations ("('é', 'me', {'k': <byte 7>})", 0);
  check_mutations ("('n', 'x', {'': <@mv nothing>})", 0);
  /* Two- and four-byte framing offsets, and messages of each size about
   * where they grow. */
  check_mutations (medium, 0);
  check_mutations (large, 64);
  for (gsize len = 200; len < 260; len++)
    {
      g_autofree gchar *text = g_strdup_printf ("('n', 's', {'k': <'%.*s'>})", (int) len,
                                                long_info);
      check_mutations (text, 0);
    }
  for (gsize len = 65480; len < 65540; len++)
    {
      g_autofree gchar *text = g_strdup_printf ("('n', 's', {'k': <'%.*s'>})", (int) len,
                                                long_info);
      check_reframed (text);
      if (len % 16 == 0)
        check_mutations (text, 8);
    }
  for (gsize len = 200; len < 260; len++)
    {
      g_autofree gchar *text = g_strdup_printf ("('n', 's', {'k': <'%.*s'>})", (int) len,
                                                long_info);
      check_reframed (text);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nc/delivery/good", test_good);
  g_test_add_func ("/nc/delivery/malformed", test_malformed);
  g_test_add_func ("/nc/delivery/same-as-glib", test_same_as_glib);
  return g_test_run ();
}
