/* notifyutil: post, watch and inspect notify(3) names from the shell, with
 * Apple's options.
 *
 *   notifyutil [-q] [-v] [-z msec] [command ...]
 *
 *   -port / -dispatch  later registrations call back on the main loop
 *                      (there are no Mach ports here: -port is -dispatch)
 *   -file              ... are written to a file descriptor
 *   -check             ... are polled with nc_notify_check() every 100 ms
 *   -signal [#]        ... raise signal # (default 1, SIGHUP; 1, 2, 10,
 *                      12, 15 and 28 are supported)
 *   -p key             post key
 *   -w key             report every notification of key
 *   -# key             (# a number, e.g. -1) report # notifications of key
 *   -g key             print "key state"
 *   -s key val         set the state of key to val
 *   -q / -v            print nothing / time, token, key, state and type
 *   -z msec            pause msec after each post (default 0)
 *
 * Commands run in order; then, while any registration still wants
 * notifications, it reports them, one line each ("key" by default), and
 * exits 0 once every counted registration has had its count.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "libnotecenter/nc.h"

enum { T_DISPATCH, T_FILE, T_CHECK, T_SIGNAL };
static const char *type_names[] = { "dispatch", "file", "check", "signal" };

enum { PRINT_QUIET = 0, PRINT_KEY = 1, PRINT_VERBOSE = 0xff };

typedef struct {
  int token;
  int type;
  int sig;
  gint64 count;   /* -1: forever */
  char *name;
} Reg;

static GPtrArray *regs;
static int printopt = PRINT_KEY;
static GMainLoop *loop;
static int watch_fd = -1;      /* shared by every -file registration */
static guint watch_source;     /* reads watch_fd */

static const char *
status_string (guint32 status)
{
  switch (status)
    {
    case NC_NOTIFY_STATUS_OK: return "OK";
    case NC_NOTIFY_STATUS_INVALID_NAME: return "Invalid Name";
    case NC_NOTIFY_STATUS_INVALID_TOKEN: return "Invalid Token";
    case NC_NOTIFY_STATUS_INVALID_PORT: return "Invalid Port";
    case NC_NOTIFY_STATUS_INVALID_FILE: return "Invalid File";
    case NC_NOTIFY_STATUS_INVALID_SIGNAL: return "Invalid Signal";
    case NC_NOTIFY_STATUS_INVALID_REQUEST: return "Invalid Request";
    case NC_NOTIFY_STATUS_NOT_AUTHORIZED: return "Not Authorized";
    case NC_NOTIFY_STATUS_SERVER_NOT_FOUND: return "Server Not Found";
    case NC_NOTIFY_STATUS_NULL_INPUT: return "Null Input";
    default: return "Failed";
    }
}

static void
usage (void)
{
  fprintf (stderr,
           "usage: notifyutil [-q] [-v] [-z msec] [command ...]\n"
           "    -q             quiet mode\n"
           "    -v             verbose - prints time, key, state value, and type\n"
           "    -z msec        pause msec milliseconds after posting [default 0]\n"
           "commands:\n"
           "    -port          switch to callbacks for subsequent registrations [default]\n"
           "    -file          switch to file descriptor for subsequent registrations\n"
           "    -check         switch to shared memory for subsequent registrations\n"
           "    -signal [#]    switch to signal [#] for subsequent registrations\n"
           "                   initial default for signal is 1 (SIGHUP)\n"
           "    -dispatch      switch to callbacks for subsequent registrations\n"
           "    -p key         post a notification for key\n"
           "    -w key         register for key and report notifications\n"
           "    -# key         (# is an integer value, eg \"-1\") register for key and report # notifications\n"
           "    -g key         get state value for key\n"
           "    -s key val     set state value for key\n");
}

static Reg *
find_reg (int token)
{
  for (guint i = 0; i < regs->len; i++)
    if (((Reg *) regs->pdata[i])->token == token)
      return regs->pdata[i];
  return NULL;
}

static void
process_event (int token)
{
  Reg *reg = find_reg (token);

  if (reg == NULL)
    return;
  if (printopt == PRINT_VERBOSE)
    {
      guint64 state = 0;
      guint32 status = nc_notify_get_state (token, &state);
      gint64 now = g_get_real_time ();

      printf ("[%d] %" G_GINT64_FORMAT ".%03d %s ", token, now / G_USEC_PER_SEC,
              (int) (now % G_USEC_PER_SEC / 1000), reg->name);
      if (status == NC_NOTIFY_STATUS_OK)
        printf ("%" G_GUINT64_FORMAT, state);
      else
        printf (": %s", status_string (status));
      printf (" %s\n", type_names[reg->type]);
    }
  else if (printopt != PRINT_QUIET)
    printf ("%s\n", reg->name);
  fflush (stdout);

  if (reg->count > 0 && --reg->count == 0)
    {
      gboolean last_file = reg->type == T_FILE;

      for (guint i = 0; i < regs->len && last_file; i++)
        if (regs->pdata[i] != reg && ((Reg *) regs->pdata[i])->type == T_FILE)
          last_file = FALSE;
      /* Cancelling the last token of watch_fd closes it: stop reading it
       * first, or the loop would read a closed fd (and quit) or another
       * fd given its number. */
      if (last_file)
        {
          g_source_remove (watch_source);
          watch_source = 0;
          watch_fd = -1;
        }
      nc_notify_cancel (reg->token);
      g_ptr_array_remove (regs, reg);
      if (regs->len == 0)
        g_main_loop_quit (loop);
    }
}

