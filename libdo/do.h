/* Porter — libdo: distributed objects.
 *
 * A process vends an object under a name at the per-user broker; another
 * process looks the name up, gets a proxy, and calls the object's methods
 * with GVariant arguments, as with NSConnection or GDBus:
 *
 *   server:  conn = do_connection_new (&error);
 *            do_connection_set_root_object (conn, object);
 *            do_connection_register_name (conn, "org.example.Calc", &error);
 *            g_main_loop_run (loop);
 *
 *   client:  proxy = do_connection_root_proxy_for_name ("org.example.Calc", &error);
 *            reply = do_proxy_call_sync (proxy, "Add", g_variant_new ("(ii)", 2, 3),
 *                                        DO_CALL_FLAGS_NONE, -1, NULL, &error);
 *
 * Nothing needs starting by hand: the first client starts porter-broker.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define DO_INSIDE
#include <libdo/do-types.h>
#include <libdo/do-error.h>
#include <libdo/do-object.h>
#include <libdo/do-connection.h>
#include <proxies/do-typed.h>
#undef DO_INSIDE
