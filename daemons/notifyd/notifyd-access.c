/* Porter — porter-notifyd: access rules.  See notifyd-access.h.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notifyd-access.h"

#include <string.h>

typedef struct {
  gchar *prefix;
  gsize prefix_len;
  uid_t uid;
  gid_t gid;
  guint mode;   /* bits: 0 user r, 1 user w, 2 group r, 3 group w, 4 other r, 5 other w */
} Rule;

struct _NotifydAccess {
  GPtrArray *rules;
};

static void
rule_free (gpointer data)
{
  Rule *rule = data;

  g_free (rule->prefix);
  g_free (rule);
}

NotifydAccess *
notifyd_access_new (void)
{
  NotifydAccess *access = g_new0 (NotifydAccess, 1);

  access->rules = g_ptr_array_new_with_free_func (rule_free);
  return access;
}

void
notifyd_access_free (NotifydAccess *access)
{
  if (access == NULL)
    return;
  g_ptr_array_unref (access->rules);
  g_free (access);
}

static gboolean
parse_id (const gchar *text, guint32 *out)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT32 - 1, &v, NULL))
    return FALSE;
  *out = (guint32) v;
  return TRUE;
}

static gboolean
parse_mode (const gchar *text, guint *out)
{
  guint mode = 0;

  if (strlen (text) != 6)
    return FALSE;
  for (guint i = 0; i < 6; i++)
    {
      gchar want = (i % 2 == 0) ? 'r' : 'w';
      if (text[i] == want)
        mode |= 1u << i;
      else if (text[i] != '-')
        return FALSE;
    }
  *out = mode;
  return TRUE;
}

NotifydAccess *
notifyd_access_new_from_data (const gchar *text, GError **error)
{
  g_autoptr(NotifydAccess) access = notifyd_access_new ();
  g_auto(GStrv) lines = NULL;

  g_return_val_if_fail (text != NULL, NULL);

  lines = g_strsplit (text, "\n", -1);
  for (guint n = 0; lines[n] != NULL; n++)
    {
      g_auto(GStrv) words = NULL;
      gchar *line = g_strstrip (lines[n]);
      guint32 uid, gid;
      guint mode, count = 0;
      Rule *rule;

      if (line[0] == '\0' || line[0] == '#')
        continue;
      words = g_strsplit_set (line, " \t", -1);
      /* Squeeze out the empty words runs of blanks leave. */
      for (guint i = 0; words[i] != NULL; i++)
        if (words[i][0] != '\0')
          {
            gchar *w = words[i];
            words[i] = NULL;
            words[count++] = w;
          }
        else
          g_clear_pointer (&words[i], g_free);
      words[count] = NULL;

      if (count != 5 || strcmp (words[0], "reserve") != 0 ||
          !parse_id (words[2], &uid) || !parse_id (words[3], &gid) ||
          !parse_mode (words[4], &mode))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                       "line %u: expected 'reserve PREFIX UID GID MODE' with a "
                       "mode like rwr-r-", n + 1);
          return NULL;
        }
      rule = g_new0 (Rule, 1);
      rule->prefix = g_strdup (words[1]);
      rule->prefix_len = strlen (words[1]);
      rule->uid = uid;
      rule->gid = gid;
      rule->mode = mode;
      g_ptr_array_add (access->rules, rule);
    }
  return g_steal_pointer (&access);
}

NotifydAccess *
notifyd_access_new_from_file (const gchar *path, GError **error)
{
  g_autofree gchar *text = NULL;
  g_autoptr(GError) local_error = NULL;
  NotifydAccess *access;

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  access = notifyd_access_new_from_data (text, &local_error);
  if (access == NULL)
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s: %s",
                 path, local_error->message);
  return access;
}

/* TRUE if @name is "user.uid.N." or "user.uid.N" for an N other than @uid. */
static gboolean
reserved_for_other_user (const gchar *name, uid_t uid)
{
  const gchar *digits, *end;
  guint64 owner;

  if (!g_str_has_prefix (name, "user.uid."))
    return FALSE;
  digits = name + strlen ("user.uid.");
  end = digits;
  while (g_ascii_isdigit (*end))
    end++;
  if (end == digits || (*end != '\0' && *end != '.'))
    return FALSE;  /* not a uid: an ordinary name */
  if (end - digits > 10)
    return TRUE;   /* no such uid */
  {
    g_autofree gchar *text = g_strndup (digits, end - digits);
    owner = g_ascii_strtoull (text, NULL, 10);
  }
  return owner != (guint64) uid;
}

gboolean
notifyd_access_check (NotifydAccess *access,
                      const gchar *name,
                      uid_t uid,
                      gid_t gid,
                      NotifydAccessMode wanted)
{
  const Rule *best = NULL;
  guint shift;

  g_return_val_if_fail (name != NULL, FALSE);

  if (uid == 0)
    return TRUE;
  if (reserved_for_other_user (name, uid))
    return FALSE;
  if (access == NULL)
    return TRUE;

  for (guint i = 0; i < access->rules->len; i++)
    {
      const Rule *rule = access->rules->pdata[i];
      if (strncmp (name, rule->prefix, rule->prefix_len) == 0 &&
          (best == NULL || rule->prefix_len > best->prefix_len))
        best = rule;
    }
  if (best == NULL)
    return TRUE;

  if (uid == best->uid)
    shift = 0;
  else if (gid == best->gid)
    shift = 2;
  else
    shift = 4;
  if ((wanted & NOTIFYD_ACCESS_READ) && !(best->mode & (1u << shift)))
    return FALSE;
  if ((wanted & NOTIFYD_ACCESS_WRITE) && !(best->mode & (1u << (shift + 1))))
    return FALSE;
  return TRUE;
}
