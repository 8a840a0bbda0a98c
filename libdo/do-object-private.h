/* Porter — libdo: what the connection needs from objects.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-object.h"

G_BEGIN_DECLS

/* Checks the call against the object's interface and runs its handler.
 * Returns the reply (transfer full, its type checked against the method's
 * out-signature), or NULL with @error, or NULL without @error when the
 * handler kept @invocation to reply later. */
GVariant *_do_object_dispatch (DoObject      *object,
                               DoInvocation  *invocation,
                               const gchar   *interface,
                               const gchar   *method,
                               GVariant      *parameters,
                               GError       **error);
gboolean _do_object_method_is_oneway (DoObject *object, const gchar *method);

G_END_DECLS
