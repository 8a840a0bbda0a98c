/* Porter — porter-notifyd: distributed notifications.  See notifyd-dist.h
 * and, for the protocol, libnotecenter/nc-notify-private.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notifyd-dist.h"

#include <string.h>

#include "libnotecenter/nc-distributed-center.h"
#include "libnotecenter/nc-notify.h"
#include "libnotecenter/nc-notify-private.h"

typedef struct _Observer Observer;
typedef struct _Item Item;

struct _Observer {
  DistClient *client;
  guint32 id;
  gchar *name;            /* NULL: any */
  gchar *sender;          /* NULL: any */
  NcSuspensionBehavior behavior;
  Item *queued;           /* (nullable) its latest item in the outbox */
  Item *held;             /* (nullable) its latest held item */
};

/* One notification for one observer; the message is shared by a post. */
struct _Item {
  Observer *observer;
  GBytes *message;        /* "(ssa{sv})" */
};

struct _DistClient {
  DistRegistry *registry;
  NotifydOutbox *outbox;  /* not owned */
  guint max_observers;
  int pid;
  GHashTable *observers;  /* id -> Observer *, owned */
  gboolean suspended;
  GQueue held;            /* Item *, owned */
  gboolean warned_held;
  guint64 touched;        /* the post that last queued for it */
};

struct _DistRegistry {
  GHashTable *by_name;    /* name -> GPtrArray of Observer * */
  GPtrArray *any_name;    /* Observer * */
  GPtrArray *clients;     /* DistClient * */
  DistStats stats;
};

static void
item_free (Item *item)
{
  g_bytes_unref (item->message);
  g_free (item);
}

static Item *
item_new (Observer *observer, GBytes *message)
{
  Item *item = g_new (Item, 1);

  item->observer = observer;
  item->message = g_bytes_ref (message);
  return item;
}

static void
item_replace_message (Item *item, GBytes *message)
{
  g_bytes_unref (item->message);
  item->message = g_bytes_ref (message);
}

/* ------------------------------------------------------------ registry */

DistRegistry *
dist_registry_new (void)
{
  DistRegistry *registry = g_new0 (DistRegistry, 1);

  registry->by_name = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) g_ptr_array_unref);
  registry->any_name = g_ptr_array_new ();
  registry->clients = g_ptr_array_new ();
  return registry;
}

void
dist_registry_free (DistRegistry *registry)
{
  if (registry == NULL)
    return;
  g_assert (registry->clients->len == 0);
  g_hash_table_unref (registry->by_name);
  g_ptr_array_unref (registry->any_name);
  g_ptr_array_unref (registry->clients);
  g_free (registry);
}

void
dist_registry_get_stats (DistRegistry *registry, DistStats *stats)
{
  *stats = registry->stats;
  stats->queued = 0;
  for (guint i = 0; i < registry->clients->len; i++)
    {
      DistClient *client = registry->clients->pdata[i];
      stats->queued += notifyd_outbox_get_length (client->outbox) + client->held.length;
    }
}

static GPtrArray *
registry_list (DistRegistry *registry, const gchar *name, gboolean create)
{
  GPtrArray *list;

  if (name == NULL)
    return registry->any_name;
  list = g_hash_table_lookup (registry->by_name, name);
  if (list == NULL && create)
    {
      list = g_ptr_array_new ();
      g_hash_table_insert (registry->by_name, g_strdup (name), list);
    }
  return list;
}

/* ------------------------------------------------------------ outbox */

guint
dist_outbox_pack (GQueue *items, guint32 *scratch, struct iovec *iov, guint *n_iov,
                  gpointer user_data)
{
  GBytes *message = ((Item *) items->head->data)->message;
  guint n = 0;
  gsize header;

  G_STATIC_ASSERT ((NC_DIST_MAX_IDS + 2) * sizeof (guint32) <= NOTIFYD_OUTBOX_SCRATCH);
  for (GList *l = items->head; l != NULL && n < NC_DIST_MAX_IDS; l = l->next)
    {
      Item *item = l->data;

      if (item->message != message)
        break;
      scratch[1 + n++] = item->observer->id;
    }
  scratch[0] = n;
  header = (1 + n) * sizeof (guint32);
  if (header % 8 != 0)
    scratch[1 + n] = 0, header += 4;
  iov[0].iov_base = scratch;
  iov[0].iov_len = header;
  iov[1].iov_base = (gpointer) g_bytes_get_data (message, &iov[1].iov_len);
  *n_iov = 2;
  return n;
}

void
dist_outbox_release (gpointer data, gboolean sent, gpointer user_data)
{
  Item *item = data;

  if (item->observer->queued == item)
    item->observer->queued = NULL;
  item_free (item);
}

/* ------------------------------------------------------------ clients */

