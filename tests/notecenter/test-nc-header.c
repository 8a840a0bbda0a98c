/* Porter — <libnotecenter/nc.h> compiles on its own, with nothing before
 * it, and its symbols link from the shared library.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libnotecenter/nc.h>

int
main (void)
{
  g_autoptr(NcNotification) n = nc_notification_new ("org.example.Header", NULL, NULL);

  nc_center_post (nc_center_get_default (), n);
  return g_strcmp0 (nc_notification_get_name (n), "org.example.Header") == 0 ? 0 : 1;
}
