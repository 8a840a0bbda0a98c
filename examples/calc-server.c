/* Porter example: vend a calculator under the name org.porter.example.Calc.
 *
 * Build an object from introspection XML and a handler, make a vending
 * connection, give it the object and a name, and run the main loop.
 * The broker is started on demand.  SIGTERM or SIGINT stops it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include <glib-unix.h>
#include <libdo/do.h>

#define CALC_NAME "org.porter.example.Calc"

static const gchar calc_xml[] =
  "<node>"
  "  <interface name='org.porter.example.Calc'>"
  "    <method name='Add'>"
  "      <arg name='a' type='i' direction='in'/>"
  "      <arg name='b' type='i' direction='in'/>"
  "      <arg name='sum' type='i' direction='out'/>"
  "    </method>"
  "    <method name='Divide'>"
  "      <arg name='a' type='i' direction='in'/>"
  "      <arg name='b' type='i' direction='in'/>"
  "      <arg name='quotient' type='i' direction='out'/>"
  "    </method>"
  "    <method name='Echo'>"
  "      <arg name='text' type='s' direction='in'/>"
  "      <arg name='text' type='s' direction='out'/>"
  "    </method>"
  "  </interface>"
  "</node>";

/* Our own error domain: the client gets it back by name. */
#define CALC_ERROR (calc_error_quark ())
static GQuark calc_error_quark (void);
static G_DEFINE_QUARK (calc-error-quark, calc_error)
enum { CALC_ERROR_DIVISION_BY_ZERO = 1 };

static GVariant *
calc_method (DoObject *object,
             DoInvocation *invocation,
             const gchar *method,
             GVariant *parameters,
             gpointer user_data,
             GError **error)
{
  /* @parameters already matches the method's in-signature. */
  if (g_str_equal (method, "Add"))
    {
      gint32 a, b;
      g_variant_get (parameters, "(ii)", &a, &b);
      return g_variant_new ("(i)", (gint32) ((guint32) a + (guint32) b));
    }
  if (g_str_equal (method, "Divide"))
    {
      gint32 a, b;
      g_variant_get (parameters, "(ii)", &a, &b);
      if (b == 0)
        {
          g_set_error (error, CALC_ERROR, CALC_ERROR_DIVISION_BY_ZERO,
                       "Division by zero (%d / 0)", a);
          return NULL;
        }
      if (a == G_MININT32 && b == -1)
        {
          g_set_error (error, CALC_ERROR, CALC_ERROR_DIVISION_BY_ZERO,
                       "Overflow (%d / -1)", a);
          return NULL;
        }
      return g_variant_new ("(i)", a / b);
    }
  if (g_str_equal (method, "Echo"))
    {
      const gchar *text;
      g_variant_get (parameters, "(&s)", &text);
      return g_variant_new ("(s)", text);
    }
  g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD, "No method %s", method);
  return NULL;
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DoObject) calc = NULL;
  g_autoptr(DoConnection) connection = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  calc = do_object_new_for_xml (calc_xml, "org.porter.example.Calc",
                                calc_method, NULL, NULL, &error);
  if (calc == NULL)
    {
      g_printerr ("calc-server: %s\n", error->message);
      return 1;
    }
  connection = do_connection_new (&error);
  if (connection == NULL)
    {
      g_printerr ("calc-server: %s\n", error->message);
      return 1;
    }
  do_connection_set_root_object (connection, calc);
  if (!do_connection_register_name (connection, CALC_NAME, &error))
    {
      g_printerr ("calc-server: %s\n", error->message);
      return 1;
    }

  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_unix_signal_add (SIGINT, on_signal, loop);
  printf ("calc-server: vending %s\n", CALC_NAME);
  fflush (stdout);
  g_main_loop_run (loop);
  printf ("calc-server: done\n");
  return 0;
}