static void
on_dispatch (int token, gpointer user_data)
{
  process_event (token);
}

static gboolean
on_file (gint fd, GIOCondition condition, gpointer user_data)
{
  guint32 net;

  if (read (fd, &net, sizeof net) != sizeof net)
    {
      g_main_loop_quit (loop);
      return G_SOURCE_REMOVE;
    }
  process_event ((int) ntohl (net));
  return G_SOURCE_CONTINUE;
}

static void
check_type (int type)
{
  for (guint i = regs->len; i > 0; i--)
    {
      Reg *reg = regs->pdata[i - 1];
      int check = 0;

      if (reg->type == type && nc_notify_check (reg->token, &check) == NC_NOTIFY_STATUS_OK && check)
        process_event (reg->token);
    }
}

static gboolean
on_timer (gpointer user_data)
{
  check_type (T_CHECK);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer user_data)
{
  if (printopt != PRINT_QUIET)
    printf ("SIGNAL %d\n", GPOINTER_TO_INT (user_data));
  check_type (T_SIGNAL);
  return G_SOURCE_CONTINUE;
}

static guint32
do_register (const char *name, int type, int sig, gint64 count)
{
  static gboolean timer_added;
  static gboolean signal_added[NSIG];
  guint32 status;
  int token, check;
  Reg *reg;

  switch (type)
    {
    case T_FILE:
      status = nc_notify_register_file_descriptor (name, &watch_fd,
                                                   watch_fd >= 0 ? NC_NOTIFY_REUSE : 0, &token);
      if (status == NC_NOTIFY_STATUS_OK && watch_source == 0)
        watch_source = g_unix_fd_add (watch_fd, G_IO_IN | G_IO_HUP, on_file, NULL);
      break;
    case T_SIGNAL:
      if (sig != SIGHUP && sig != SIGINT && sig != SIGTERM && sig != SIGUSR1 &&
          sig != SIGUSR2 && sig != SIGWINCH)
        return NC_NOTIFY_STATUS_INVALID_SIGNAL;
      if (!signal_added[sig])
        {
          g_unix_signal_add (sig, on_signal, GINT_TO_POINTER (sig));
          signal_added[sig] = TRUE;
        }
      status = nc_notify_register_signal (name, sig, &token);
      if (status == NC_NOTIFY_STATUS_OK)
        nc_notify_check (token, &check);
      break;
    case T_CHECK:
      status = nc_notify_register_check (name, &token);
      if (status == NC_NOTIFY_STATUS_OK)
        {
          nc_notify_check (token, &check);
          if (!timer_added)
            {
              g_timeout_add (100, on_timer, NULL);
              timer_added = TRUE;
            }
        }
      break;
    case T_DISPATCH:
    default:
      status = nc_notify_register_dispatch (name, &token, NULL, on_dispatch, NULL, NULL);
      break;
    }
  if (status != NC_NOTIFY_STATUS_OK)
    return status;
  reg = g_new0 (Reg, 1);
  reg->token = token;
  reg->type = type;
  reg->sig = sig;
  reg->count = count;
  reg->name = g_strdup (name);
  g_ptr_array_add (regs, reg);
  return NC_NOTIFY_STATUS_OK;
}

static void
reg_free (gpointer data)
{
  Reg *reg = data;
  g_free (reg->name);
  g_free (reg);
}

static gboolean
is_count_option (const char *arg)
{
  if (arg[0] != '-' || arg[1] == '\0')
    return FALSE;
  for (const char *p = arg + 1; *p; p++)
    if (!g_ascii_isdigit (*p))
      return FALSE;
  return TRUE;
}

