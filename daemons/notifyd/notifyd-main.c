/* Porter — porter-notifyd, the notify(3) server (DESIGN.md §7).
 *
 *   porter-notifyd [--daemonize] [--socket PATH] [--system] [--access FILE]
 *                  [--slots N] [--max-queue N] [--verbose]
 *
 * Per user by default, at $PORTER_NOTIFYD or $XDG_RUNTIME_DIR/porter/notifyd,
 * started on demand by the first client (libnotecenter's nc_notify_*).
 * With --system it serves every user (its socket directory is 0755 and the
 * socket 0666) and should be given --socket and --access: the access file
 * says who may read and write which names (notifyd-access.h).  Process
 * plumbing (instance lock, start-up handshake, logs, signals) is
 * common/daemon-util.h's, as for porter-broker.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <unistd.h>

#include <glib.h>

#include "daemon-util.h"
#include "notifyd-server.h"
#include "libnotecenter/nc-notify-private.h"

static gboolean opt_daemonize;
static gboolean opt_verbose;
static gboolean opt_system;
static gchar *opt_socket;
static gchar *opt_access;
static gint opt_slots = NC_NOTIFY_DEFAULT_SLOTS;
static gint opt_max_queue = NOTIFYD_DEFAULT_MAX_QUEUE;

static const GOptionEntry options[] = {
  { "daemonize", 0, 0, G_OPTION_ARG_NONE, &opt_daemonize,
    "Fork into the background; exit once the server listens", NULL },
  { "socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
    "Listen on PATH instead of the default socket", "PATH" },
  { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system,
    "Serve every user (a system instance)", NULL },
  { "access", 0, 0, G_OPTION_ARG_FILENAME, &opt_access,
    "Read access rules ('reserve PREFIX UID GID MODE' lines) from FILE", "FILE" },
  { "slots", 0, 0, G_OPTION_ARG_INT, &opt_slots,
    "Counter slots in the shared page (default 65536)", "N" },
  { "max-queue", 0, 0, G_OPTION_ARG_INT, &opt_max_queue,
    "Deliveries waiting for one client before it is disconnected", "N" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
    "Log every client", NULL },
  { NULL }
};

static gboolean
accept_client (int fd, gpointer user_data, GError **error)
{
  return notifyd_server_add_client (user_data, fd, error);
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL;
  NotifydAccess *access = NULL;
  NotifydServer *server;
  NotifydOptions server_options;
  DaemonServeFlags flags = DAEMON_SERVE_NONE;
  int ready_fd = -1;
  int status;

  signal (SIGPIPE, SIG_IGN);

  context = g_option_context_new ("- the Porter notify(3) server");
  g_option_context_add_main_entries (context, options, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("porter-notifyd: %s\n", error->message);
      return 2;
    }
  if (argc > 1)
    {
      g_printerr ("porter-notifyd: unexpected argument '%s'\n", argv[1]);
      return 2;
    }
  if (opt_slots < 2 || opt_max_queue < 1)
    {
      g_printerr ("porter-notifyd: --slots must be at least 2 and --max-queue at least 1\n");
      return 2;
    }

  daemon_log_init ("porter-notifyd", &opt_verbose);
  if (opt_access != NULL)
    {
      access = notifyd_access_new_from_file (opt_access, &error);
      if (access == NULL)
        {
          g_printerr ("porter-notifyd: %s\n", error->message);
          return 2;
        }
    }
  path = opt_socket != NULL ? g_canonicalize_filename (opt_socket, NULL)
                            : _nc_notify_get_socket_path ();
  /* Fork before anything starts a thread. */
  if (opt_daemonize)
    {
      ready_fd = daemon_daemonize ();
      flags |= DAEMON_SERVE_REDIRECT_LOG;
    }
  if (opt_system)
    flags |= DAEMON_SERVE_SHARED_DIR;

  notifyd_options_init (&server_options);
  server_options.n_slots = (guint) opt_slots;
  server_options.max_queue = (guint) opt_max_queue;
  server_options.system = opt_system;
  server = notifyd_server_new (&server_options, access, &error);
  if (server == NULL)
    {
      g_warning ("%s", error->message);
      daemon_report_ready (&ready_fd, 1);
      return 1;
    }
  status = daemon_serve (path, ready_fd, flags, accept_client, server);
  notifyd_server_free (server);
  g_free (opt_socket);
  g_free (opt_access);
  return status;
}
