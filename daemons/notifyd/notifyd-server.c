/* Porter — porter-notifyd: the notify(3) server.  See notifyd-server.h
 * and, for the protocol, libnotecenter/nc-notify-private.h.
 *
 * Counter slots.  The page has n_slots guint64 slots; slot 0 is the
 * generation.  A name takes a slot while anybody is registered for it and
 * gives it back (to a free list) when the last registration goes.  When
 * every slot is taken, further names share one chosen by hashing the name:
 * a post of either bumps both, so notify_check() may then report a false
 * positive (never a false negative), as Apple's 1024-slot page does for
 * every name past its size.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notifyd-server.h"
#include "notifyd-dist.h"
#include "notifyd-outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixfdlist.h>

#include "do-broker-private.h"
#include "do-connection.h"
#include "do-error.h"
#include "do-object.h"
#include "libnotecenter/nc-notify.h"
#include "libnotecenter/nc-notify-private.h"

typedef struct _Name Name;
typedef struct _Client Client;

typedef struct {
  Client *client;
  Name *name;
  guint32 id;
  gboolean deliver;
  gboolean queued;        /* in client->outbox */
} Reg;

struct _Name {
  gchar *name;
  guint32 slot;           /* 0 while nobody is registered */
  guint64 state;
  GPtrArray *regs;        /* Reg *, not owned */
};

struct _Client {
  NotifydServer *server;
  DoConnection *connection;
  DoCredentials creds;
  NotifydOutbox *outbox;  /* NULL before a hello; Reg * (notify clients) or
                           * distributed deliveries waiting to be written */
  DistClient *dist;       /* (nullable) a distributed center client */
  GHashTable *regs;       /* id -> Reg *, owned */
  gboolean closing;
};

struct _NotifydServer {
  NotifydOptions options;
  NotifydAccess *access;
  DoObject *root;
  GHashTable *clients;    /* DoConnection * -> Client *, owned */
  GHashTable *names;      /* name -> Name *, owned */
  DistRegistry *dist;
  int memfd;              /* read-write, sealed */
  int ro_fd;              /* what clients get */
  guint64 *page;
  gsize page_size;
  guint32 *slot_users;    /* names per slot */
  GArray *free_slots;     /* guint32 stack */
  guint64 generation;
  guint64 n_disconnected;
};

void
notifyd_options_init (NotifydOptions *options)
{
  memset (options, 0, sizeof *options);
  options->n_slots = NC_NOTIFY_DEFAULT_SLOTS;
  options->max_queue = NOTIFYD_DEFAULT_MAX_QUEUE;
  options->max_registrations = NOTIFYD_DEFAULT_MAX_REGISTRATIONS;
  options->max_names = NOTIFYD_DEFAULT_MAX_NAMES;
}

/* -------------------------------------------------------------- slots */

static guint32
slot_take (NotifydServer *server, const gchar *name)
{
  guint32 slot;

  if (server->free_slots->len > 0)
    {
      slot = g_array_index (server->free_slots, guint32, server->free_slots->len - 1);
      g_array_set_size (server->free_slots, server->free_slots->len - 1);
    }
  else
    {
      /* Full: share a slot (false positives, see the top of the file). */
      slot = 1 + g_str_hash (name) % (server->options.n_slots - 1);
      g_debug ("No free counter slot: '%s' shares slot %u", name, slot);
    }
  server->slot_users[slot]++;
  return slot;
}

static void
slot_give (NotifydServer *server, guint32 slot)
{
  g_assert (slot > 0 && slot < server->options.n_slots);
  g_assert (server->slot_users[slot] > 0);
  if (--server->slot_users[slot] == 0)
    g_array_append_val (server->free_slots, slot);
}

static void
slot_bump (NotifydServer *server, guint32 slot)
{
  __atomic_fetch_add (&server->page[slot], 1, __ATOMIC_RELEASE);
}

/* -------------------------------------------------------------- names */

static void
name_free (gpointer data)
{
  Name *name = data;

  g_ptr_array_unref (name->regs);
  g_free (name->name);
  g_free (name);
}

