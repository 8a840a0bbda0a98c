/* Porter — the distributed notification center with real processes.
 *
 * Each test starts its own porter-notifyd on a socket in a temporary
 * directory and runs its observers and posters as child processes (this
 * program again, "--child MODE ..."), pointed at it by $PORTER_NOTIFYD.
 * Observer children print one line per notification on stdout, which the
 * test reads with a deadline.  Nothing sleeps to wait.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>

#include "libdo/do.h"
#include "libnotecenter/nc.h"

#include "notifyd-test-util.h"

#define WAIT_MS 20000

static gchar *self_exe;
static gchar *tmp_dir;

/* ------------------------------------------------------------ children */

typedef struct {
  GSubprocess *proc;
  int fd;
  GString *buf;
} Child;

static Child *
child_spawn (const gchar *path, const gchar *const *args)
{
  Child *child = g_new0 (Child, 1);

  child->proc = notifyd_test_spawn_child (self_exe, G_SUBPROCESS_FLAGS_STDOUT_PIPE, path, args);
  child->fd = g_unix_input_stream_get_fd (
    G_UNIX_INPUT_STREAM (g_subprocess_get_stdout_pipe (child->proc)));
  child->buf = g_string_new (NULL);
  return child;
}

/* The next line the child prints (without its newline), waiting at most
 * WAIT_MS; NULL at end of file or timeout. */
static gchar *
child_read_line (Child *child)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      const gchar *nl = memchr (child->buf->str, '\n', child->buf->len);
      struct pollfd pfd = { .fd = child->fd, .events = POLLIN };
      gchar chunk[4096];
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      ssize_t n;

      if (nl != NULL)
        {
          gchar *line = g_strndup (child->buf->str, nl - child->buf->str);
          g_string_erase (child->buf, 0, nl - child->buf->str + 1);
          return line;
        }
      if (left <= 0 || poll (&pfd, 1, (int) left) <= 0)
        return NULL;
      n = read (child->fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return NULL;
      g_string_append_len (child->buf, chunk, n);
    }
}

static void
child_expect (Child *child, const gchar *expected)
{
  g_autofree gchar *line = child_read_line (child);
  g_assert_cmpstr (line, ==, expected);
}

/* Waits (bounded) for the child to exit; returns whether it succeeded. */
static gboolean
child_finish (Child *child)
{
  const gchar *id = g_subprocess_get_identifier (child->proc);
  gboolean ok;

  if (id != NULL && !notifyd_test_wait_exit ((pid_t) g_ascii_strtoll (id, NULL, 10), WAIT_MS))
    g_subprocess_force_exit (child->proc);
  g_subprocess_wait (child->proc, NULL, NULL);
  ok = g_subprocess_get_successful (child->proc);
  g_object_unref (child->proc);
  g_string_free (child->buf, TRUE);
  g_free (child);
  return ok;
}

/* Kills a child, stopped or not (SIGKILL needs no SIGCONT; and once the
 * child is reaped the subprocess has no pid left to signal). */
static void
child_kill (Child *child)
{
  g_subprocess_force_exit (child->proc);
  child_finish (child);
}

static gboolean
run_child (const gchar *path, const gchar *const *args)
{
  return child_finish (child_spawn (path, args));
}

/* ------------------------------------------------------------ daemons */

static gchar *
daemon_start (const gchar *leaf, const gchar *max_queue)
{
  gchar *path = g_build_filename (tmp_dir, leaf, "notifyd", NULL);
  const gchar *argv[] = { g_getenv ("PORTER_NOTIFYD_EXEC"), "--daemonize", "--socket", path,
                          "--max-queue", max_queue, NULL };
  g_autoptr(GError) error = NULL;
  gint status;

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return path;
}

static void
daemon_stop (gchar *path)
{
  notifyd_test_stop_daemon (path, SIGTERM, WAIT_MS);
  g_free (path);
}

static DoConnection *
daemon_connect (const gchar *path)
{
  g_autoptr(GError) error = NULL;
  DoConnection *conn = do_connection_new_for_socket_path (path, NULL, &error);

  g_assert_no_error (error);
  return conn;
}

static GVariant *
daemon_stats (const gchar *path)
{
  g_autoptr(DoConnection) conn = daemon_connect (path);
  g_autoptr(DoProxy) root = do_connection_get_root_proxy (conn);
  g_autoptr(GError) error = NULL;
  GVariant *reply = do_proxy_call_sync (root, "Stats", g_variant_new ("()"), DO_CALL_FLAGS_NONE,
                                        WAIT_MS, NULL, &error);
  GVariant *stats;

  g_assert_no_error (error);
  stats = g_variant_get_child_value (reply, 0);
  g_variant_unref (reply);
  return stats;
}

