/* Porter — notifyutil and porterctl, run as a user runs them.
 *
 * The tools ($NOTIFYUTIL, $PORTERCTL) run as child processes against one
 * private porter-notifyd on a socket in a temporary directory
 * ($PORTER_NOTIFYD).  Their output is read through pipes with a deadline.
 * Nothing sleeps to wait: a notifyutil watcher is told to post a "ready"
 * name after its registrations (its commands run in order), and this
 * program posts only once it has seen that; porterctl watch says
 * "Watching ..." on stderr once it is subscribed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixinputstream.h>

#include "libnotecenter/nc.h"

#include "notifyd-test-util.h"

#define WAIT_MS 20000

static gchar *tmp_dir;
static gchar *socket_path;

/* ------------------------------------------------------------ tools */

enum { OUT, ERR };

typedef struct {
  GSubprocess *proc;
  int fds[2];        /* stdout, stderr; -1 once at end of file */
  GString *bufs[2];  /* read but not yet returned */
} Tool;

/* Starts the tool named by the environment variable @tool with @args
 * (NULL-terminated), its stdout and stderr piped to us. */
static Tool *
tool_spawn (const gchar *tool, const gchar *const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  Tool *t = g_new0 (Tool, 1);

  g_ptr_array_add (argv, (gpointer) g_getenv (tool));
  g_assert_nonnull (argv->pdata[0]);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  t->proc = g_subprocess_newv ((const gchar *const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  t->fds[OUT] = g_unix_input_stream_get_fd (
    G_UNIX_INPUT_STREAM (g_subprocess_get_stdout_pipe (t->proc)));
  t->fds[ERR] = g_unix_input_stream_get_fd (
    G_UNIX_INPUT_STREAM (g_subprocess_get_stderr_pipe (t->proc)));
  t->bufs[OUT] = g_string_new (NULL);
  t->bufs[ERR] = g_string_new (NULL);
  return t;
}

/* Reads what is there on both pipes, waiting until @deadline (monotonic)
 * for something; both, so that a tool never blocks on the one we do not
 * read.  FALSE on timeout. */
static gboolean
tool_fill (Tool *t, gint64 deadline)
{
  struct pollfd pfds[2] = { { .fd = t->fds[OUT], .events = POLLIN },
                            { .fd = t->fds[ERR], .events = POLLIN } };
  gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
  int r;

  if (left <= 0)
    return FALSE;
  r = poll (pfds, 2, (int) left);
  if (r < 0 && errno == EINTR)
    return TRUE;
  if (r <= 0)
    return FALSE;
  for (int i = 0; i < 2; i++)
    if (pfds[i].revents != 0)
      {
        gchar chunk[4096];
        ssize_t n = read (t->fds[i], chunk, sizeof chunk);

        if (n > 0)
          g_string_append_len (t->bufs[i], chunk, n);
        else if (n == 0 || errno != EINTR)
          t->fds[i] = -1;  /* the stream closes it */
      }
  return TRUE;
}

/* The next line on stdout or stderr (@which), without its newline; NULL
 * at end of file or after WAIT_MS. */
static gchar *
tool_read_line (Tool *t, int which)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      GString *buf = t->bufs[which];
      const gchar *nl = memchr (buf->str, '\n', buf->len);

      if (nl != NULL)
        {
          gchar *line = g_strndup (buf->str, nl - buf->str);
          g_string_erase (buf, 0, nl - buf->str + 1);
          return line;
        }
      if (t->fds[which] < 0 || !tool_fill (t, deadline))
        return NULL;
    }
}

static void
tool_expect_line (Tool *t, int which, const gchar *expected)
{
  g_autofree gchar *line = tool_read_line (t, which);
  g_assert_cmpstr (line, ==, expected);
}

/* Waits for the tool to close its pipes and exit, killing it after
 * WAIT_MS (which fails the test).  Returns its exit status; *out and *err
 * (each nullable) get the rest of what it printed. */
