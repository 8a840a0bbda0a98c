/* Writes the seed corpus of fuzz-do-wire: valid messages made with
 * do_wire_encode() and malformed ones derived from them.
 *
 *   gen-wire-corpus DIR        (DIR is tests/fuzz/corpus/wire)
 *
 * Run once by hand when the wire format changes; its output is committed.
 * Malformed seeds are edited through DoWireHeader's field offsets, so they
 * follow the header if it changes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "libdo/do-wire-private.h"

static const char *out_dir;
static guint n_written;

static void
write_seed (const char *name, const void *data, gsize len)
{
  g_autofree gchar *path = g_build_filename (out_dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents (path, data, (gssize) len, &error))
    g_error ("%s", error->message);
  n_written++;
}

static GByteArray *
encode (DoMessage *msg)
{
  g_autoptr(GBytes) bytes = do_wire_encode (msg, FALSE);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  GByteArray *array = g_byte_array_sized_new ((guint) len);

  g_byte_array_append (array, data, (guint) len);
  return array;
}

/* Encodes @msg, writes it as @name and returns the bytes (transfer full). */
typedef enum {
  EXPECT_VALID,
  EXPECT_INVALID,
  EXPECT_EITHER,  /* decided above the codec (e.g. fd indices) */
} Expect;

static GByteArray *
seed_full (const char *name, DoMessage *msg, guint32 serial,
           guint32 reply_serial, Expect expect)
{
  GByteArray *bytes;
  g_autoptr(GError) error = NULL;
  g_autoptr(DoMessage) back = NULL;

  msg->serial = serial;
  msg->reply_serial = reply_serial;
  bytes = encode (msg);

  /* A valid seed that the decoder refuses is a bug in one or the other. */
  back = do_wire_decode (bytes->data, bytes->len, NULL, 0, NULL, NULL, &error);
  if (expect == EXPECT_VALID && !back)
    g_printerr ("warning: valid seed %s does not decode: %s\n", name, error->message);
  if (expect == EXPECT_INVALID && back)
    g_printerr ("warning: bad seed %s decodes\n", name);

  write_seed (name, bytes->data, bytes->len);
  do_message_unref (msg);
  return bytes;
}

static GByteArray *
seed (const char *name, DoMessage *msg, guint32 serial, guint32 reply_serial)
{
  return seed_full (name, msg, serial, reply_serial, EXPECT_VALID);
}

static void
put_u16 (GByteArray *b, gsize offset, guint16 v)
{
  v = GUINT16_TO_LE (v);
  memcpy (b->data + offset, &v, sizeof v);
}

static void
put_u32 (GByteArray *b, gsize offset, guint32 v)
{
  v = GUINT32_TO_LE (v);
  memcpy (b->data + offset, &v, sizeof v);
}

static void
put_u64 (GByteArray *b, gsize offset, guint64 v)
{
  v = GUINT64_TO_LE (v);
  memcpy (b->data + offset, &v, sizeof v);
}

/* A copy of @base with one header field changed, written as @name. */
typedef void (*Mutation) (GByteArray *b);

static void
mutated (const char *name, GByteArray *base, Mutation mutate)
{
  g_autoptr(GByteArray) b = g_byte_array_sized_new (base->len);

  g_byte_array_append (b, base->data, base->len);
  mutate (b);
  write_seed (name, b->data, b->len);
}

#define OFF(field) offsetof (DoWireHeader, field)

