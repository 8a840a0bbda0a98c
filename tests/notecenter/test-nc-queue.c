/* Porter — tests for NcQueue.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-test-util.h"

/* Records each post as "name/sender" on one thread. */
typedef struct {
  GPtrArray *log;   /* gchar* */
  GThread *thread;
} Recorder;

static void
record_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Recorder *r = data;

  r->thread = g_thread_self ();
  g_ptr_array_add (r->log, g_strdup_printf ("%s/%s", nc_notification_get_name (n),
                                            nc_notification_get_sender (n) ? nc_notification_get_sender (n) : "-"));
}

static void
record_mark (Recorder *r, const gchar *mark)
{
  g_ptr_array_add (r->log, g_strdup (mark));
}

/* The log joined with spaces, e.g. "a/s1 b/-". */
static gchar *
log_str (Recorder *r)
{
  g_ptr_array_add (r->log, NULL);
  gchar *s = g_strjoinv (" ", (gchar **) r->log->pdata);
  g_ptr_array_remove_index (r->log, r->log->len - 1);
  return s;
}

#define assert_log(r, expected)                 \
  G_STMT_START {                                \
    g_autofree gchar *s_ = log_str (r);         \
    g_assert_cmpstr (s_, ==, (expected));       \
  } G_STMT_END

typedef struct {
  NcCenter *center;
  GMainContext *ctx;
  NcQueue *queue;
  Recorder rec;
  NcObserver *observer;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->center = nc_center_new ();
  f->ctx = g_main_context_new ();
  f->queue = nc_queue_new (f->center, f->ctx);
  f->rec.log = g_ptr_array_new_with_free_func (g_free);
  f->observer = nc_center_add_observer (f->center, NULL, NULL, record_cb, &f->rec, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  nc_test_drain (f->ctx);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 0);
  nc_queue_unref (f->queue);
  nc_observer_release (f->observer);
  g_main_context_unref (f->ctx);
  nc_center_unref (f->center);
  g_ptr_array_unref (f->rec.log);
}

static void
enqueue (Fixture *f, const gchar *name, const gchar *sender,
         NcPostingStyle style, NcCoalesceFlags coalesce)
{
  g_autoptr(NcNotification) n = nc_notification_new (name, sender, NULL);

  nc_queue_enqueue (f->queue, n, style, coalesce);
}

static void
test_accessors (Fixture *f, gconstpointer data)
{
  g_autoptr(NcQueue) q = NULL;
  g_autoptr(GMainContext) ctx = g_main_context_new ();

  g_assert_true (nc_queue_get_center (f->queue) == f->center);
  g_assert_true (nc_queue_get_context (f->queue) == f->ctx);

  g_main_context_push_thread_default (ctx);
  q = nc_queue_new (NULL, NULL);
  g_main_context_pop_thread_default (ctx);
  g_assert_true (nc_queue_get_center (q) == nc_center_get_default ());
  g_assert_true (nc_queue_get_context (q) == ctx);
}

static void
test_now (Fixture *f, gconstpointer data)
{
  enqueue (f, "a", "s1", NC_POSTING_STYLE_NOW, NC_COALESCE_NONE);
  /* Posted before enqueue returned, on this thread. */
  assert_log (&f->rec, "a/s1");
  g_assert_true (f->rec.thread == g_thread_self ());
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 0);

  /* NOW coalesces the queued ones first. */
  enqueue (f, "a", "s2", NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "b", "s2", NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  enqueue (f, "a", "s3", NC_POSTING_STYLE_NOW, NC_COALESCE_ON_NAME);
  assert_log (&f->rec, "a/s1 a/s3");
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 1);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "a/s1 a/s3 b/s2");
}

static void
test_asap (Fixture *f, gconstpointer data)
{
  enqueue (f, "a", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "b", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "c", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  assert_log (&f->rec, "");
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 3);

  /* One iteration posts all three, in order. */
  g_assert_true (g_main_context_iteration (f->ctx, FALSE));
  assert_log (&f->rec, "a/- b/- c/-");
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 0);
}

static gboolean
mark_cb (gpointer data)
{
  record_mark (data, "D");
  return G_SOURCE_REMOVE;
}