int
main (int argc, char **argv)
{
  int type = T_DISPATCH, sig = SIGHUP, status = 0;
  guint nap_ms = 0;

  regs = g_ptr_array_new_with_free_func (reg_free);
  loop = g_main_loop_new (NULL, FALSE);

  /* First pass: check the syntax and the global options. */
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];

      if (!strcmp (a, "-h") || !strcmp (a, "-help") || !strcmp (a, "--help"))
        {
          usage ();
          return 0;
        }
      else if (!strcmp (a, "-q"))
        printopt = PRINT_QUIET;
      else if (!strcmp (a, "-v"))
        printopt = PRINT_VERBOSE;
      else if (!strcmp (a, "-z"))
        {
          guint64 v;
          if (i + 1 >= argc || !g_ascii_string_to_unsigned (argv[i + 1], 10, 0, 3600000, &v, NULL))
            {
              fprintf (stderr, "timer value must be supplied following -z\n");
              usage ();
              return 1;
            }
          nap_ms = (guint) v;
          i++;
        }
      else if (!strcmp (a, "-port") || !strcmp (a, "-file") || !strcmp (a, "-check") ||
               !strcmp (a, "-dispatch"))
        ;
      else if (!strcmp (a, "-signal") || !strcmp (a, "-sig"))
        {
          if (i + 1 < argc && argv[i + 1][0] != '-')
            {
              guint64 v;
              if (!g_ascii_string_to_unsigned (argv[i + 1], 10, 1, NSIG - 1, &v, NULL))
                {
                  fprintf (stderr, "-signal %s is invalid\n", argv[i + 1]);
                  usage ();
                  return 1;
                }
              i++;
            }
        }
      else if (!strcmp (a, "-p") || !strcmp (a, "-w") || !strcmp (a, "-g") || is_count_option (a))
        {
          if (i + 1 >= argc)
            {
              fprintf (stderr, "name required following %s\n", a);
              usage ();
              return 1;
            }
          i++;
        }
      else if (!strcmp (a, "-s"))
        {
          guint64 v;
          if (i + 2 >= argc || !g_ascii_string_to_unsigned (argv[i + 2], 10, 0, G_MAXUINT64, &v, NULL))
            {
              fprintf (stderr, "-s needs a name and a 64-bit unsigned value\n");
              usage ();
              return 1;
            }
          i += 2;
        }
      else
        {
          fprintf (stderr, "unrecognized option: %s\n", a);
          usage ();
          return 1;
        }
    }

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      guint32 st;

      if (!strcmp (a, "-port") || !strcmp (a, "-dispatch"))
        type = T_DISPATCH;
      else if (!strcmp (a, "-file"))
        type = T_FILE;
      else if (!strcmp (a, "-check"))
        type = T_CHECK;
      else if (!strcmp (a, "-signal") || !strcmp (a, "-sig"))
        {
          type = T_SIGNAL;
          if (i + 1 < argc && argv[i + 1][0] != '-')
            sig = atoi (argv[++i]);
        }
      else if (!strcmp (a, "-z"))
        i++;
      else if (!strcmp (a, "-p"))
        {
          st = nc_notify_post (argv[++i]);
          if (st != NC_NOTIFY_STATUS_OK)
            {
              printf ("%s: %s\n", argv[i], status_string (st));
              status = 1;
            }
          if (nap_ms > 0)
            g_usleep ((gulong) nap_ms * 1000);
        }
      else if (!strcmp (a, "-w") || is_count_option (a))
        {
          gint64 count = !strcmp (a, "-w") ? -1 : g_ascii_strtoll (a + 1, NULL, 10);
          const char *name = argv[++i];

          if (count == 0)
            continue;
          st = do_register (name, type, sig, count);
          if (st != NC_NOTIFY_STATUS_OK)
            {
              printf ("%s: %s\n", name, status_string (st));
              status = 1;
            }
        }
      else if (!strcmp (a, "-g"))
        {
          const char *name = argv[++i];
          guint64 state = 0;
          int token;

          st = nc_notify_register_check (name, &token);
          if (st == NC_NOTIFY_STATUS_OK)
            {
              st = nc_notify_get_state (token, &state);
              nc_notify_cancel (token);
            }
          if (st == NC_NOTIFY_STATUS_OK)
            printf ("%s %" G_GUINT64_FORMAT "\n", name, state);
          else
            {
              printf ("%s: %s\n", name, status_string (st));
              status = 1;
            }
        }
      else if (!strcmp (a, "-s"))
        {
          const char *name = argv[++i];
          guint64 state = g_ascii_strtoull (argv[++i], NULL, 10);
          int token;

          st = nc_notify_register_check (name, &token);
          if (st == NC_NOTIFY_STATUS_OK)
            {
              st = nc_notify_set_state (token, state);
              nc_notify_cancel (token);
            }
          if (st != NC_NOTIFY_STATUS_OK)
            {
              printf ("%s: %s\n", name, status_string (st));
              status = 1;
            }
        }
      /* -q, -v: done in the first pass */
    }
  fflush (stdout);

  if (regs->len > 0)
    g_main_loop_run (loop);
  g_ptr_array_unref (regs);
  g_main_loop_unref (loop);
  return status;
}