static void bad_magic (GByteArray *b) { put_u32 (b, OFF (magic), 0x44425553u); }
static void bad_kind (GByteArray *b) { b->data[OFF (kind)] = 0x7f; }
static void zero_kind (GByteArray *b) { b->data[OFF (kind)] = 0; }
static void unknown_flags (GByteArray *b) { b->data[OFF (flags)] = 0x80; }
static void ool_without_fd (GByteArray *b) { b->data[OFF (flags)] |= DO_WIRE_FLAG_BODY_OOL; }
static void fd_count_mismatch (GByteArray *b) { put_u16 (b, OFF (n_fds), 3); }
static void fd_count_huge (GByteArray *b) { put_u16 (b, OFF (n_fds), 0xffff); }
static void reserved_set (GByteArray *b) { put_u16 (b, OFF (reserved), 1); }
static void body_len_huge (GByteArray *b) { put_u64 (b, OFF (body_len), G_GUINT64_CONSTANT (1) << 62); }
static void body_len_max (GByteArray *b) { put_u64 (b, OFF (body_len), G_MAXUINT64); }
static void body_len_short (GByteArray *b) { put_u64 (b, OFF (body_len), 4); }
static void body_len_long (GByteArray *b) { put_u64 (b, OFF (body_len), b->len); }
static void method_len_huge (GByteArray *b) { put_u16 (b, OFF (method_len), 0xffff); }
static void interface_len_past_end (GByteArray *b) { put_u16 (b, OFF (interface_len), (guint16) b->len); }
static void signature_len_zero (GByteArray *b) { put_u16 (b, OFF (signature_len), 0); }
static void trailing_garbage (GByteArray *b) { g_byte_array_append (b, (const guint8 *) "GARBAGE!", 8); }

/* Replaces the first occurrence of @from with @to (same length). */
static void
replace_bytes (GByteArray *b, const char *from, const char *to)
{
  gsize n = strlen (from);

  g_assert (strlen (to) == n);
  for (gsize i = sizeof (DoWireHeader); i + n <= b->len; i++)
    if (memcmp (b->data + i, from, n) == 0)
      {
        memcpy (b->data + i, to, n);
        return;
      }
  g_error ("%s not found in the seed", from);
}

static void sig_invalid (GByteArray *b) { replace_bytes (b, "(ii)", "(i!)"); }
static void sig_unbalanced (GByteArray *b) { replace_bytes (b, "(ii)", "((ii"); }
static void sig_not_tuple (GByteArray *b) { replace_bytes (b, "(ii)", "a{ii"); }
static void sig_body_mismatch (GByteArray *b) { replace_bytes (b, "(ii)", "(ss)"); }
static void method_not_nul_terminated (GByteArray *b) { replace_bytes (b, "Add", "Ad\x01"); }
static void method_bad_name (GByteArray *b) { replace_bytes (b, "Add", "A-d"); }
static void interface_bad_name (GByteArray *b) { replace_bytes (b, "org.porter.Calc", "org..porter.Cal"); }
static void string_body_no_nul (GByteArray *b) { b->data[b->len - 2] = 'X'; b->data[b->len - 1] = 'Y'; }

static GVariant *
nested_body (void)
{
  GVariantBuilder dict, inner;
  GVariant *pairs[3];

  for (int i = 0; i < 3; i++)
    pairs[i] = g_variant_new ("(ii)", i, -i);

  g_variant_builder_init (&inner, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&inner, "{sv}", "depth", g_variant_new_uint32 (2));
  g_variant_builder_add (&inner, "{sv}", "bytes",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "\x01\x02\x03", 3, 1));

  g_variant_builder_init (&dict, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&dict, "{sv}", "pairs",
                         g_variant_new_array (G_VARIANT_TYPE ("(ii)"), pairs, 3));
  g_variant_builder_add (&dict, "{sv}", "inner", g_variant_builder_end (&inner));
  g_variant_builder_add (&dict, "{sv}", "v-in-v",
                         g_variant_new_variant (g_variant_new_variant (g_variant_new_string ("deep"))));
  g_variant_builder_add (&dict, "{sv}", "double", g_variant_new_double (3.25));
  g_variant_builder_add (&dict, "{sv}", "path", g_variant_new_object_path ("/org/porter/Obj"));
  g_variant_builder_add (&dict, "{sv}", "sig", g_variant_new_signature ("a{sv}"));

  return g_variant_new ("(a{sv}^asa(ya(ix))bnqtd)",
                        &dict,
                        (const gchar *[]) { "one", "", "three", NULL },
                        NULL, /* empty a(ya(ix)) */
                        TRUE, (gint16) -2, (guint16) 65535,
                        G_MAXUINT64, -0.5);
}

