/* Porter — porterctl, a busctl/gdbus-like command line client.
 *
 *   porterctl [--timeout MS] list
 *   porterctl [--timeout MS] introspect NAME
 *   porterctl [--timeout MS] call NAME METHOD [ARG...]
 *   porterctl post NAME [--sender S] [--immediate] [USERINFO]
 *   porterctl watch [NAME] [--sender S] [--count N]
 *
 * watch prints each notification on stdout as "NAME SENDER USERINFO" ("-"
 * for no sender), and once it is subscribed, before any of them, a line
 * "Watching NAME from SENDER" on stderr: a script that starts a watcher in
 * the background can post as soon as it has read that line.
 *
 * Each ARG is a GVariant in text format ("2", "'text'", "[1, 2]",
 * "<uint32 5>"); the arguments are bundled into a tuple and the reply tuple
 * is printed the same way, as `gdbus call` does.  As there, the object's
 * introspection data gives each argument its type when the method is found,
 * so "5" can be a `u` and a bare word a string.  Options come before the
 * command, so negative numbers need no quoting.  On failure it prints
 * "Error: DOMAIN CODE: MESSAGE" to stderr and exits 1.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>

#include <glib-unix.h>

#include <libdo/do.h>
#include <libnotecenter/nc.h>

static gint opt_timeout = DO_TIMEOUT_DEFAULT;

static const GOptionEntry options[] = {
  { "timeout", 't', 0, G_OPTION_ARG_INT, &opt_timeout,
    "Wait at most MS milliseconds for the reply (default 25000)", "MS" },
  { NULL }
};

static int
fail (const GError *error)
{
  g_printerr ("Error: %s %d: %s\n", g_quark_to_string (error->domain),
              error->code, error->message);
  return 1;
}

static int
usage (GOptionContext *context, const gchar *problem)
{
  g_autofree gchar *help = g_option_context_get_help (context, TRUE, NULL);

  g_printerr ("porterctl: %s\n\n%s", problem, help);
  return 2;
}

static int
cmd_list (void)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = do_broker_list_names (&error);

  if (names == NULL)
    return fail (error);
  for (gsize i = 0; names[i] != NULL; i++)
    g_print ("%s\n", names[i]);
  return 0;
}

static gchar *
introspect (DoProxy *proxy, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  gchar *xml;

  reply = do_proxy_call_sync (proxy, "Introspect", g_variant_new ("()"),
                              DO_CALL_FLAGS_NONE, opt_timeout, NULL, error);
  if (reply == NULL)
    return NULL;
  if (!g_variant_is_of_type (reply, G_VARIANT_TYPE ("(s)")))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                   "Introspect returned %s", g_variant_get_type_string (reply));
      return NULL;
    }
  g_variant_get (reply, "(s)", &xml);
  return xml;
}

/* The in-arguments of @method as the object describes them, or NULL. */
static GDBusArgInfo **
lookup_in_args (DoProxy *proxy, const gchar *method, GDBusNodeInfo **node)
{
  g_autofree gchar *xml = introspect (proxy, NULL);

  if (xml == NULL || (*node = g_dbus_node_info_new_for_xml (xml, NULL)) == NULL)
    return NULL;
  for (guint i = 0; (*node)->interfaces != NULL && (*node)->interfaces[i] != NULL; i++)
    {
      GDBusMethodInfo *info = g_dbus_interface_info_lookup_method ((*node)->interfaces[i], method);
      if (info != NULL)
        return info->in_args;
    }
  return NULL;
}

/* Parses @text as a value of @type (NULL: any); a bare word where a string
 * is wanted is taken as that string, as gdbus does. */
static GVariant *
parse_arg (const GVariantType *type, const gchar *text, GError **error)
{
  GVariant *value = g_variant_parse (type, text, NULL, NULL, error);

  if (value != NULL || type == NULL)
    return value;
  if ((g_variant_type_equal (type, G_VARIANT_TYPE_STRING) && g_utf8_validate (text, -1, NULL)) ||
      (g_variant_type_equal (type, G_VARIANT_TYPE_OBJECT_PATH) && g_variant_is_object_path (text)) ||
      (g_variant_type_equal (type, G_VARIANT_TYPE_SIGNATURE) && g_variant_is_signature (text)))
    {
      g_clear_error (error);
      return g_variant_new (g_variant_type_peek_string (type), text);
    }
  return NULL;
}