static guint64
stat_get (GVariant *stats, const gchar *key)
{
  g_autoptr(GVariant) v = g_variant_lookup_value (stats, key, NULL);

  g_assert_nonnull (v);
  return g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (v)
                                                         : g_variant_get_uint64 (v);
}

/* ------------------------------------------------------------ child modes */

static const gchar *
nullable (const gchar *arg)
{
  return strcmp (arg, "-") == 0 ? NULL : arg;
}

static gchar *
notification_line (NcNotification *n)
{
  GVariant *info = nc_notification_get_user_info (n);
  g_autofree gchar *text = info ? g_variant_print (info, TRUE) : g_strdup ("-");
  const gchar *sender = nc_notification_get_sender (n);

  return g_strdup_printf ("%s %s %s", nc_notification_get_name (n), sender ? sender : "-", text);
}

typedef struct {
  guint count;
  guint want;
  GMainLoop *loop;
} Observed;

static void
print_cb (NcDistributedCenter *center, NcNotification *n, gpointer user_data)
{
  Observed *o = user_data;
  g_autofree gchar *line = notification_line (n);

  printf ("%s\n", line);
  fflush (stdout);
  if (++o->count == o->want)
    g_main_loop_quit (o->loop);
}

static void
count_cb (NcDistributedCenter *center, NcNotification *n, gpointer user_data)
{
  ((Observed *) user_data)->count++;
}

static gboolean timeout_cb (gpointer data);

static gboolean
remove_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* observe NAME SENDER BEHAVIOR COUNT: prints "ready", then each
 * notification, and exits after COUNT. */
