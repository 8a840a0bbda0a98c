/* Porter — libdo: the wire codec.  Every byte handed to do_wire_decode()
 * came from another process and is checked before it is believed.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-wire-private.h"
#include "do-error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define MAX_TYPE_DEPTH 32

static gsize
align8 (gsize n)
{
  return (n + 7) & ~(gsize) 7;
}

const gchar *
do_message_kind_to_string (DoMessageKind kind)
{
  static const gchar *const names[] = {
    NULL, "CALL", "ONEWAY", "REPLY", "ERROR", "RELEASE", "CONNECT", "HELLO", "BYE",
  };

  if (kind < 1 || kind > DO_MESSAGE_KIND_LAST)
    return "INVALID";
  return names[kind];
}

/* GLib frees a container type's description with the last value of that
 * type, and its table of them with the last one: a process passing the
 * same few signatures back and forth would build them again for every
 * message (allocations, a string copy, a hash insert, under GLib's lock).
 * A value of each body signature seen is kept for the process's life; at
 * most KEPT_TYPES of them, since peers choose signatures.  A signature
 * kept here has also passed check_signature(). */
#define KEPT_TYPES 256

static gboolean check_signature (const gchar *sig, GError **error);

G_LOCK_DEFINE_STATIC (kept_types);
static GHashTable *kept_types;  /* type string -> GVariant of that type */

/* Whether @sig is a body signature, as check_signature() says; one seen
 * for the first time is checked, then kept while there is room. */
static gboolean
keep_signature (const gchar *sig, GError **error)
{
  /* Most threads send and receive one signature after another. */
  static _Thread_local gchar last[DO_WIRE_MAX_SIGNATURE + 1];
  gboolean kept, valid = TRUE;

  if (strcmp (sig, last) == 0)
    return TRUE;
  G_LOCK (kept_types);
  if (!kept_types)
    kept_types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_variant_unref);
  kept = g_hash_table_contains (kept_types, sig);
  if (!kept && (valid = check_signature (sig, error)) &&
      g_hash_table_size (kept_types) < KEPT_TYPES)
    {
      g_hash_table_insert (kept_types, g_strdup (sig),
                           g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (sig),
                                                                        NULL, 0, TRUE,
                                                                        NULL, NULL)));
      kept = TRUE;
    }
  G_UNLOCK (kept_types);
  if (kept && strlen (sig) < sizeof last)
    strcpy (last, sig);
  return valid;
}

GVariant *
do_wire_empty_body (void)
{
  static GVariant *unit;

  if (g_once_init_enter (&unit))
    g_once_init_leave (&unit, g_variant_ref_sink (g_variant_new_tuple (NULL, 0)));
  return g_variant_ref (unit);
}

/* A message with its two names in the same block. */
static DoMessage *
message_alloc (const gchar *interface, gsize ilen, const gchar *method, gsize mlen)
{
  DoMessage *msg = g_malloc0 (sizeof *msg + ilen + 1 + mlen + 1);

  msg->ref_count = 1;
  msg->interface = memcpy ((gchar *) (msg + 1), interface, ilen + 1);
  msg->method = memcpy (msg->interface + ilen + 1, method, mlen + 1);
  return msg;
}

DoMessage *
do_message_new (DoMessageKind kind,
                guint64 object_id,
                const gchar *interface,
                const gchar *method,
                GVariant *body)
{
  DoMessage *msg;

  interface = interface ? interface : "";
  method = method ? method : "";
  msg = message_alloc (interface, strlen (interface), method, strlen (method));
  msg->kind = kind;
  msg->object_id = object_id;
  msg->body = body ? g_variant_ref_sink (body) : do_wire_empty_body ();
  g_return_val_if_fail (g_variant_get_type_string (msg->body)[0] == '(', msg);
  keep_signature (g_variant_get_type_string (msg->body), NULL);
  return msg;
}

DoMessage *
do_message_new_error (guint32 reply_serial,
                      const GError *error)
{
  DoMessage *msg;

  /* The domain travels as the quark's string, so it maps back to the same
   * GError domain in the caller. */
  msg = do_message_new (DO_MESSAGE_ERROR, 0, NULL, NULL,
                        g_variant_new ("(sis)",
                                       g_quark_to_string (error->domain),
                                       error->code,
                                       error->message ? error->message : ""));
  msg->reply_serial = reply_serial;
  return msg;
}

