/* Porter — libnotecenter: reaching porter-notifyd, starting it on demand,
 * and reading the delivery sockets it writes to.  Shared by the notify(3)
 * client and the distributed center.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-notify-private.h"

#include <errno.h>
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