static int
child_observe (char **args)
{
  g_autoptr(GError) error = NULL;
  Observed o = { 0, (guint) atoi (args[3]), g_main_loop_new (NULL, FALSE) };
  NcDistributedObserver *observer =
    nc_distributed_center_add_observer (nc_distributed_center_get_default (), nullable (args[0]),
                                        nullable (args[1]), (NcSuspensionBehavior) atoi (args[2]),
                                        NULL, print_cb, &o, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (observer);
  printf ("ready\n");
  fflush (stdout);
  g_main_loop_run (o.loop);  /* COUNT 0: until killed */
  g_main_loop_unref (o.loop);
  return 0;
}

/* post NAME SENDER INFO COUNT: posts, then makes one round trip so the
 * daemon has taken every post before the process exits. */
static int
child_post (char **args)
{
  NcDistributedCenter *center = nc_distributed_center_get_default ();
  g_autoptr(GError) error = NULL;
  guint count = (guint) atoi (args[3]);

  for (guint i = 0; i < count; i++)
    {
      GVariant *info = nullable (args[2])
        ? g_variant_parse (G_VARIANT_TYPE_VARDICT, args[2], NULL, NULL, &error) : NULL;
      g_assert_no_error (error);
      g_assert_true (nc_distributed_center_post (center, args[0], nullable (args[1]), info,
                                                 NC_DISTRIBUTED_POST_NONE, &error));
      g_assert_no_error (error);
    }
  g_assert_true (nc_distributed_center_set_suspended (center, FALSE, &error));
  return 0;
}

/* pingpong NAME COUNT: observes NAME and posts it COUNT times, each once
 * the previous one came back, so this observer never falls behind. */
static int
child_pingpong (char **args)
{
  NcDistributedCenter *center = nc_distributed_center_get_default ();
  g_autoptr(GError) error = NULL;
  guint count = (guint) atoi (args[1]);
  Observed o = { 0, 0, g_main_loop_new (NULL, FALSE) };
  NcDistributedObserver *observer =
    nc_distributed_center_add_observer (center, args[0], NULL, NC_SUSPENSION_DELIVER_IMMEDIATELY,
                                        NULL, count_cb, &o, NULL, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < count; i++)
    {
      guint timeout = g_timeout_add (WAIT_MS, timeout_cb, NULL);

      g_assert_true (nc_distributed_center_post (center, args[0], NULL, NULL, 0, &error));
      while (o.count <= i)
        g_main_context_iteration (NULL, TRUE);
      g_source_remove (timeout);
    }
  g_assert_true (nc_distributed_center_remove_observer (center, observer));
  g_main_loop_unref (o.loop);
  return 0;
}

/* In one process, with a second center posting: drop, coalesce, hold and
 * deliver-immediately while suspended, post-side deliver-immediately,
 * delivery on resume, and removal. */
static void
log_cb (NcDistributedCenter *center, NcNotification *n, gpointer user_data)
{
  GPtrArray *lines = user_data;

  g_ptr_array_add (lines, notification_line (n));
}

static gboolean
timeout_cb (gpointer data)
{
  g_error ("timed out waiting for a delivery");
  return G_SOURCE_REMOVE;
}

/* Iterates the default context until @lines holds @n lines (bounded). */
static void
wait_lines (GPtrArray *lines, guint n)
{
  guint timeout = g_timeout_add (WAIT_MS, timeout_cb, NULL);

  while (lines->len < n)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

static void
post (NcDistributedCenter *center, const gchar *name, const gchar *info,
      NcDistributedPostFlags flags)
{
  g_autoptr(GError) error = NULL;
  GVariant *v = g_variant_parse (G_VARIANT_TYPE_VARDICT, info, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (nc_distributed_center_post (center, name, "tester", v, flags, &error));
  g_assert_no_error (error);
}

/* Observes @name on @center into @lines (the default context), and checks
 * that a post through @poster arrives. */
static NcDistributedObserver *
observe_checked (NcDistributedCenter *center, NcDistributedCenter *poster, const gchar *name,
                 GPtrArray *lines)
{
  g_autoptr(GError) error = NULL;
  NcDistributedObserver *observer;

  observer = nc_distributed_center_add_observer (center, name, NULL, NC_SUSPENSION_HOLD, NULL,
                                                 log_cb, lines, NULL, &error);
  g_assert_no_error (error);
  post (poster, name, "{'n': <1>}", 0);
  wait_lines (lines, lines->len + 1);
  return observer;
}

static int
child_suspension (char **args)
{
  g_autoptr(NcDistributedCenter) me = nc_distributed_center_new ();
  g_autoptr(NcDistributedCenter) poster = nc_distributed_center_new ();
  g_autoptr(GPtrArray) drop = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) coalesce = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) now = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) marker = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  NcDistributedObserver *obs[5];
  GPtrArray *logs[5] = { drop, coalesce, hold, now, marker };

  for (guint i = 0; i < 4; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("s.%u", i);
      obs[i] = nc_distributed_center_add_observer (me, name, NULL, i + 1, NULL, log_cb, logs[i],
                                                   NULL, &error);
      g_assert_no_error (error);
    }
  obs[4] = nc_distributed_center_add_observer (me, "s.marker", NULL,
                                               NC_SUSPENSION_DELIVER_IMMEDIATELY, NULL, log_cb,
                                               marker, NULL, &error);
  g_assert_no_error (error);

  /* Not suspended: everybody gets everything. */
  for (guint i = 0; i < 4; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("s.%u", i);
      post (poster, name, "{'n': <0>}", 0);
    }
  wait_lines (drop, 1), wait_lines (coalesce, 1), wait_lines (hold, 1), wait_lines (now, 1);

  g_assert_true (nc_distributed_center_set_suspended (me, TRUE, &error));
  g_assert_true (nc_distributed_center_get_suspended (me));
  for (guint k = 1; k <= 3; k++)
    for (guint i = 0; i < 4; i++)
      {
        g_autofree gchar *name = g_strdup_printf ("s.%u", i);
        g_autofree gchar *info = g_strdup_printf ("{'n': <%u>}", k);
        post (poster, name, info, 0);
      }
  /* Posts from one center arrive in order: once the marker (and the
   * deliver-immediately observer's three) are here, the rest was not
   * delivered. */
  post (poster, "s.marker", "{'n': <9>}", 0);
  wait_lines (marker, 1);
  wait_lines (now, 4);
  g_assert_cmpuint (drop->len, ==, 1);
  g_assert_cmpuint (coalesce->len, ==, 1);
  g_assert_cmpuint (hold->len, ==, 1);
  /* A post that asks for immediate delivery reaches a suspended HOLD
   * observer at once. */
  post (poster, "s.2", "{'urgent': <true>}", NC_DISTRIBUTED_POST_DELIVER_IMMEDIATELY);
  wait_lines (hold, 2);
  g_assert_cmpstr (hold->pdata[1], ==, "s.2 tester {'urgent': <true>}");

  /* Resume: held ones come without another post. */
  g_assert_true (nc_distributed_center_set_suspended (me, FALSE, &error));
  wait_lines (hold, 5);
  wait_lines (coalesce, 2);
  g_assert_cmpstr (hold->pdata[2], ==, "s.2 tester {'n': <1>}");
  g_assert_cmpstr (hold->pdata[4], ==, "s.2 tester {'n': <3>}");
  g_assert_cmpstr (coalesce->pdata[1], ==, "s.1 tester {'n': <3>}");
  post (poster, "s.marker", "{'n': <10>}", 0);
  wait_lines (marker, 2);
  g_assert_cmpuint (drop->len, ==, 1);
  g_assert_cmpuint (coalesce->len, ==, 2);
  g_assert_cmpuint (hold->len, ==, 5);

  /* Removal stops delivery. */
  g_assert_true (nc_distributed_center_remove_observer (me, obs[3]));
  post (poster, "s.3", "{'n': <11>}", 0);
  post (poster, "s.marker", "{'n': <11>}", 0);
  wait_lines (marker, 3);
  g_assert_cmpuint (now->len, ==, 4);
  for (guint i = 0; i < 3; i++)
    g_assert_true (nc_distributed_center_remove_observer (me, obs[i]));
  g_assert_true (nc_distributed_center_remove_observer (me, obs[4]));
  /* The destroy-notifies of the inner observers release the centers. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  return 0;
}

/* Observers on two contexts: each is called on its own thread, one whose
 * context does not run does not hold up the other, and a removed one's
 * destroy-notify runs on its context. */
typedef struct {
  GMainContext *context;
  GMutex lock;
  GCond cond;
  GPtrArray *lines;       /* protected by @lock */
  GThread *called_on;     /* protected by @lock */
  GThread *destroyed_on;  /* protected by @lock */
  gboolean quit;          /* protected by @lock */
} Other;

/* A call (@n) or the destroy-notify (NULL) ran on this thread. */
static void
other_note (Other *o, NcNotification *n)
{
  g_mutex_lock (&o->lock);
  if (n != NULL)
    g_ptr_array_add (o->lines, notification_line (n)), o->called_on = g_thread_self ();
  else
    o->destroyed_on = g_thread_self ();
  g_cond_broadcast (&o->cond);
  g_mutex_unlock (&o->lock);
}

static void
other_cb (NcDistributedCenter *center, NcNotification *n, gpointer user_data)
{
  other_note (user_data, n);
}

static void
other_destroy (gpointer user_data)
{
  other_note (user_data, NULL);
}

static gpointer
other_main (gpointer data)
{
  Other *o = data;

  g_main_context_push_thread_default (o->context);
  g_mutex_lock (&o->lock);
  while (!o->quit)
    {
      g_mutex_unlock (&o->lock);
      g_main_context_iteration (o->context, TRUE);
      g_mutex_lock (&o->lock);
    }
  g_mutex_unlock (&o->lock);
  g_main_context_pop_thread_default (o->context);
  return NULL;
}

/* Waits (bounded) until @o has @n lines, or (@n 0) its destroy-notify ran. */
static void
other_wait (Other *o, guint n)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  g_mutex_lock (&o->lock);
  while (n > 0 ? o->lines->len < n : o->destroyed_on == NULL)
    g_assert_true (g_cond_wait_until (&o->cond, &o->lock, deadline));
  g_mutex_unlock (&o->lock);
}