static Name *
name_lookup (NotifydServer *server, const gchar *name, gboolean create)
{
  Name *n = g_hash_table_lookup (server->names, name);

  if (n != NULL || !create)
    return n;
  if (g_hash_table_size (server->names) >= server->options.max_names)
    return NULL;
  n = g_new0 (Name, 1);
  n->name = g_strdup (name);
  n->regs = g_ptr_array_new ();
  g_hash_table_insert (server->names, n->name, n);
  return n;
}

/* Forgets @n if nothing refers to it any more. */
static void
name_maybe_drop (NotifydServer *server, Name *n)
{
  if (n->regs->len == 0 && n->slot != 0)
    {
      slot_give (server, n->slot);
      n->slot = 0;
    }
  if (n->regs->len == 0 && n->state == 0)
    g_hash_table_remove (server->names, n->name);
}

static gboolean
name_is_valid (const gchar *name)
{
  gsize len = strlen (name);
  return len > 0 && len <= NC_NOTIFY_NAME_MAX;
}

/* -------------------------------------------------------------- clients */

static gboolean
close_later (gpointer data)
{
  do_connection_close (data);
  return G_SOURCE_REMOVE;
}

/* Closes the client's connection from an idle: closing it here could free
 * @client at once (its died callback runs as soon as we own the context),
 * under a caller still using it. */
static void
client_disconnect (Client *client, const gchar *why)
{
  if (client->closing)
    return;
  client->closing = TRUE;
  client->server->n_disconnected++;
  g_message ("Disconnecting client pid %d (uid %u): %s", client->creds.pid,
             client->creds.uid, why);
  g_idle_add_full (G_PRIORITY_DEFAULT, close_later,
                   do_connection_ref (client->connection),
                   (GDestroyNotify) do_connection_unref);
}

static void
outbox_fail (const gchar *why, gpointer user_data)
{
  client_disconnect (user_data, why);
}

/* Notify clients: a packet is up to NC_NOTIFY_MAX_BATCH registration ids. */
static guint
reg_pack (GQueue *items, guint32 *scratch, struct iovec *iov, guint *n_iov,
          gpointer user_data)
{
  guint n = 0;

  G_STATIC_ASSERT (NC_NOTIFY_MAX_BATCH * sizeof (guint32) <= NOTIFYD_OUTBOX_SCRATCH);
  for (GList *l = items->head; l != NULL && n < NC_NOTIFY_MAX_BATCH; l = l->next)
    scratch[n++] = ((Reg *) l->data)->id;
  iov[0].iov_base = scratch;
  iov[0].iov_len = n * sizeof (guint32);
  *n_iov = 1;
  return n;
}

static void
reg_release (gpointer item, gboolean sent, gpointer user_data)
{
  ((Reg *) item)->queued = FALSE;
}

static const NotifydOutboxFuncs reg_outbox_funcs = { reg_pack, reg_release, outbox_fail };

static void
client_queue (Client *client, Reg *reg)
{
  if (reg->queued || client->closing)
    return;  /* coalesced */
  if (notifyd_outbox_push (client->outbox, reg))
    reg->queued = TRUE;
}

static void
reg_remove (Client *client, Reg *reg)
{
  NotifydServer *server = client->server;

  if (reg->queued)
    notifyd_outbox_remove (client->outbox, reg);
  g_ptr_array_remove_fast (reg->name->regs, reg);
  name_maybe_drop (server, reg->name);
  g_hash_table_remove (client->regs, GUINT_TO_POINTER (reg->id));
}

static void
client_free (Client *client)
{
  GHashTableIter iter;
  gpointer value;

  /* First: it still points at the registrations. */
  g_clear_pointer (&client->outbox, notifyd_outbox_free);
  g_clear_pointer (&client->dist, dist_client_free);
  g_hash_table_iter_init (&iter, client->regs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Reg *reg = value;
      g_ptr_array_remove_fast (reg->name->regs, reg);
      name_maybe_drop (client->server, reg->name);
    }
  g_hash_table_unref (client->regs);
  do_connection_unref (client->connection);
  g_free (client);
}