GError *
do_message_to_gerror (DoMessage *msg)
{
  const gchar *domain, *message;
  gint32 code;

  g_return_val_if_fail (msg->kind == DO_MESSAGE_ERROR, NULL);
  g_variant_get (msg->body, "(&si&s)", &domain, &code, &message);
  if (domain[0] == '\0')
    return g_error_new_literal (DO_ERROR, DO_ERROR_FAILED, message);
  /* A quark is a name: the GError keeps its domain even in a process that
   * never registered it, and compares equal where it is registered. */
  return g_error_new_literal (g_quark_from_string (domain), code, message);
}

DoMessage *
do_message_ref (DoMessage *msg)
{
  g_return_val_if_fail (msg != NULL, NULL);
  g_atomic_int_inc (&msg->ref_count);
  return msg;
}

void
do_message_unref (DoMessage *msg)
{
  if (msg == NULL || !g_atomic_int_dec_and_test (&msg->ref_count))
    return;
  for (guint i = 0; i < msg->n_fds; i++)
    if (msg->fds[i] >= 0)
      close (msg->fds[i]);
  g_free (msg->fds);
  g_variant_unref (msg->body);
  g_free (msg);
}

static void
close_fds (int *fds, guint n_fds)
{
  for (guint i = 0; i < n_fds; i++)
    if (fds[i] >= 0)
      close (fds[i]);
}

gboolean
do_message_take_fds (DoMessage *msg, int *fds, guint n_fds, GError **error)
{
  if (n_fds > DO_WIRE_MAX_FDS)
    {
      close_fds (fds, n_fds);
      g_free (fds);
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "%u file descriptors in one message (at most %u)",
                   n_fds, DO_WIRE_MAX_FDS);
      return FALSE;
    }
  close_fds (msg->fds, msg->n_fds);
  g_free (msg->fds);
  msg->fds = n_fds ? fds : NULL;
  msg->n_fds = n_fds;
  if (n_fds == 0)
    g_free (fds);
  return TRUE;
}

gsize
do_wire_encode_into (const DoMessage *msg, DoWireBodyPlace place,
                     const DoWirePiece *pieces, guint n_pieces,
                     guint8 *buf, gsize buf_size)
{
  const gchar *sig = g_variant_get_type_string (msg->body);
  gsize ilen = strlen (msg->interface), mlen = strlen (msg->method), slen = strlen (sig);
  gsize body_len = g_variant_get_size (msg->body);
  gsize strings = sizeof (DoWireHeader) + ilen + 1 + mlen + 1 + slen + 1;
  gsize head = align8 (strings);
  gsize total = head + (place == DO_WIRE_BODY_INLINE ? body_len
                        : place == DO_WIRE_BODY_REMOTE ? 8 + n_pieces * sizeof (DoWirePiece)
                        : 0);
  DoWireHeader h = {
    .magic = GUINT32_TO_LE (DO_WIRE_MAGIC),
    .kind = msg->kind,
    .flags = place == DO_WIRE_BODY_MEMFD ? DO_WIRE_FLAG_BODY_OOL
             : place == DO_WIRE_BODY_REMOTE ? DO_WIRE_FLAG_BODY_REMOTE : 0,
    .n_fds = GUINT16_TO_LE (msg->n_fds + (place == DO_WIRE_BODY_MEMFD ? 1 : 0)),
    .serial = GUINT32_TO_LE (msg->serial),
    .reply_serial = GUINT32_TO_LE (msg->reply_serial),
    .object_id = GUINT64_TO_LE (msg->object_id),
    .interface_len = GUINT16_TO_LE (ilen),
    .method_len = GUINT16_TO_LE (mlen),
    .signature_len = GUINT16_TO_LE (slen),
    .body_len = GUINT64_TO_LE (body_len),
  };
  guint8 *p;

  if (buf_size < total)
    return total;
  memcpy (buf, &h, sizeof h);
  p = buf + sizeof h;
  memcpy (p, msg->interface, ilen + 1);
  p += ilen + 1;
  memcpy (p, msg->method, mlen + 1);
  p += mlen + 1;
  memcpy (p, sig, slen + 1);
  memset (buf + strings, 0, head - strings);
  p = buf + head;
  if (place == DO_WIRE_BODY_INLINE)
    g_variant_store (msg->body, p);
  else if (place == DO_WIRE_BODY_REMOTE)
    {
      guint64 n = GUINT64_TO_LE ((guint64) n_pieces);

      memcpy (p, &n, 8);
      for (guint i = 0; i < n_pieces; i++)
        {
          DoWirePiece le = { GUINT64_TO_LE (pieces[i].addr), GUINT64_TO_LE (pieces[i].len) };

          memcpy (p + 8 + i * sizeof le, &le, sizeof le);
        }
    }
  return total;
}