static gboolean
other_quit (gpointer data)
{
  Other *o = data;

  g_mutex_lock (&o->lock);
  o->quit = TRUE;
  g_mutex_unlock (&o->lock);
  return G_SOURCE_REMOVE;
}

static int
child_contexts (char **args)
{
  g_autoptr(NcDistributedCenter) me = nc_distributed_center_new ();
  g_autoptr(NcDistributedCenter) poster = nc_distributed_center_new ();
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  Other o = { .context = g_main_context_new (),
              .lines = g_ptr_array_new_with_free_func (g_free) };
  GThread *thread = g_thread_new ("other", other_main, &o);
  NcDistributedObserver *mine, *other;

  g_mutex_init (&o.lock);
  g_cond_init (&o.cond);
  mine = nc_distributed_center_add_observer (me, "c.x", NULL, NC_SUSPENSION_HOLD, NULL, log_cb,
                                             lines, NULL, &error);
  g_assert_no_error (error);
  other = nc_distributed_center_add_observer (me, "c.x", NULL, NC_SUSPENSION_HOLD, o.context,
                                              other_cb, &o, other_destroy, &error);
  g_assert_no_error (error);

  /* This thread does not run its context: the other still gets both. */
  post (poster, "c.x", "{'n': <1>}", 0);
  post (poster, "c.x", "{'n': <2>}", 0);
  other_wait (&o, 2);
  g_assert_cmpuint (lines->len, ==, 0);
  g_assert_true (o.called_on == thread);
  g_assert_cmpstr (o.lines->pdata[0], ==, "c.x tester {'n': <1>}");
  g_assert_cmpstr (o.lines->pdata[1], ==, "c.x tester {'n': <2>}");
  wait_lines (lines, 2);
  g_assert_cmpstr (lines->pdata[0], ==, "c.x tester {'n': <1>}");
  g_assert_cmpstr (lines->pdata[1], ==, "c.x tester {'n': <2>}");

  /* Removed from this thread, destroyed on its own. */
  g_assert_true (nc_distributed_center_remove_observer (me, other));
  other_wait (&o, 0);
  g_assert_true (o.destroyed_on == thread);
  post (poster, "c.x", "{'n': <3>}", 0);
  wait_lines (lines, 3);
  g_assert_cmpuint (o.lines->len, ==, 2);

  g_assert_true (nc_distributed_center_remove_observer (me, mine));
  g_main_context_invoke (o.context, other_quit, &o);
  g_thread_join (thread);
  g_main_context_unref (o.context);
  g_ptr_array_unref (o.lines);
  g_mutex_clear (&o.lock);
  g_cond_clear (&o.cond);
  return 0;
}