static void
client_died (DoConnection *connection, const GError *error, gpointer user_data)
{
  Client *client = user_data;

  g_debug ("Client pid %d gone: %s", client->creds.pid, error->message);
  g_hash_table_remove (client->server->clients, connection);
}

/* -------------------------------------------------------------- methods */

static gboolean
allowed (Client *client, const gchar *name, NotifydAccessMode mode)
{
  return notifyd_access_check (client->server->access, name, client->creds.uid,
                               client->creds.gid, mode);
}

/* Takes the delivery socket a hello passes (either kind: once). */
static guint32
client_take_outbox (Client *client, GUnixFDList *fds, gint32 index,
                    const NotifydOutboxFuncs *funcs)
{
  int fd;

  if (client->outbox != NULL)
    return NC_NOTIFY_STATUS_INVALID_REQUEST;
  if (fds == NULL || index < 0 || index >= g_unix_fd_list_get_length (fds))
    return NC_NOTIFY_STATUS_INVALID_FILE;
  fd = g_unix_fd_list_get (fds, index, NULL);
  client->outbox = notifyd_outbox_new (fd, client->server->options.max_queue, funcs, client);
  if (client->outbox == NULL)
    {
      if (fd >= 0)
        close (fd);
      return NC_NOTIFY_STATUS_INVALID_FILE;
    }
  return NC_NOTIFY_STATUS_OK;
}

static GVariant *
handle_hello (Client *client, DoInvocation *invocation, GVariant *parameters)
{
  NotifydServer *server = client->server;
  GUnixFDList *fds = do_invocation_get_fd_list (invocation);
  g_autoptr(GUnixFDList) out_fds = NULL;
  gint32 index;
  guint32 status;

  g_variant_get (parameters, "(h)", &index);
  status = client_take_outbox (client, fds, index, &reg_outbox_funcs);
  if (status != NC_NOTIFY_STATUS_OK)
    return g_variant_new ("(uhtu)", status, -1, G_GUINT64_CONSTANT (0), 0);

  out_fds = g_unix_fd_list_new ();
  index = g_unix_fd_list_append (out_fds, server->ro_fd, NULL);
  if (index < 0)
    return g_variant_new ("(uhtu)", NC_NOTIFY_STATUS_FAILED, -1, G_GUINT64_CONSTANT (0), 0);
  do_invocation_return_value_with_fds (invocation,
                                       g_variant_new ("(uhtu)", NC_NOTIFY_STATUS_OK, index,
                                                      server->generation,
                                                      server->options.n_slots),
                                       out_fds);
  return NULL;
}

static GVariant *
handle_register (Client *client, GVariant *parameters)
{
  NotifydServer *server = client->server;
  const gchar *name;
  guint32 id;
  gboolean deliver;
  Reg *reg;
  Name *n;

  g_variant_get (parameters, "(&sub)", &name, &id, &deliver);
  if (!name_is_valid (name))
    return g_variant_new ("(uu)", NC_NOTIFY_STATUS_INVALID_NAME, 0);
  if (id == 0 || client->outbox == NULL || client->dist != NULL)
    return g_variant_new ("(uu)", NC_NOTIFY_STATUS_INVALID_REQUEST, 0);
  if (!allowed (client, name, NOTIFYD_ACCESS_READ))
    return g_variant_new ("(uu)", NC_NOTIFY_STATUS_NOT_AUTHORIZED, 0);

  reg = g_hash_table_lookup (client->regs, GUINT_TO_POINTER (id));
  if (reg != NULL)
    {
      if (strcmp (reg->name->name, name) != 0)
        return g_variant_new ("(uu)", NC_NOTIFY_STATUS_INVALID_REQUEST, 0);
      reg->deliver = deliver;
      return g_variant_new ("(uu)", NC_NOTIFY_STATUS_OK, reg->name->slot);
    }
  if (g_hash_table_size (client->regs) >= server->options.max_registrations)
    {
      g_message ("Client pid %d: over %u registrations; refusing more",
                 client->creds.pid, server->options.max_registrations);
      return g_variant_new ("(uu)", NC_NOTIFY_STATUS_FAILED, 0);
    }
  n = name_lookup (server, name, TRUE);
  if (n == NULL)
    {
      g_message ("Over %u names; refusing '%s'", server->options.max_names, name);
      return g_variant_new ("(uu)", NC_NOTIFY_STATUS_FAILED, 0);
    }
  if (n->slot == 0)
    n->slot = slot_take (server, name);

  reg = g_new0 (Reg, 1);
  reg->client = client;
  reg->name = n;
  reg->id = id;
  reg->deliver = deliver;
  g_hash_table_insert (client->regs, GUINT_TO_POINTER (id), reg);
  g_ptr_array_add (n->regs, reg);
  return g_variant_new ("(uu)", NC_NOTIFY_STATUS_OK, n->slot);
}