static int
tool_finish (Tool *t, gchar **out, gchar **err)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;
  gboolean in_time = TRUE;
  int status;

  while (in_time && (t->fds[OUT] >= 0 || t->fds[ERR] >= 0))
    in_time = tool_fill (t, deadline);
  if (!in_time)
    g_subprocess_force_exit (t->proc);
  /* Both pipes are closed: the tool is exiting (or killed). */
  g_subprocess_wait (t->proc, NULL, NULL);
  g_assert_true (in_time);
  status = g_subprocess_get_if_exited (t->proc) ? g_subprocess_get_exit_status (t->proc) : -1;
  if (out != NULL)
    *out = g_string_free (g_steal_pointer (&t->bufs[OUT]), FALSE);
  if (err != NULL)
    *err = g_string_free (g_steal_pointer (&t->bufs[ERR]), FALSE);
  if (t->bufs[OUT] != NULL)
    g_string_free (t->bufs[OUT], TRUE);
  if (t->bufs[ERR] != NULL)
    g_string_free (t->bufs[ERR], TRUE);
  g_object_unref (t->proc);
  g_free (t);
  return status;
}

/* Runs a tool to its end; see tool_finish(). */
static int
tool_run (const gchar *tool, const gchar *const *args, gchar **out, gchar **err)
{
  return tool_finish (tool_spawn (tool, args), out, err);
}

/* Waits for a tool that must succeed, having printed @rest on stdout
 * besides what was read, and nothing on stderr. */
static void
tool_expect_end (Tool *t, const gchar *rest)
{
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  g_assert_cmpint (tool_finish (t, &out, &err), ==, 0);
  g_assert_cmpstr (out, ==, rest);
  g_assert_cmpstr (err, ==, "");
}

/* Runs a tool that must succeed and print @expected_out, and nothing on
 * stderr. */
static void
tool_check (const gchar *tool, const gchar *const *args, const gchar *expected_out)
{
  tool_expect_end (tool_spawn (tool, args), expected_out);
}

/* ------------------------------------------------------------ readiness */

typedef struct {
  int token;
  int fd;
} Ready;

/* Registers for @name before a tool is asked to post it. */
static Ready
ready_register (const gchar *name)
{
  Ready r = { .fd = -1 };

  g_assert_cmpuint (nc_notify_register_file_descriptor (name, &r.fd, 0, &r.token), ==,
                    NC_NOTIFY_STATUS_OK);
  return r;
}

/* Waits (bounded) for the post of @r's name, and ends the registration
 * (which closes its fd). */
static void
ready_wait (Ready r)
{
  struct pollfd pfd = { .fd = r.fd, .events = POLLIN };
  guint32 net;
  int n;

  do
    n = poll (&pfd, 1, WAIT_MS);
  while (n < 0 && errno == EINTR);
  g_assert_cmpint (n, ==, 1);
  g_assert_cmpint (read (r.fd, &net, sizeof net), ==, sizeof net);
  g_assert_cmpint ((int) ntohl (net), ==, r.token);
  g_assert_cmpuint (nc_notify_cancel (r.token), ==, NC_NOTIFY_STATUS_OK);
}

/* Starts notifyutil with @args, which end with "-p @ready", and returns
 * once it has posted @ready: its registrations before that are in place. */
static Tool *
notifyutil_start (const gchar *ready, const gchar *const *args)
{
  Ready r = ready_register (ready);
  Tool *t = tool_spawn ("NOTIFYUTIL", args);

  ready_wait (r);
  return t;
}

/* Starts porterctl watch with @args and returns once it is subscribed. */
static Tool *
porterctl_watch (const gchar *const *args)
{
  Tool *t = tool_spawn ("PORTERCTL", args);
  g_autofree gchar *line = tool_read_line (t, ERR);

  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "Watching "));
  return t;
}

/* ------------------------------------------------------------ notifyutil */

/* Posts @key and waits for notifyutil to report it. */
static void
post_and_expect (Tool *t, const gchar *key)
{
  g_assert_cmpuint (nc_notify_post (key), ==, NC_NOTIFY_STATUS_OK);
  tool_expect_line (t, OUT, key);
}

typedef struct {
  const gchar *type[3];  /* the registration type option, NULL-terminated */
  const gchar *key;
  const gchar *expected;
} Delivery;