DistClient *
dist_client_new (DistRegistry *registry, NotifydOutbox *outbox, guint max_observers, int pid)
{
  DistClient *client = g_new0 (DistClient, 1);

  client->registry = registry;
  client->outbox = outbox;
  client->max_observers = max_observers;
  client->pid = pid;
  client->observers = g_hash_table_new (NULL, NULL);
  g_queue_init (&client->held);
  g_ptr_array_add (registry->clients, client);
  return client;
}

static gboolean
item_is_of (gpointer item, gpointer observer)
{
  return ((Item *) item)->observer == observer;
}

/* Unlinks @observer from the registry and throws its items away. */
static void
observer_free (Observer *observer)
{
  DistClient *client = observer->client;
  DistRegistry *registry = client->registry;
  GPtrArray *list = registry_list (registry, observer->name, FALSE);
  GList *l;

  g_ptr_array_remove_fast (list, observer);
  if (list->len == 0 && observer->name != NULL)
    g_hash_table_remove (registry->by_name, observer->name);
  if (observer->queued != NULL)
    notifyd_outbox_remove_matching (client->outbox, item_is_of, observer);
  for (l = client->held.head; l != NULL;)
    {
      GList *next = l->next;
      if (item_is_of (l->data, observer))
        {
          item_free (l->data);
          g_queue_delete_link (&client->held, l);
        }
      l = next;
    }
  registry->stats.observers--;
  g_free (observer->name);
  g_free (observer->sender);
  g_free (observer);
}

void
dist_client_free (DistClient *client)
{
  GHashTableIter iter;
  gpointer value;

  if (client == NULL)
    return;
  g_queue_clear_full (&client->held, (GDestroyNotify) item_free);
  g_hash_table_iter_init (&iter, client->observers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_hash_table_iter_remove (&iter);
      observer_free (value);
    }
  g_hash_table_unref (client->observers);
  g_ptr_array_remove_fast (client->registry->clients, client);
  g_free (client);
}

static gboolean
name_is_valid (const gchar *name)
{
  gsize len = strlen (name);
  return len <= NC_NOTIFY_NAME_MAX;  /* "" means any */
}

guint32
dist_client_add_observer (DistClient *client, guint32 id, const gchar *name,
                          const gchar *sender, guint32 behavior, gchar **why)
{
  Observer *observer;

  if (id == 0 || g_hash_table_contains (client->observers, GUINT_TO_POINTER (id)))
    {
      *why = g_strdup_printf ("observer id %u is 0 or already used", id);
      return 0;
    }
  if (behavior < NC_SUSPENSION_DROP || behavior > NC_SUSPENSION_DELIVER_IMMEDIATELY)
    {
      *why = g_strdup_printf ("unknown suspension behavior %u", behavior);
      return 0;
    }
  if (!name_is_valid (name) || !name_is_valid (sender))
    {
      *why = g_strdup ("an observed name or sender is too long");
      return 0;
    }
  if (g_hash_table_size (client->observers) >= client->max_observers)
    {
      g_message ("Client pid %d: over %u observers; refusing more", client->pid,
                 client->max_observers);
      return NC_NOTIFY_STATUS_FAILED;
    }
  observer = g_new0 (Observer, 1);
  observer->client = client;
  observer->id = id;
  observer->name = name[0] != '\0' ? g_strdup (name) : NULL;
  observer->sender = sender[0] != '\0' ? g_strdup (sender) : NULL;
  observer->behavior = behavior;
  g_hash_table_insert (client->observers, GUINT_TO_POINTER (id), observer);
  g_ptr_array_add (registry_list (client->registry, observer->name, TRUE), observer);
  client->registry->stats.observers++;
  return NC_NOTIFY_STATUS_OK;
}

guint32
dist_client_remove_observer (DistClient *client, guint32 id, gchar **why)
{
  Observer *observer = g_hash_table_lookup (client->observers, GUINT_TO_POINTER (id));

  if (observer == NULL)
    return NC_NOTIFY_STATUS_INVALID_TOKEN;
  g_hash_table_remove (client->observers, GUINT_TO_POINTER (id));
  observer_free (observer);
  return NC_NOTIFY_STATUS_OK;
}

/* Queues @item for the socket; FALSE if the client is being disconnected
 * (@item is freed). */
static gboolean
client_push (DistClient *client, Item *item)
{
  if (!notifyd_outbox_push (client->outbox, item))
    {
      item_free (item);
      return FALSE;
    }
  if (item->observer->behavior == NC_SUSPENSION_COALESCE)
    item->observer->queued = item;
  return TRUE;
}

guint32
dist_client_set_suspended (DistClient *client, gboolean suspended)
{
  Item *item;

  client->suspended = suspended;
  if (suspended)
    return NC_NOTIFY_STATUS_OK;
  client->warned_held = FALSE;
  while ((item = g_queue_pop_head (&client->held)) != NULL)
    {
      item->observer->held = NULL;
      if (!client_push (client, item))
        {
          g_queue_clear_full (&client->held, (GDestroyNotify) item_free);
          break;
        }
    }
  notifyd_outbox_flush (client->outbox);
  return NC_NOTIFY_STATUS_OK;
}