static GVariant *
handle_cancel (Client *client, GVariant *parameters)
{
  guint32 id;
  Reg *reg;

  g_variant_get (parameters, "(u)", &id);
  reg = g_hash_table_lookup (client->regs, GUINT_TO_POINTER (id));
  if (reg == NULL)
    return g_variant_new ("(u)", NC_NOTIFY_STATUS_INVALID_TOKEN);
  reg_remove (client, reg);
  return g_variant_new ("(u)", NC_NOTIFY_STATUS_OK);
}

static GVariant *
handle_post (Client *client, GVariant *parameters)
{
  NotifydServer *server = client->server;
  g_autoptr(GPtrArray) touched = NULL;
  const gchar *name;
  Name *n;

  g_variant_get (parameters, "(&s)", &name);
  if (!name_is_valid (name))
    return g_variant_new ("(u)", NC_NOTIFY_STATUS_INVALID_NAME);
  if (!allowed (client, name, NOTIFYD_ACCESS_WRITE))
    return g_variant_new ("(u)", NC_NOTIFY_STATUS_NOT_AUTHORIZED);

  n = name_lookup (server, name, FALSE);
  if (n == NULL || n->slot == 0)
    return g_variant_new ("(u)", NC_NOTIFY_STATUS_OK);  /* nobody listens */

  slot_bump (server, n->slot);
  touched = g_ptr_array_new ();
  for (guint i = 0; i < n->regs->len; i++)
    {
      Reg *reg = n->regs->pdata[i];

      if (!reg->deliver)
        continue;
      client_queue (reg->client, reg);
      if (reg->queued && !g_ptr_array_find (touched, reg->client, NULL))
        g_ptr_array_add (touched, reg->client);
    }
  for (guint i = 0; i < touched->len; i++)
    notifyd_outbox_flush (((Client *) touched->pdata[i])->outbox);
  return g_variant_new ("(u)", NC_NOTIFY_STATUS_OK);
}

static GVariant *
handle_get_state (Client *client, GVariant *parameters)
{
  const gchar *name;
  Name *n;

  g_variant_get (parameters, "(&s)", &name);
  if (!name_is_valid (name))
    return g_variant_new ("(ut)", NC_NOTIFY_STATUS_INVALID_NAME, G_GUINT64_CONSTANT (0));
  if (!allowed (client, name, NOTIFYD_ACCESS_READ))
    return g_variant_new ("(ut)", NC_NOTIFY_STATUS_NOT_AUTHORIZED, G_GUINT64_CONSTANT (0));
  n = name_lookup (client->server, name, FALSE);
  return g_variant_new ("(ut)", NC_NOTIFY_STATUS_OK, n ? n->state : G_GUINT64_CONSTANT (0));
}

