/* Porter — tests for NcCenter.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "nc-test-util.h"

/* A probe: an observer's user data recording its calls in a shared log. */
typedef struct {
  GArray *log;        /* gint: ids in call order (shared, one thread) */
  gint id;
  gint calls;         /* (atomic) */
  gint destroyed;     /* (atomic) */
  GThread *call_thread;
  GThread *destroy_thread;
  NcNotification *last;
} Probe;

static void
probe_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Probe *p = data;

  g_assert_cmpint (g_atomic_int_get (&p->destroyed), ==, 0);
  g_atomic_int_inc (&p->calls);
  p->call_thread = g_thread_self ();
  if (p->log != NULL)
    g_array_append_val (p->log, p->id);
  g_clear_pointer (&p->last, nc_notification_unref);
  p->last = nc_notification_ref (n);
}

static void
probe_destroy (gpointer data)
{
  Probe *p = data;

  g_assert_cmpint (g_atomic_int_add (&p->destroyed, 1), ==, 0);
  p->destroy_thread = g_thread_self ();
}

static void
probe_clear (Probe *p)
{
  g_clear_pointer (&p->last, nc_notification_unref);
}

static void
assert_log (GArray *log, const gint *expected, guint n)
{
  g_assert_cmpuint (log->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (g_array_index (log, gint, i), ==, expected[i]);
}

static void
test_match (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe by_name = { 0 }, by_sender = { 0 }, both = { 0 }, any = { 0 };
  NcObserver *o1, *o2, *o3, *o4;

  o1 = nc_center_add_observer (center, "org.example.A", NULL, probe_cb, &by_name, probe_destroy);
  o2 = nc_center_add_observer (center, NULL, "s1", probe_cb, &by_sender, probe_destroy);
  o3 = nc_center_add_observer (center, "org.example.A", "s1", probe_cb, &both, probe_destroy);
  o4 = nc_center_add_observer (center, NULL, NULL, probe_cb, &any, probe_destroy);

  nc_center_post_name (center, "org.example.A", NULL, NULL);
  g_assert_cmpint (by_name.calls, ==, 1);
  g_assert_cmpint (by_sender.calls, ==, 0);  /* no sender never matches one */
  g_assert_cmpint (both.calls, ==, 0);
  g_assert_cmpint (any.calls, ==, 1);

  nc_center_post_name (center, "org.example.A", "s1", NULL);
  g_assert_cmpint (by_name.calls, ==, 2);
  g_assert_cmpint (by_sender.calls, ==, 1);
  g_assert_cmpint (both.calls, ==, 1);
  g_assert_cmpint (any.calls, ==, 2);

  nc_center_post_name (center, "org.example.B", "s1", NULL);
  g_assert_cmpint (by_name.calls, ==, 2);
  g_assert_cmpint (by_sender.calls, ==, 2);
  g_assert_cmpint (both.calls, ==, 1);
  g_assert_cmpint (any.calls, ==, 3);

  nc_center_post_name (center, "org.example.A", "s2", NULL);
  g_assert_cmpint (by_name.calls, ==, 3);
  g_assert_cmpint (by_sender.calls, ==, 2);
  g_assert_cmpint (both.calls, ==, 1);
  g_assert_cmpint (any.calls, ==, 4);

  /* A name nobody ever observed, not even interned. */
  nc_center_post_name (center, "org.example.NeverSeen.5b0c2d", NULL, NULL);
  g_assert_cmpint (any.calls, ==, 5);
  g_assert_cmpstr (nc_notification_get_name (any.last), ==, "org.example.NeverSeen.5b0c2d");

  /* A notification made before anyone observed its name. */
  {
    g_autoptr(NcNotification) early = nc_notification_new ("org.example.Late.77aa", NULL, NULL);
    Probe late = { 0 };
    NcObserver *o5 = nc_center_add_observer (center, "org.example.Late.77aa", NULL, probe_cb, &late, NULL);

    nc_center_post (center, early);
    g_assert_cmpint (late.calls, ==, 1);
    g_assert_true (late.last == early);
    nc_observer_release (o5);
    probe_clear (&late);
  }

  nc_observer_release (o1);
  nc_observer_release (o2);
  nc_observer_release (o3);
  nc_observer_release (o4);
  g_assert_cmpint (by_name.destroyed + by_sender.destroyed + both.destroyed + any.destroyed, ==, 4);

  nc_center_post_name (center, "org.example.A", "s1", NULL);
  g_assert_cmpint (any.calls, ==, 6);   /* five above, and "early" */
  g_assert_cmpint (by_name.calls, ==, 3);

  probe_clear (&by_name);
  probe_clear (&by_sender);
  probe_clear (&both);
  probe_clear (&any);
}

static void
test_user_info (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe p = { 0 };
  NcObserver *o = nc_center_add_observer (center, "org.example.Info", NULL, probe_cb, &p, NULL);
  gint32 v = 0;

  nc_center_post_name (center, "org.example.Info", "me",
                       g_variant_new_parsed ("{'k': <@i 7>}"));
  g_assert_cmpint (p.calls, ==, 1);
  g_assert_cmpstr (nc_notification_get_sender (p.last), ==, "me");
  g_assert_true (nc_notification_lookup (p.last, "k", "i", &v));
  g_assert_cmpint (v, ==, 7);
  nc_observer_release (o);
  probe_clear (&p);
}

static void
test_order (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  g_autoptr(GArray) log = g_array_new (FALSE, FALSE, sizeof (gint));
  Probe p[6];
  NcObserver *o[6];
  /* Named and any-name observers interleaved: order is registration order. */
  const gchar *names[6] = { "n", NULL, "n", "other", NULL, "n" };
  const gint expected[] = { 0, 1, 2, 4, 5 };

  for (guint i = 0; i < 6; i++)
    {
      p[i] = (Probe) { .log = log, .id = (gint) i };
      o[i] = nc_center_add_observer (center, names[i], NULL, probe_cb, &p[i], NULL);
    }
  nc_center_post_name (center, "n", NULL, NULL);
  assert_log (log, expected, G_N_ELEMENTS (expected));

  for (guint i = 0; i < 6; i++)
    {
      nc_observer_release (o[i]);
      probe_clear (&p[i]);
    }
}

static void
test_same_callback_twice (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe p = { 0 };
  NcObserver *a = nc_center_add_observer (center, "n", NULL, probe_cb, &p, NULL);
  NcObserver *b = nc_center_add_observer (center, "n", NULL, probe_cb, &p, NULL);

  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (p.calls, ==, 2);

  nc_observer_release (a);
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (p.calls, ==, 3);
  nc_observer_release (b);
  probe_clear (&p);
}

/* An observer that removes another one when called. */
typedef struct {
  Probe probe;
  NcObserver *victim;
  gboolean release_victim;
} Remover;

static void
remover_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Remover *r = data;

  probe_cb (center, n, &r->probe);
  if (r->victim != NULL)
    {
      if (r->release_victim)
        nc_observer_release (g_steal_pointer (&r->victim));
      else
        g_assert_true (nc_center_remove_observer (center, r->victim));
    }
}

