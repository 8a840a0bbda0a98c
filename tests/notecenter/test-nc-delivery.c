/* Porter — tests for the check of distributed delivery packets, what
 * porter-notifyd writes to a client's delivery socket
 * (libnotecenter/nc-notifyd-connect.c).  A malformed packet closes the
 * socket with the reason logged; here, each reason.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libnotecenter/nc.h>
#include "libnotecenter/nc-notify-private.h"

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
  g_autoptr(GVariant) message = NULL;
  const gchar *why = NULL, *name;
  guint32 n = 0;

  message = _nc_delivery_parse (packet->data, packet->len, &n, &why);
  g_assert_nonnull (message);
  g_assert_null (why);
  g_assert_cmpuint (n, ==, 3);
  g_variant_get_child (message, 0, "&s", &name);
  g_assert_cmpstr (name, ==, "org.example.x");
}

/* Checks that @packet, less its last @cut bytes, is refused for @reason;
 * frees it. */
static void
expect_refused (GByteArray *packet, gsize cut, const gchar *reason)
{
  const gchar *why = NULL;
  guint32 n = 0;

  g_assert_null (_nc_delivery_parse (packet->data, packet->len - cut, &n, &why));
  g_assert_nonnull (why);
  g_assert_nonnull (strstr (why, reason));
  g_byte_array_unref (packet);
}

static void
test_malformed (void)
{
  GByteArray *good = packet_new (1, 1, notification ("a"));
  GByteArray *not_normal = packet_new (1, 1, notification ("a"));

  expect_refused (packet_new (1, 0, NULL), 6, "shorter than its count");
  expect_refused (packet_new (0, 0, notification ("a")), 0, "no observer");
  expect_refused (packet_new (NC_DIST_MAX_IDS + 1, 1, notification ("a")), 0, "too many");
  expect_refused (packet_new (4, 1, NULL), 0, "its observer ids");
  expect_refused (packet_new (1, 1, notification ("")), 0, "without a name");
  /* The message cut short, and its name's terminator overwritten. */
  expect_refused (good, 3, "normal form");
  not_normal->data[8 + 1] = 'x';
  expect_refused (not_normal, 0, "normal form");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nc/delivery/good", test_good);
  g_test_add_func ("/nc/delivery/malformed", test_malformed);
  return g_test_run ();
}