static GVariant *
handle_set_state (Client *client, GVariant *parameters)
{
  const gchar *name;
  guint64 state;
  Name *n;

  g_variant_get (parameters, "(&st)", &name, &state);
  if (!name_is_valid (name))
    return g_variant_new ("(u)", NC_NOTIFY_STATUS_INVALID_NAME);
  if (!allowed (client, name, NOTIFYD_ACCESS_WRITE))
    return g_variant_new ("(u)", NC_NOTIFY_STATUS_NOT_AUTHORIZED);
  n = name_lookup (client->server, name, state != 0);
  if (n == NULL)
    return g_variant_new ("(u)", state != 0 ? NC_NOTIFY_STATUS_FAILED : NC_NOTIFY_STATUS_OK);
  n->state = state;
  name_maybe_drop (client->server, n);
  return g_variant_new ("(u)", NC_NOTIFY_STATUS_OK);
}

/* ------------------------------------------------- distributed center */

static const NotifydOutboxFuncs dist_outbox_funcs = {
  dist_outbox_pack, dist_outbox_release, outbox_fail
};

static GVariant *
handle_dist_hello (Client *client, DoInvocation *invocation, GVariant *parameters)
{
  gint32 index;
  guint32 status;

  g_variant_get (parameters, "(h)", &index);
  status = client_take_outbox (client, do_invocation_get_fd_list (invocation), index,
                               &dist_outbox_funcs);
  if (status == NC_NOTIFY_STATUS_OK)
    client->dist = dist_client_new (client->server->dist, client->outbox,
                                    client->server->options.max_registrations,
                                    client->creds.pid);
  return g_variant_new ("(u)", status);
}

/* Every distributed request but DistHello: from a client that said
 * DistHello, else the client is broken or hostile. */
static GVariant *
handle_dist (Client *client, DoInvocation *invocation, const gchar *method,
             GVariant *parameters, GError **error)
{
  g_autofree gchar *why = NULL;
  guint32 status = 0;

  if (client->dist == NULL)
    why = g_strdup_printf ("%s before DistHello", method);
  else if (strcmp (method, "DistAddObserver") == 0)
    {
      const gchar *name, *sender;
      guint32 id, behavior;

      g_variant_get (parameters, "(u&s&su)", &id, &name, &sender, &behavior);
      status = dist_client_add_observer (client->dist, id, name, sender, behavior, &why);
    }
  else if (strcmp (method, "DistRemoveObserver") == 0)
    {
      guint32 id;

      g_variant_get (parameters, "(u)", &id);
      status = dist_client_remove_observer (client->dist, id, &why);
    }
  else if (strcmp (method, "DistSetSuspended") == 0)
    {
      gboolean suspended;

      g_variant_get (parameters, "(b)", &suspended);
      status = dist_client_set_suspended (client->dist, suspended);
    }
  else /* DistPost */
    {
      const gchar *name, *sender;
      g_autoptr(GVariant) user_info = NULL;
      guint32 flags;

      g_variant_get (parameters, "(&s&s@a{sv}u)", &name, &sender, &user_info, &flags);
      status = dist_client_post (client->dist, name, sender, user_info, flags, &why);
    }
  if (why != NULL)
    {
      client_disconnect (client, why);
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT, "%s", why);
      return NULL;
    }
  if (do_invocation_is_oneway (invocation))
    return g_variant_new ("()");
  return g_variant_new ("(u)", status);
}

static GVariant *
handle_stats (Client *client)
{
  NotifydServer *server = client->server;
  GVariantBuilder builder;
  DistStats stats;
  guint queued = 0;
  GHashTableIter iter;
  gpointer value;

  dist_registry_get_stats (server->dist, &stats);
  g_hash_table_iter_init (&iter, server->clients);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Client *) value)->outbox != NULL && ((Client *) value)->dist == NULL)
      queued += notifyd_outbox_get_length (((Client *) value)->outbox);
  queued += stats.queued;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "clients",
                         g_variant_new_uint32 (g_hash_table_size (server->clients)));
  g_variant_builder_add (&builder, "{sv}", "names",
                         g_variant_new_uint32 (g_hash_table_size (server->names)));
  g_variant_builder_add (&builder, "{sv}", "observers", g_variant_new_uint32 (stats.observers));
  g_variant_builder_add (&builder, "{sv}", "queued", g_variant_new_uint32 (queued));
  g_variant_builder_add (&builder, "{sv}", "max-queue",
                         g_variant_new_uint32 (server->options.max_queue));
  g_variant_builder_add (&builder, "{sv}", "posts", g_variant_new_uint64 (stats.posts));
  g_variant_builder_add (&builder, "{sv}", "dropped", g_variant_new_uint64 (stats.dropped));
  g_variant_builder_add (&builder, "{sv}", "coalesced", g_variant_new_uint64 (stats.coalesced));
  g_variant_builder_add (&builder, "{sv}", "disconnected",
                         g_variant_new_uint64 (server->n_disconnected));
  return g_variant_new ("(a{sv})", &builder);
}