static void
test_remove_during_post (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  g_autoptr(GArray) log = g_array_new (FALSE, FALSE, sizeof (gint));
  Probe before = { .log = log, .id = 0 }, after = { .log = log, .id = 2 }, any_after = { .log = log, .id = 3 };
  Remover r = { .probe = { .log = log, .id = 1 } };
  NcObserver *o_before, *o_r, *o_after, *o_any;
  const gint expected[] = { 0, 1 };

  o_before = nc_center_add_observer (center, "n", NULL, probe_cb, &before, probe_destroy);
  o_r = nc_center_add_observer (center, "n", NULL, remover_cb, &r, NULL);
  o_after = nc_center_add_observer (center, "n", NULL, probe_cb, &after, probe_destroy);
  o_any = nc_center_add_observer (center, NULL, NULL, probe_cb, &any_after, probe_destroy);

  /* Removing an observer that has already been called this post changes
   * nothing for this post; removing one that has not skips it. */
  r.victim = o_after;
  nc_center_post_name (center, "n", NULL, NULL);
  r.victim = NULL;
  g_assert_cmpint (after.calls, ==, 0);
  g_assert_cmpint (after.destroyed, ==, 0);     /* handle still held */
  g_assert_false (nc_observer_is_active (o_after));
  nc_observer_release (o_after);
  g_assert_cmpint (after.destroyed, ==, 1);

  /* Now remove the any-name one, which sits in the other array. */
  g_array_set_size (log, 0);
  r.victim = o_any;
  r.release_victim = TRUE;
  nc_center_post_name (center, "n", NULL, NULL);
  assert_log (log, expected, G_N_ELEMENTS (expected));
  g_assert_cmpint (any_after.calls, ==, 1);   /* only the first post */
  g_assert_cmpint (any_after.destroyed, ==, 1);
  g_assert_null (r.victim);

  nc_observer_release (o_before);
  nc_observer_release (o_r);
  probe_clear (&before);
  probe_clear (&after);
  probe_clear (&any_after);
  probe_clear (&r.probe);
}

