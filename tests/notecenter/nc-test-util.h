/* Porter — shared helpers for the libnotecenter tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libnotecenter/nc.h>

/* How long any wait may take before the test fails. */
#define NC_TEST_TIMEOUT_S 10

static inline gboolean
nc_test_flag_cb (gpointer data)
{
  g_atomic_int_set ((gint *) data, 1);
  return G_SOURCE_REMOVE;
}

/* Iterates @ctx until @cond holds or the timeout expires (then fails). */
#define NC_TEST_ITERATE_UNTIL(ctx, cond)                                      \
  G_STMT_START {                                                              \
    gint timed_out_ = 0;                                                      \
    GSource *timeout_ = g_timeout_source_new_seconds (NC_TEST_TIMEOUT_S);     \
    g_source_set_callback (timeout_, nc_test_flag_cb, &timed_out_, NULL);     \
    g_source_attach (timeout_, (ctx));                                        \
    while (!(cond) && !g_atomic_int_get (&timed_out_))                        \
      g_main_context_iteration ((ctx), TRUE);                                 \
    g_source_destroy (timeout_);                                              \
    g_source_unref (timeout_);                                                \
    g_assert_false (g_atomic_int_get (&timed_out_));                          \
  } G_STMT_END

/* Runs every source of @ctx that is ready now, without blocking. */
static inline void
nc_test_drain (GMainContext *ctx)
{
  while (g_main_context_iteration (ctx, FALSE))
    ;
}

/* A thread running a GMainLoop on its own context. */
typedef struct {
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
} NcTestWorker;

static inline gpointer
nc_test_worker_main (gpointer data)
{
  NcTestWorker *w = data;

  g_main_context_push_thread_default (w->context);
  g_main_loop_run (w->loop);
  /* Run what is left (deliveries, destroy-notifies) before exiting. */
  nc_test_drain (w->context);
  g_main_context_pop_thread_default (w->context);
  return NULL;
}

static inline NcTestWorker *
nc_test_worker_new (const char *name)
{
  NcTestWorker *w = g_new0 (NcTestWorker, 1);

  w->context = g_main_context_new ();
  w->loop = g_main_loop_new (w->context, FALSE);
  w->thread = g_thread_new (name, nc_test_worker_main, w);
  return w;
}

static inline gboolean
nc_test_worker_quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static inline void
nc_test_worker_free (NcTestWorker *w)
{
  GSource *s = g_idle_source_new ();

  g_source_set_priority (s, G_PRIORITY_LOW);
  g_source_set_callback (s, nc_test_worker_quit_cb, w->loop, NULL);
  g_source_attach (s, w->context);
  g_source_unref (s);
  g_thread_join (w->thread);
  g_main_loop_unref (w->loop);
  g_main_context_unref (w->context);
  g_free (w);
}

/* A counter other threads can wait on, with a deadline. */
typedef struct {
  GMutex lock;
  GCond cond;
  gint value;
} NcTestCounter;

static inline void
nc_test_counter_init (NcTestCounter *c)
{
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  c->value = 0;
}

static inline void
nc_test_counter_clear (NcTestCounter *c)
{
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
}

static inline void
nc_test_counter_add (NcTestCounter *c, gint n)
{
  g_mutex_lock (&c->lock);
  c->value += n;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static inline gint
nc_test_counter_get (NcTestCounter *c)
{
  gint v;

  g_mutex_lock (&c->lock);
  v = c->value;
  g_mutex_unlock (&c->lock);
  return v;
}

/* Waits until the counter is at least @target; fails on timeout. */
static inline void
nc_test_counter_wait (NcTestCounter *c, gint target)
{
  gint64 deadline = g_get_monotonic_time () + NC_TEST_TIMEOUT_S * G_TIME_SPAN_SECOND;

  g_mutex_lock (&c->lock);
  while (c->value < target)
    if (!g_cond_wait_until (&c->cond, &c->lock, deadline))
      break;
  g_assert_cmpint (c->value, >=, target);
  g_mutex_unlock (&c->lock);
}
