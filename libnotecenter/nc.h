/* Porter — libnotecenter: notifications within a process.
 *
 * OVERVIEW
 *
 * A notification is a name, an optional sender and an optional user info
 * dictionary (an `a{sv}` GVariant).  It is immutable and reference counted,
 * and may be shared between threads.  Names are free-form but should be
 * reverse-DNS (`org.example.Editor.DidSave`); senders are free-form strings.
 *
 * A center (NcCenter, like NSNotificationCenter) delivers each posted
 * notification to every observer whose name and sender match it; an
 * observer's name or sender may be NULL, meaning any.  Each process has a
 * default center (nc_center_get_default()) and may make private ones.
 *
 *   obs = nc_center_add_observer (center, "org.example.DidSave", NULL,
 *                                 on_did_save, self, NULL);
 *   nc_center_post_name (center, "org.example.DidSave", "editor-1", NULL);
 *   ...
 *   nc_observer_release (obs);    // removes it
 *
 * DELIVERY
 *
 * - Posting is synchronous: nc_center_post() calls every matching direct
 *   observer on the posting thread and returns when they have all returned.
 * - Observers are called in the order they were added.  The same callback
 *   and data added twice are two observers, called twice.
 * - Observers added with nc_center_add_observer_on_context() are called
 *   from their GMainContext instead: the post queues a delivery there and
 *   does not wait for it.  Deliveries to one context keep posting order.
 * - The observers a post reaches are fixed when it starts: one added during
 *   a post (by a callback or another thread) does not get that post.  One
 *   removed during a post is not called if its turn has not come yet.
 * - No lock is held while callbacks run.  A callback may post (re-entrant
 *   posting is fine; the inner post completes first), add and remove
 *   observers, itself included, on any thread.
 *
 * LIFETIME
 *
 * Adding an observer returns a handle (NcObserver).  Releasing the handle
 * with nc_observer_release() removes the observer; nc_center_remove_observer()
 * removes it and keeps the handle; nc_center_remove_observers_for_data()
 * removes every observer added with a given user data pointer.  An
 * observer's destroy-notify runs exactly once, after it is removed and no
 * call to it is running or can start: if another thread is inside the
 * observer's callback at the moment it is removed, the destroy-notify runs
 * when that call returns, on that thread.  For context observers it runs on
 * their context.  An observer keeps its center alive.
 *
 * QUEUES
 *
 * A queue (NcQueue, like NSNotificationQueue) defers posts to a
 * GMainContext: NOW posts at once, ASAP at the context's next iteration,
 * WHEN_IDLE when the context has nothing more urgent to do.  Coalescing by
 * name, by sender or both removes the queued notifications that match a new
 * one, which goes at the tail, so the latest of a burst wins.
 * nc_queue_dequeue() removes matching notifications without posting them.
 *
 * LIMITS AND COSTS
 *
 * A post takes one short lock and allocates nothing for direct observers
 * (a context observer costs one idle source per delivery).  In nc-bench
 * (tests/notecenter) a post to one observer costs about a third of a
 * g_signal_emit() to one handler, and each further observer a few
 * nanoseconds.
 * Adding or removing an observer copies the array of observers of that name,
 * so it costs time linear in their number: centers are made for many posts
 * and few changes.  Names observed are interned as GQuarks for the life of
 * the process.  There is no limit on observers or queued notifications.
 *
 * THREADS
 *
 * Every function may be called from any thread.  Notifications posted to
 * a center never leave the process.
 *
 * DISTRIBUTED CENTER (nc-distributed-center.h)
 *
 * NcDistributedCenter, like NSDistributedNotificationCenter: notifications
 * posted to it reach the observers of every process of the user, through
 * porter-notifyd, which the first call starts.  Observers match by name
 * and/or sender (NULL for any), filtered in the daemon, and are called on
 * the GMainContext they name.  While a center's observers share one
 * context, the center reads its deliveries there, one wake-up each, so a
 * process that does not run that context is, to the daemon, one that does
 * not keep up (below); with observers on several contexts a thread of the
 * center reads them.  A process may suspend its delivery; each
 * observer's NcSuspensionBehavior says what it gets meanwhile (dropped, the
 * latest, all of them at resume, or everything at once).  The daemon never
 * waits for a slow process: it coalesces or drops per behaviour past half
 * of a bounded queue and disconnects the process past its limit.  Posting
 * is one-way: nc_distributed_center_post() returns once the message is
 * sent.  After fork() a center in the child has no observers and makes
 * its own connection on first use.  Every function may be called from any
 * thread.
 *
 * NOTIFY (nc-notify.h)
 *
 * Apple's notify(3) with an `nc_` prefix: stateless events on names shared
 * by every process of the user (or of the system instance), served by
 * porter-notifyd, which the first call starts.  nc_notify_post() posts;
 * a registration (a token) is told by a counter read with nc_notify_check(),
 * a signal, a write of the token to a pipe, or a callback on a
 * GMainContext.
 *
 * - Delivery is best effort and coalesced: several posts before a
 *   registration is told may be told once.  A full pipe loses the write.
 * - nc_notify_check() reads a shared read-only page: no system call.  The
 *   first check of a token reports 1.  It may report false positives (when
 *   names outnumber the page's counters they share them, and after the
 *   daemon restarts), never false negatives.
 * - Each name has a 64-bit state (nc_notify_get_state/_set_state), kept by
 *   the daemon while it runs; setting it does not post.
 * - Suspension nests; posts meanwhile become one delivery at the last
 *   resume.
 * - `self.` names stay in the process; `user.uid.<UID>.` names are that
 *   user's; a system instance may reserve prefixes for users and groups.
 * - After fork() the child has no registrations.  If the daemon dies, the
 *   library connects again and registers every name again by itself.
 * - Every function returns an NcNotifyStatus with Apple's values, may be
 *   called from any thread, and blocks on a round trip to the daemon except
 *   nc_notify_check(), nc_notify_is_valid_token(), suspend and resume.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define NC_INSIDE
#include <libnotecenter/nc-types.h>
#include <libnotecenter/nc-notification.h>
#include <libnotecenter/nc-center.h>
#include <libnotecenter/nc-queue.h>
#include <libnotecenter/nc-notify.h>
#include <libnotecenter/nc-distributed-center.h>
#undef NC_INSIDE
