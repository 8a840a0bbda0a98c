/* Porter — libnotecenter: Apple's notify(3) API, with an `nc_` prefix.
 * See the NOTIFY section of <libnotecenter/nc.h> for the semantics.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(NC_INSIDE) && !defined(NC_COMPILATION)
#error "Only <libnotecenter/nc.h> can be included directly."
#endif

#include <libnotecenter/nc-types.h>

G_BEGIN_DECLS

/**
 * NcNotifyStatus:
 * @NC_NOTIFY_STATUS_OK: success.
 * @NC_NOTIFY_STATUS_INVALID_NAME: the name is empty or too long.
 * @NC_NOTIFY_STATUS_INVALID_TOKEN: the token is not (or no longer) valid.
 * @NC_NOTIFY_STATUS_INVALID_PORT: (Apple's mach ports; not used.)
 * @NC_NOTIFY_STATUS_INVALID_FILE: the file descriptor is not usable.
 * @NC_NOTIFY_STATUS_INVALID_SIGNAL: the signal number is not valid.
 * @NC_NOTIFY_STATUS_INVALID_REQUEST: the request makes no sense (resuming
 *   a token that is not suspended, reusing an fd this library did not
 *   make...).
 * @NC_NOTIFY_STATUS_NOT_AUTHORIZED: the caller may not do this with this
 *   name.
 * @NC_NOTIFY_STATUS_OPT_DISABLE: (Apple's; not used.)
 * @NC_NOTIFY_STATUS_SERVER_NOT_FOUND: porter-notifyd could not be reached
 *   or started.
 * @NC_NOTIFY_STATUS_NULL_INPUT: a required pointer argument was %NULL.
 * @NC_NOTIFY_STATUS_FAILED: anything else (a limit, no memory...).
 *
 * What every nc_notify_*() function returns; the values are Apple's.
 */
typedef enum {
  NC_NOTIFY_STATUS_OK = 0,
  NC_NOTIFY_STATUS_INVALID_NAME = 1,
  NC_NOTIFY_STATUS_INVALID_TOKEN = 2,
  NC_NOTIFY_STATUS_INVALID_PORT = 3,
  NC_NOTIFY_STATUS_INVALID_FILE = 4,
  NC_NOTIFY_STATUS_INVALID_SIGNAL = 5,
  NC_NOTIFY_STATUS_INVALID_REQUEST = 6,
  NC_NOTIFY_STATUS_NOT_AUTHORIZED = 7,
  NC_NOTIFY_STATUS_OPT_DISABLE = 8,
  NC_NOTIFY_STATUS_SERVER_NOT_FOUND = 9,
  NC_NOTIFY_STATUS_NULL_INPUT = 10,
  NC_NOTIFY_STATUS_FAILED = 1000000,
} NcNotifyStatus;

/* Flag for nc_notify_register_file_descriptor(): *notify_fd is an fd an
 * earlier registration returned, to be used again. */
#define NC_NOTIFY_REUSE 0x00000001

/**
 * NcNotifyHandler:
 * @token: the registration's token.
 * @user_data: as given to nc_notify_register_dispatch().
 *
 * Called on the registration's GMainContext for a post (or several,
 * coalesced) of its name.
 */
typedef void (*NcNotifyHandler) (int token, gpointer user_data);

NC_API guint32 nc_notify_post (const char *name);
NC_API guint32 nc_notify_register_check (const char *name,
                                         int        *out_token);
NC_API guint32 nc_notify_register_signal (const char *name,
                                          int         sig,
                                          int        *out_token);
NC_API guint32 nc_notify_register_file_descriptor (const char *name,
                                                   int        *notify_fd,
                                                   int         flags,
                                                   int        *out_token);
NC_API guint32 nc_notify_register_dispatch (const char      *name,
                                            int             *out_token,
                                            GMainContext    *context,
                                            NcNotifyHandler  handler,
                                            gpointer         user_data,
                                            GDestroyNotify   destroy);
NC_API guint32 nc_notify_check (int  token,
                                int *check);
NC_API guint32 nc_notify_get_state (int      token,
                                    guint64 *state);
NC_API guint32 nc_notify_set_state (int     token,
                                    guint64 state);
NC_API guint32 nc_notify_suspend (int token);
NC_API guint32 nc_notify_resume (int token);
NC_API guint32 nc_notify_cancel (int token);
NC_API gboolean nc_notify_is_valid_token (int val);

G_END_DECLS
