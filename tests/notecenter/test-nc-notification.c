/* Porter — tests for NcNotification.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libnotecenter/nc.h>

static void
test_fields (void)
{
  g_autoptr(NcNotification) n = NULL;
  g_autoptr(NcNotification) bare = NULL;
  GVariant *info;

  n = nc_notification_new ("org.example.DidSave", "editor-1",
                           g_variant_new_parsed ("{'path': <'/tmp/a'>, 'size': <@t 42>}"));
  g_assert_cmpstr (nc_notification_get_name (n), ==, "org.example.DidSave");
  g_assert_cmpstr (nc_notification_get_sender (n), ==, "editor-1");
  info = nc_notification_get_user_info (n);
  g_assert_nonnull (info);
  g_assert_true (g_variant_is_of_type (info, G_VARIANT_TYPE_VARDICT));
  g_assert_false (g_variant_is_floating (info));

  bare = nc_notification_new ("org.example.Ping", NULL, NULL);
  g_assert_cmpstr (nc_notification_get_name (bare), ==, "org.example.Ping");
  g_assert_null (nc_notification_get_sender (bare));
  g_assert_null (nc_notification_get_user_info (bare));
}

static void
test_lookup (void)
{
  g_autoptr(NcNotification) n = NULL;
  g_autoptr(NcNotification) bare = NULL;
  g_autoptr(GVariant) v = NULL;
  const gchar *path = NULL;
  guint64 size = 0;

  n = nc_notification_new_with_info ("org.example.DidSave", NULL,
                                     "path", g_variant_new_string ("/tmp/a"),
                                     "size", g_variant_new_uint64 (42),
                                     "size", g_variant_new_uint64 (43),
                                     NULL);
  g_assert_true (nc_notification_lookup (n, "path", "&s", &path));
  g_assert_cmpstr (path, ==, "/tmp/a");
  g_assert_true (nc_notification_lookup (n, "size", "t", &size));
  g_assert_cmpuint (size, ==, 43);
  g_assert_false (nc_notification_lookup (n, "size", "s", &path));
  g_assert_false (nc_notification_lookup (n, "missing", "s", &path));

  v = nc_notification_lookup_value (n, "path", G_VARIANT_TYPE_STRING);
  g_assert_nonnull (v);
  g_assert_null (nc_notification_lookup_value (n, "path", G_VARIANT_TYPE_UINT32));

  bare = nc_notification_new_with_info ("org.example.Ping", NULL, NULL);
  g_assert_null (nc_notification_get_user_info (bare));
  g_assert_false (nc_notification_lookup (bare, "path", "s", &path));
  g_assert_null (nc_notification_lookup_value (bare, "path", NULL));
}

static void
test_refcount (void)
{
  NcNotification *n = nc_notification_new ("org.example.A", "s", NULL);
  NcNotification *r = nc_notification_ref (n);

  g_assert_true (r == n);
  nc_notification_unref (n);
  g_assert_cmpstr (nc_notification_get_name (r), ==, "org.example.A");
  nc_notification_unref (r);
  nc_notification_unref (NULL);
}

static void
test_equal (void)
{
  g_autoptr(NcNotification) a = nc_notification_new_with_info ("n", "s", "k", g_variant_new_int32 (1), NULL);
  g_autoptr(NcNotification) b = nc_notification_new_with_info ("n", "s", "k", g_variant_new_int32 (1), NULL);
  g_autoptr(NcNotification) c = nc_notification_new_with_info ("n", "s", "k", g_variant_new_int32 (2), NULL);
  g_autoptr(NcNotification) d = nc_notification_new ("n", NULL, NULL);
  g_autoptr(NcNotification) e = nc_notification_new ("n", NULL, NULL);
  g_autoptr(NcNotification) f = nc_notification_new ("m", NULL, NULL);

  g_assert_true (nc_notification_equal (a, a));
  g_assert_true (nc_notification_equal (a, b));
  g_assert_false (nc_notification_equal (a, c));
  g_assert_false (nc_notification_equal (a, d));
  g_assert_true (nc_notification_equal (d, e));
  g_assert_false (nc_notification_equal (e, f));
}

static gpointer
share_thread (gpointer data)
{
  NcNotification *n = data;

  for (int i = 0; i < 10000; i++)
    {
      NcNotification *r = nc_notification_ref (n);
      g_assert_cmpstr (nc_notification_get_name (r), ==, "org.example.Shared");
      nc_notification_unref (r);
    }
  nc_notification_unref (n);
  return NULL;
}

static void
test_share_threads (void)
{
  NcNotification *n = nc_notification_new ("org.example.Shared", NULL, NULL);
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("share", share_thread, nc_notification_ref (n));
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  nc_notification_unref (n);
}

static void
test_bad_args (void)
{
  g_autoptr(GVariant) bad = NULL;
  NcNotification *n;

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*name != NULL*");
  n = nc_notification_new (NULL, NULL, NULL);
  g_test_assert_expected_messages ();
  g_assert_null (n);

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*name != NULL*");
  n = nc_notification_new ("", NULL, NULL);
  g_test_assert_expected_messages ();
  g_assert_null (n);

  bad = g_variant_ref_sink (g_variant_new_int32 (1));
  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*VARDICT*");
  n = nc_notification_new ("n", NULL, bad);
  g_test_assert_expected_messages ();
  g_assert_null (n);
}

int
main (int argc, char **argv)
{
  /* No G_TEST_OPTION_ISOLATE_DIRS: these tests touch no files, and GLib
   * 2.74 leaks the isolated dir strings, which LeakSanitizer reports. */
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/nc/notification/fields", test_fields);
  g_test_add_func ("/nc/notification/lookup", test_lookup);
  g_test_add_func ("/nc/notification/refcount", test_refcount);
  g_test_add_func ("/nc/notification/equal", test_equal);
  g_test_add_func ("/nc/notification/share-threads", test_share_threads);
  g_test_add_func ("/nc/notification/bad-args", test_bad_args);

  return g_test_run ();
}
