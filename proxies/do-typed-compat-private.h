/* Porter — typed interfaces: stand-ins for libdo functions not there yet.
 *
 * The typed layer is written against these libdo functions:
 *
 *   gboolean     do_object_is_proxy (DoObject *object);
 *   gpointer     do_object_get_data (DoObject *object, const gchar *key);
 *   void         do_object_set_data_full (DoObject *object, const gchar *key,
 *                                         gpointer data, GDestroyNotify destroy);
 *   const gchar *do_object_get_path (DoObject *object);
 *   DoObject    *do_object_lookup_path (const gchar *path);
 *
 * with DoProxy the same type as DoObject.  meson defines DO_HAVE_* for
 * those libdo declares; for the others this file maps the name to a private
 * stand-in (do-typed-compat.c) with these limits, gone once libdo has them:
 *
 * - is_proxy: an object is a proxy unless it is a typed skeleton, so a
 *   plain do_object_new() object must not be given to do_object_get_typed();
 * - object data is a process-wide table; a proxy's entry keeps a reference
 *   on it (no hook tells us it is finalized), so typed proxies live until
 *   the process exits;
 * - object paths: none, so `o` arguments fail with an error.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "do-types.h"
#include "do-object.h"

G_BEGIN_DECLS

#ifndef DO_HAVE_OBJECT_IS_PROXY
#define do_object_is_proxy _do_typed_compat_is_proxy
gboolean _do_typed_compat_is_proxy (DoObject *object);
#endif

#ifndef DO_HAVE_OBJECT_DATA
#define do_object_get_data _do_typed_compat_get_data
#define do_object_set_data_full _do_typed_compat_set_data_full
gpointer _do_typed_compat_get_data (DoObject *object, const gchar *key);
void _do_typed_compat_set_data_full (DoObject       *object,
                                     const gchar    *key,
                                     gpointer        data,
                                     GDestroyNotify  destroy);
#endif

#ifndef DO_HAVE_OBJECT_PATH
#define do_object_get_path _do_typed_compat_get_path
#define do_object_lookup_path _do_typed_compat_lookup_path
const gchar *_do_typed_compat_get_path (DoObject *object);
DoObject *_do_typed_compat_lookup_path (const gchar *path);
#endif

#ifndef DO_HAVE_PROXY_IS_OBJECT
/* DoProxy is still its own struct: the typed proxy calls through this. */
#define DO_TYPED_AS_PROXY(object) ((DoProxy *) (object))
#else
#define DO_TYPED_AS_PROXY(object) (object)
#endif

/* A skeleton is born and finalized: its object is local, and its data goes
 * with it.  No-ops once libdo has the real functions. */
void _do_typed_compat_skeleton_born (DoObject *object);
void _do_typed_compat_skeleton_finalized (DoObject *object);

G_END_DECLS