GBytes *
do_wire_encode (const DoMessage *msg, gboolean ool)
{
  DoWireBodyPlace place = ool ? DO_WIRE_BODY_MEMFD : DO_WIRE_BODY_INLINE;
  gsize total = do_wire_encode_into (msg, place, NULL, 0, NULL, 0);
  guint8 *buf = g_malloc (total);

  do_wire_encode_into (msg, place, NULL, 0, buf, total);
  return g_bytes_new_take (buf, total);
}

/* Depth of a type string's nesting, counting arrays, tuples, dict entries
 * and variants' containers alike. */
static guint
type_depth (const GVariantType *type)
{
  guint max = 0;

  if (g_variant_type_is_array (type))
    return 1 + type_depth (g_variant_type_element (type));
  if (!g_variant_type_is_tuple (type) && !g_variant_type_is_dict_entry (type))
    return 0;
  for (const GVariantType *t = g_variant_type_first (type); t; t = g_variant_type_next (t))
    max = MAX (max, type_depth (t));
  return 1 + max;
}

static gboolean
check_signature (const gchar *sig, GError **error)
{
  /* D-Bus's type codes only: every Porter interface is a D-Bus interface. */
  if (strspn (sig, "ybnqiuxtdsogvah(){}") != strlen (sig) ||
      !g_variant_type_string_is_valid (sig) ||
      !g_variant_type_is_tuple (G_VARIANT_TYPE (sig)))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "body signature '%s' is not a D-Bus tuple type", sig);
      return FALSE;
    }
  if (type_depth (G_VARIANT_TYPE (sig)) > MAX_TYPE_DEPTH)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "body signature nests deeper than %d", MAX_TYPE_DEPTH);
      return FALSE;
    }
  return TRUE;
}

/* Reads one NUL-terminated string of exactly @len bytes at *@offset. */
static const gchar *
take_string (const guint8 *data, gsize size, gsize *offset, gsize len,
             const gchar *what, GError **error)
{
  const gchar *s = (const gchar *) data + *offset;

  if (*offset + len + 1 > size || s[len] != '\0' || memchr (s, '\0', len) != NULL)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "%s string is truncated or has the wrong length", what);
      return NULL;
    }
  *offset += len + 1;
  return s;
}

typedef struct {
  void *addr;
  gsize len;
} Mapping;

static void
mapping_free (gpointer data)
{
  Mapping *m = data;

  munmap (m->addr, m->len);
  g_free (m);
}

/* Maps a sealed memfd of exactly @len bytes read-only. */
static GBytes *
map_ool_body (int fd, guint64 len, GError **error)
{
  struct stat st;
  int seals = fcntl (fd, F_GET_SEALS);
  void *p;

  if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "out-of-line body is not a sealed memfd");
      return NULL;
    }
  if (fstat (fd, &st) < 0 || (guint64) st.st_size != len)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "out-of-line body is %lld bytes, header says %" G_GUINT64_FORMAT,
                   (long long) st.st_size, len);
      return NULL;
    }
  /* Not populated: a receiver often reads a bulk body in part or not at
   * all, populating 64 MiB costs milliseconds up front and again at
   * munmap, and one that reads it all pays about the same either way. */
  p = mmap (NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    {
      int errsv = errno;
      g_set_error (error, DO_ERROR, DO_ERROR_LIMITS_EXCEEDED,
                   "cannot map out-of-line body: %s", g_strerror (errsv));
      return NULL;
    }
  Mapping *m = g_new (Mapping, 1);
  m->addr = p;
  m->len = len;
  return g_bytes_new_with_free_func (p, len, mapping_free, m);
}