/* An observer that iterates its context from its callback (a nested main
 * loop) is not handed the next notification before the other observers
 * have had the current one. */
static GPtrArray *nested_log;

static void
nested_cb (NcDistributedCenter *center, NcNotification *n, gpointer user_data)
{
  GVariant *info = nc_notification_get_user_info (n);
  gint32 k = 0;

  g_variant_lookup (info, "n", "i", &k);
  g_ptr_array_add (nested_log, g_strdup_printf ("%s%d", (const gchar *) user_data, k));
  if (strcmp (user_data, "a") == 0 && k == 1)
    while (g_main_context_iteration (NULL, FALSE))
      ;
}

static int
child_nested (char **args)
{
  g_autoptr(NcDistributedCenter) me = nc_distributed_center_new ();
  g_autoptr(NcDistributedCenter) poster = nc_distributed_center_new ();
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  NcDistributedObserver *a, *b;
  g_autofree gchar *order = NULL;

  nested_log = lines;
  a = nc_distributed_center_add_observer (me, "n.x", NULL, NC_SUSPENSION_HOLD, NULL, nested_cb,
                                          (gpointer) "a", NULL, &error);
  g_assert_no_error (error);
  b = nc_distributed_center_add_observer (me, "n.x", NULL, NC_SUSPENSION_HOLD, NULL, nested_cb,
                                          (gpointer) "b", NULL, &error);
  g_assert_no_error (error);
  /* Both posts wait in the delivery socket once this round trip is done. */
  post (poster, "n.x", "{'n': <1>}", 0);
  post (poster, "n.x", "{'n': <2>}", 0);
  g_assert_true (nc_distributed_center_set_suspended (poster, FALSE, &error));
  wait_lines (lines, 4);
  g_ptr_array_add (lines, NULL);
  order = g_strjoinv (" ", (gchar **) lines->pdata);
  g_assert_cmpstr (order, ==, "a1 b1 a2 b2");
  g_assert_true (nc_distributed_center_remove_observer (me, a));
  g_assert_true (nc_distributed_center_remove_observer (me, b));
  return 0;
}

/* The daemon dies: the observing center connects again by itself (a new
 * daemon starts) and so does the posting one.  Posts made before the
 * observer is back are lost, so this posts until one comes through. */
static int
child_restart (char **args)
{
  g_autoptr(NcDistributedCenter) me = nc_distributed_center_new ();
  g_autoptr(NcDistributedCenter) poster = nc_distributed_center_new ();
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *pid_path = g_strconcat (g_getenv ("PORTER_NOTIFYD"), ".pid", NULL);
  g_autofree gchar *text = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;
  NcDistributedObserver *observer;
  pid_t pid;

  observer = observe_checked (me, poster, "r.x", lines);

  g_assert_true (g_file_get_contents (pid_path, &text, NULL, NULL));
  pid = (pid_t) g_ascii_strtoll (text, NULL, 10);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_true (notifyd_test_wait_exit (pid, WAIT_MS));

  while (lines->len < 2)
    {
      g_autoptr(GSource) tick = g_timeout_source_new (20);
      gboolean ticked = FALSE;

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      post (poster, "r.x", "{'n': <2>}", 0);
      g_source_set_callback (tick, remove_flag_cb, &ticked, NULL);
      g_source_attach (tick, NULL);
      while (lines->len < 2 && !ticked)
        g_main_context_iteration (NULL, TRUE);
      g_source_destroy (tick);
    }
  g_assert_cmpstr (lines->pdata[1], ==, "r.x tester {'n': <2>}");
  g_assert_true (nc_distributed_center_remove_observer (me, observer));
  return 0;
}

