/* Porter — libnotecenter: locks and reference counts shared by the
 * implementation.  Never installed.
 *
 * Both are thin: GMutex and g_atomic_int.  Two reasons they are wrapped:
 *
 * - Reference counts use the g_atomic_int_*() macros, which GCC inlines as
 *   __atomic builtins, rather than g_atomic_rc_box_*() or
 *   g_atomic_ref_count_*(), which are out-of-line calls into libglib: the
 *   post path takes and drops references per post, and inline atomics are
 *   both cheaper and visible to ThreadSanitizer.
 * - GLib's GMutex is a futex inside libglib, whose atomics ThreadSanitizer
 *   cannot see, so every access it protects would be reported as a race.
 *   In a -fsanitize=thread build only, NcMutex is a pthread mutex, which the
 *   sanitizer intercepts.  Normal builds use GMutex.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#if defined(__SANITIZE_THREAD__)
# define NC_TSAN 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define NC_TSAN 1
# endif
#endif

#ifdef NC_TSAN
#include <pthread.h>
typedef pthread_mutex_t NcMutex;
# define nc_mutex_init(m) pthread_mutex_init ((m), NULL)
# define nc_mutex_clear(m) pthread_mutex_destroy (m)
# define nc_mutex_lock(m) pthread_mutex_lock (m)
# define nc_mutex_unlock(m) pthread_mutex_unlock (m)
#else
typedef GMutex NcMutex;
# define nc_mutex_init(m) g_mutex_init (m)
# define nc_mutex_clear(m) g_mutex_clear (m)
# define nc_mutex_lock(m) g_mutex_lock (m)
# define nc_mutex_unlock(m) g_mutex_unlock (m)
#endif

/* A reference count: starts at 1. */
typedef gint NcRef;

static inline void
nc_ref_init (NcRef *ref)
{
  g_atomic_int_set (ref, 1);
}

static inline void
nc_ref_inc (NcRef *ref)
{
  g_atomic_int_inc (ref);
}

/* TRUE when the last reference was dropped. */
static inline gboolean
nc_ref_dec (NcRef *ref)
{
  return g_atomic_int_dec_and_test (ref);
}