/* An observer that releases itself on its first call. */
typedef struct {
  NcObserver *self;
  gint calls;
  gint destroyed;
} OneShot;

static void
one_shot_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  OneShot *s = data;

  g_assert_cmpint (s->destroyed, ==, 0);
  s->calls++;
  nc_observer_release (g_steal_pointer (&s->self));
  /* Still inside the call: the destroy-notify must not have run. */
  g_assert_cmpint (s->destroyed, ==, 0);
}

static void
one_shot_destroy (gpointer data)
{
  OneShot *s = data;

  s->destroyed++;
}

static void
test_remove_self (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  OneShot s = { 0 };

  s.self = nc_center_add_observer (center, "n", NULL, one_shot_cb, &s, one_shot_destroy);
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (s.calls, ==, 1);
  g_assert_cmpint (s.destroyed, ==, 1);
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (s.calls, ==, 1);
}

/* An observer that adds another one when called. */
typedef struct {
  Probe *added_probe;
  NcObserver *added;
  const gchar *name;
} Adder;

static void
adder_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Adder *a = data;

  if (a->added == NULL)
    a->added = nc_center_add_observer (center, a->name, NULL, probe_cb, a->added_probe, NULL);
}

static void
test_add_during_post (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe named = { 0 }, any = { 0 };
  Adder a1 = { .added_probe = &named, .name = "n" };
  Adder a2 = { .added_probe = &any, .name = NULL };
  NcObserver *o1 = nc_center_add_observer (center, "n", NULL, adder_cb, &a1, NULL);
  NcObserver *o2 = nc_center_add_observer (center, NULL, NULL, adder_cb, &a2, NULL);

  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_nonnull (a1.added);
  g_assert_nonnull (a2.added);
  g_assert_cmpint (named.calls, ==, 0);
  g_assert_cmpint (any.calls, ==, 0);

  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (named.calls, ==, 1);
  g_assert_cmpint (any.calls, ==, 1);

  nc_observer_release (a1.added);
  nc_observer_release (a2.added);
  nc_observer_release (o1);
  nc_observer_release (o2);
  probe_clear (&named);
  probe_clear (&any);
}

/* Re-entrant posting: a callback posts another notification. */
typedef struct {
  GArray *log;
  gint depth;
} Reposter;

static void
reposter_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Reposter *r = data;
  gint mark = 100 + r->depth;

  g_array_append_val (r->log, mark);
  if (r->depth++ < 3)
    nc_center_post_name (center, "n", NULL, NULL);
}

