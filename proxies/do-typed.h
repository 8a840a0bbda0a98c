/* Porter — typed interfaces: C vtables for local objects and proxies.
 *
 * A typed interface is a C struct of function pointers, one per method in the
 * order the introspection XML lists them.  Every method has the signature
 *
 *   gboolean method (Self *self, <in args by value>, <out args as pointers>,
 *                    GError **error);
 *
 * with the D-Bus types mapped as follows:
 *
 *   y guint8   b gboolean   n gint16   q guint16   i gint32   u guint32
 *   x gint64   t guint64    d gdouble  h int (a file descriptor)
 *   s, g       const char * (out: char **, the caller frees)
 *   o          DoObject *   (out: DoObject **, transfer full)
 *   a, (), {}  GVariant *   (in: borrowed; out: GVariant **, transfer full,
 *                            not floating)
 *   v          GVariant *   the value inside the variant, not the boxed
 *                           `v` itself; same ownership as containers
 *
 * Calling through the vtable, pass GVariants that are not floating: a
 * local implementation receives them as they are.  (The wrappers
 * do-codegen writes accept floating ones and sink them.)
 *
 * A method returns %FALSE and sets @error on failure; its out args are then
 * left untouched by a proxy (an implementation's are freed by the skeleton).
 * An `h` in-arg is borrowed for the call (dup it to keep it); an `h` out-arg
 * is owned by whoever receives it: the skeleton closes the implementation's
 * after sending, and a proxy's caller owns the fd it gets.  Pass a valid
 * pointer for every out argument: a proxy accepts %NULL (and drops that
 * value), an implementation need not.
 *
 * An implementation embeds the vtable struct first in its own struct and
 * fills the pointers; do_object_new_for_instance() vends it.  A proxy gets
 * the same vtable from do_object_get_typed(), whose entries are libffi
 * closures shared by every proxy of the interface.  Code that takes the
 * vtable type does not know which one it has:
 *
 *   calc->add (calc, 2, 3, &sum, &error);
 *
 * do-codegen writes the vtable struct and typed wrappers from the XML.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(DO_INSIDE) && !defined(DO_COMPILATION)
#error "Only <libdo/do.h> can be included directly."
#endif

#include <libdo/do-types.h>
#include <libdo/do-object.h>

G_BEGIN_DECLS

/**
 * DoInterface:
 *
 * One interface, parsed from introspection XML and prepared for typed calls:
 * per method its argument types, its libffi call interface and the closure a
 * proxy's vtable points at.  Immutable and refcounted; any thread may use
 * it.  Interfaces are interned: building the same interface twice (same
 * name, methods and signatures) gives the same #DoInterface, so the
 * preparation is done once per process.
 */
typedef struct _DoInterface DoInterface;

DO_API DoInterface *do_interface_new (GDBusInterfaceInfo  *info,
                                      GError             **error);
DO_API DoInterface *do_interface_new_for_xml (const gchar  *xml,
                                              const gchar  *interface_name,
                                              GError      **error);
DO_API DoInterface *do_interface_ref (DoInterface *iface);
DO_API void do_interface_unref (DoInterface *iface);
DO_API GDBusInterfaceInfo *do_interface_get_info (DoInterface *iface);
DO_API const gchar *do_interface_get_name (DoInterface *iface);
DO_API guint do_interface_get_n_methods (DoInterface *iface);

DO_API DoObject *do_object_new_for_instance (DoInterface    *iface,
                                             gpointer        instance,
                                             GDestroyNotify  destroy);
DO_API gpointer do_object_get_typed (DoObject     *object,
                                     DoInterface  *iface,
                                     GError      **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoInterface, do_interface_unref)

G_END_DECLS
