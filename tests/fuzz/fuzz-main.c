/* Runs a fuzz target over its seed corpus, as an ordinary test: every
 * build (gcc included) checks the corpus, not only libFuzzer builds.
 *
 *   fuzz-do-wire [--quick] PATH...
 *
 * Each PATH is a file or a directory of files.  Besides each input as it is,
 * it runs every prefix of it (truncations) and, for each byte, the input
 * with that byte inverted, so the decoder's checks see many near-valid
 * messages without a fuzzer.  Larger inputs get evenly spaced samples of
 * both.  --quick runs the inputs only.  Exits 77 (skipped) when there is no
 * input at all.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define MAX_VARIANTS 512

static guint64 n_runs;

static void
run_one (const guint8 *data, gsize size)
{
  /* A copy of exactly @size bytes, so ASan sees any read past the end. */
  guint8 *copy = g_memdup2 (data, size ? size : 1);

  LLVMFuzzerTestOneInput (copy, size);
  g_free (copy);
  n_runs++;
}

static void
run_input (const char *path, gboolean quick)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *contents = NULL;
  gsize size, step;

  if (!g_file_get_contents (path, &contents, &size, &error))
    g_error ("%s", error->message);

  g_print ("# %s (%" G_GSIZE_FORMAT " bytes)\n", path, size);
  run_one ((const guint8 *) contents, size);
  if (quick || size == 0)
    return;

  step = MAX (1, size / MAX_VARIANTS);

  /* Truncations. */
  for (gsize len = 0; len < size; len += step)
    run_one ((const guint8 *) contents, len);

  /* One byte inverted at a time. */
  for (gsize i = 0; i < size; i += step)
    {
      contents[i] = (gchar) ~contents[i];
      run_one ((const guint8 *) contents, size);
      contents[i] = (gchar) ~contents[i];
    }
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

int
main (int argc, char **argv)
{
  gboolean quick = FALSE;
  guint n_inputs = 0;

  for (int i = 1; i < argc; i++)
    {
      g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

      if (strcmp (argv[i], "--quick") == 0)
        {
          quick = TRUE;
          continue;
        }

      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GDir) dir = g_dir_open (argv[i], 0, &error);
          const gchar *name;

          if (!dir)
            g_error ("%s", error->message);
          while ((name = g_dir_read_name (dir)))
            if (name[0] != '.')
              g_ptr_array_add (files, g_build_filename (argv[i], name, NULL));
          /* A stable order, so a failure reproduces. */
          qsort (files->pdata, files->len, sizeof (gpointer), compare_strings);
        }
      else if (g_file_test (argv[i], G_FILE_TEST_EXISTS))
        g_ptr_array_add (files, g_strdup (argv[i]));
      else
        g_print ("# %s: no such file or directory\n", argv[i]);

      for (guint j = 0; j < files->len; j++)
        {
          run_input (files->pdata[j], quick);
          n_inputs++;
        }
    }

  if (n_inputs == 0)
    {
      g_print ("# no input: nothing to run\n");
      return 77;
    }

  g_print ("# %u inputs, %" G_GUINT64_FORMAT " runs\n", n_inputs, n_runs);
  return 0;
}
