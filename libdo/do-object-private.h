/* Porter — libdo: what connections need from objects.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-object.h"

G_BEGIN_DECLS

/* One object, local or remote.  A local object has interfaces and
 * handlers; a proxy has a connection and the peer's id for the object. */
struct _DoObject {
  gint ref_count;             /* (atomic) */
  GData *data;                /* do_object_set_data_full(); GData locks itself */
  gchar *path;                /* set once, under the path registry's lock */
  GPtrArray *interfaces;      /* local: DoObjectInterface; fixed once shared */
  gint flags;                 /* (atomic) DoObjectFlags */
  DoConnection *connection;   /* proxy: the connection it calls through */
  guint64 object_id;          /* proxy: the peer's id for the object */
  guint64 received;           /* proxy: references received; protected by
                               * the connection's refs_lock */
};

GDBusInterfaceInfo *_do_interface_info_new_for_xml (const gchar  *xml,
                                                    const gchar  *interface_name,
                                                    GError      **error);

/* A new reference if @object is not already being finalized, else NULL.
 * For tables that hold objects weakly. */
DoObject *_do_object_try_ref (DoObject *object);

/* A proxy for object @object_id of @connection's peer (transfer full). */
DoObject *_do_object_new_proxy (DoConnection *connection, guint64 object_id);

/* Checks the call against the object's interfaces and runs the handler.
 * Returns the reply (transfer full, its type checked against the method's
 * out-signature), or NULL with @error, or NULL without @error when the
 * handler kept @invocation to reply later. */
GVariant *_do_object_dispatch (DoObject      *object,
                               DoInvocation  *invocation,
                               const gchar   *interface,
                               const gchar   *method,
                               GVariant      *parameters,
                               GError       **error);

G_END_DECLS
