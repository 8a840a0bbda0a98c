/* Porter — porter-notifyd: who may read and write which names.
 *
 * An access file has one rule a line:
 *
 *   reserve <prefix> <uid> <gid> <mode>
 *
 * <mode> is six characters, read and write for the owner <uid>, the group
 * <gid> and everybody else, each 'r'/'w' or '-' ("rwr-r-": the owner reads
 * and writes, the rest only read).  Blank lines and lines starting with '#'
 * are ignored.  For a name, the rule with the longest matching prefix
 * applies; a name no rule matches is open to all.  Registering and reading
 * state need read; posting and setting state need write.  Root may do
 * anything.  The group is the caller's primary gid, as the kernel reports
 * it for the connection (supplementary groups are not known).
 *
 * Independently of the file, `user.uid.<UID>.` names belong to <UID> (and
 * root) alone, for reading and writing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct _NotifydAccess NotifydAccess;

typedef enum {
  NOTIFYD_ACCESS_READ = 1 << 0,
  NOTIFYD_ACCESS_WRITE = 1 << 1,
} NotifydAccessMode;

/* An empty policy (everything open but user.uid. names). */
NotifydAccess *notifyd_access_new (void);
/* Parses @text; errors name the line (G_KEY_FILE_ERROR_PARSE). */
NotifydAccess *notifyd_access_new_from_data (const gchar *text, GError **error);
NotifydAccess *notifyd_access_new_from_file (const gchar *path, GError **error);
void notifyd_access_free (NotifydAccess *access);

gboolean notifyd_access_check (NotifydAccess *access,
                               const gchar *name,
                               uid_t uid,
                               gid_t gid,
                               NotifydAccessMode wanted);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NotifydAccess, notifyd_access_free)

G_END_DECLS
