/* Porter — typed interfaces: stand-ins for libdo functions not there yet
 * (see do-typed-compat-private.h for what each one lacks).
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-typed-private.h"

typedef struct {
  GData *data;
  gboolean is_proxy;   /* then the entry holds a reference on the proxy */
} Entry;

static GMutex compat_lock;
static GHashTable *skeletons;  /* DoObject set; protected by @compat_lock */
static GHashTable *entries;    /* DoObject -> Entry; protected by @compat_lock */

static gboolean G_GNUC_UNUSED
compat_is_skeleton (DoObject *object)
{
  gboolean found;

  g_mutex_lock (&compat_lock);
  found = skeletons && g_hash_table_contains (skeletons, object);
  g_mutex_unlock (&compat_lock);
  return found;
}

void
_do_typed_compat_skeleton_born (DoObject *object)
{
  g_mutex_lock (&compat_lock);
  if (!skeletons)
    skeletons = g_hash_table_new (NULL, NULL);
  g_hash_table_add (skeletons, object);
  g_mutex_unlock (&compat_lock);
}

void
_do_typed_compat_skeleton_finalized (DoObject *object)
{
  Entry *entry = NULL;

  g_mutex_lock (&compat_lock);
  if (skeletons)
    g_hash_table_remove (skeletons, object);
  if (entries)
    g_hash_table_steal_extended (entries, object, NULL, (gpointer *) &entry);
  g_mutex_unlock (&compat_lock);
  if (entry)
    {
      g_datalist_clear (&entry->data);
      g_free (entry);
    }
}

#ifndef DO_HAVE_OBJECT_IS_PROXY
gboolean
_do_typed_compat_is_proxy (DoObject *object)
{
  return !compat_is_skeleton (object);
}
#endif

#ifndef DO_HAVE_OBJECT_DATA
gpointer
_do_typed_compat_get_data (DoObject *object, const gchar *key)
{
  Entry *entry;
  gpointer data = NULL;

  g_mutex_lock (&compat_lock);
  entry = entries ? g_hash_table_lookup (entries, object) : NULL;
  if (entry)
    data = g_datalist_get_data (&entry->data, key);
  g_mutex_unlock (&compat_lock);
  return data;
}

void
_do_typed_compat_set_data_full (DoObject       *object,
                                const gchar    *key,
                                gpointer        data,
                                GDestroyNotify  destroy)
{
  gboolean is_proxy = !compat_is_skeleton (object);
  Entry *entry;

  g_mutex_lock (&compat_lock);
  if (!entries)
    entries = g_hash_table_new (NULL, NULL);
  entry = g_hash_table_lookup (entries, object);
  if (!entry)
    {
      entry = g_new0 (Entry, 1);
      entry->is_proxy = is_proxy;
      if (is_proxy)
        do_proxy_ref (DO_TYPED_AS_PROXY (object));
      g_hash_table_insert (entries, object, entry);
    }
  /* Only ever called with a fresh key here, so no destroy runs under the lock. */
  g_datalist_set_data_full (&entry->data, key, data, destroy);
  g_mutex_unlock (&compat_lock);
}
#endif

#ifndef DO_HAVE_OBJECT_PATH
const gchar *
_do_typed_compat_get_path (DoObject *object)
{
  return NULL;
}

DoObject *
_do_typed_compat_lookup_path (const gchar *path)
{
  return NULL;
}
#endif
