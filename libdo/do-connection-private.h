/* Porter — libdo: what connections, invocations and proxies share.
 * Private: never installed.
 *
 * Lock order: connection->lock, then refs_lock, then the channel's send
 * lock.  Nothing is called with refs_lock held.  Callbacks,
 * task completions and user handlers never run with @lock held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-connection.h"
#include "do-object.h"
#include "do-channel-private.h"

G_BEGIN_DECLS

#define DO_DEFAULT_TIMEOUT_MS 25000
#define DO_ROOT_OBJECT_ID 1

typedef struct _ConnSource ConnSource;

typedef struct {
  guint32 serial;
  GThread *waiter;       /* sync caller, or NULL */
  GTask *task;           /* async caller, or NULL */
  GSource *timeout_source;
  GSource *cancel_source;
  gboolean done;
  DoMessage *reply;      /* REPLY or ERROR */
  GError *error;         /* or a local failure */
} Pending;

struct _DoConnection {
  gint ref_count;        /* (atomic) */
  gboolean is_vending;
  gboolean has_reader;   /* set before sharing: a reader thread reads it */
  GMainContext *context; /* dispatch context, thread-default at creation */
  DoChannel *channel;    /* peer socket, or the port's receive end */
  ConnSource *source;
  int wake_fd;           /* eventfd: wakes a sync reader polling @channel */

  GMutex lock;
  GCond cond;
  guint n_waiters;       /* protected by @lock: threads waiting on @cond */
  guint n_serving;       /* protected by @lock: threads waiting in reply
                          * mode while another reads (do-connection.c) */
  gboolean alive;        /* protected by @lock */
  GError *death;         /* protected by @lock */
  gboolean reading;      /* protected by @lock: a sync caller polls */
  GHashTable *pending;   /* protected by @lock: serial -> Pending */
  GQueue incoming;       /* protected by @lock: DoMessage calls */
  GQueue reader_calls;   /* protected by @lock: those the reader thread
                          * runs (has_reader) */
  gsize incoming_bytes;  /* protected by @lock: both queues' bodies' size */
  DoObject *root;        /* protected by @lock */
  guint32 next_serial;   /* (atomic) */

  gint request_timeout_ms;
  gint reply_timeout_ms;
  DoCredentials peer_creds;

  /* Objects passed by reference (do-objref.c). */
  GMutex refs_lock;
  GHashTable *exports;   /* protected by @refs_lock: id -> Export */
  GHashTable *exported;  /* protected by @refs_lock: DoObject -> Export */
  guint64 next_export_id; /* protected by @refs_lock */
  GHashTable *imports;   /* protected by @refs_lock: id -> proxy (weak) */
  GArray *releases;      /* protected by @refs_lock: Release to send */
  gint n_releases;       /* (atomic): @releases->len, read without the lock */

  DoConnectionDiedFunc died_func;
  gpointer died_data;
  GDestroyNotify died_destroy;

  /* vending side */
  int port_send_fd;
  DoConnection *broker;  /* holds our registered name */
  gchar *name;           /* that name */
  GPtrArray *clients;    /* protected by @lock: accepted peer connections */
  DoConnection *vendor;  /* peer: the vending connection that accepted us,
                          * cleared under @lock when it goes away */
  DoAuthorizeFunc authorize;
  gpointer authorize_data;
  GDestroyNotify authorize_destroy;
};


struct _DoInvocation {
  gint ref_count;
  DoConnection *connection;
  DoMessage *call;
  GUnixFDList *fd_list;
  gboolean returned;
};

/* do-connection.c */
gint64 _do_deadline_after (gint timeout_ms);
gint _do_effective_timeout (gint timeout_ms, gint fallback);
gboolean _do_take_fd_list (DoMessage *msg, GUnixFDList *fd_list, GError **error);
gboolean _do_connection_send_call (DoConnection *connection, DoMessage *msg,
                                   Pending *p, GError **error);
void _do_connection_wait_pending (DoConnection *connection, Pending *p,
                                  gint64 deadline, GCancellable *cancellable);
void _do_connection_complete_pending (DoConnection *connection, Pending *p);

/* do-objref.c: objects passed by reference (`o`), DESIGN.md §5. */
void _do_connection_init_refs (DoConnection *connection);
void _do_connection_clear_refs (DoConnection *connection);
DoObject *_do_connection_get_proxy (DoConnection *connection, guint64 object_id);
void _do_connection_forget_proxy (DoConnection *connection, DoObject *proxy);
DoObject *_do_connection_lookup_export (DoConnection *connection, guint64 object_id);
gboolean _do_connection_export_refs (DoConnection *connection, DoMessage *msg,
                                     GError **error);
/* Undoes _do_connection_export_refs() for a message that was not sent. */
void _do_connection_unexport_refs (DoConnection *connection, DoMessage *msg);
gboolean _do_connection_import_refs (DoConnection *connection, DoMessage *msg,
                                     GError **error);
gboolean _do_connection_handle_release (DoConnection *connection, DoMessage *msg,
                                        GError **error);
void _do_connection_flush_releases (DoConnection *connection);

/* do-invocation.c */
DoInvocation *_do_invocation_new (DoConnection *connection, DoMessage *call);

G_END_DECLS