static void
test_reentrant_post (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  g_autoptr(GArray) log = g_array_new (FALSE, FALSE, sizeof (gint));
  Reposter r = { .log = log };
  Probe tail = { .log = log, .id = 1 };
  NcObserver *o1 = nc_center_add_observer (center, "n", NULL, reposter_cb, &r, NULL);
  NcObserver *o2 = nc_center_add_observer (center, "n", NULL, probe_cb, &tail, NULL);
  /* Inner posts complete before the outer one goes on. */
  const gint expected[] = { 100, 101, 102, 103, 1, 1, 1, 1 };

  nc_center_post_name (center, "n", NULL, NULL);
  assert_log (log, expected, G_N_ELEMENTS (expected));

  nc_observer_release (o1);
  nc_observer_release (o2);
  probe_clear (&tail);
}

static void
test_remove_for_data (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe a = { 0 }, b = { 0 };
  NcObserver *o[5];

  o[0] = nc_center_add_observer (center, "n", NULL, probe_cb, &a, probe_destroy);
  o[1] = nc_center_add_observer (center, "m", NULL, probe_cb, &a, NULL);
  o[2] = nc_center_add_observer (center, NULL, NULL, probe_cb, &a, NULL);
  o[3] = nc_center_add_observer (center, "n", NULL, probe_cb, &b, probe_destroy);
  o[4] = nc_center_add_observer (center, NULL, "s", probe_cb, &b, NULL);

  g_assert_cmpuint (nc_center_remove_observers_for_data (center, &a), ==, 3);
  g_assert_cmpuint (nc_center_remove_observers_for_data (center, &a), ==, 0);
  g_assert_false (nc_observer_is_active (o[0]));
  g_assert_true (nc_observer_is_active (o[3]));

  nc_center_post_name (center, "n", "s", NULL);
  nc_center_post_name (center, "m", NULL, NULL);
  g_assert_cmpint (a.calls, ==, 0);
  g_assert_cmpint (b.calls, ==, 2);

  /* The handles are still valid, and their release is quiet. */
  g_assert_false (nc_center_remove_observer (center, o[0]));
  for (guint i = 0; i < 5; i++)
    nc_observer_release (o[i]);
  g_assert_cmpint (a.destroyed, ==, 1);
  g_assert_cmpint (b.destroyed, ==, 1);
  probe_clear (&a);
  probe_clear (&b);
}

static void
test_remove_twice (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe p = { 0 };
  NcObserver *o = nc_center_add_observer (center, "n", NULL, probe_cb, &p, probe_destroy);

  g_assert_true (nc_observer_is_active (o));
  g_assert_true (nc_center_remove_observer (center, o));
  g_assert_false (nc_center_remove_observer (center, o));
  g_assert_cmpint (p.destroyed, ==, 0);
  nc_observer_release (o);
  g_assert_cmpint (p.destroyed, ==, 1);
  nc_observer_release (NULL);
}

/* The destroy-notify waits for a call in progress on another thread. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean in_call;       /* protected by @lock */
  gboolean may_return;    /* protected by @lock */
  gint calls;             /* (atomic) */
  gint returned;          /* (atomic) */
  gint destroyed;         /* (atomic) */
  gint destroyed_before_return;  /* (atomic) */
  GThread *destroy_thread;
  NcCenter *center;
} Blocker;

static void
blocker_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Blocker *b = data;
  gint64 deadline = g_get_monotonic_time () + NC_TEST_TIMEOUT_S * G_TIME_SPAN_SECOND;

  g_assert_cmpint (g_atomic_int_get (&b->destroyed), ==, 0);
  g_atomic_int_inc (&b->calls);
  g_mutex_lock (&b->lock);
  b->in_call = TRUE;
  g_cond_broadcast (&b->cond);
  while (!b->may_return)
    if (!g_cond_wait_until (&b->cond, &b->lock, deadline))
      break;
  g_assert_true (b->may_return);
  g_mutex_unlock (&b->lock);
  g_assert_cmpint (g_atomic_int_get (&b->destroyed), ==, 0);
  g_atomic_int_set (&b->returned, 1);
}

static void
blocker_destroy (gpointer data)
{
  Blocker *b = data;

  if (!g_atomic_int_get (&b->returned))
    g_atomic_int_set (&b->destroyed_before_return, 1);
  b->destroy_thread = g_thread_self ();
  g_atomic_int_inc (&b->destroyed);
}

