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

/* A packet's message is a GVariant "(ssa{sv})" in normal form.  Made into
 * GVariants, its name and sender would cost an observer process more than
 * the rest of a delivery (a process woken for each delivery finds GLib's
 * type tables and slices cold): so they are read in place, checked as
 * g_variant_is_normal_form() would check them, and only a non-empty user
 * info becomes a GVariant, which GLib checks.  The layout (GVariant
 * Specification, 2.3): the two strings, each with its terminating nul;
 * zero padding to a multiple of 8; the array; then the two strings' ends
 * as little-endian framing offsets, the first string's last, each as
 * wide as the message's size says and, in normal form, as narrow as can
 * address the whole. */

static gsize
framing_offset_size (gsize size)
{
  if (size == 0)
    return 0;
  if (size <= G_MAXUINT8)
    return 1;
  if (size <= G_MAXUINT16)
    return 2;
  return size <= G_MAXUINT32 ? 4 : 8;
}

/* How wide normal form makes the @n framing offsets after @body bytes:
 * as narrow as can address the whole. */
static gsize
normal_offset_size (gsize body, gsize n)
{
  if (body + n <= G_MAXUINT8)
    return 1;
  if (body + 2 * n <= G_MAXUINT16)
    return 2;
  return body + 4 * n <= G_MAXUINT32 ? 4 : 8;
}

static gsize
read_framing_offset (const guint8 *data, gsize size)
{
  gsize value = 0;

  for (gsize i = size; i > 0; i--)
    value = value << 8 | data[i - 1];
  return value;
}

/* A normal-form "s" from @start to @end (the nul included). */
static gboolean
is_string (const guint8 *data, gsize start, gsize end)
{
  const gchar *stop;

  return end > start && data[end - 1] == '\0' &&
         g_utf8_validate ((const gchar *) data + start, end - start - 1, &stop) &&
         stop == (const gchar *) data + end - 1;
}

static gboolean
parse_message (const guint8 *data, gsize size, const gchar **name, const gchar **sender,
               GVariant **user_info)
{
  gsize osize = framing_offset_size (size);
  gsize frame, name_end, sender_end, start;
  g_autoptr(GBytes) bytes = NULL;

  if (size < 2 * osize)
    return FALSE;
  frame = size - 2 * osize;  /* where the framing offsets start */
  if (osize != normal_offset_size (frame, 2))
    return FALSE;
  name_end = read_framing_offset (data + size - osize, osize);
  sender_end = read_framing_offset (data + frame, osize);
  if (name_end > sender_end || sender_end > frame ||
      !is_string (data, 0, name_end) || !is_string (data, name_end, sender_end))
    return FALSE;
  for (start = sender_end; start % 8 != 0; start++)
    if (start >= frame || data[start] != 0)
      return FALSE;
  *name = (const gchar *) data;
  *sender = (const gchar *) data + name_end;
  *user_info = NULL;
  if (start == frame)
    return TRUE;  /* no user info */
  bytes = g_bytes_new (data + start, frame - start);
  *user_info = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes,
                                                             FALSE));
  if (!g_variant_is_normal_form (*user_info))
    {
      g_clear_pointer (user_info, g_variant_unref);
      return FALSE;
    }
  return TRUE;
}

gboolean
_nc_delivery_parse (const guint8 *data, gsize len, guint32 *n_ids, const gchar **name,
                    const gchar **sender, GVariant **user_info, const gchar **why)
{
  gsize header;
  guint32 n;

  if (len < sizeof n)
    {
      *why = "a packet shorter than its count";
      return FALSE;
    }
  memcpy (&n, data, sizeof n);
  if (n == 0 || n > NC_DIST_MAX_IDS)
    {
      *why = "a packet for no observer, or for too many";
      return FALSE;
    }
  header = (1 + n) * sizeof (guint32);
  header += header % 8;
  if (len < header)
    {
      *why = "a packet shorter than its observer ids";
      return FALSE;
    }
  if (!parse_message (data + header, len - header, name, sender, user_info))
    {
      *why = "a notification not in normal form";
      return FALSE;
    }
  if ((*name)[0] == '\0')
    {
      *why = "a notification without a name";
      g_clear_pointer (user_info, g_variant_unref);
      return FALSE;
    }
  *n_ids = n;
  return TRUE;
}