static const Delivery deliveries[] = {
  { { "-dispatch" }, "tools.dispatch", "tools.dispatch\n" },
  { { "-port" }, "tools.port", "tools.port\n" },
  { { "-file" }, "tools.file", "tools.file\n" },
  { { "-check" }, "tools.check", "tools.check\n" },
  /* A signal registration reports the signal first, as Apple's does. */
  { { "-signal" }, "tools.signal", "SIGNAL 1\ntools.signal\n" },
  { { "-signal", "12" }, "tools.sigusr2", "SIGNAL 12\ntools.sigusr2\n" },
};

/* A post from this process reaches "notifyutil -1 key" in another. */
static void
test_notifyutil_delivery (gconstpointer data)
{
  const Delivery *d = data;
  g_autofree gchar *ready = g_strconcat (d->key, ".ready", NULL);
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  Tool *t;

  for (guint i = 0; d->type[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer) d->type[i]);
  g_ptr_array_add (args, (gpointer) "-1");
  g_ptr_array_add (args, (gpointer) d->key);
  g_ptr_array_add (args, (gpointer) "-p");
  g_ptr_array_add (args, ready);
  g_ptr_array_add (args, NULL);
  t = notifyutil_start (ready, (const gchar *const *) args->pdata);
  g_assert_cmpuint (nc_notify_post (d->key), ==, NC_NOTIFY_STATUS_OK);
  tool_expect_end (t, d->expected);
}

/* -2 reports two notifications and exits after the second, not before.
 * Each post waits for the report of the one before, so none coalesce. */
static void
test_notifyutil_count (void)
{
  Tool *t = notifyutil_start ("tools.count.ready",
                              (const gchar *[]) { "-2", "tools.count",
                                                  "-p", "tools.count.ready", NULL });

  post_and_expect (t, "tools.count");
  post_and_expect (t, "tools.count");
  tool_expect_end (t, "");
}

