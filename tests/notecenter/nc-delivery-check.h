/* Porter — tests: a distributed delivery packet read by GLib alone, the
 * meaning _nc_delivery_parse() must agree with on any bytes.  Shared by
 * test-nc-delivery and the fuzz target fuzz-nc-delivery.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parses @packet with _nc_delivery_parse() and again with GLib's own
 * checks (as the parser did before it read the framing itself).  Returns
 * TRUE if both accept it with the same ids, name, sender and user info,
 * or both refuse it; else FALSE with @why saying how they differ
 * (transfer full).  @accepted (nullable) says whether the parser took it. */
gboolean nc_delivery_check (const guint8 *packet,
                            gsize len,
                            gboolean *accepted,
                            gchar **why);

G_END_DECLS