static gpointer
blocker_post_thread (gpointer data)
{
  Blocker *b = data;

  nc_center_post_name (b->center, "n", NULL, NULL);
  return g_thread_self ();
}

static void
test_destroy_waits_for_call (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Blocker b = { .center = center };
  gint64 deadline = g_get_monotonic_time () + NC_TEST_TIMEOUT_S * G_TIME_SPAN_SECOND;
  NcObserver *o;
  GThread *poster;
  gpointer poster_self;

  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  o = nc_center_add_observer (center, "n", NULL, blocker_cb, &b, blocker_destroy);

  poster = g_thread_new ("poster", blocker_post_thread, &b);
  g_mutex_lock (&b.lock);
  while (!b.in_call)
    if (!g_cond_wait_until (&b.cond, &b.lock, deadline))
      break;
  g_assert_true (b.in_call);
  g_mutex_unlock (&b.lock);

  /* Thread B is inside the callback; remove it here on thread A. */
  nc_observer_release (o);
  g_assert_cmpint (g_atomic_int_get (&b.destroyed), ==, 0);
  /* A post starting now does not call it. */
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (g_atomic_int_get (&b.calls), ==, 1);

  g_mutex_lock (&b.lock);
  b.may_return = TRUE;
  g_cond_broadcast (&b.cond);
  g_mutex_unlock (&b.lock);
  poster_self = g_thread_join (poster);

  g_assert_cmpint (g_atomic_int_get (&b.destroyed), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&b.destroyed_before_return), ==, 0);
  /* It ran on the posting thread, as its call finished. */
  g_assert_true (b.destroy_thread == poster_self);

  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);
}

/* Context delivery on another thread. */
typedef struct {
  NcTestCounter calls;
  NcTestCounter destroyed;
  GThread *expected_thread;
  gint wrong_thread;      /* (atomic) */
  GMutex order_lock;
  GArray *order;          /* gint; protected by @order_lock */
} CtxProbe;

static void
ctx_probe_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  CtxProbe *p = data;
  gint32 seq = -1;

  if (g_thread_self () != p->expected_thread)
    g_atomic_int_set (&p->wrong_thread, 1);
  if (nc_notification_lookup (n, "seq", "i", &seq))
    {
      g_mutex_lock (&p->order_lock);
      g_array_append_val (p->order, seq);
      g_mutex_unlock (&p->order_lock);
    }
  nc_test_counter_add (&p->calls, 1);
}

static void
ctx_probe_destroy (gpointer data)
{
  CtxProbe *p = data;

  if (g_thread_self () != p->expected_thread)
    g_atomic_int_set (&p->wrong_thread, 1);
  nc_test_counter_add (&p->destroyed, 1);
}

static void
ctx_probe_init (CtxProbe *p, GThread *thread)
{
  memset (p, 0, sizeof (*p));
  nc_test_counter_init (&p->calls);
  nc_test_counter_init (&p->destroyed);
  p->expected_thread = thread;
  g_mutex_init (&p->order_lock);
  p->order = g_array_new (FALSE, FALSE, sizeof (gint));
}

static void
ctx_probe_clear (CtxProbe *p)
{
  nc_test_counter_clear (&p->calls);
  nc_test_counter_clear (&p->destroyed);
  g_mutex_clear (&p->order_lock);
  g_array_unref (p->order);
}

