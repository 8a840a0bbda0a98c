/* Porter — typed interfaces: C values to GVariant and back.
 *
 * Shared by the skeleton (values from the wire into an implementation, and
 * its results back) and the proxy (a caller's values onto the wire, the
 * reply into its out pointers).  Anything read from a GVariant came from
 * another process: fd indices, object paths and strings are checked here.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-typed-private.h"
#include "do-error.h"

#include <unistd.h>

static GVariant *
bad_value (const DoTypedArg *arg, const gchar *what, GError **error)
{
  g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
               "a value of type %.*s %s",
               (int) g_variant_type_get_string_length (arg->type),
               g_variant_type_peek_string (arg->type), what);
  return NULL;
}

GVariant *
_do_typed_slot_to_variant (const DoTypedArg   *arg,
                           const DoTypedSlot  *slot,
                           GUnixFDList        *fd_list,
                           GError            **error)
{
  GVariant *v = NULL;

  switch (arg->code)
    {
    case 'y': v = g_variant_new_byte (slot->y); break;
    case 'b': v = g_variant_new_boolean (slot->b != FALSE); break;
    case 'n': v = g_variant_new_int16 (slot->n); break;
    case 'q': v = g_variant_new_uint16 (slot->q); break;
    case 'i': v = g_variant_new_int32 (slot->i); break;
    case 'u': v = g_variant_new_uint32 (slot->u); break;
    case 'x': v = g_variant_new_int64 (slot->x); break;
    case 't': v = g_variant_new_uint64 (slot->t); break;
    case 'd': v = g_variant_new_double (slot->d); break;
    case 'h':
      {
        gint index;

        if (slot->h < 0)
          return bad_value (arg, "is not a file descriptor", error);
        index = g_unix_fd_list_append (fd_list, slot->h, error);
        if (index < 0)
          return NULL;
        v = g_variant_new_handle (index);
        break;
      }
    case 's':
      if (!slot->p || !g_utf8_validate (slot->p, -1, NULL))
        return bad_value (arg, "is NULL or not UTF-8", error);
      v = g_variant_new_string (slot->p);
      break;
    case 'g':
      if (!slot->p || !g_variant_is_signature (slot->p))
        return bad_value (arg, "is NULL or not a D-Bus signature", error);
      v = g_variant_new_signature (slot->p);
      break;
    case 'o':
      /* The value holds the object: an out argument's (transfer full) may
       * be dropped before the reply goes. */
      if (!slot->p)
        return bad_value (arg, "is NULL", error);
      v = do_object_to_value (slot->p);
      break;
    case 'v':
      if (!slot->p)
        return bad_value (arg, "is NULL", error);
      v = g_variant_new_variant (slot->p);  /* sinks a floating value */
      break;
    default:  /* containers */
      if (!slot->p)
        return bad_value (arg, "is NULL", error);
      v = g_variant_ref_sink (slot->p);
      if (!g_variant_is_of_type (v, arg->type))
        {
          g_set_error (error, DO_ERROR, DO_ERROR_INVALID_SIGNATURE,
                       "a value of type %s was given for an argument of type %.*s",
                       g_variant_get_type_string (v),
                       (int) g_variant_type_get_string_length (arg->type),
                       g_variant_type_peek_string (arg->type));
          g_variant_unref (v);
          return NULL;
        }
      return v;
    }
  return g_variant_ref_sink (v);
}