/* State set by one process is read by the next, and by this one. */
static void
test_notifyutil_state (void)
{
  guint64 state = 0;
  int token;

  tool_check ("NOTIFYUTIL", (const gchar *[]) { "-s", "tools.state", "42", NULL }, "");
  tool_check ("NOTIFYUTIL", (const gchar *[]) { "-g", "tools.state", NULL }, "tools.state 42\n");
  g_assert_cmpuint (nc_notify_register_check ("tools.state", &token), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpuint (state, ==, 42);
  /* Commands run in order, and the whole range is there. */
  tool_check ("NOTIFYUTIL",
              (const gchar *[]) { "-g", "tools.state", "-s", "tools.state",
                                  "18446744073709551615", "-g", "tools.state", NULL },
              "tools.state 42\ntools.state 18446744073709551615\n");
  g_assert_cmpuint (nc_notify_get_state (token, &state), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpuint (state, ==, G_MAXUINT64);
  nc_notify_cancel (token);
  /* A name nobody set reads 0. */
  tool_check ("NOTIFYUTIL", (const gchar *[]) { "-g", "tools.state.unset", NULL },
              "tools.state.unset 0\n");
}

/* -w reports every notification, and runs until it is killed. */
static void
test_notifyutil_watch (void)
{
  Tool *t = notifyutil_start ("tools.watch.ready",
                              (const gchar *[]) { "-w", "tools.watch",
                                                  "-p", "tools.watch.ready", NULL });
  g_autofree gchar *out = NULL;

  for (int i = 0; i < 3; i++)
    post_and_expect (t, "tools.watch");
  g_subprocess_send_signal (t->proc, SIGTERM);
  g_assert_cmpint (tool_finish (t, &out, NULL), ==, -1);
  g_assert_cmpstr (out, ==, "");
}

/* Registrations of several types in one process: each reports, and it
 * exits once all have their count, whichever ends first. */
static void
test_notifyutil_mixed (void)
{
  Tool *t = notifyutil_start ("tools.mixed.ready",
                              (const gchar *[]) { "-file", "-1", "tools.mixed.file",
                                                  "-dispatch", "-1", "tools.mixed.dispatch",
                                                  "-check", "-1", "tools.mixed.check",
                                                  "-p", "tools.mixed.ready", NULL });

  post_and_expect (t, "tools.mixed.file");
  post_and_expect (t, "tools.mixed.dispatch");
  post_and_expect (t, "tools.mixed.check");
  tool_expect_end (t, "");
}

/* -q reports nothing, not even the signal. */
static void
test_notifyutil_quiet (void)
{
  Tool *t = notifyutil_start ("tools.quiet.ready",
                              (const gchar *[]) { "-q", "-1", "tools.quiet", "-signal",
                                                  "-1", "tools.quiet.sig",
                                                  "-p", "tools.quiet.ready", NULL });

  g_assert_cmpuint (nc_notify_post ("tools.quiet"), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpuint (nc_notify_post ("tools.quiet.sig"), ==, NC_NOTIFY_STATUS_OK);
  tool_expect_end (t, "");
}

/* Checks a -v line: "[token] seconds.millis key state type", the time
 * within [@before, @after] (real time, microseconds). */
static void
check_verbose_line (const gchar *line, gint64 before, gint64 after, const gchar *key,
                    const gchar *state, const gchar *type)
{
  g_autoptr(GRegex) regex = g_regex_new ("^\\[(\\d+)\\] (\\d+)\\.(\\d{3}) (\\S+) (\\S+) (\\S+)$",
                                         0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *secs = NULL;
  g_autofree gchar *millis = NULL;
  g_autofree gchar *k = NULL;
  g_autofree gchar *s = NULL;
  g_autofree gchar *ty = NULL;
  gint64 when;

  g_assert_nonnull (line);
  if (!g_regex_match (regex, line, 0, &match))
    g_error ("not a verbose line: \"%s\"", line);
  token = g_match_info_fetch (match, 1);
  secs = g_match_info_fetch (match, 2);
  millis = g_match_info_fetch (match, 3);
  k = g_match_info_fetch (match, 4);
  s = g_match_info_fetch (match, 5);
  ty = g_match_info_fetch (match, 6);
  g_assert_cmpstr (k, ==, key);
  g_assert_cmpstr (s, ==, state);
  g_assert_cmpstr (ty, ==, type);
  when = g_ascii_strtoll (secs, NULL, 10) * 1000 + g_ascii_strtoll (millis, NULL, 10);
  g_assert_cmpint (when, >=, before / 1000 - 1);
  g_assert_cmpint (when, <=, after / 1000 + 1);
}

/* -v reports time, token, key, state and the registration's type. */
static void
test_notifyutil_verbose (void)
{
  gint64 before = g_get_real_time (), after;
  Tool *t = notifyutil_start ("tools.verbose.ready",
                              (const gchar *[]) { "-v", "-s", "tools.verbose", "7",
                                                  "-1", "tools.verbose",
                                                  "-file", "-1", "tools.verbose.file",
                                                  "-p", "tools.verbose.ready", NULL });
  g_autofree gchar *first = NULL;
  g_autofree gchar *second = NULL;

  g_assert_cmpuint (nc_notify_post ("tools.verbose"), ==, NC_NOTIFY_STATUS_OK);
  first = tool_read_line (t, OUT);
  g_assert_cmpuint (nc_notify_post ("tools.verbose.file"), ==, NC_NOTIFY_STATUS_OK);
  second = tool_read_line (t, OUT);
  tool_expect_end (t, "");
  after = g_get_real_time ();
  check_verbose_line (first, before, after, "tools.verbose", "7", "dispatch");
  check_verbose_line (second, before, after, "tools.verbose.file", "0", "file");
}

/* A command line a tool must refuse: its exit status, and the start of
 * what it says on stderr.  It prints nothing on stdout. */
typedef struct {
  const gchar *args[6];
  int status;
  const gchar *message;
} Refused;

static void
check_refused (const gchar *tool, const Refused *cases, gsize n_cases)
{
  for (gsize i = 0; i < n_cases; i++)
    {
      g_autofree gchar *out = NULL;
      g_autofree gchar *err = NULL;
      g_autofree gchar *cmd = g_strjoinv (" ", (gchar **) cases[i].args);

      g_test_message ("%s %s", tool, cmd);
      g_assert_cmpint (tool_run (tool, cases[i].args, &out, &err), ==, cases[i].status);
      g_assert_cmpstr (out, ==, "");
      g_assert_true (g_str_has_prefix (err, cases[i].message));
    }
}

/* Bad arguments are refused before any command runs, with the usage. */
static const Refused notifyutil_refused[] = {
  { { "-signal", "99", "-1", "tools.bad", NULL }, 1, "-signal 99 is invalid\nusage:" },
  { { "-signal", "HUP", "-1", "tools.bad", NULL }, 1, "-signal HUP is invalid\nusage:" },
  { { "-s", "tools.bad", "notanumber", NULL }, 1, "-s needs a name and a 64-bit unsigned value" },
  { { "-s", "tools.bad", "-1", NULL }, 1, "-s needs a name and a 64-bit unsigned value" },
  { { "-s", "tools.bad", "18446744073709551616", NULL }, 1,
    "-s needs a name and a 64-bit unsigned value" },
  { { "-s", "tools.bad", NULL }, 1, "-s needs a name and a 64-bit unsigned value" },
  { { "-x", NULL }, 1, "unrecognized option: -x\nusage:" },
  { { "tools.bad", NULL }, 1, "unrecognized option: tools.bad\nusage:" },
  { { "-p", NULL }, 1, "name required following -p\nusage:" },
  { { "-p", "tools.bad", "-1", NULL }, 1, "name required following -1\nusage:" },
  { { "-z", "soon", NULL }, 1, "timer value must be supplied following -z\nusage:" },
};

static void
test_notifyutil_bad_arguments (void)
{
  int token, posted = -1;

  g_assert_cmpuint (nc_notify_register_check ("tools.bad", &token), ==, NC_NOTIFY_STATUS_OK);
  nc_notify_check (token, &posted);  /* the first is always 1 */
  check_refused ("NOTIFYUTIL", notifyutil_refused, G_N_ELEMENTS (notifyutil_refused));
  /* Not even "-p tools.bad" before the bad argument ran. */
  g_assert_cmpuint (nc_notify_check (token, &posted), ==, NC_NOTIFY_STATUS_OK);
  g_assert_cmpint (posted, ==, 0);
  nc_notify_cancel (token);
}

/* A signal notifyutil cannot catch is refused when the daemon is asked,
 * as Apple's reports a bad status: on stdout, exit status 1. */
static void
test_notifyutil_unsupported_signal (void)
{
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  g_assert_cmpint (tool_run ("NOTIFYUTIL",
                             (const gchar *[]) { "-signal", "9", "-1", "tools.sigkill", NULL },
                             &out, &err), ==, 1);
  g_assert_cmpstr (out, ==, "tools.sigkill: Invalid Signal\n");
  g_assert_cmpstr (err, ==, "");
}

/* ------------------------------------------------------------ porterctl */

/* watch receives posts with their sender and user info, plain and
 * immediate, and exits after --count. */
static void
test_porterctl_post_watch (void)
{
  Tool *t = porterctl_watch ((const gchar *[]) { "watch", "tools.dist", "--count", "2", NULL });

  tool_check ("PORTERCTL", (const gchar *[]) { "post", "tools.dist", NULL }, "");
  tool_check ("PORTERCTL",
              (const gchar *[]) { "post", "tools.dist", "--sender", "tester", "--immediate",
                                  "{'answer': <42>, 'who': <'me'>}", NULL },
              "");
  tool_expect_end (t, "tools.dist - {}\n"
                     "tools.dist tester {'answer': <42>, 'who': <'me'>}\n");
}

/* watch --sender sees only that sender's posts, of any name, and watch
 * NAME only that name's.  The posts it must not see come first: had it
 * seen one, it would have printed it first. */
static void
test_porterctl_filters (void)
{
  Tool *by_sender = porterctl_watch ((const gchar *[]) { "watch", "--sender", "alice",
                                                         "--count", "1", NULL });
  Tool *by_name = porterctl_watch ((const gchar *[]) { "watch", "tools.wanted",
                                                       "--count", "1", NULL });

  tool_check ("PORTERCTL", (const gchar *[]) { "post", "tools.other", "--sender", "bob", NULL },
              "");
  tool_check ("PORTERCTL", (const gchar *[]) { "post", "tools.other", NULL }, "");
  tool_check ("PORTERCTL", (const gchar *[]) { "post", "tools.filtered", "--sender", "alice",
                                               "{'n': <1>}", NULL }, "");
  tool_check ("PORTERCTL", (const gchar *[]) { "post", "tools.wanted", "--sender", "carol",
                                               NULL }, "");
  tool_expect_end (by_sender, "tools.filtered alice {'n': <1>}\n");
  tool_expect_end (by_name, "tools.wanted carol {}\n");
}

/* watch without --count runs until it is interrupted, then exits 0. */
static void
test_porterctl_watch_interrupted (void)
{
  Tool *t = porterctl_watch ((const gchar *[]) { "watch", NULL });

  /* Once it says it is watching, an interrupt ends it cleanly. */
  g_subprocess_send_signal (t->proc, SIGINT);
  tool_expect_end (t, "");
}

/* Usage errors exit 2 with the usage; a bad USERINFO is an error, 1. */
static const Refused porterctl_refused[] = {
  { { "post", NULL }, 2, "porterctl: post needs NAME" },
  { { "post", "tools.bad", "--bogus", NULL }, 2, "porterctl: post NAME" },
  { { "post", "tools.bad", "{}", "extra", NULL }, 2, "porterctl: post NAME" },
  { { "watch", "--count", "0", NULL }, 2, "porterctl: watch [NAME]" },
  { { "watch", "tools.bad", "--immediate", NULL }, 2, "porterctl: watch [NAME]" },
  { { "watch", "a", "b", NULL }, 2, "porterctl: watch [NAME]" },
  { { "post", "tools.bad", "not a dictionary", NULL }, 1, "Error: " },
};

static void
test_porterctl_bad_arguments (void)
{
  check_refused ("PORTERCTL", porterctl_refused, G_N_ELEMENTS (porterctl_refused));
}

/* ------------------------------------------------------------ main */

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  signal (SIGPIPE, SIG_IGN);
  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("porter-tools-XXXXXX", &error);
  g_assert_no_error (error);
  socket_path = g_build_filename (tmp_dir, "notifyd", NULL);
  /* Before the library has a thread; the tools inherit it. */
  g_setenv ("PORTER_NOTIFYD", socket_path, TRUE);
  /* Start the daemon from here: one a tool started would hold that
   * tool's stderr pipe open after the tool exits. */
  g_assert_cmpuint (nc_notify_post ("tools.start"), ==, NC_NOTIFY_STATUS_OK);

  for (gsize i = 0; i < G_N_ELEMENTS (deliveries); i++)
    {
      g_autofree gchar *path = g_strdup_printf ("/tools/notifyutil/deliver/%s%s%s",
                                                deliveries[i].type[0] + 1,
                                                deliveries[i].type[1] ? "-" : "",
                                                deliveries[i].type[1] ? deliveries[i].type[1] : "");
      g_test_add_data_func (path, &deliveries[i], test_notifyutil_delivery);
    }
  g_test_add_func ("/tools/notifyutil/count", test_notifyutil_count);
  g_test_add_func ("/tools/notifyutil/watch", test_notifyutil_watch);
  g_test_add_func ("/tools/notifyutil/mixed", test_notifyutil_mixed);
  g_test_add_func ("/tools/notifyutil/state", test_notifyutil_state);
  g_test_add_func ("/tools/notifyutil/quiet", test_notifyutil_quiet);
  g_test_add_func ("/tools/notifyutil/verbose", test_notifyutil_verbose);
  g_test_add_func ("/tools/notifyutil/bad-arguments", test_notifyutil_bad_arguments);
  g_test_add_func ("/tools/notifyutil/unsupported-signal", test_notifyutil_unsupported_signal);
  g_test_add_func ("/tools/porterctl/post-watch", test_porterctl_post_watch);
  g_test_add_func ("/tools/porterctl/filters", test_porterctl_filters);
  g_test_add_func ("/tools/porterctl/watch-interrupted", test_porterctl_watch_interrupted);
  g_test_add_func ("/tools/porterctl/bad-arguments", test_porterctl_bad_arguments);
  status = g_test_run ();

  notifyd_test_stop_daemon (socket_path, SIGTERM, WAIT_MS);
  if (!notifyd_test_remove_tree (tmp_dir))
    g_printerr ("could not remove %s\n", tmp_dir);
  g_free (socket_path);
  g_free (tmp_dir);
  return status;
}