static void
test_when_idle (Fixture *f, gconstpointer data)
{
  GSource *s;

  enqueue (f, "idle", NULL, NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  enqueue (f, "asap", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  /* Another default-priority source attached after the ASAP one. */
  s = g_idle_source_new ();
  g_source_set_priority (s, G_PRIORITY_DEFAULT);
  g_source_set_callback (s, mark_cb, &f->rec, NULL);
  g_source_attach (s, f->ctx);
  g_source_unref (s);

  nc_test_drain (f->ctx);
  /* When-idle waits for everything more urgent. */
  assert_log (&f->rec, "asap/- D idle/-");
}

static void
test_coalesce_none (Fixture *f, gconstpointer data)
{
  g_autoptr(NcNotification) n = nc_notification_new ("a", "s", NULL);

  nc_queue_enqueue (f->queue, n, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  nc_queue_enqueue (f->queue, n, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "a", "s", NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 3);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "a/s a/s a/s");
}

static void
test_coalesce_name (Fixture *f, gconstpointer data)
{
  enqueue (f, "a", "s1", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_NAME);
  enqueue (f, "b", "s1", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_NAME);
  enqueue (f, "a", "s2", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_NAME);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 2);
  nc_test_drain (f->ctx);
  /* The latest "a" wins and goes at the tail. */
  assert_log (&f->rec, "b/s1 a/s2");
}

static void
test_coalesce_sender (Fixture *f, gconstpointer data)
{
  enqueue (f, "a", "s1", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_SENDER);
  enqueue (f, "b", "s2", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_SENDER);
  enqueue (f, "c", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_SENDER);
  enqueue (f, "d", "s1", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_SENDER);
  enqueue (f, "e", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_SENDER);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "b/s2 d/s1 e/-");
}

static void
test_coalesce_both (Fixture *f, gconstpointer data)
{
  const NcCoalesceFlags both = NC_COALESCE_ON_NAME | NC_COALESCE_ON_SENDER;

  enqueue (f, "a", "s1", NC_POSTING_STYLE_ASAP, both);
  enqueue (f, "a", "s2", NC_POSTING_STYLE_ASAP, both);
  enqueue (f, "b", "s1", NC_POSTING_STYLE_ASAP, both);
  enqueue (f, "a", "s1", NC_POSTING_STYLE_ASAP, both);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "a/s2 b/s1 a/s1");
}

static void
test_coalesce_across_styles (Fixture *f, gconstpointer data)
{
  enqueue (f, "a", "old", NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  enqueue (f, "b", NULL, NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  enqueue (f, "a", "new", NC_POSTING_STYLE_ASAP, NC_COALESCE_ON_NAME);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 2);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "a/new b/-");

  /* And the other way round. */
  g_ptr_array_set_size (f->rec.log, 0);
  enqueue (f, "a", "old", NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "a", "new", NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_ON_NAME);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "a/new");
}

static void
test_dequeue (Fixture *f, gconstpointer data)
{
  g_autoptr(NcNotification) same = nc_notification_new ("a", "s1", NULL);
  g_autoptr(NcNotification) match_a = nc_notification_new ("a", "zz", NULL);
  g_autoptr(NcNotification) match_s2 = nc_notification_new ("zz", "s2", NULL);
  g_autoptr(NcNotification) match_b_s1 = nc_notification_new ("b", "s1", NULL);

  nc_queue_enqueue (f->queue, same, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "a", "s1", NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  enqueue (f, "a", "s2", NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "b", "s1", NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  enqueue (f, "b", "s2", NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "c", "s3", NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 6);

  /* NONE: only that very object. */
  g_assert_cmpuint (nc_queue_dequeue (f->queue, same, NC_COALESCE_NONE), ==, 1);
  g_assert_cmpuint (nc_queue_dequeue (f->queue, same, NC_COALESCE_NONE), ==, 0);
  /* Both flags: name and sender. */
  g_assert_cmpuint (nc_queue_dequeue (f->queue, match_b_s1,
                                      NC_COALESCE_ON_NAME | NC_COALESCE_ON_SENDER), ==, 1);
  /* By sender, across styles. */
  g_assert_cmpuint (nc_queue_dequeue (f->queue, match_s2, NC_COALESCE_ON_SENDER), ==, 2);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 2);
  /* By name. */
  g_assert_cmpuint (nc_queue_dequeue (f->queue, match_a, NC_COALESCE_ON_NAME), ==, 1);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 1);

  nc_test_drain (f->ctx);
  assert_log (&f->rec, "c/s3");
}

/* An observer that enqueues more from inside a post. */
typedef struct {
  NcQueue *queue;
  gint remaining;
} Requeuer;

static void
requeue_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Requeuer *r = data;

  if (r->remaining-- > 0)
    nc_queue_enqueue (r->queue, n, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
}