static void
test_context_delivery (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  NcTestWorker *w = nc_test_worker_new ("nc-ctx");
  CtxProbe p;
  Probe direct = { 0 };
  NcObserver *o, *od;
  const gint n_posts = 50;

  ctx_probe_init (&p, w->thread);
  o = nc_center_add_observer_on_context (center, "n", NULL, w->context,
                                         ctx_probe_cb, &p, ctx_probe_destroy);
  od = nc_center_add_observer (center, "n", NULL, probe_cb, &direct, NULL);

  for (gint i = 0; i < n_posts; i++)
    {
      g_autoptr(NcNotification) n = nc_notification_new_with_info ("n", NULL,
                                                                   "seq", g_variant_new_int32 (i),
                                                                   NULL);
      nc_center_post (center, n);
      /* The direct observer ran here, before the post returned. */
      g_assert_cmpint (direct.calls, ==, i + 1);
      g_assert_true (direct.call_thread == g_thread_self ());
    }

  nc_test_counter_wait (&p.calls, n_posts);
  g_mutex_lock (&p.order_lock);
  g_assert_cmpuint (p.order->len, ==, (guint) n_posts);
  for (gint i = 0; i < n_posts; i++)
    g_assert_cmpint (g_array_index (p.order, gint, i), ==, i);
  g_mutex_unlock (&p.order_lock);

  /* Released from this thread: the destroy-notify runs on the worker. */
  nc_observer_release (o);
  nc_test_counter_wait (&p.destroyed, 1);
  g_assert_cmpint (g_atomic_int_get (&p.wrong_thread), ==, 0);

  nc_observer_release (od);
  nc_test_worker_free (w);
  g_assert_cmpint (nc_test_counter_get (&p.destroyed), ==, 1);
  g_assert_cmpint (nc_test_counter_get (&p.calls), ==, n_posts);
  ctx_probe_clear (&p);
  probe_clear (&direct);
}

/* A post on the context's own thread is still deferred, and a delivery
 * queued for an observer removed before it runs is dropped. */
static void
test_context_same_thread (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  g_autoptr(GMainContext) ctx = g_main_context_new ();
  CtxProbe p;
  NcObserver *o;

  g_main_context_push_thread_default (ctx);
  ctx_probe_init (&p, g_thread_self ());
  /* NULL: the thread-default context. */
  o = nc_center_add_observer_on_context (center, NULL, NULL, NULL,
                                         ctx_probe_cb, &p, ctx_probe_destroy);

  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (nc_test_counter_get (&p.calls), ==, 0);
  NC_TEST_ITERATE_UNTIL (ctx, nc_test_counter_get (&p.calls) == 1);

  nc_center_post_name (center, "n", NULL, NULL);
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_true (nc_center_remove_observer (center, o));
  nc_test_drain (ctx);
  g_assert_cmpint (nc_test_counter_get (&p.calls), ==, 1);
  g_assert_cmpint (nc_test_counter_get (&p.destroyed), ==, 0);  /* handle held */

  nc_observer_release (o);
  NC_TEST_ITERATE_UNTIL (ctx, nc_test_counter_get (&p.destroyed) == 1);
  nc_test_drain (ctx);
  g_assert_cmpint (nc_test_counter_get (&p.destroyed), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&p.wrong_thread), ==, 0);

  g_main_context_pop_thread_default (ctx);
  ctx_probe_clear (&p);
}

/* Add and remove from other threads; posting from several. */
typedef struct {
  NcCenter *center;
  gint calls;   /* (atomic) */
} ThreadData;

static void
count_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  g_atomic_int_inc ((gint *) data);
}

static gpointer
add_post_remove_thread (gpointer data)
{
  ThreadData *t = data;
  gint mine = 0;
  NcObserver *o = nc_center_add_observer (t->center, "n", NULL, count_cb, &mine, NULL);

  /* Added on this thread: this thread's next post reaches it. */
  nc_center_post_name (t->center, "n", NULL, NULL);
  g_assert_cmpint (g_atomic_int_get (&mine), >=, 1);
  nc_observer_release (o);
  mine = 0;
  nc_center_post_name (t->center, "n", NULL, NULL);
  g_assert_cmpint (g_atomic_int_get (&mine), ==, 0);
  g_atomic_int_inc (&t->calls);
  return NULL;
}

static void
test_other_threads (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  ThreadData t = { .center = center };
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("nc-t", add_post_remove_thread, &t);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpint (t.calls, ==, 4);
}

