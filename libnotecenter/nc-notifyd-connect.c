/* Porter — libnotecenter: reaching porter-notifyd, starting it on demand,
 * and reading the delivery sockets it writes to.  Shared by the notify(3)
 * client and the distributed center.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-notify-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "libdo/do.h"

static const gchar *
notifyd_exec_path (void)
{
  const gchar *env = g_getenv ("PORTER_NOTIFYD_EXEC");

  if (env != NULL && env[0] != '\0')
    return env;
  if (g_file_test (NC_NOTIFYD_EXEC_INSTALLED, G_FILE_TEST_IS_EXECUTABLE))
    return NC_NOTIFYD_EXEC_INSTALLED;
  return NC_NOTIFYD_EXEC_BUILDDIR;
}

DoConnection *
_nc_notifyd_connect (GMainContext *context, GError **error)
{
  g_autofree gchar *path = _nc_notify_get_socket_path ();
  const gchar *argv[] = { notifyd_exec_path (), "--daemonize", "--socket", path, NULL };
  DoConnection *connection;

  g_main_context_push_thread_default (context);
  connection = do_connection_new_for_socket_path (path, argv, error);
  g_main_context_pop_thread_default (context);
  return connection;
}

gssize
_nc_delivery_recv (int fd, void *buf, gsize size, int flags, gboolean *hung_up)
{
  for (;;)
    {
      gssize n = recv (fd, buf, size, MSG_DONTWAIT | flags);

      if (n > 0)
        return n;
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        *hung_up = TRUE;
      return 0;
    }
}

GVariant *
_nc_delivery_parse (const guint8 *data, gsize len, guint32 *n_ids, const gchar **why)
{
  g_autoptr(GVariant) message = NULL;
  g_autoptr(GBytes) bytes = NULL;
  const gchar *name;
  gsize header;
  guint32 n;

  if (len < sizeof n)
    {
      *why = "a packet shorter than its count";
      return NULL;
    }
  memcpy (&n, data, sizeof n);
  if (n == 0 || n > NC_DIST_MAX_IDS)
    {
      *why = "a packet for no observer, or for too many";
      return NULL;
    }
  header = (1 + n) * sizeof (guint32);
  header += header % 8;
  if (len < header)
    {
      *why = "a packet shorter than its observer ids";
      return NULL;
    }
  bytes = g_bytes_new (data + header, len - header);
  message = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("(ssa{sv})"),
                                                          bytes, FALSE));
  if (!g_variant_is_normal_form (message))
    {
      *why = "a notification not in normal form";
      return NULL;
    }
  g_variant_get_child (message, 0, "&s", &name);
  if (name[0] == '\0')
    {
      *why = "a notification without a name";
      return NULL;
    }
  *n_ids = n;
  return g_steal_pointer (&message);
}