static gboolean
check_kind (const DoWireHeader *h, const gchar *method, const gchar *sig,
            guint n_user_fds, GError **error)
{
  const gchar *why = NULL;

  switch ((DoMessageKind) h->kind)
    {
    case DO_MESSAGE_CALL:
    case DO_MESSAGE_ONEWAY:
      if (method[0] == '\0')
        why = "has no method";
      else if (h->serial == 0)
        why = "has serial 0";
      else if (h->object_id == 0)
        why = "targets object 0";
      break;
    case DO_MESSAGE_REPLY:
      if (h->reply_serial == 0)
        why = "answers serial 0";
      break;
    case DO_MESSAGE_ERROR:
      if (h->reply_serial == 0)
        why = "answers serial 0";
      else if (strcmp (sig, "(sis)") != 0)
        why = "does not carry (sis)";
      break;
    case DO_MESSAGE_CONNECT:
      if (n_user_fds < 1 || n_user_fds > DO_WIRE_CONNECT_MAX_FDS)
        why = "does not carry one socket (and at most a shared-memory offer)";
      break;
    case DO_MESSAGE_RELEASE:
      if (strcmp (sig, "(a(tt))") != 0)
        why = "does not carry (a(tt))";
      break;
    case DO_MESSAGE_HELLO:
    case DO_MESSAGE_BYE:
      break;
    default:
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "unknown message kind %u", h->kind);
      return FALSE;
    }
  if (why)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL, "%s message %s",
                   do_message_kind_to_string (h->kind), why);
      return FALSE;
    }
  return TRUE;
}

/* The size of a fixed-size basic type, 0 for any other. */
static gsize
fixed_basic_size (const GVariantType *type)
{
  switch (g_variant_type_peek_string (type)[0])
    {
    case 'y': case 'b': return 1;
    case 'n': case 'q': return 2;
    case 'i': case 'u': case 'h': return 4;
    case 'x': case 't': case 'd': return 8;
    default: return 0;
    }
}

static gboolean
type_is_fixed_size (const GVariantType *type)
{
  if (g_variant_type_is_basic (type))
    return fixed_basic_size (type) != 0;
  if (!g_variant_type_is_tuple (type) && !g_variant_type_is_dict_entry (type))
    return FALSE;
  for (const GVariantType *t = g_variant_type_first (type); t; t = g_variant_type_next (t))
    if (!type_is_fixed_size (t))
      return FALSE;
  return TRUE;
}

/* A body `(F..., A)`, fixed-size members then an array, carries no framing
 * offsets: its bytes are those of the same tuple with the array emptied
 * (the members, then padding to the array's alignment), then the array's.
 * Returns that tuple and sets @array to the array; NULL for any other
 * body. */
GVariant *
do_wire_body_split (GVariant *body, GVariant **array)
{
  const GVariantType *type = g_variant_get_type (body);
  const GVariantType *last = NULL;
  g_autofree GVariant **members = NULL;
  gsize n = g_variant_type_n_items (type);
  GVariant *prefix;

  for (const GVariantType *t = g_variant_type_first (type); t; t = g_variant_type_next (t))
    {
      if (last && !type_is_fixed_size (last))
        return NULL;
      last = t;
    }
  if (!last || !g_variant_type_is_array (last))
    return NULL;

  members = g_new (GVariant *, n);
  for (gsize i = 0; i + 1 < n; i++)
    members[i] = g_variant_get_child_value (body, i);
  members[n - 1] = g_variant_new_array (g_variant_type_element (last), NULL, 0);
  prefix = g_variant_ref_sink (g_variant_new_tuple (members, n));
  for (gsize i = 0; i + 1 < n; i++)
    g_variant_unref (members[i]);
  *array = g_variant_get_child_value (body, n - 1);
  return prefix;
}

/* An array of a fixed-size basic type is normal when its size is a
 * multiple of its element's and, for `ab`, every element is 0 or 1. */
static gboolean
basic_array_is_normal (const guint8 *a, gsize asize, const GVariantType *elem, gsize esize)
{
  if (asize % esize != 0)
    return FALSE;
  if (g_variant_type_equal (elem, G_VARIANT_TYPE_BOOLEAN))
    for (gsize i = 0; i < asize; i++)
      if (a[i] > 1)
        return FALSE;
  return TRUE;
}

/* g_variant_is_normal_form(), without its cost on arrays: it checks an
 * array of a fixed-size basic type element by element (a second for 64 MiB
 * of `ay`, a microsecond for 64 bytes).  A body `(aT)` of such an array,
 * and a large body `(F..., aT)` (fixed-size members, then the array: the
 * shape of bulk transfers), are checked here instead: the members before
 * the array are normal, the bytes up to the array are exactly what they
 * serialise to, and the array is checked as basic_array_is_normal() says.
 * Any other body goes to GLib. */
