/* Fuzz target for the check of distributed delivery packets, what
 * porter-notifyd writes to a client's delivery socket
 * (libnotecenter/nc-notifyd-connect.c).
 *
 * Whatever the bytes, _nc_delivery_parse() must refuse them or read them
 * as GLib's own checks would (tests/notecenter/nc-delivery-check.h): it
 * reads the message's framing itself, without GVariants, so GLib is the
 * oracle.  Built as fuzz-do-wire is (see meson.build); the seed corpus is
 * tests/fuzz/corpus/delivery/, made by gen-delivery-corpus.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>

#include <glib.h>

#include "nc-delivery-check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree gchar *why = NULL;

  if (!nc_delivery_check (data, size, NULL, &why))
    g_error ("a delivery packet of %" G_GSIZE_FORMAT " bytes: %s", (gsize) size, why);
  return 0;
}