static int
cmd_call (const gchar *name, const gchar *method, int n_args, char **args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) proxy = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree gchar *text = NULL;
  GDBusArgInfo **in_args;
  gboolean typed;

  connection = do_connection_new_for_name (name, 0, NULL, &error);
  if (connection == NULL)
    return fail (error);
  proxy = do_connection_get_root_proxy (connection);

  in_args = lookup_in_args (proxy, method, &node);
  typed = in_args != NULL && g_strv_length ((gchar **) in_args) == (guint) n_args;
  for (int i = 0; i < n_args; i++)
    {
      const GVariantType *type = typed ? G_VARIANT_TYPE (in_args[i]->signature) : NULL;
      GVariant *value = parse_arg (type, args[i], &error);

      if (value == NULL)
        {
          g_autofree gchar *context = g_variant_parse_error_print_context (error, args[i]);

          g_printerr ("Error: cannot parse argument %d as %s (strings need "
                      "quotes: \"'text'\"):\n%s\n", i + 1,
                      typed ? in_args[i]->signature : "a GVariant", context);
          return 1;
        }
      g_ptr_array_add (values, g_variant_ref_sink (value));
    }

  reply = do_proxy_call_sync (proxy, method,
                              g_variant_new_tuple ((GVariant * const *) values->pdata, values->len),
                              DO_CALL_FLAGS_NONE, opt_timeout, NULL, &error);
  if (reply == NULL)
    return fail (error);

  text = g_variant_print (reply, TRUE);
  g_print ("%s\n", text);
  return 0;
}

static int
cmd_introspect (const gchar *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) proxy = NULL;
  g_autofree gchar *xml = NULL;

  connection = do_connection_new_for_name (name, 0, NULL, &error);
  if (connection == NULL)
    return fail (error);
  proxy = do_connection_get_root_proxy (connection);
  xml = introspect (proxy, &error);
  if (xml == NULL)
    return fail (error);
  g_print ("%s%s", xml, g_str_has_suffix (xml, "\n") ? "" : "\n");
  return 0;
}

/* The options of post and watch, after the command (--sender, and
 * --count for watch or --immediate for post, where asked for); the other
 * arguments go to @positional.  FALSE on a bad or extra argument. */
static gboolean
notification_args (int argc, char **argv, const gchar **sender, gint64 *count,
                   gboolean *immediate, const gchar **positional, guint max_positional,
                   guint *n_positional)
{
  *n_positional = 0;
  for (int i = 0; i < argc; i++)
    {
      if (g_str_equal (argv[i], "--sender") && i + 1 < argc)
        *sender = argv[++i];
      else if (count != NULL && g_str_equal (argv[i], "--count") && i + 1 < argc)
        {
          if (!g_ascii_string_to_signed (argv[++i], 10, 1, G_MAXINT64, count, NULL))
            return FALSE;
        }
      else if (immediate != NULL && g_str_equal (argv[i], "--immediate"))
        *immediate = TRUE;
      else if (argv[i][0] == '-' && argv[i][1] == '-')
        return FALSE;
      else if (*n_positional < max_positional)
        positional[(*n_positional)++] = argv[i];
      else
        return FALSE;
    }
  return TRUE;
}

static int
cmd_post (const gchar *name, const gchar *sender, const gchar *info_text, gboolean immediate)
{
  NcDistributedCenter *center = nc_distributed_center_get_default ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = NULL;  /* parsed: not floating, so ours to release */

  if (info_text != NULL)
    {
      info = g_variant_parse (G_VARIANT_TYPE_VARDICT, info_text, NULL, NULL, &error);
      if (info == NULL)
        return fail (error);
    }
  if (!nc_distributed_center_post (center, name, sender, info,
                                   immediate ? NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY : 0,
                                   &error) ||
      /* A round trip: the daemon has the post before we exit. */
      !nc_distributed_center_set_suspended (center, FALSE, &error))
    return fail (error);
  return 0;
}

typedef struct {
  gint64 left;
  GMainLoop *loop;
} Watch;