gboolean
_do_typed_variant_to_slot (const DoTypedArg  *arg,
                           GVariant          *value,
                           GUnixFDList       *fd_list,
                           DoTypedSlot       *slot,
                           GError           **error)
{
  _do_typed_slot_init (arg, slot);
  g_return_val_if_fail (g_variant_is_of_type (value, arg->type), FALSE);

  switch (arg->code)
    {
    case 'y': slot->y = g_variant_get_byte (value); break;
    case 'b': slot->b = g_variant_get_boolean (value); break;
    case 'n': slot->n = g_variant_get_int16 (value); break;
    case 'q': slot->q = g_variant_get_uint16 (value); break;
    case 'i': slot->i = g_variant_get_int32 (value); break;
    case 'u': slot->u = g_variant_get_uint32 (value); break;
    case 'x': slot->x = g_variant_get_int64 (value); break;
    case 't': slot->t = g_variant_get_uint64 (value); break;
    case 'd': slot->d = g_variant_get_double (value); break;
    case 'h':
      {
        gint32 index = g_variant_get_handle (value);
        gint n = fd_list ? g_unix_fd_list_get_length (fd_list) : 0;

        if (index < 0 || index >= n)
          {
            g_set_error (error, DO_ERROR, DO_ERROR_INVALID_ARGUMENT,
                         "fd index %d out of range (%d fds came with the message)",
                         index, n);
            return FALSE;
          }
        slot->h = g_unix_fd_list_get (fd_list, index, error);  /* a dup, O_CLOEXEC */
        return slot->h >= 0;
      }
    case 's':
    case 'g':
      slot->p = g_variant_dup_string (value, NULL);
      break;
    case 'o':
      slot->p = do_object_lookup_path (g_variant_get_string (value, NULL));
      if (!slot->p)
        {
          g_set_error (error, DO_ERROR, DO_ERROR_NO_SUCH_OBJECT,
                       "no object for the reference %s", g_variant_get_string (value, NULL));
          return FALSE;
        }
      break;
    case 'v':
      slot->p = g_variant_get_variant (value);
      break;
    default:
      slot->p = g_variant_ref (value);
      break;
    }
  return TRUE;
}

void
_do_typed_slot_init (const DoTypedArg *arg, DoTypedSlot *slot)
{
  slot->t = 0;
  slot->p = NULL;
  if (arg->code == 'h')
    slot->h = -1;
}

void
_do_typed_slot_clear (const DoTypedArg *arg, DoTypedSlot *slot)
{
  switch (arg->code)
    {
    case 'h':
      if (slot->h >= 0)
        close (slot->h);
      break;
    case 's':
    case 'g':
      g_free (slot->p);
      break;
    case 'o':
      g_clear_pointer ((DoObject **) &slot->p, do_object_unref);
      break;
    case 'y': case 'b': case 'n': case 'q': case 'i':
    case 'u': case 'x': case 't': case 'd':
      break;
    default:
      g_clear_pointer ((GVariant **) &slot->p, g_variant_unref);
      break;
    }
  _do_typed_slot_init (arg, slot);
}

void
_do_typed_slot_load (const DoTypedArg *arg, const void *src, DoTypedSlot *slot)
{
  _do_typed_slot_init (arg, slot);
  switch (arg->code)
    {
    case 'y': slot->y = *(const guint8 *) src; break;
    case 'b': slot->b = *(const gboolean *) src; break;
    case 'n': slot->n = *(const gint16 *) src; break;
    case 'q': slot->q = *(const guint16 *) src; break;
    case 'i': slot->i = *(const gint32 *) src; break;
    case 'u': slot->u = *(const guint32 *) src; break;
    case 'x': slot->x = *(const gint64 *) src; break;
    case 't': slot->t = *(const guint64 *) src; break;
    case 'd': slot->d = *(const gdouble *) src; break;
    case 'h': slot->h = *(const int *) src; break;
    default: slot->p = *(gpointer const *) src; break;
    }
}

void
_do_typed_slot_store (const DoTypedArg *arg, const DoTypedSlot *slot, void *dest)
{
  switch (arg->code)
    {
    case 'y': *(guint8 *) dest = slot->y; break;
    case 'b': *(gboolean *) dest = slot->b; break;
    case 'n': *(gint16 *) dest = slot->n; break;
    case 'q': *(guint16 *) dest = slot->q; break;
    case 'i': *(gint32 *) dest = slot->i; break;
    case 'u': *(guint32 *) dest = slot->u; break;
    case 'x': *(gint64 *) dest = slot->x; break;
    case 't': *(guint64 *) dest = slot->t; break;
    case 'd': *(gdouble *) dest = slot->d; break;
    case 'h': *(int *) dest = slot->h; break;
    default: *(gpointer *) dest = slot->p; break;
    }
}

GVariant *
_do_typed_tuple_take (GVariant **values, guint n)
{
  GVariant *tuple = g_variant_new_tuple (values, n);

  _do_typed_tuple_abandon (values, n);
  return tuple;
}

GVariant *
_do_typed_tuple_abandon (GVariant **values, guint n)
{
  for (guint i = 0; i < n; i++)
    g_variant_unref (values[i]);
  return NULL;
}