static GVariant *
notify_method (DoObject *object,
               DoInvocation *invocation,
               const gchar *method,
               GVariant *parameters,
               gpointer user_data,
               GError **error)
{
  NotifydServer *server = user_data;
  Client *client = g_hash_table_lookup (server->clients,
                                        do_invocation_get_connection (invocation));

  if (client == NULL || client->closing)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_CONNECTION_DIED, "client gone");
      return NULL;
    }
  /* The arguments already match the method's signature (libdo checks). */
  if (strcmp (method, "Hello") == 0)
    return handle_hello (client, invocation, parameters);
  if (strcmp (method, "Register") == 0)
    return handle_register (client, parameters);
  if (strcmp (method, "Cancel") == 0)
    return handle_cancel (client, parameters);
  if (strcmp (method, "Post") == 0)
    return handle_post (client, parameters);
  if (strcmp (method, "GetState") == 0)
    return handle_get_state (client, parameters);
  if (strcmp (method, "SetState") == 0)
    return handle_set_state (client, parameters);
  if (strcmp (method, "Stats") == 0)
    return handle_stats (client);
  if (strcmp (method, "DistHello") == 0)
    return handle_dist_hello (client, invocation, parameters);
  if (g_str_has_prefix (method, "Dist"))
    return handle_dist (client, invocation, method, parameters, error);
  g_set_error (error, DO_ERROR, DO_ERROR_UNKNOWN_METHOD, "no method %s", method);
  return NULL;
}

/* -------------------------------------------------------------- server */

static gboolean
make_page (NotifydServer *server, GError **error)
{
  g_autofree gchar *proc_path = NULL;
  gsize size = (gsize) server->options.n_slots * sizeof (guint64);
  long pagesize = sysconf (_SC_PAGESIZE);
  guint64 generation = 0;

  server->page_size = (size + pagesize - 1) / pagesize * pagesize;
  server->memfd = memfd_create ("porter-notifyd-counters", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (server->memfd < 0 || ftruncate (server->memfd, server->page_size) < 0)
    goto fail;
  server->page = mmap (NULL, server->page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       server->memfd, 0);
  if (server->page == MAP_FAILED)
    {
      server->page = NULL;
      goto fail;
    }
  while (generation == 0)
    if (getrandom (&generation, sizeof generation, 0) != sizeof generation)
      generation = (guint64) g_random_int () << 32 | g_random_int ();
  server->generation = generation;
  server->page[0] = generation;

  /* Nobody else may ever write it: no new writable mapping, no write(),
   * no resizing (our own mapping stays writable). */
  if (fcntl (server->memfd, F_ADD_SEALS,
             F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
    goto fail;
  /* And clients get a read-only open file, so even mapping it for reading
   * is all they can do. */
  proc_path = g_strdup_printf ("/proc/self/fd/%d", server->memfd);
  server->ro_fd = open (proc_path, O_RDONLY | O_CLOEXEC);
  if (server->ro_fd < 0)
    server->ro_fd = fcntl (server->memfd, F_DUPFD_CLOEXEC, 3);  /* the seals still hold */
  if (server->ro_fd < 0)
    goto fail;
  return TRUE;

fail:
  {
    int errsv = errno;
    g_set_error (error, DO_ERROR, DO_ERROR_FAILED, "cannot make the counter page: %s",
                 g_strerror (errsv));
  }
  return FALSE;
}

NotifydServer *
notifyd_server_new (const NotifydOptions *options, NotifydAccess *access, GError **error)
{
  g_autoptr(NotifydServer) server = g_new0 (NotifydServer, 1);

  server->options = *options;
  server->access = access;
  server->memfd = -1;
  server->ro_fd = -1;
  server->clients = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) client_free);
  server->names = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, name_free);
  server->free_slots = g_array_new (FALSE, FALSE, sizeof (guint32));
  server->dist = dist_registry_new ();

  if (options->n_slots < 2 || options->n_slots > (1u << 24) || options->max_queue < 1)
    {
      g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                   "the slot count must be 2 to %u and the queue at least 1", 1u << 24);
      return NULL;
    }
  server->slot_users = g_new0 (guint32, options->n_slots);
  for (guint32 slot = options->n_slots - 1; slot >= 1; slot--)
    g_array_append_val (server->free_slots, slot);
  if (!make_page (server, error))
    return NULL;

  server->root = do_object_new_for_xml (NC_NOTIFY_INTERFACE_XML, NC_NOTIFY_INTERFACE,
                                        notify_method, server, NULL, error);
  if (server->root == NULL)
    return NULL;
  return g_steal_pointer (&server);
}