static void
client_hold (DistClient *client, Observer *observer, GBytes *message)
{
  DistRegistry *registry = client->registry;
  Item *item;

  if (observer->behavior == NC_SUSPENSION_COALESCE && observer->held != NULL)
    {
      item_replace_message (observer->held, message);
      registry->stats.coalesced++;
      return;
    }
  if (client->held.length + notifyd_outbox_get_length (client->outbox) >=
      notifyd_outbox_get_max (client->outbox))
    {
      Item *oldest = g_queue_pop_head (&client->held);

      if (!client->warned_held)
        g_message ("Client pid %d holds %u notifications while suspended: "
                   "dropping the oldest", client->pid, client->held.length + 1);
      client->warned_held = TRUE;
      registry->stats.dropped++;
      if (oldest == NULL)
        return;  /* all of it is in the outbox */
      if (oldest->observer->held == oldest)
        oldest->observer->held = NULL;
      item_free (oldest);
    }
  item = item_new (observer, message);
  if (observer->behavior == NC_SUSPENSION_COALESCE)
    observer->held = item;
  g_queue_push_tail (&client->held, item);
}

/* One matching observer: hold, drop, coalesce or queue (notifyd-dist.h). */
static void
deliver (DistRegistry *registry, Observer *observer, GBytes *message, guint32 flags)
{
  DistClient *client = observer->client;
  gboolean behind;

  if (notifyd_outbox_has_failed (client->outbox))
    return;
  if (client->suspended && !(flags & NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY) &&
      observer->behavior != NC_SUSPENSION_DELIVER_IMMEDIATELY)
    {
      if (observer->behavior == NC_SUSPENSION_DROP)
        registry->stats.dropped++;
      else
        client_hold (client, observer, message);
      return;
    }
  behind = notifyd_outbox_get_length (client->outbox) >=
           notifyd_outbox_get_max (client->outbox) / 2;
  if (behind && observer->behavior == NC_SUSPENSION_DROP)
    {
      registry->stats.dropped++;
      return;
    }
  if (behind && observer->behavior == NC_SUSPENSION_COALESCE && observer->queued != NULL)
    {
      item_replace_message (observer->queued, message);
      registry->stats.coalesced++;
      return;
    }
  if (client_push (client, item_new (observer, message)) &&
      client->touched != registry->stats.posts)
    {
      client->touched = registry->stats.posts;
      g_ptr_array_add (registry->clients, client);  /* flushed below */
    }
}

static gboolean
observer_matches (Observer *observer, const gchar *sender)
{
  return observer->sender == NULL ||
         (sender != NULL && strcmp (observer->sender, sender) == 0);
}

guint32
dist_client_post (DistClient *client, const gchar *name, const gchar *sender,
                  GVariant *user_info, guint32 flags, gchar **why)
{
  DistRegistry *registry = client->registry;
  GPtrArray *lists[2];
  g_autoptr(GBytes) message = NULL;
  guint n_clients = registry->clients->len;

  if (name[0] == '\0' || !name_is_valid (name) || !name_is_valid (sender))
    {
      *why = g_strdup ("a posted name is empty or too long, or its sender too long");
      return 0;
    }
  if (g_variant_get_size (user_info) > NC_DIST_USER_INFO_MAX)
    {
      *why = g_strdup_printf ("a post's user info is over %u bytes", NC_DIST_USER_INFO_MAX);
      return 0;
    }
  if ((flags & ~(guint32) NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY) != 0)
    {
      *why = g_strdup_printf ("unknown post flags 0x%x", flags);
      return 0;
    }
  if (sender[0] == '\0')
    sender = NULL;

  registry->stats.posts++;
  lists[0] = registry_list (registry, name, FALSE);
  lists[1] = registry->any_name;
  /* Clients touched by this post are appended to @clients past
   * @n_clients, then flushed once each. */
  for (guint l = 0; l < G_N_ELEMENTS (lists); l++)
    for (guint i = 0; lists[l] != NULL && i < lists[l]->len; i++)
      {
        Observer *observer = lists[l]->pdata[i];

        if (!observer_matches (observer, sender))
          continue;
        if (message == NULL)
          {
            g_autoptr(GVariant) v =
              g_variant_ref_sink (g_variant_new ("(ss@a{sv})", name, sender ? sender : "",
                                                 user_info));
            message = g_variant_get_data_as_bytes (v);
          }
        deliver (registry, observer, message, flags);
      }
  for (guint i = n_clients; i < registry->clients->len; i++)
    notifyd_outbox_flush (((DistClient *) registry->clients->pdata[i])->outbox);
  g_ptr_array_set_size (registry->clients, n_clients);
  return NC_NOTIFY_STATUS_OK;
}
