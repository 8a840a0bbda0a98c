/* Porter — porter-notifyd: non-blocking, bounded delivery to one client.
 * See notifyd-outbox.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notifyd-outbox.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>

struct _NotifydOutbox {
  int fd;
  guint max_items;
  GQueue items;
  guint watch;
  gboolean failed;
  NotifydOutboxFuncs funcs;
  gpointer user_data;
  guint32 scratch[NOTIFYD_OUTBOX_SCRATCH / sizeof (guint32)];
};

NotifydOutbox *
notifyd_outbox_new (int fd, guint max_items, const NotifydOutboxFuncs *funcs,
                    gpointer user_data)
{
  NotifydOutbox *outbox;
  int type = 0;
  socklen_t len = sizeof type;
  struct stat st;

  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode) ||
      getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
      (type != SOCK_SEQPACKET && type != SOCK_DGRAM))
    return NULL;
  outbox = g_new0 (NotifydOutbox, 1);
  outbox->fd = fd;
  outbox->max_items = MAX (max_items, 1);
  outbox->funcs = *funcs;
  outbox->user_data = user_data;
  g_queue_init (&outbox->items);
  return outbox;
}

void
notifyd_outbox_free (NotifydOutbox *outbox)
{
  gpointer item;

  if (outbox == NULL)
    return;
  while ((item = g_queue_pop_head (&outbox->items)) != NULL)
    outbox->funcs.release (item, FALSE, outbox->user_data);
  if (outbox->watch != 0)
    g_source_remove (outbox->watch);
  close (outbox->fd);
  g_free (outbox);
}

static void
outbox_fail (NotifydOutbox *outbox, const gchar *why)
{
  if (outbox->failed)
    return;
  outbox->failed = TRUE;
  outbox->funcs.fail (why, outbox->user_data);
}

gboolean
notifyd_outbox_push (NotifydOutbox *outbox, gpointer item)
{
  if (outbox->failed)
    return FALSE;
  if (outbox->items.length >= outbox->max_items)
    {
      g_autofree gchar *why =
        g_strdup_printf ("over %u deliveries waiting (it does not read its "
                         "delivery socket)", outbox->max_items);
      outbox_fail (outbox, why);
      return FALSE;
    }
  g_queue_push_tail (&outbox->items, item);
  return TRUE;
}

void
notifyd_outbox_remove (NotifydOutbox *outbox, gpointer item)
{
  g_queue_remove (&outbox->items, item);
}

void
notifyd_outbox_remove_matching (NotifydOutbox *outbox,
                                gboolean (*match) (gpointer item, gpointer data),
                                gpointer data)
{
  GList *l = outbox->items.head;

  while (l != NULL)
    {
      GList *next = l->next;

      if (match (l->data, data))
        {
          gpointer item = l->data;
          g_queue_delete_link (&outbox->items, l);
          outbox->funcs.release (item, FALSE, outbox->user_data);
        }
      l = next;
    }
}

static gboolean
on_writable (gint fd, GIOCondition condition, gpointer user_data)
{
  NotifydOutbox *outbox = user_data;

  outbox->watch = 0;
  if (condition & (G_IO_ERR | G_IO_HUP | G_IO_NVAL))
    {
      outbox_fail (outbox, "its delivery socket is closed");
      return G_SOURCE_REMOVE;
    }
  notifyd_outbox_flush (outbox);
  return G_SOURCE_REMOVE;
}

void
notifyd_outbox_flush (NotifydOutbox *outbox)
{
  while (!outbox->failed && !g_queue_is_empty (&outbox->items))
    {
      struct iovec iov[NOTIFYD_OUTBOX_MAX_IOV];
      struct msghdr msg = { .msg_iov = iov };
      guint n_iov = 0;
      guint n = outbox->funcs.pack (&outbox->items, outbox->scratch, iov, &n_iov,
                                    outbox->user_data);
      ssize_t sent;

      g_assert (n >= 1 && n <= outbox->items.length);
      g_assert (n_iov >= 1 && n_iov <= NOTIFYD_OUTBOX_MAX_IOV);
      msg.msg_iovlen = n_iov;
      sent = sendmsg (outbox->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent < 0)
        {
          int errsv = errno;

          if (errsv == EINTR)
            continue;
          if (errsv == EAGAIN || errsv == EWOULDBLOCK || errsv == ENOBUFS)
            {
              if (outbox->watch == 0)
                outbox->watch = g_unix_fd_add (outbox->fd, G_IO_OUT, on_writable, outbox);
              return;
            }
          {
            g_autofree gchar *why = g_strdup_printf ("cannot write to its delivery socket: %s",
                                                     g_strerror (errsv));
            outbox_fail (outbox, why);
          }
          return;
        }
      for (guint i = 0; i < n; i++)
        outbox->funcs.release (g_queue_pop_head (&outbox->items), TRUE, outbox->user_data);
    }
}

guint
notifyd_outbox_get_length (NotifydOutbox *outbox)
{
  return outbox->items.length;
}

guint
notifyd_outbox_get_max (NotifydOutbox *outbox)
{
  return outbox->max_items;
}

gboolean
notifyd_outbox_has_failed (NotifydOutbox *outbox)
{
  return outbox->failed;
}