static void
test_enqueue_during_post (Fixture *f, gconstpointer data)
{
  Requeuer r = { .queue = f->queue, .remaining = 2 };
  NcObserver *o = nc_center_add_observer (f->center, "again", NULL, requeue_cb, &r, NULL);

  enqueue (f, "again", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  /* Each iteration posts only what was queued when it began. */
  g_assert_true (g_main_context_iteration (f->ctx, FALSE));
  assert_log (&f->rec, "again/-");
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 1);
  g_assert_true (g_main_context_iteration (f->ctx, FALSE));
  assert_log (&f->rec, "again/- again/-");
  g_assert_true (g_main_context_iteration (f->ctx, FALSE));
  assert_log (&f->rec, "again/- again/- again/-");
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "again/- again/- again/-");
  nc_observer_release (o);
}

static void
test_clear (Fixture *f, gconstpointer data)
{
  enqueue (f, "a", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  enqueue (f, "b", NULL, NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  nc_queue_clear (f->queue);
  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 0);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "");

  /* Still usable afterwards. */
  enqueue (f, "c", NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "c/-");
}

static void
test_unref_with_pending (Fixture *f, gconstpointer data)
{
  NcQueue *q = nc_queue_new (f->center, f->ctx);
  g_autoptr(NcNotification) n = nc_notification_new ("late", NULL, NULL);

  nc_queue_enqueue (q, n, NC_POSTING_STYLE_WHEN_IDLE, NC_COALESCE_NONE);
  nc_queue_unref (q);
  /* Still posted: the pending source keeps the queue alive. */
  nc_test_drain (f->ctx);
  assert_log (&f->rec, "late/-");
}

typedef struct {
  NcTestCounter count;
  GThread *thread;
  gint wrong_thread;  /* (atomic) */
} ThreadProbe;

static void
thread_probe_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  ThreadProbe *p = data;

  if (g_thread_self () != p->thread)
    g_atomic_int_set (&p->wrong_thread, 1);
  nc_test_counter_add (&p->count, 1);
}

static void
test_other_thread (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  NcTestWorker *w = nc_test_worker_new ("nc-queue");
  NcQueue *q = nc_queue_new (center, w->context);
  ThreadProbe p = { .thread = w->thread };
  NcObserver *o;

  nc_test_counter_init (&p.count);
  o = nc_center_add_observer (center, "x", NULL, thread_probe_cb, &p, NULL);
  for (gint i = 0; i < 20; i++)
    {
      g_autoptr(NcNotification) n = nc_notification_new ("x", NULL, NULL);
      nc_queue_enqueue (q, n, i % 2 ? NC_POSTING_STYLE_ASAP : NC_POSTING_STYLE_WHEN_IDLE,
                        NC_COALESCE_NONE);
    }
  nc_test_counter_wait (&p.count, 20);
  g_assert_cmpint (g_atomic_int_get (&p.wrong_thread), ==, 0);

  nc_queue_unref (q);
  nc_test_worker_free (w);
  nc_observer_release (o);
  nc_test_counter_clear (&p.count);
}

static void
test_bad_args (Fixture *f, gconstpointer data)
{
  g_autoptr(NcNotification) n = nc_notification_new ("a", NULL, NULL);

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*notification != NULL*");
  nc_queue_enqueue (f->queue, NULL, NC_POSTING_STYLE_ASAP, NC_COALESCE_NONE);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*style <=*");
  nc_queue_enqueue (f->queue, n, (NcPostingStyle) 7, NC_COALESCE_NONE);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*coalesce*");
  nc_queue_enqueue (f->queue, n, NC_POSTING_STYLE_ASAP, (NcCoalesceFlags) 8);
  g_test_assert_expected_messages ();

  g_assert_cmpuint (nc_queue_get_length (f->queue), ==, 0);
  nc_queue_unref (NULL);
}

#define ADD(path, func) \
  g_test_add ("/nc/queue/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  /* No G_TEST_OPTION_ISOLATE_DIRS: these tests touch no files, and GLib
   * 2.74 leaks the isolated dir strings, which LeakSanitizer reports. */
  g_test_init (&argc, &argv, NULL);

  ADD ("accessors", test_accessors);
  ADD ("now", test_now);
  ADD ("asap", test_asap);
  ADD ("when-idle", test_when_idle);
  ADD ("coalesce-none", test_coalesce_none);
  ADD ("coalesce-name", test_coalesce_name);
  ADD ("coalesce-sender", test_coalesce_sender);
  ADD ("coalesce-both", test_coalesce_both);
  ADD ("coalesce-across-styles", test_coalesce_across_styles);
  ADD ("dequeue", test_dequeue);
  ADD ("enqueue-during-post", test_enqueue_during_post);
  ADD ("clear", test_clear);
  ADD ("unref-with-pending", test_unref_with_pending);
  ADD ("bad-args", test_bad_args);
  g_test_add_func ("/nc/queue/other-thread", test_other_thread);

  return g_test_run ();
}
