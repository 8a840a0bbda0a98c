/* Porter — porter-broker: the name registry (DESIGN.md §6).
 *
 * Holds send rights by name.  Each accepted client socket becomes a
 * DoConnection served the registry's org.porter.Broker object; a name
 * belongs to the connection that registered it and goes away when that
 * connection dies, when its owner unregisters it, or when the port it
 * names hangs up (its receive right was closed).
 *
 * Thread rules: a registry lives on one GMainContext, the thread-default one
 * when it was made; call it only from there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BrokerRegistry BrokerRegistry;

/* Limits a client cannot go past (LIMITS_EXCEEDED). */
#define BROKER_MAX_NAMES_PER_CLIENT 256
#define BROKER_MAX_WAITERS_PER_CLIENT 256
#define BROKER_MAX_CLIENTS 4096

BrokerRegistry *broker_registry_new (GError **error);
void broker_registry_free (BrokerRegistry *registry);

/* Takes @fd, an accepted client socket. */
gboolean broker_registry_add_client (BrokerRegistry *registry,
                                     int fd,
                                     GError **error);

guint broker_registry_get_n_clients (BrokerRegistry *registry);
guint broker_registry_get_n_names (BrokerRegistry *registry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BrokerRegistry, broker_registry_free)

G_END_DECLS