static void
test_default_center (void)
{
  NcCenter *center = nc_center_get_default ();
  Probe p = { 0 };
  NcObserver *o;

  g_assert_nonnull (center);
  g_assert_true (center == nc_center_get_default ());
  o = nc_center_add_observer (center, "org.example.Default", NULL, probe_cb, &p, NULL);
  nc_center_post_name (center, "org.example.Default", NULL, NULL);
  g_assert_cmpint (p.calls, ==, 1);
  nc_observer_release (o);
  probe_clear (&p);
}

static void
test_center_lifetime (void)
{
  NcCenter *center = nc_center_new ();
  Probe p = { 0 };
  NcObserver *o = nc_center_add_observer (center, "n", NULL, probe_cb, &p, probe_destroy);

  /* The observer keeps the center alive. */
  nc_center_unref (center);
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (p.calls, ==, 1);
  nc_observer_release (o);
  g_assert_cmpint (p.destroyed, ==, 1);
  nc_center_unref (NULL);
  probe_clear (&p);
}

static void
test_autoptr (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  Probe p = { 0 };

  {
    g_autoptr(NcObserver) o = nc_center_add_observer (center, "n", NULL, probe_cb, &p, probe_destroy);
    nc_center_post_name (center, "n", NULL, NULL);
  }
  g_assert_cmpint (p.destroyed, ==, 1);
  nc_center_post_name (center, "n", NULL, NULL);
  g_assert_cmpint (p.calls, ==, 1);
  probe_clear (&p);
}

static void
test_bad_args (void)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  g_autoptr(NcCenter) other = nc_center_new ();
  Probe p = { 0 };
  NcObserver *o;

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*func != NULL*");
  o = nc_center_add_observer (center, "n", NULL, NULL, NULL, NULL);
  g_test_assert_expected_messages ();
  g_assert_null (o);

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*center != NULL*");
  o = nc_center_add_observer (NULL, "n", NULL, probe_cb, &p, NULL);
  g_test_assert_expected_messages ();
  g_assert_null (o);

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*name == NULL*");
  o = nc_center_add_observer (center, "", NULL, probe_cb, &p, NULL);
  g_test_assert_expected_messages ();
  g_assert_null (o);

  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*notification != NULL*");
  nc_center_post (center, NULL);
  g_test_assert_expected_messages ();

  o = nc_center_add_observer (center, "n", NULL, probe_cb, &p, NULL);
  g_test_expect_message ("Porter-NC", G_LOG_LEVEL_CRITICAL, "*observer->center == center*");
  g_assert_false (nc_center_remove_observer (other, o));
  g_test_assert_expected_messages ();
  nc_observer_release (o);
}

int
main (int argc, char **argv)
{
  /* No G_TEST_OPTION_ISOLATE_DIRS: these tests touch no files, and GLib
   * 2.74 leaks the isolated dir strings, which LeakSanitizer reports. */
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/nc/center/match", test_match);
  g_test_add_func ("/nc/center/user-info", test_user_info);
  g_test_add_func ("/nc/center/order", test_order);
  g_test_add_func ("/nc/center/same-callback-twice", test_same_callback_twice);
  g_test_add_func ("/nc/center/remove-during-post", test_remove_during_post);
  g_test_add_func ("/nc/center/remove-self", test_remove_self);
  g_test_add_func ("/nc/center/add-during-post", test_add_during_post);
  g_test_add_func ("/nc/center/reentrant-post", test_reentrant_post);
  g_test_add_func ("/nc/center/remove-for-data", test_remove_for_data);
  g_test_add_func ("/nc/center/remove-twice", test_remove_twice);
  g_test_add_func ("/nc/center/destroy-waits-for-call", test_destroy_waits_for_call);
  g_test_add_func ("/nc/center/context-delivery", test_context_delivery);
  g_test_add_func ("/nc/center/context-same-thread", test_context_same_thread);
  g_test_add_func ("/nc/center/other-threads", test_other_threads);
  g_test_add_func ("/nc/center/default", test_default_center);
  g_test_add_func ("/nc/center/lifetime", test_center_lifetime);
  g_test_add_func ("/nc/center/autoptr", test_autoptr);
  g_test_add_func ("/nc/center/bad-args", test_bad_args);

  return g_test_run ();
}
