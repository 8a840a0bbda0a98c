/* Fuzz target for the wire decoder (DESIGN.md §4).
 *
 * Whatever the bytes, do_wire_decode() must return a message or an error,
 * never crash, hang or leak.  A message it accepts must survive a round
 * trip: encoded again and decoded again, it is the same message.
 *
 * Built two ways: with libFuzzer (clang, -Dfuzzing=true) as
 * fuzz-do-wire-libfuzzer, and with fuzz-main.c as an ordinary test that runs
 * the seed corpus in tests/fuzz/corpus/wire/ in every build.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "libdo/do-wire-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_round_trip (DoMessage *msg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(DoMessage) again = NULL;
  const guint8 *buf;
  gsize len;

  bytes = do_wire_encode (msg, FALSE);
  g_assert_nonnull (bytes);
  buf = g_bytes_get_data (bytes, &len);
  again = do_wire_decode (buf, len, NULL, 0, NULL, NULL, &error);
  if (!again)
    g_error ("an accepted message does not decode once re-encoded: %s",
             error->message);

  g_assert_cmpint (again->kind, ==, msg->kind);
  g_assert_cmpuint (again->flags, ==, msg->flags);
  g_assert_cmpuint (again->serial, ==, msg->serial);
  g_assert_cmpuint (again->reply_serial, ==, msg->reply_serial);
  g_assert_cmpuint (again->object_id, ==, msg->object_id);
  g_assert_cmpstr (again->interface, ==, msg->interface);
  g_assert_cmpstr (again->method, ==, msg->method);
  g_assert_cmpuint (again->n_fds, ==, 0);
  g_assert_true (g_variant_equal (again->body, msg->body));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  DoMessage *msg;

  msg = do_wire_decode (data, size, NULL, 0, NULL, NULL, &error);
  if (msg)
    {
      g_assert_no_error (error);
      g_assert_nonnull (msg->body);
      g_assert_true (g_variant_is_of_type (msg->body, G_VARIANT_TYPE_TUPLE));
      g_assert_true (g_variant_is_normal_form (msg->body));
      /* No fds were passed, so none can have been attached. */
      g_assert_cmpuint (msg->n_fds, ==, 0);
      if (!(msg->flags & DO_WIRE_FLAG_BODY_OOL))
        check_round_trip (msg);
      do_message_unref (msg);
    }
  else
    {
      g_assert_nonnull (error);
      g_assert_nonnull (error->message);
    }

  return 0;
}
