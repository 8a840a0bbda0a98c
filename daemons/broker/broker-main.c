/* Porter — porter-broker, the per-user name server (DESIGN.md §6).
 *
 *   porter-broker [--daemonize] [--socket PATH] [--verbose]
 *
 * Listens on PATH (default: see do_broker_get_socket_path()) with a
 * SOCK_SEQPACKET socket and serves BrokerRegistry's org.porter.Broker
 * object on every connection.  Instance lock, start-up handshake, logs and
 * signals are common/daemon-util.h's (shared with porter-notifyd); names
 * and clients are logged with --verbose.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "broker-registry.h"
#include "daemon-util.h"
#include "do-broker-private.h"
#include "do-error.h"

static gboolean opt_daemonize;
static gboolean opt_verbose;
static gchar *opt_socket;

static const GOptionEntry options[] = {
  { "daemonize", 0, 0, G_OPTION_ARG_NONE, &opt_daemonize,
    "Fork into the background; exit once the broker listens", NULL },
  { "socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
    "Listen on PATH instead of the default socket", "PATH" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
    "Log every client and name", NULL },
  { NULL }
};

static gboolean
accept_client (int fd, gpointer user_data, GError **error)
{
  return broker_registry_add_client (user_data, fd, error);
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL;
  BrokerRegistry *registry;
  int ready_fd = -1;
  int status;

  signal (SIGPIPE, SIG_IGN);

  context = g_option_context_new ("- the Porter name server");
  g_option_context_add_main_entries (context, options, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("porter-broker: %s\n", error->message);
      return 2;
    }
  if (argc > 1)
    {
      g_printerr ("porter-broker: unexpected argument '%s'\n", argv[1]);
      return 2;
    }

  daemon_log_init ("porter-broker", &opt_verbose);
  path = opt_socket != NULL ? g_canonicalize_filename (opt_socket, NULL)
                            : do_broker_get_socket_path ();
  /* Fork before anything starts a thread. */
  if (opt_daemonize)
    ready_fd = daemon_daemonize ();

  registry = broker_registry_new (&error);
  if (registry == NULL)
    {
      g_warning ("%s", error->message);
      daemon_report_ready (&ready_fd, 1);
      return 1;
    }
  status = daemon_serve (path, ready_fd,
                         opt_daemonize ? DAEMON_SERVE_REDIRECT_LOG : DAEMON_SERVE_NONE,
                         accept_client, registry);
  broker_registry_free (registry);
  g_free (opt_socket);
  return status;
}