static void
watch_cb (NcDistributedCenter *center, NcNotification *n, gpointer user_data)
{
  Watch *watch = user_data;
  GVariant *info = nc_notification_get_user_info (n);
  g_autofree gchar *text = info ? g_variant_print (info, TRUE) : g_strdup ("{}");
  const gchar *sender = nc_notification_get_sender (n);

  g_print ("%s %s %s\n", nc_notification_get_name (n), sender ? sender : "-", text);
  fflush (stdout);
  if (watch->left > 0 && --watch->left == 0)
    g_main_loop_quit (watch->loop);
}

static gboolean
interrupted (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static int
cmd_watch (const gchar *name, const gchar *sender, gint64 count)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Watch watch = { count, loop };

  if (nc_distributed_center_add_observer (nc_distributed_center_get_default (), name, sender,
                                          NC_SUSPENSION_DELIVER_IMMEDIATELY, NULL, watch_cb,
                                          &watch, NULL, &error) == NULL)
    return fail (error);
  g_unix_signal_add (SIGINT, interrupted, loop);
  g_unix_signal_add (SIGTERM, interrupted, loop);
  /* The daemon has the observer now: every later post is matched.  (And
   * an interrupt from here on ends the watch cleanly.) */
  g_printerr ("Watching %s from %s\n", name ? name : "any name",
              sender ? sender : "any sender");
  g_main_loop_run (loop);
  return 0;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;

  context = g_option_context_new ("COMMAND [ARGS...]");
  g_option_context_set_summary (context,
    "Commands:\n"
    "  list                          Print the names registered at the broker\n"
    "  introspect NAME               Print the interface of the object vended as NAME\n"
    "  call NAME METHOD [ARG...]     Call METHOD on the object vended as NAME;\n"
    "                                each ARG is a GVariant in text format\n"
    "  post NAME [--sender S] [--immediate] [USERINFO]\n"
    "                                Post a distributed notification; USERINFO\n"
    "                                is an a{sv} in GVariant text format\n"
    "  watch [NAME] [--sender S] [--count N]\n"
    "                                Print distributed notifications, a line each,\n"
    "                                until interrupted or after N; says\n"
    "                                \"Watching ...\" on stderr once subscribed");
  g_option_context_add_main_entries (context, options, NULL);
  /* Options stop at the command: "call Calc Add -1 2" must keep its -1. */
  g_option_context_set_strict_posix (context, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage (context, error->message);
  if (opt_timeout < 0 && opt_timeout != DO_TIMEOUT_DEFAULT)
    return usage (context, "--timeout must be at least 0");

  if (argc < 2)
    return usage (context, "no command given");
  if (g_str_equal (argv[1], "list"))
    {
      if (argc != 2)
        return usage (context, "list takes no arguments");
      return cmd_list ();
    }
  if (g_str_equal (argv[1], "introspect"))
    {
      if (argc != 3)
        return usage (context, "introspect needs NAME");
      return cmd_introspect (argv[2]);
    }
  if (g_str_equal (argv[1], "call"))
    {
      if (argc < 4)
        return usage (context, "call needs NAME and METHOD");
      return cmd_call (argv[2], argv[3], argc - 4, argv + 4);
    }
  if (g_str_equal (argv[1], "post") || g_str_equal (argv[1], "watch"))
    {
      gboolean post = g_str_equal (argv[1], "post");
      const gchar *positional[2] = { NULL, NULL };
      const gchar *sender = NULL;
      gboolean immediate = FALSE;
      gint64 count = 0;
      guint n;

      if (!notification_args (argc - 2, argv + 2, &sender, post ? NULL : &count,
                              post ? &immediate : NULL, positional, post ? 2 : 1, &n))
        return usage (context, post ? "post NAME [--sender S] [--immediate] [USERINFO]"
                                    : "watch [NAME] [--sender S] [--count N]");
      if (post && n < 1)
        return usage (context, "post needs NAME");
      return post ? cmd_post (positional[0], sender, positional[1], immediate)
                  : cmd_watch (positional[0], sender, count);
    }
  if (g_str_equal (argv[1], "help"))
    {
      g_autofree gchar *help = g_option_context_get_help (context, TRUE, NULL);
      g_print ("%s", help);
      return 0;
    }
  return usage (context, "unknown command");
}