int
main (int argc, char **argv)
{
  g_autoptr(GByteArray) call = NULL;
  g_autoptr(GByteArray) reply = NULL;
  g_autoptr(GByteArray) oneway = NULL;
  g_autoptr(GByteArray) error_msg = NULL;
  g_autoptr(GByteArray) empty = NULL;
  g_autoptr(GByteArray) big_string = NULL;
  g_autoptr(GError) err = NULL;
  g_autofree gchar *long_method = NULL;
  g_autofree gchar *long_interface = NULL;
  g_autofree gchar *long_string = NULL;
  g_autoptr(GString) long_sig = NULL;
  GVariantBuilder ints;

  if (argc != 2)
    {
      g_printerr ("usage: %s DIR\n", argv[0]);
      return 2;
    }
  out_dir = argv[1];
  if (g_mkdir_with_parents (out_dir, 0755) < 0)
    g_error ("cannot create %s", out_dir);

  /* ---- valid messages */
  call = seed ("valid-call-add-ii",
               do_message_new (DO_MESSAGE_CALL, 1, "org.porter.Calc", "Add",
                               g_variant_new ("(ii)", 2, 3)), 1, 0);
  oneway = seed ("valid-oneway-s",
                 do_message_new (DO_MESSAGE_ONEWAY, 7, "org.porter.Log", "Write",
                                 g_variant_new ("(s)", "hello, world")), 2, 0);
  reply = seed ("valid-reply-i",
                do_message_new (DO_MESSAGE_REPLY, 0, NULL, NULL,
                                g_variant_new ("(i)", 5)), 3, 1);
  g_set_error (&err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such thing: %s", "x");
  error_msg = seed ("valid-error-sis", do_message_new_error (1, err), 4, 1);
  empty = seed ("valid-call-empty-body",
                do_message_new (DO_MESSAGE_CALL, 1, "org.porter.Calc", "Ping", NULL), 5, 0);
  {
    GVariantBuilder released;

    /* As do-objref.c sends them: (object id, count) pairs. */
    g_variant_builder_init (&released, G_VARIANT_TYPE ("a(tt)"));
    g_variant_builder_add (&released, "(tt)", (guint64) 9, (guint64) 3);
    g_variant_builder_add (&released, "(tt)", (guint64) 12, (guint64) 1);
    g_byte_array_unref (seed ("valid-release",
                              do_message_new (DO_MESSAGE_RELEASE, 0, NULL, NULL,
                                              g_variant_new ("(a(tt))", &released)), 6, 0));
  }
  g_byte_array_unref (seed ("valid-hello",
                            do_message_new (DO_MESSAGE_HELLO, 0, NULL, NULL, NULL), 7, 0));
  g_byte_array_unref (seed ("valid-bye",
                            do_message_new (DO_MESSAGE_BYE, 0, NULL, NULL, NULL), 8, 0));
  /* CONNECT carries one end of a socketpair; without it, it is refused. */
  g_byte_array_unref (seed_full ("bad-connect-without-socket",
                                 do_message_new (DO_MESSAGE_CONNECT, 0, NULL, NULL, NULL),
                                 9, 0, EXPECT_INVALID));
  g_byte_array_unref (seed ("valid-nested-containers",
                            do_message_new (DO_MESSAGE_CALL, 42, "org.porter.Store", "Put",
                                            nested_body ()), 10, 0));
  g_byte_array_unref (seed ("valid-object-ref",
                            do_message_new (DO_MESSAGE_CALL, 1, "org.porter.Calc", "Watch",
                                            g_variant_new ("(o)", "/org/porter/obj/17")), 11, 0));

  /* Names and signature at their maximum sizes. */
  long_method = g_strnfill (DO_WIRE_MAX_NAME, 'm');
  long_interface = g_strnfill (DO_WIRE_MAX_NAME, 'i');
  long_interface[3] = '.';
  long_sig = g_string_new ("(");
  g_variant_builder_init (&ints, G_VARIANT_TYPE_TUPLE);
  while (long_sig->len < DO_WIRE_MAX_SIGNATURE - 1)
    {
      g_string_append_c (long_sig, 'i');
      g_variant_builder_add (&ints, "i", (gint32) long_sig->len);
    }
  g_string_append_c (long_sig, ')');
  g_assert (long_sig->len == DO_WIRE_MAX_SIGNATURE);
  g_byte_array_unref (seed ("valid-max-names-and-signature",
                            do_message_new (DO_MESSAGE_CALL, 1, long_interface, long_method,
                                            g_variant_builder_end (&ints)), 12, 0));

  /* The largest string body that still travels inline. */
  long_string = g_strnfill (DO_WIRE_INLINE_MAX - 1024, 's');
  big_string = seed ("valid-max-inline-string",
                     do_message_new (DO_MESSAGE_CALL, 1, "org.porter.Calc", "Echo",
                                     g_variant_new ("(s)", long_string)), 13, 0);

  /* ---- malformed: header */
  write_seed ("bad-empty", "", 0);
  write_seed ("bad-truncated-header", call->data, sizeof (DoWireHeader) / 2);
  write_seed ("bad-header-only", call->data, sizeof (DoWireHeader));
  write_seed ("bad-truncated-body", call->data, call->len - 1);
  mutated ("bad-magic", call, bad_magic);
  mutated ("bad-kind", call, bad_kind);
  mutated ("bad-kind-zero", call, zero_kind);
  mutated ("bad-unknown-flags", call, unknown_flags);
  mutated ("bad-ool-without-fd", call, ool_without_fd);
  mutated ("bad-fd-count-mismatch", call, fd_count_mismatch);
  mutated ("bad-fd-count-huge", call, fd_count_huge);
  mutated ("bad-reserved-set", call, reserved_set);
  mutated ("bad-body-len-huge", call, body_len_huge);
  mutated ("bad-body-len-max", call, body_len_max);
  mutated ("bad-body-len-short", call, body_len_short);
  mutated ("bad-body-len-long", call, body_len_long);
  mutated ("bad-method-len-huge", call, method_len_huge);
  mutated ("bad-interface-len-past-end", call, interface_len_past_end);
  mutated ("bad-signature-len-zero", call, signature_len_zero);
  mutated ("bad-trailing-garbage", call, trailing_garbage);
  mutated ("bad-reply-body-len-huge", reply, body_len_huge);
  mutated ("bad-error-fd-count", error_msg, fd_count_mismatch);
  mutated ("bad-empty-body-len-long", empty, body_len_long);
  mutated ("bad-oneway-ool", oneway, ool_without_fd);

  /* A body left in the sender's memory: refused without a channel to
   * read it, after its list of pieces is checked. */
  {
    g_autoptr(DoMessage) msg = do_message_new (DO_MESSAGE_CALL, 1, "org.porter.Calc", "Echo",
                                               g_variant_new ("(s)", long_string));
    DoWirePiece pieces[2] = { { 0x10000, 8 }, { 0x20000, DO_WIRE_INLINE_MAX - 1024 - 7 } };
    guint8 buf[256];
    gsize len;

    msg->serial = 14;
    len = do_wire_encode_into (msg, DO_WIRE_BODY_REMOTE, pieces, 2, buf, sizeof buf);
    g_assert (len <= sizeof buf);
    write_seed ("bad-remote-call", buf, len);
  }

  /* ---- malformed: strings and signature */
  mutated ("bad-signature-invalid", call, sig_invalid);
  mutated ("bad-signature-unbalanced", call, sig_unbalanced);
  mutated ("bad-signature-not-tuple", call, sig_not_tuple);
  mutated ("bad-signature-body-mismatch", call, sig_body_mismatch);
  mutated ("bad-method-not-nul-terminated", call, method_not_nul_terminated);
  mutated ("bad-method-name", call, method_bad_name);
  mutated ("bad-interface-name", call, interface_bad_name);
  mutated ("bad-string-body-no-nul", oneway, string_body_no_nul);
  mutated ("bad-big-string-no-nul", big_string, string_body_no_nul);

  /* An fd index (h) in the body, but no fd attached: whether the codec or
   * the connection refuses it, it must never reach a method. */
  g_byte_array_unref (seed_full ("edge-handle-without-fd",
                                 do_message_new (DO_MESSAGE_CALL, 1, "org.porter.Calc", "Take",
                                                 g_variant_new ("(h)", 0)), 14, 0, EXPECT_EITHER));

  g_print ("wrote %u seeds to %s\n", n_written, out_dir);
  return 0;
}