static gboolean
body_is_normal (GVariant *body)
{
  g_autoptr(GVariant) array = NULL;
  g_autoptr(GVariant) prefix = NULL;
  const GVariantType *type = g_variant_get_type (body), *elem;
  const guint8 *data = g_variant_get_data (body), *a;
  gsize size = g_variant_get_size (body), esize, asize, plen;

  /* `(aT)`, the array alone: its bytes are the array's. */
  if (g_variant_type_n_items (type) == 1 &&
      g_variant_type_is_array (g_variant_type_first (type)) &&
      (esize = fixed_basic_size (elem = g_variant_type_element (g_variant_type_first (type)))))
    return basic_array_is_normal (data, size, elem, esize);

  if (size < 4096 || !(prefix = do_wire_body_split (body, &array)) ||
      !(esize = fixed_basic_size (elem = g_variant_type_element (g_variant_get_type (array)))))
    return g_variant_is_normal_form (body);

  a = g_variant_get_data (array);
  asize = g_variant_get_size (array);
  if ((asize > 0 && (a < data || a + asize != data + size)) ||
      !basic_array_is_normal (a, asize, elem, esize))
    return FALSE;

  /* A tree of the body's members: normal when each of them is. */
  if (!g_variant_is_normal_form (prefix))
    return FALSE;
  plen = g_variant_get_size (prefix);
  return plen + asize == size &&
         (plen == 0 || memcmp (data, g_variant_get_data (prefix), plen) == 0);
}

/* A REMOTE body: checks the @n bytes of piece list and fetches it. */
static GBytes *
fetch_remote_body (const DoWireHeader *h, const guint8 *list, gsize n,
                   DoWireFetch fetch, gpointer fetch_data, GError **error)
{
  DoWirePiece pieces[DO_WIRE_MAX_PIECES];
  guint64 count, sum = 0;

  if (h->kind != DO_MESSAGE_CALL || (h->flags & DO_WIRE_FLAG_BODY_OOL))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "a %s left its body in the sender's memory",
                   do_message_kind_to_string (h->kind));
      return NULL;
    }
  if (n < 8 || (memcpy (&count, list, 8), count = GUINT64_FROM_LE (count)) == 0 ||
      count > DO_WIRE_MAX_PIECES || n != 8 + count * sizeof (DoWirePiece))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "a body in the sender's memory comes with a bad list of pieces");
      return NULL;
    }
  for (guint i = 0; i < count; i++)
    {
      memcpy (&pieces[i], list + 8 + i * sizeof pieces[i], sizeof pieces[i]);
      pieces[i].addr = GUINT64_FROM_LE (pieces[i].addr);
      pieces[i].len = GUINT64_FROM_LE (pieces[i].len);
      sum += MIN (pieces[i].len, DO_WIRE_MAX_REMOTE_BODY + 1);  /* no overflow */
    }
  if (sum != h->body_len || sum == 0 || sum > DO_WIRE_MAX_REMOTE_BODY)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "the pieces of a body in the sender's memory do not make its %" G_GUINT64_FORMAT
                   " bytes (at most %" G_GUINT64_FORMAT ")",
                   h->body_len, DO_WIRE_MAX_REMOTE_BODY);
      return NULL;
    }
  if (!fetch)
    {
      g_set_error_literal (error, DO_ERROR, DO_ERROR_PROTOCOL,
                           "a body was left in the sender's memory, and reading it was not offered");
      return NULL;
    }
  return fetch (fetch_data, pieces, count, sum, error);
}

