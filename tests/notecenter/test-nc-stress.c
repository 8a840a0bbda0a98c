/* Porter — NcCenter under concurrent posting, adding and removing.
 *
 * Four threads post while four others add and remove observers, for a
 * bounded number of iterations (a second or two; longer under sanitizers).
 * Every delivery to a permanent observer is counted against the exact
 * expected total; churning observers check that a post made on their own
 * thread after adding reaches them exactly once and that nothing reaches
 * them after removal; each churning observer's user data is freed by its
 * destroy-notify, so a call after the destroy-notify, or a second
 * destroy-notify, is a use-after-free that AddressSanitizer reports.  A
 * thread iterating a GMainContext receives context deliveries meanwhile.
 *
 * The test uses only atomics and thread create/join for its own
 * synchronisation, so ThreadSanitizer sees all of it.  To run it under
 * ThreadSanitizer:
 *
 *   meson setup /tmp/build-nc-tsan -Db_sanitize=thread -Db_lundef=false
 *   ninja -C /tmp/build-nc-tsan tests/notecenter/test-nc-stress \
 *       tests/notecenter/test-nc-notification tests/notecenter/test-nc-queue
 *   G_SLICE=always-malloc \
 *   TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/notecenter/tsan.supp" \
 *       meson test -C /tmp/build-nc-tsan --no-rebuild --suite unit \
 *       test-nc-stress test-nc-notification
 *
 * G_SLICE=always-malloc stops GLib 2.74's slice allocator recycling memory
 * between threads behind TSan's back; tsan.supp ignores accesses made inside
 * the uninstrumented libglib (see the file).  test-nc-center and
 * test-nc-queue pass the library code but report races in their own
 * GMutex/GCond hand-shakes, which TSan cannot see in Debian's GLib.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nc-test-util.h"

#define N_POSTERS 4
#define N_CHURNERS 4
#define POSTS_PER_POSTER 20000
#define CHURNS_PER_CHURNER 2000
#define N_CONTEXT_OBSERVERS 2
#define CHURN_MAGIC 0x5eed5eedu

typedef struct {
  NcCenter *center;
  gint go;                 /* (atomic) start barrier */
  gint posters_done;       /* (atomic) */
  gint perm_a;             /* (atomic) deliveries to the "stress.a" observer */
  gint perm_any;           /* (atomic) deliveries to the any-name observer */
  gint perm_sender;        /* (atomic) to the observer of sender "p0" */
  gint ctx_calls;          /* (atomic) context deliveries */
  gint churn_added;        /* (atomic) */
  gint churn_destroyed;    /* (atomic) */
  gint churn_deliveries;   /* (atomic) */
} Stress;

static void
count_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  g_atomic_int_inc ((gint *) data);
}

static void
ctx_count_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Stress *s = data;

  g_atomic_int_inc (&s->ctx_calls);
}

/* User data of a churning observer; freed by its destroy-notify. */
typedef struct {
  guint magic;
  Stress *stress;
  gint calls;      /* (atomic) */
} Churn;

static void
churn_cb (NcCenter *center, NcNotification *n, gpointer data)
{
  Churn *c = data;

  g_assert_cmpuint (c->magic, ==, CHURN_MAGIC);
  g_atomic_int_inc (&c->calls);
  g_atomic_int_inc (&c->stress->churn_deliveries);
}

static void
churn_destroy (gpointer data)
{
  Churn *c = data;

  g_assert_cmpuint (c->magic, ==, CHURN_MAGIC);
  c->magic = 0;
  g_atomic_int_inc (&c->stress->churn_destroyed);
  g_free (c);
}

static void
wait_for_go (Stress *s)
{
  while (!g_atomic_int_get (&s->go))
    g_thread_yield ();
}

static gpointer
poster_thread (gpointer data)
{
  Stress *s = data;
  guint id = GPOINTER_TO_UINT (g_thread_self ()) % 7;   /* not used for matching */
  g_autoptr(NcNotification) a = NULL;
  g_autoptr(NcNotification) a_p0 = NULL;
  g_autoptr(NcNotification) b = NULL;

  (void) id;
  a = nc_notification_new ("stress.a", NULL, NULL);
  a_p0 = nc_notification_new ("stress.a", "p0", NULL);
  b = nc_notification_new ("stress.b", NULL, NULL);

  wait_for_go (s);
  for (gint i = 0; i < POSTS_PER_POSTER; i++)
    {
      /* Per 4 posts: a, a from p0, b, a fresh "stress.a" built here. */
      switch (i % 4)
        {
        case 0: nc_center_post (s->center, a); break;
        case 1: nc_center_post (s->center, a_p0); break;
        case 2: nc_center_post (s->center, b); break;
        default: nc_center_post_name (s->center, "stress.a", NULL, NULL); break;
        }
    }
  g_atomic_int_inc (&s->posters_done);
  return NULL;
}