/* After fork(), the child's center starts again, as notify(3) clients do.
 * The parent keeps its observer and its connection and gets the child's
 * posts; the child, running its own main loop (where the parent's
 * delivery source was copied), neither reads the parent's deliveries nor
 * calls the parent's observer. */
static int
child_fork (char **args)
{
  NcDistributedCenter *center = nc_distributed_center_get_default ();
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  NcDistributedObserver *parents = observe_checked (center, center, "f.x", lines);
  int status;
  pid_t pid;

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      GPtrArray *mine = g_ptr_array_new_with_free_func (g_free);
      NcDistributedObserver *childs;
      pid_t grandchild;

      if (nc_distributed_center_remove_observer (center, parents))
        _exit (3);
      childs = nc_distributed_center_add_observer (center, "f.y", NULL, NC_SUSPENSION_HOLD,
                                                   NULL, log_cb, mine, NULL, NULL);
      if (childs == NULL)
        _exit (4);
      /* A fork of the fork: the child's observer is not the grandchild's
       * either, and the child keeps it. */
      grandchild = fork ();
      if (grandchild == 0)
        _exit (nc_distributed_center_remove_observer (center, childs) ? 6 : 0);
      if (grandchild < 0 || waitpid (grandchild, &status, 0) != grandchild ||
          !WIFEXITED (status) || WEXITSTATUS (status) != 0)
        _exit (7);
      for (int i = 1; i <= 10; i++)
        {
          g_autofree gchar *info = g_strdup_printf ("{'n': <%d>}", i);
          post (center, "f.x", info, 0);
        }
      post (center, "f.y", "{}", 0);
      wait_lines (mine, 1);
      _exit (lines->len == 1 ? 0 : 5);
    }
  wait_lines (lines, 11);
  g_assert_true (notifyd_test_wait_exit (pid, WAIT_MS));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  post (center, "f.x", "{'n': <11>}", 0);
  wait_lines (lines, 12);
  g_assert_true (nc_distributed_center_remove_observer (center, parents));
  return 0;
}

/* ------------------------------------------------------------ tests */

static Child *
observer_spawn (const gchar *path, const gchar *name, const gchar *sender, const gchar *behavior,
                const gchar *count)
{
  const gchar *args[] = { "observe", name, sender, behavior, count, NULL };
  Child *child = child_spawn (path, args);

  child_expect (child, "ready");
  return child;
}

static void
test_fanout (void)
{
  gchar *path = daemon_start ("fanout", "1024");
  const gchar *post_args[] = { "post", "test.fanout", "me", "{'k': <'v'>}", "1", NULL };
  Child *children[50];

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    children[i] = observer_spawn (path, "test.fanout", "-", "4", "1");
  g_assert_true (run_child (path, post_args));
  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      child_expect (children[i], "test.fanout me {'k': <'v'>}");
      g_assert_true (child_finish (children[i]));
    }
  daemon_stop (path);
}

