/* Porter example: call org.porter.example.Calc.
 *
 * Looks the name up (waiting up to 5 s for the server to register it),
 * calls Add synchronously, Echo asynchronously, and Divide by zero to show
 * the server's error arriving with its domain, code and message.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include <libdo/do.h>

#define CALC_NAME "org.porter.example.Calc"

typedef struct {
  GMainLoop *loop;
  DoProxy *calc;
  gboolean ok;
} EchoState;

static void
echo_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  EchoState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = do_proxy_call_finish (state->calc, result, &error);
  if (reply == NULL)
    printf ("calc-client: Echo failed: %s\n", error->message);
  else
    {
      const gchar *text;
      g_variant_get (reply, "(&s)", &text);
      printf ("calc-client: Echo('hello, Porter') = '%s' (async)\n", text);
      state->ok = TRUE;
    }
  g_main_loop_quit (state->loop);
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(DoProxy) calc = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  EchoState echo = { loop, NULL, FALSE };
  gint32 sum;

  connection = do_connection_new_for_name (CALC_NAME, 5000, NULL, &error);
  if (connection == NULL)
    {
      g_printerr ("calc-client: cannot reach %s: %s\n", CALC_NAME, error->message);
      return 1;
    }
  calc = do_connection_get_root_proxy (connection);
  echo.calc = calc;

  /* 1. A synchronous call. */
  reply = do_proxy_call_sync (calc, "Add", g_variant_new ("(ii)", 2, 3),
                              DO_CALL_FLAGS_NONE, DO_TIMEOUT_DEFAULT, NULL, &error);
  if (reply == NULL)
    {
      g_printerr ("calc-client: Add failed: %s\n", error->message);
      return 1;
    }
  g_variant_get (reply, "(i)", &sum);
  printf ("calc-client: Add(2, 3) = %d\n", sum);

  /* 2. An asynchronous call: the reply arrives on this main loop. */
  do_proxy_call (calc, "Echo", g_variant_new ("(s)", "hello, Porter"),
                 DO_CALL_FLAGS_NONE, DO_TIMEOUT_DEFAULT, NULL, echo_done, &echo);
  g_main_loop_run (loop);
  if (!echo.ok)
    return 1;

  /* 3. The server's error comes back with its domain, code and message. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = do_proxy_call_sync (calc, "Divide", g_variant_new ("(ii)", 1, 0),
                              DO_CALL_FLAGS_NONE, DO_TIMEOUT_DEFAULT, NULL, &error);
  if (reply != NULL)
    {
      g_printerr ("calc-client: Divide(1, 0) unexpectedly succeeded\n");
      return 1;
    }
  printf ("calc-client: Divide(1, 0) failed as expected: %s %d: %s\n",
          g_quark_to_string (error->domain), error->code, error->message);
  return 0;
}
