/* Porter — nc-bench: the cost of a post per delivered observer, beside a
 * GObject signal emission per handler, the in-process anchor.
 *
 * Cases (names are stable; compare runs over time):
 *   nc-post-N        nc_center_post() of a prebuilt notification to N
 *                    direct observers of its name
 *   gsignal-emit-N   g_signal_emit() of a signal with one pointer argument
 *                    (the same notification) to N connected handlers
 * for N = 1, 10, 100, then one ratio line per N (nc / gsignal; below 1 is
 * faster).  One JSON object per line.  Options: --case PATTERN (glob).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <glib-object.h>
#include <libnotecenter/nc.h>

/* A minimal GObject with one signal. */
typedef struct { GObject parent; } BenchObj;
typedef struct { GObjectClass parent_class; } BenchObjClass;
static GType bench_obj_get_type (void);
G_DEFINE_TYPE (BenchObj, bench_obj, G_TYPE_OBJECT)
static guint fire_signal;

static void
bench_obj_class_init (BenchObjClass *klass)
{
  fire_signal = g_signal_new ("fire", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                              0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void
bench_obj_init (BenchObj *self)
{
}

static volatile gsize sink;

static void
nc_handler (NcCenter *center, NcNotification *n, gpointer data)
{
  sink += GPOINTER_TO_SIZE (data);
}

static void
signal_handler (BenchObj *obj, gpointer arg, gpointer data)
{
  sink += GPOINTER_TO_SIZE (data);
}

static const gchar *pattern;

static gboolean
wanted (const gchar *name)
{
  return pattern == NULL || g_pattern_match_simple (pattern, name);
}

/* Best of a few timed rounds, 4 million deliveries each. */
#define ROUNDS 5

static gdouble
bench_nc (guint n_observers)
{
  g_autoptr(NcCenter) center = nc_center_new ();
  g_autoptr(NcNotification) n = nc_notification_new ("org.porter.Bench", NULL, NULL);
  g_autofree NcObserver **obs = g_new (NcObserver *, n_observers);
  guint64 iters = 4000000 / n_observers;
  gdouble best = G_MAXDOUBLE;

  for (guint i = 0; i < n_observers; i++)
    obs[i] = nc_center_add_observer (center, "org.porter.Bench", NULL, nc_handler,
                                     GUINT_TO_POINTER (i + 1), NULL);
  for (int r = 0; r < ROUNDS; r++)
    {
      gint64 t0 = g_get_monotonic_time ();
      gdouble ns;

      for (guint64 k = 0; k < iters; k++)
        nc_center_post (center, n);
      ns = (g_get_monotonic_time () - t0) * 1000.0 / ((gdouble) iters * n_observers);
      best = MIN (best, ns);
    }
  for (guint i = 0; i < n_observers; i++)
    nc_observer_release (obs[i]);
  return best;
}

static gdouble
bench_gsignal (guint n_handlers)
{
  g_autoptr(GObject) obj = g_object_new (bench_obj_get_type (), NULL);
  guint64 iters = 4000000 / n_handlers;
  gdouble best = G_MAXDOUBLE;
  gpointer arg = &fire_signal;

  for (guint i = 0; i < n_handlers; i++)
    g_signal_connect (obj, "fire", G_CALLBACK (signal_handler), GUINT_TO_POINTER (i + 1));
  for (int r = 0; r < ROUNDS; r++)
    {
      gint64 t0 = g_get_monotonic_time ();
      gdouble ns;

      for (guint64 k = 0; k < iters; k++)
        g_signal_emit (obj, fire_signal, 0, arg);
      ns = (g_get_monotonic_time () - t0) * 1000.0 / ((gdouble) iters * n_handlers);
      best = MIN (best, ns);
    }
  return best;
}

int
main (int argc, char **argv)
{
  static const guint sizes[] = { 1, 10, 100 };
  gdouble nc_ns[G_N_ELEMENTS (sizes)], sig_ns[G_N_ELEMENTS (sizes)];

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--case") == 0 && i + 1 < argc)
        pattern = argv[++i];
      else
        {
          fprintf (stderr, "usage: %s [--case PATTERN]\n", argv[0]);
          return 2;
        }
    }

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      g_autofree gchar *nc_case = g_strdup_printf ("nc-post-%u", sizes[s]);
      g_autofree gchar *sig_case = g_strdup_printf ("gsignal-emit-%u", sizes[s]);

      nc_ns[s] = sig_ns[s] = -1;
      if (wanted (nc_case))
        {
          nc_ns[s] = bench_nc (sizes[s]);
          printf ("{\"case\": \"%s\", \"ns_per_delivery\": %.2f}\n", nc_case, nc_ns[s]);
        }
      if (wanted (sig_case))
        {
          sig_ns[s] = bench_gsignal (sizes[s]);
          printf ("{\"case\": \"%s\", \"ns_per_delivery\": %.2f}\n", sig_case, sig_ns[s]);
        }
      fflush (stdout);
    }
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    if (nc_ns[s] > 0 && sig_ns[s] > 0)
      printf ("{\"case\": \"ratio-nc-post-vs-gsignal-emit-%u\", \"ratio\": %.3f}\n",
              sizes[s], nc_ns[s] / sig_ns[s]);
  return 0;
}