DoMessage *
do_wire_decode (const guint8 *data,
                gsize size,
                int *fds,
                guint n_fds,
                DoWireFetch fetch,
                gpointer fetch_data,
                GError **error)
{
  DoWireHeader h;
  const gchar *interface, *method, *sig;
  gboolean ool;
  guint n_user_fds;
  gsize offset = sizeof h;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) body = NULL;
  DoMessage *msg;

  if (size < sizeof h)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "message of %zu bytes is shorter than a header", size);
      goto fail;
    }
  memcpy (&h, data, sizeof h);
  h.magic = GUINT32_FROM_LE (h.magic);
  h.n_fds = GUINT16_FROM_LE (h.n_fds);
  h.serial = GUINT32_FROM_LE (h.serial);
  h.reply_serial = GUINT32_FROM_LE (h.reply_serial);
  h.object_id = GUINT64_FROM_LE (h.object_id);
  h.interface_len = GUINT16_FROM_LE (h.interface_len);
  h.method_len = GUINT16_FROM_LE (h.method_len);
  h.signature_len = GUINT16_FROM_LE (h.signature_len);
  h.body_len = GUINT64_FROM_LE (h.body_len);

  if (h.magic != DO_WIRE_MAGIC)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL, "bad magic 0x%08x", h.magic);
      goto fail;
    }
  if ((h.flags & ~DO_WIRE_KNOWN_FLAGS) != 0 || h.reserved != 0)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "unknown flags 0x%x or reserved bits set", h.flags);
      goto fail;
    }
  ool = (h.flags & DO_WIRE_FLAG_BODY_OOL) != 0;
  if (h.n_fds != n_fds || (ool && n_fds == 0))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "header announces %u file descriptors, %u arrived",
                   h.n_fds, n_fds);
      goto fail;
    }
  n_user_fds = n_fds - (ool ? 1 : 0);
  if (n_user_fds > DO_WIRE_MAX_FDS)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "%u file descriptors (at most %u)", n_user_fds, DO_WIRE_MAX_FDS);
      goto fail;
    }
  if (h.interface_len > DO_WIRE_MAX_NAME || h.method_len > DO_WIRE_MAX_NAME ||
      h.signature_len > DO_WIRE_MAX_SIGNATURE || h.signature_len < 2)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "name or signature length out of range");
      goto fail;
    }
  if (!(interface = take_string (data, size, &offset, h.interface_len, "interface", error)) ||
      !(method = take_string (data, size, &offset, h.method_len, "method", error)) ||
      !(sig = take_string (data, size, &offset, h.signature_len, "signature", error)))
    goto fail;
  if ((interface[0] && !g_dbus_is_interface_name (interface)) ||
      (method[0] && !g_dbus_is_member_name (method)))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "invalid interface or method name");
      goto fail;
    }
  if (!keep_signature (sig, error) ||
      !check_kind (&h, method, sig, n_user_fds, error))
    goto fail;

  offset = align8 (offset);
  if (h.flags & DO_WIRE_FLAG_BODY_REMOTE)
    {
      bytes = fetch_remote_body (&h, data + MIN (offset, size), size - MIN (offset, size),
                                 fetch, fetch_data, error);
      if (!bytes)
        goto fail;
    }
  else if (ool)
    {
      if (offset != size || h.body_len == 0 || h.body_len > DO_WIRE_MAX_BODY)
        {
          g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                       "out-of-line body length %" G_GUINT64_FORMAT " or packet size %zu is wrong",
                       h.body_len, size);
          goto fail;
        }
      bytes = map_ool_body (fds[n_fds - 1], h.body_len, error);
      if (!bytes)
        goto fail;
      close (fds[n_fds - 1]);
      fds[n_fds - 1] = -1;
    }
  else
    {
      if (offset > size || h.body_len != size - offset)
        {
          g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                       "body length %" G_GUINT64_FORMAT " does not match the %zu bytes left",
                       h.body_len, offset > size ? 0 : size - offset);
          goto fail;
        }
      /* "()" serialises to one zero byte. */
      if (h.body_len != 1 || data[offset] != 0 || strcmp (sig, "()") != 0)
        bytes = g_bytes_new (data + offset, h.body_len);
    }

  body = bytes ? g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (sig), bytes, FALSE))
               : do_wire_empty_body ();
  if (!body_is_normal (body))
    {
      g_set_error (error, DO_ERROR, DO_ERROR_PROTOCOL,
                   "body of type %s is not in normal form", sig);
      goto fail;
    }

  msg = message_alloc (interface, h.interface_len, method, h.method_len);
  msg->kind = h.kind;
  msg->flags = h.flags;
  msg->serial = h.serial;
  msg->reply_serial = h.reply_serial;
  msg->object_id = h.object_id;
  msg->body = g_steal_pointer (&body);
  if (n_user_fds > 0)
    {
      msg->fds = g_memdup2 (fds, n_user_fds * sizeof (int));
      msg->n_fds = n_user_fds;
    }
  return msg;

fail:
  if (fds)
    close_fds (fds, n_fds);
  return NULL;
}