static gpointer
churner_thread (gpointer data)
{
  Stress *s = data;
  g_autofree gchar *own = g_strdup_printf ("stress.own.%p", (void *) g_thread_self ());
  g_autoptr(NcNotification) own_n = nc_notification_new (own, NULL, NULL);

  wait_for_go (s);
  for (gint i = 0; i < CHURNS_PER_CHURNER; i++)
    {
      Churn *shared = g_new0 (Churn, 1);
      Churn *mine = g_new0 (Churn, 1);
      NcObserver *o_shared, *o_mine;
      /* Alternate among a named, an any-name and a sender observer. */
      const gchar *name = i % 3 == 0 ? "stress.a" : i % 3 == 1 ? NULL : "stress.b";
      const gchar *sender = i % 5 == 0 ? "p0" : NULL;

      shared->magic = mine->magic = CHURN_MAGIC;
      shared->stress = mine->stress = s;
      o_shared = nc_center_add_observer (s->center, name, sender, churn_cb, shared, churn_destroy);
      o_mine = nc_center_add_observer (s->center, own, NULL, churn_cb, mine, churn_destroy);
      g_atomic_int_add (&s->churn_added, 2);

      /* Only this thread posts @own: exactly one call, synchronously. */
      nc_center_post (s->center, own_n);
      g_assert_cmpint (g_atomic_int_get (&mine->calls), ==, 1);

      if (i % 2)
        {
          nc_observer_release (o_mine);
          nc_observer_release (o_shared);
        }
      else
        {
          /* The other way: remove by data, then drop the handles. */
          g_assert_cmpuint (nc_center_remove_observers_for_data (s->center, mine), ==, 1);
          nc_observer_release (o_shared);
          nc_observer_release (o_mine);
        }
      /* @mine was freed by its destroy-notify (no post of @own can be
       * running elsewhere); a post now must not reach it (ASan would
       * report the use-after-free). */
      nc_center_post (s->center, own_n);
    }
  return NULL;
}

typedef struct {
  Stress *stress;
  GMainContext *context;
  gint expected;
} CtxThread;

static gpointer
context_thread (gpointer data)
{
  CtxThread *t = data;

  g_main_context_push_thread_default (t->context);
  /* Iterate until every expected delivery arrived (or time runs out). */
  NC_TEST_ITERATE_UNTIL (t->context, g_atomic_int_get (&t->stress->ctx_calls) >= t->expected);
  nc_test_drain (t->context);
  g_main_context_pop_thread_default (t->context);
  return NULL;
}

static void
test_stress (void)
{
  Stress s = { 0 };
  GThread *posters[N_POSTERS], *churners[N_CHURNERS], *ctx_thread;
  NcObserver *perm_a, *perm_any, *perm_sender, *ctx_obs[N_CONTEXT_OBSERVERS];
  CtxThread ct = { 0 };
  const gint total_posts = N_POSTERS * POSTS_PER_POSTER;
  const gint a_posts = total_posts / 4 * 3;        /* a, a from p0, fresh a */
  const gint own_posts = N_CHURNERS * CHURNS_PER_CHURNER * 2;

  s.center = nc_center_new ();
  ct.stress = &s;
  ct.context = g_main_context_new ();
  ct.expected = a_posts * N_CONTEXT_OBSERVERS;

  perm_a = nc_center_add_observer (s.center, "stress.a", NULL, count_cb, &s.perm_a, NULL);
  perm_any = nc_center_add_observer (s.center, NULL, NULL, count_cb, &s.perm_any, NULL);
  perm_sender = nc_center_add_observer (s.center, NULL, "p0", count_cb, &s.perm_sender, NULL);
  for (guint i = 0; i < N_CONTEXT_OBSERVERS; i++)
    ctx_obs[i] = nc_center_add_observer_on_context (s.center, "stress.a", NULL, ct.context,
                                                    ctx_count_cb, &s, NULL);

  ctx_thread = g_thread_new ("ctx", context_thread, &ct);
  for (guint i = 0; i < N_POSTERS; i++)
    posters[i] = g_thread_new ("poster", poster_thread, &s);
  for (guint i = 0; i < N_CHURNERS; i++)
    churners[i] = g_thread_new ("churner", churner_thread, &s);
  g_atomic_int_set (&s.go, 1);

  for (guint i = 0; i < N_POSTERS; i++)
    g_thread_join (posters[i]);
  for (guint i = 0; i < N_CHURNERS; i++)
    g_thread_join (churners[i]);
  g_thread_join (ctx_thread);

  g_assert_cmpint (s.perm_a, ==, a_posts);
  g_assert_cmpint (s.perm_any, ==, total_posts + own_posts);
  g_assert_cmpint (s.perm_sender, ==, total_posts / 4);
  g_assert_cmpint (s.ctx_calls, ==, a_posts * N_CONTEXT_OBSERVERS);
  g_assert_cmpint (s.churn_added, ==, N_CHURNERS * CHURNS_PER_CHURNER * 2);
  g_assert_cmpint (s.churn_destroyed, ==, s.churn_added);
  g_assert_cmpint (s.churn_deliveries, >=, N_CHURNERS * CHURNS_PER_CHURNER);
  g_test_message ("churning observers got %d deliveries", s.churn_deliveries);

  nc_observer_release (perm_a);
  nc_observer_release (perm_any);
  nc_observer_release (perm_sender);
  for (guint i = 0; i < N_CONTEXT_OBSERVERS; i++)
    nc_observer_release (ctx_obs[i]);
  nc_test_drain (ct.context);
  g_main_context_unref (ct.context);
  nc_center_unref (s.center);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/nc/stress/post-add-remove", test_stress);

  return g_test_run ();
}
