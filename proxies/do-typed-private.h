/* Porter — typed interfaces: what the skeleton and the proxy share.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <ffi.h>

#include "do-types.h"
#include "do-object.h"
#include "do-connection.h"
#include "do-typed.h"

G_BEGIN_DECLS

/* Methods with more arguments than this are refused: the argument arrays
 * live on the stack of each call. */
#define DO_TYPED_MAX_ARGS 64

/* One argument's value in C, as libffi reads and writes it. */
typedef union {
  guint8 y;
  gboolean b;
  gint16 n;
  guint16 q;
  gint32 i;
  guint32 u;
  gint64 x;
  guint64 t;
  gdouble d;
  int h;
  gpointer p;
} DoTypedSlot;

typedef struct {
  const GVariantType *type;  /* points into the method's tuple type */
  gchar code;                /* the signature's first character */
} DoTypedArg;

typedef struct _DoTypedMethod DoTypedMethod;
struct _DoTypedMethod {
  DoInterface *iface;        /* the owner (not a reference) */
  GDBusMethodInfo *info;
  guint index;               /* position in the vtable */
  guint n_in;
  guint n_out;
  DoTypedArg *in;
  DoTypedArg *out;
  GVariantType *in_type;     /* "(...)" */
  GVariantType *out_type;
  gboolean oneway;
  gboolean fds_in;           /* an in argument is an fd */
  ffi_type **ffi_args;       /* self, ins, outs, error */
  ffi_cif cif;               /* prepared once, read-only afterwards */
  ffi_closure *closure;      /* the proxy entry point */
  gpointer code;             /* @closure's executable address */
};

struct _DoInterface {
  gint ref_count;            /* (atomic); reaches 0 only under the intern lock */
  gchar *key;                /* the intern table's key */
  GDBusInterfaceInfo *info;
  guint n_methods;
  DoTypedMethod *methods;
  GHashTable *by_name;       /* method name -> DoTypedMethod; immutable */
  gpointer *closures;        /* n_methods code pointers, the proxy vtable */
};

/* The proxy closure handler (do-typed-proxy.c). */
void _do_typed_proxy_closure (ffi_cif *cif, void *ret, void **args, void *user_data);

/* The instance behind a local typed object (do-skeleton.c). */
gpointer _do_typed_local_instance (DoObject *object, DoInterface *iface, GError **error);

DoTypedMethod *_do_interface_lookup_method (DoInterface *iface, const gchar *name);

/* A vtable entry as the skeleton reads it from an instance. */
typedef void (*DoTypedFunc) (void);

/* Per (object, interface) data keys. */
gchar *_do_typed_data_key (const gchar *what, DoInterface *iface);

/* Marshalling shared by both sides (do-typed-marshal.c).  Each validates
 * what it reads: the values come from another process or from the caller.
 *
 * slot_to_variant reads the member of @slot that @arg's type selects and
 * returns a new (non-floating) value of that type; an fd is dup'ed into
 * @fd_list, a GVariant is ref_sink'ed (a floating one is consumed).  It
 * never frees what @slot holds.
 *
 * variant_to_slot fills @slot with a value the caller owns and frees with
 * slot_clear: a copied string, a DoObject reference, a GVariant reference,
 * an fd dup'ed from @fd_list.  On failure @slot is left empty.
 *
 * slot_init empties a slot (an fd slot holds -1). */
GVariant *_do_typed_slot_to_variant (const DoTypedArg   *arg,
                                     const DoTypedSlot  *slot,
                                     GUnixFDList        *fd_list,
                                     GError            **error);
gboolean _do_typed_variant_to_slot (const DoTypedArg  *arg,
                                    GVariant          *value,
                                    GUnixFDList       *fd_list,
                                    DoTypedSlot       *slot,
                                    GError           **error);
void _do_typed_slot_init (const DoTypedArg *arg, DoTypedSlot *slot);
/* tuple_take makes a floating tuple of @values, references the caller
 * owned and gives up; tuple_abandon gives them up and returns NULL. */
GVariant *_do_typed_tuple_take (GVariant **values, guint n);
GVariant *_do_typed_tuple_abandon (GVariant **values, guint n);
/* Copy between a slot and C storage of the argument's exact type (an
 * argument libffi hands a closure, an out pointer given by the caller). */
void _do_typed_slot_load (const DoTypedArg *arg, const void *src, DoTypedSlot *slot);
void _do_typed_slot_store (const DoTypedArg *arg, const DoTypedSlot *slot, void *dest);
void _do_typed_slot_clear (const DoTypedArg *arg, DoTypedSlot *slot);

G_END_DECLS