void
notifyd_server_free (NotifydServer *server)
{
  if (server == NULL)
    return;
  if (server->clients != NULL)
    g_hash_table_unref (server->clients);
  if (server->names != NULL)
    g_hash_table_unref (server->names);
  g_clear_pointer (&server->dist, dist_registry_free);
  g_clear_pointer (&server->root, do_object_unref);
  if (server->page != NULL)
    munmap (server->page, server->page_size);
  if (server->memfd >= 0)
    close (server->memfd);
  if (server->ro_fd >= 0)
    close (server->ro_fd);
  g_clear_pointer (&server->free_slots, g_array_unref);
  g_free (server->slot_users);
  notifyd_access_free (server->access);
  g_free (server);
}

gboolean
notifyd_server_add_client (NotifydServer *server, int fd, GError **error)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  DoConnection *connection;
  Client *client;

  g_return_val_if_fail (server != NULL, FALSE);
  g_return_val_if_fail (fd >= 0, FALSE);

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    {
      int errsv = errno;
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_FAILED,
                   "cannot read a client's credentials: %s", g_strerror (errsv));
      return FALSE;
    }
  if (!server->options.system && cred.uid != geteuid () && cred.uid != 0)
    {
      close (fd);
      g_set_error (error, DO_ERROR, DO_ERROR_ACCESS_DENIED,
                   "refused a client of uid %u (pid %d): this notifyd serves uid %u",
                   (guint) cred.uid, (int) cred.pid, (guint) geteuid ());
      return FALSE;
    }

  connection = _do_connection_new_for_socket (fd, server->root, error);
  if (connection == NULL)
    return FALSE;
  /* Never wait for room to reply: a client that does not read loses its
   * replies, the server goes on. */
  do_connection_set_timeouts (connection, 0, -1);

  client = g_new0 (Client, 1);
  client->server = server;
  client->connection = connection;
  client->creds.pid = cred.pid;
  client->creds.uid = cred.uid;
  client->creds.gid = cred.gid;
  client->regs = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_hash_table_insert (server->clients, connection, client);
  do_connection_set_died_func (connection, client_died, client, NULL);
  g_debug ("Client pid %d (uid %u) connected", (int) cred.pid, (guint) cred.uid);
  return TRUE;
}

guint
notifyd_server_get_n_clients (NotifydServer *server)
{
  return g_hash_table_size (server->clients);
}

guint
notifyd_server_get_n_names (NotifydServer *server)
{
  return g_hash_table_size (server->names);
}

guint64
notifyd_server_get_generation (NotifydServer *server)
{
  return server->generation;
}