static void
test_stopped_observer (void)
{
  gchar *path = daemon_start ("stopped", "64");
  const gchar *pingpong_args[] = { "pingpong", "test.slow", "3000", NULL };
  g_autoptr(GVariant) stats = NULL;
  Child *hold = observer_spawn (path, "test.slow", "-", "3", "0");
  Child *drop = observer_spawn (path, "test.slow", "-", "1", "0");
  gint64 start;

  kill ((pid_t) g_ascii_strtoll (g_subprocess_get_identifier (hold->proc), NULL, 10), SIGSTOP);
  kill ((pid_t) g_ascii_strtoll (g_subprocess_get_identifier (drop->proc), NULL, 10), SIGSTOP);
  start = g_get_monotonic_time ();
  /* Each post waits for the previous one to come back to the poster. */
  g_assert_true (run_child (path, pingpong_args));
  g_test_message ("3000 round trips past two stopped observers in %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);

  /* The HOLD observer that reads nothing passed the hard limit and was
   * disconnected; the DROP one stays, its queue bounded. */
  stats = daemon_stats (path);
  g_assert_cmpuint (stat_get (stats, "disconnected"), ==, 1);
  g_assert_cmpuint (stat_get (stats, "queued"), <=, 64);
  g_assert_cmpuint (stat_get (stats, "dropped"), >, 0);
  child_kill (hold);
  child_kill (drop);
  daemon_stop (path);
}

/* A test run by one child process (--child @mode) at a daemon of its own
 * (or, after "restart", at the daemon the child started). */
static void
test_in_child (gconstpointer mode)
{
  gchar *path = daemon_start (mode, "1024");
  const gchar *args[] = { mode, NULL };

  g_assert_true (run_child (path, args));
  daemon_stop (path);
}

static void
test_filters (void)
{
  gchar *path = daemon_start ("filters", "1024");
  Child *by_name = observer_spawn (path, "a", "-", "4", "3");
  Child *by_sender = observer_spawn (path, "-", "s2", "4", "3");
  Child *any = observer_spawn (path, "-", "-", "4", "4");
  const gchar *p1[] = { "post", "a", "s1", "-", "1", NULL };
  const gchar *p2[] = { "post", "b", "s2", "-", "1", NULL };
  const gchar *p3[] = { "post", "a", "s2", "-", "1", NULL };
  const gchar *p4[] = { "post", "a", "s2", "{'fin': <true>}", "1", NULL };

  g_assert_true (run_child (path, p1));
  g_assert_true (run_child (path, p2));
  g_assert_true (run_child (path, p3));
  g_assert_true (run_child (path, p4));
  child_expect (by_name, "a s1 -");
  child_expect (by_name, "a s2 -");
  child_expect (by_name, "a s2 {'fin': <true>}");
  child_expect (by_sender, "b s2 -");
  child_expect (by_sender, "a s2 -");
  child_expect (by_sender, "a s2 {'fin': <true>}");
  child_expect (any, "a s1 -");
  child_expect (any, "b s2 -");
  child_expect (any, "a s2 -");
  child_expect (any, "a s2 {'fin': <true>}");
  g_assert_true (child_finish (by_name));
  g_assert_true (child_finish (by_sender));
  g_assert_true (child_finish (any));
  daemon_stop (path);
}

static void
test_user_info (void)
{
  gchar *path = daemon_start ("userinfo", "1024");
  const gchar *info =
    "{'list': <[<{'x': <(int32 1, 'two', [3.5, 4.0])>}>, <@ay [0x01, 0x02]>]>, "
    "'dict': <{'k': <{'deep': <<<uint64 7>>>}>}>, 'empty': <@as []>}";
  const gchar *args[] = { "post", "test.info", "-", info, "1", NULL };
  Child *observer = observer_spawn (path, "test.info", "-", "4", "1");
  g_autoptr(GVariant) expected = g_variant_parse (G_VARIANT_TYPE_VARDICT, info, NULL, NULL, NULL);
  g_autofree gchar *text = g_variant_print (expected, TRUE);
  g_autofree gchar *line = g_strdup_printf ("test.info - %s", text);

  g_assert_true (run_child (path, args));
  child_expect (observer, line);
  g_assert_true (child_finish (observer));
  daemon_stop (path);
}

static GVariant *
raw_call (DoProxy *root, const gchar *method, GVariant *args, GUnixFDList *fds, GError **error)
{
  return do_proxy_call_with_fds_sync (root, method, args, fds, DO_CALL_FLAGS_NONE, WAIT_MS,
                                      NULL, NULL, error);
}

/* A client that breaks the protocol is disconnected; the daemon lives. */
static void
test_hostile (void)
{
  gchar *path = daemon_start ("hostile", "64");
  const gchar *bad[][2] = {
    { "DistAddObserver", "(uint32 1, 'a', '', uint32 9)" },   /* unknown behaviour */
    { "DistAddObserver", "(uint32 0, 'a', '', uint32 1)" },   /* id 0 */
    { "DistPost", "('', '', @a{sv} {}, uint32 0)" },           /* empty name */
    { "DistPost", "('a', '', @a{sv} {}, uint32 77)" },         /* unknown flags */
    { "DistRemoveObserver", "(uint32 5,)" },                   /* fine: not found */
  };
  Child *observer = observer_spawn (path, "test.alive", "-", "4", "1");
  const gchar *post_args[] = { "post", "test.alive", "-", "-", "1", NULL };

  /* Distributed calls before DistHello. */
  {
    g_autoptr(DoConnection) conn = daemon_connect (path);
    g_autoptr(DoProxy) root = do_connection_get_root_proxy (conn);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = raw_call (root, "DistAddObserver",
                                      g_variant_new ("(ussu)", 1, "a", "", 1), NULL, &error);
    g_assert_null (r);
  }
  /* A delivery "socket" that is a pipe. */
  {
    g_autoptr(DoConnection) conn = daemon_connect (path);
    g_autoptr(DoProxy) root = do_connection_get_root_proxy (conn);
    g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = NULL;
    int p[2];
    guint32 status;

    g_assert_no_errno (pipe (p));
    g_unix_fd_list_append (fds, p[1], NULL);
    close (p[1]);
    close (p[0]);
    r = raw_call (root, "DistHello", g_variant_new ("(h)", 0), fds, &error);
    g_assert_no_error (error);
    g_variant_get (r, "(u)", &status);
    g_assert_cmpuint (status, !=, NC_NOTIFY_STATUS_OK);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(DoConnection) conn = daemon_connect (path);
      g_autoptr(DoProxy) root = do_connection_get_root_proxy (conn);
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) hello = NULL;
      g_autoptr(GVariant) r = NULL;
      int pair[2];

      g_assert_no_errno (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair));
      g_unix_fd_list_append (fds, pair[1], NULL);
      close (pair[1]);
      hello = raw_call (root, "DistHello", g_variant_new ("(h)", 0), fds, &error);
      g_assert_no_error (error);
      r = raw_call (root, bad[i][0], g_variant_parse (NULL, bad[i][1], NULL, NULL, NULL), NULL,
                    &error);
      if (i == G_N_ELEMENTS (bad) - 1)
        g_assert_no_error (error);
      else
        g_assert_null (r);
      close (pair[0]);
    }
  /* Raw garbage on a fresh connection socket. */
  {
    g_autofree gchar *junk = g_strnfill (512, '\xff');
    int s = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
    if (connect (s, (struct sockaddr *) &addr, sizeof addr) == 0)
      g_assert_cmpint (send (s, junk, 512, MSG_NOSIGNAL), >=, -1);
    close (s);
  }
  /* Still serving. */
  g_assert_true (run_child (path, post_args));
  child_expect (observer, "test.alive - -");
  g_assert_true (child_finish (observer));
  daemon_stop (path);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  if (argc >= 3 && strcmp (argv[1], "--child") == 0)
    {
      if (strcmp (argv[2], "observe") == 0 && argc == 7)
        return child_observe (argv + 3);
      if (strcmp (argv[2], "post") == 0 && argc == 7)
        return child_post (argv + 3);
      if (strcmp (argv[2], "pingpong") == 0 && argc == 5)
        return child_pingpong (argv + 3);
      if (strcmp (argv[2], "suspension") == 0)
        return child_suspension (argv + 3);
      if (strcmp (argv[2], "contexts") == 0)
        return child_contexts (argv + 3);
      if (strcmp (argv[2], "restart") == 0)
        return child_restart (argv + 3);
      if (strcmp (argv[2], "nested") == 0)
        return child_nested (argv + 3);
      if (strcmp (argv[2], "fork") == 0)
        return child_fork (argv + 3);
      return 2;
    }
  signal (SIGPIPE, SIG_IGN);
  self_exe = g_canonicalize_filename (argv[0], NULL);
  tmp_dir = g_dir_make_tmp ("porter-dnc-XXXXXX", &error);
  g_assert_no_error (error);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nc/distributed/fanout-50", test_fanout);
  g_test_add_func ("/nc/distributed/stopped-observer", test_stopped_observer);
  g_test_add_data_func ("/nc/distributed/suspension", "suspension", test_in_child);
  g_test_add_data_func ("/nc/distributed/contexts", "contexts", test_in_child);
  g_test_add_data_func ("/nc/distributed/restart", "restart", test_in_child);
  g_test_add_data_func ("/nc/distributed/fork", "fork", test_in_child);
  g_test_add_data_func ("/nc/distributed/nested", "nested", test_in_child);
  g_test_add_func ("/nc/distributed/filters", test_filters);
  g_test_add_func ("/nc/distributed/user-info", test_user_info);
  g_test_add_func ("/nc/distributed/hostile", test_hostile);
  status = g_test_run ();
  notifyd_test_remove_tree (tmp_dir);
  g_free (self_exe);
  g_free (tmp_dir);
  return status;
}
