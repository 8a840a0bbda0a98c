/* Porter — where porter-notifyd listens.  Shared by libnotecenter and the
 * daemon.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-notify-private.h"

#include <unistd.h>

/* $PORTER_NOTIFYD if set and not empty (relative to the current
 * directory), else $XDG_RUNTIME_DIR/porter/notifyd, else
 * /tmp/porter-$UID/notifyd. */
gchar *
_nc_notify_get_socket_path (void)
{
  const gchar *env = g_getenv ("PORTER_NOTIFYD");
  const gchar *runtime;

  if (env != NULL && env[0] != '\0')
    return g_canonicalize_filename (env, NULL);
  runtime = g_getenv ("XDG_RUNTIME_DIR");
  if (runtime != NULL && g_path_is_absolute (runtime))
    return g_build_filename (runtime, "porter", "notifyd", NULL);
  return g_strdup_printf ("/tmp/porter-%u/notifyd", (guint) geteuid ());
}
