/* SPDX-License-Identifier: MIT */
/* Handing connections out and taking them back. be_pool_acquire's fast
 * path takes the most recently used idle connection under one lock; the
 * slow path validates idle connections, opens new ones, queues the caller
 * FIFO, and explains deadlocks and timeouts. be_pool_release clears what a
 * holder left on the connection and gives it to the next waiter or the
 * idle stack. be_pool_tx_run runs a transaction between the two. */
#include <backend/histogram.h>
#include <backend/log.h>
#include <backend/pool.h>
#include <backend/tx.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "pool_internal.h"
#include "storage.h"

typedef be__pool_slot slot;

/* What a step of the slow path returns when the caller must look at the
 * pool again (BE_OK and the error codes end the acquire). */
enum { RETRY = 1 };

/* ---- how a slow acquire ends (each drops the slow path's reference) ---- */

/* A finished wait goes into the histogram (unlocked). */
static void record_wait(be_pool *p, int64_t enq_ns) {
  int64_t d = be_clock_now_ns(p->clock) - enq_ns;
  be_histogram_record(p->wait_hist, d < 0 ? 0 : d);
}

/* mu held, s checked out to the caller. The slot now keeps the pool
 * alive, so the reference is dropped before unlocking. */
static int slow_success(be_pool *p, slot *s, be_conn **out, int queued, int64_t enq_ns) {
  if (queued) {
    p->waited_ok++;
    record_wait(p, enq_ns);
  }
  int64_t alert = be__pool_alert_due(p);
  int32_t in_use = p->out, waiting = p->waiting;
  p->active--;
  pthread_mutex_unlock(&p->mu);
  if (alert >= 0) be__pool_fire_usage_alert(p, in_use, waiting, alert);
  *out = s->conn;
  return BE_OK;
}

/* mu held: unlock and fail with BE_E_POOL_CLOSED. */
static int fail_closed(be_pool *p, const char *why, be_error **err) {
  pthread_mutex_unlock(&p->mu);
  int rc = be__error_set(err, BE_E_POOL_CLOSED, "%s: %s", p->name, why);
  be__pool_unref(p);
  return rc;
}

/* A failed open (mu held): unlock, build the error, drop the reference. */
static int slow_open_failed(be_pool *p, int rc, be_error *cause, int queued, int64_t enq_ns,
                            be_error **err) {
  if (queued) record_wait(p, enq_ns);
  if (rc == BE_E_POOL_CLOSED) {
    be_error_free(cause);
    return fail_closed(p, "pool is closed", err);
  }
  /* connections parked while this one was opened unlocked are idle */
  int32_t parked = be__pool_parked(p);
  int32_t in_use = p->out - parked, idle = p->idle_n + parked, waiting = p->waiting;
  int64_t failures = (int64_t)p->open_failures;
  pthread_mutex_unlock(&p->mu);
  if (rc != BE_E_NOMEM && be_error_code(cause) != BE_E_NOMEM) {
    be__pool_log(p, BE_LOG_ERROR, "pool cannot open a connection");
    be__pool_incident(p, BE_INCIDENT_DB_UNREACHABLE, in_use, idle, waiting, failures, 0, 0,
                      be_error_message(cause));
  }
  rc = be__pool_open_error(p, rc, cause, "cannot open a connection", err);
  be__pool_unref(p);
  return rc;
}

/* The pool is full and this thread holds one of its connections: waiting
 * could never end (mu held). */
static int fail_deadlock(be_pool *p, const char *file, int32_t line, be_error **err) {
  int32_t in_use = p->out, max = p->max_conns, waiting = p->waiting;
  p->deadlocks++;
  pthread_mutex_unlock(&p->mu);
  if (be__log_enabled(BE_LOG_ERROR)) {
    be__pool_log_line l;
    be__pool_log_init(&l, p);
    be__pool_log_int(&l, "in_use", in_use);
    be__pool_log_int(&l, "max", max);
    be__pool_log_site(&l, file, line);
    be__pool_log_emit(&l, BE_LOG_ERROR, "pool self-deadlock: thread already holds a connection");
  }
  be__pool_incident(p, BE_INCIDENT_POOL_DEADLOCK, in_use, 0, waiting, 0, 0, 0,
                    "a thread holding a connection asked the full pool for another");
  int rc = be__error_set(err, BE_E_POOL_DEADLOCK,
                         "%s: this thread already holds a connection and the pool is full "
                         "(in_use=%d max=%d waiting=%d); waiting could never end",
                         p->name, (int)in_use, (int)max, (int)waiting);
  be__pool_unref(p);
  return rc;
}

/* No connection came free in time (mu held): say what the pool looked
 * like, and who holds the longest. */
static int fail_timeout(be_pool *p, be_error **err) {
  p->timeouts++;
  int32_t in_use = p->out, idle = p->idle_n, waiting = p->waiting, max = p->max_conns;
  int64_t since;
  slot *h = be__pool_longest_holder(p, &since);
  int64_t now = be__clock_coarse_ns(p->clock);
  int64_t held_ms = h ? (now - since) / BE_NS_PER_MS : 0;
  int64_t timeout_ms = p->acquire_timeout_ns / BE_NS_PER_MS;
  char file[141], site[160]; /* the holder may release (and its file go) at any time */
  int32_t line;
  if (h && be__pool_site_copy(h, file, sizeof file, &line))
    snprintf(site, sizeof site, "%s:%d", file, (int)line);
  else snprintf(site, sizeof site, "unknown");
  pthread_mutex_unlock(&p->mu);
  if (be__log_enabled(BE_LOG_WARN)) {
    be__pool_log_line l;
    be__pool_log_init(&l, p);
    be__pool_log_int(&l, "in_use", in_use);
    be__pool_log_int(&l, "idle", idle);
    be__pool_log_int(&l, "waiting", waiting);
    be__pool_log_int(&l, "max", max);
    be__pool_log_int(&l, "timeout_ms", timeout_ms);
    be__pool_log_emit(&l, BE_LOG_WARN, "pool exhausted");
  }
  char msg[BE_INCIDENT_MESSAGE_MAX];
  snprintf(msg, sizeof msg, "no connection free within %lld ms; longest held %lld ms, acquired at %.100s",
           (long long)timeout_ms, (long long)held_ms, site);
  be__pool_incident(p, BE_INCIDENT_POOL_EXHAUSTED, in_use, idle, waiting, p->acquire_timeout_ns,
                    p->acquire_timeout_ns, 0, msg);
  int rc = be__error_set(err, BE_E_POOL_EXHAUSTED,
                         "%s: no connection free within %lld ms (in_use=%d idle=%d waiting=%d "
                         "max=%d); longest held %lld ms, acquired at %s",
                         p->name, (long long)timeout_ms, (int)in_use, (int)idle, (int)waiting,
                         (int)max, (long long)held_ms, site);
  be__pool_unref(p);
  return rc;
}

/* ---- the slow path's ways to a connection (mu held) ---- */

/* Open a connection into reserved slot s for the caller, unlocked.
 * Returns with mu held: BE_OK and s checked out, or an error code with
 * *cause set and the reservation passed on. */
static int create_for_caller(be_pool *p, slot *s, const char *file, int32_t line,
                             be_error **cause) {
  pthread_mutex_unlock(&p->mu);
  int rc = be__pool_open_conn(p, s, cause);
  int64_t now = be__clock_coarse_ns(p->clock);
  pthread_mutex_lock(&p->mu);
  be_conn *orphan = be__pool_settle_open(p, s, rc, now);
  if (orphan) { /* rare: the pool closed meanwhile; our reference keeps it */
    pthread_mutex_unlock(&p->mu);
    be_conn_close(orphan);
    pthread_mutex_lock(&p->mu);
    return BE_E_POOL_CLOSED;
  }
  if (rc == BE_OK) be__pool_checkout(p, s, file, line, now);
  return rc;
}

static int open_for_caller(be_pool *p, slot *s, be_conn **out, const char *file, int32_t line,
                           int queued, int64_t enq_ns, be_error **err) {
  be_error *cause = NULL;
  int rc = create_for_caller(p, s, file, line, &cause);
  if (rc == BE_OK) return slow_success(p, s, out, queued, enq_ns);
  return slow_open_failed(p, rc, cause, queued, enq_ns, err);
}

/* s, just checked out, sat idle past the validation window: ping it
 * unlocked. A dead one is replaced in the same slot when it was the last
 * idle one, else freed (RETRY takes the next). */
static int validate_idle(be_pool *p, slot *s, be_conn **out, const char *file, int32_t line,
                         be_error **err) {
  p->validations++;
  pthread_mutex_unlock(&p->mu);
  int ok = be_conn_ping(s->conn, NULL) == BE_OK;
  if (!ok) {
    be_conn_close(s->conn);
    s->conn = NULL;
    be__pool_log(p, BE_LOG_INFO, "pool replaced a dead idle connection");
  }
  pthread_mutex_lock(&p->mu);
  if (ok) return slow_success(p, s, out, 0, 0);
  p->acquires--;
  p->broken++;
  p->destroys++;
  be__pool_out_dec(p);
  if (p->idle_n > 0 || p->closed) {
    be__pool_slot_free(p, s);
    return RETRY;
  }
  /* keep the capacity: open a replacement in the same slot */
  be__pool_unstamp(s);
  atomic_store_explicit(&s->state, BE__SLOT_OPENING, BE__RELAXED);
  p->opening++;
  return open_for_caller(p, s, out, file, line, 0, 0, err);
}

/* Take idle connection s (the top of the idle stack, or a stale parked
 * one the caller claimed): one past its lifetime is closed (RETRY), one
 * idle too long is validated first. */
static int take_idle(be_pool *p, slot *s, be_conn **out, const char *file, int32_t line,
                     be_error **err) {
  int64_t now = be__clock_coarse_ns(p->clock);
  if (now >= s->expires_ns) {
    p->expired++;
    be__pool_slot_destroy(p, s);
    return RETRY;
  }
  be__pool_checkout(p, s, file, line, now);
  if (now - atomic_load_explicit(&s->last_used_ns, BE__RELAXED) <= p->window_ns)
    return slow_success(p, s, out, 0, 0);
  return validate_idle(p, s, out, file, line, err);
}

/* Every release clears the owner before anyone else can take the slot,
 * so this thread reads its own token only in a slot it holds. */
static int thread_holds_one(const be_pool *p) {
  uintptr_t self = be__pool_self();
  for (int32_t i = 0; i < p->max_conns; i++)
    if (atomic_load_explicit(&p->slots[i].owner, BE__RELAXED) == self) return 1;
  return 0;
}

/* Queue up on w's own condition variable until granted, closed or timed
 * out. Returns 1 when it queued; 0 when waiting is not allowed (no
 * acquire timeout, or no condition variable), with grant GRANT_TIMEOUT. */
static int wait_for_grant(be_pool *p, be__pool_waiter *w, const char *file, int32_t line) {
  memset(w, 0, sizeof *w);
  if (p->acquire_timeout_ns <= 0 || be__cond_init_monotonic(&w->cond) != 0) {
    w->grant = BE__GRANT_TIMEOUT;
    return 0;
  }
  struct timespec ts;
  be__clock_deadline_after(&ts, p->acquire_timeout_ns);
  w->enq_ns = be_clock_now_ns(p->clock);
  w->deadline_ns = be__pool_add_sat(w->enq_ns, p->acquire_timeout_ns);
  w->thread = be__pool_self();
  w->file = file;
  w->line = line;
  w->prev = p->wq_tail;
  if (p->wq_tail) p->wq_tail->next = w;
  else p->wq_head = w;
  p->wq_tail = w;
  p->waiting++;
  p->waits++;
  while (w->grant == BE__GRANT_NONE) {
    int rc = pthread_cond_timedwait(&w->cond, &p->mu, &ts);
    if (rc == ETIMEDOUT && w->grant == BE__GRANT_NONE) {
      be__pool_unlink_waiter(p, w);
      w->grant = BE__GRANT_TIMEOUT;
    }
  }
  pthread_cond_destroy(&w->cond);
  return 1;
}

/* The pool is full: wait for a connection or a reservation. */
static int wait_turn(be_pool *p, be_conn **out, const char *file, int32_t line, be_error **err) {
  be__pool_waiter w;
  int queued = wait_for_grant(p, &w, file, line);
  be__pool_park_update(p);         /* no_park was set for us (acquire_slow) */
  if (w.grant == BE__GRANT_CONN) { /* be__pool_give_back() checked it out for us */
    p->acquires++;
    return slow_success(p, w.slot, out, queued, w.enq_ns);
  }
  if (w.grant == BE__GRANT_CREATE)
    return open_for_caller(p, w.slot, out, file, line, queued, w.enq_ns, err);
  if (queued) record_wait(p, w.enq_ns);
  if (w.grant == BE__GRANT_CLOSED) return fail_closed(p, "pool closed while waiting", err);
  return fail_timeout(p, err);
}

/* A parked slot this thread claimed but found stale (mu held): take it
 * like an idle one, or close it when the pool closed meanwhile. */
static int take_claimed(be_pool *p, slot *s, be_conn **out, const char *file, int32_t line,
                        be_error **err) {
  be__pool_out_dec(p);
  if (!p->closed) return take_idle(p, s, out, file, line, err);
  be__pool_slot_destroy(p, s);
  return RETRY;
}

/* Nothing idle and the pool full: forbid parking, then take what is
 * parked. Returns how many; with none, no_park stays set for the wait
 * (wait_turn and fail_deadlock recompute it). */
static int32_t unpark_before_wait(be_pool *p) {
  atomic_store(&p->no_park, 1);
  int32_t n = be__pool_unpark_all(p);
  if (n > 0) be__pool_park_update(p);
  return n;
}

/* Called with mu held; returns with it released. The whole slow path
 * holds a reference (active), so a concurrent be_pool_free() cannot free
 * the pool under a caller that is still on its way out. claimed: a stale
 * parked slot the caller claimed, or NULL. */
static int acquire_slow(be_pool *p, be_conn **out, const char *file, int32_t line, slot *claimed,
                        be_error **err) {
  p->active++;
  if (claimed) {
    int rc = take_claimed(p, claimed, out, file, line, err);
    if (rc != RETRY) return rc;
  }
  for (;;) {
    if (p->closed) return fail_closed(p, "pool is closed", err);
    if (p->wq_head == NULL && p->idle_n > 0) {
      int rc = take_idle(p, p->idle[--p->idle_n], out, file, line, err);
      if (rc == RETRY) continue;
      return rc;
    }
    if (p->wq_head == NULL && be__pool_unpark_all(p) > 0) continue;
    if (p->wq_head == NULL && p->total < p->max_conns)
      return open_for_caller(p, be__pool_reserve_slot(p), out, file, line, 0, 0, err);
    if (p->wq_head == NULL && unpark_before_wait(p) > 0) continue;
    if (p->deadlock_detection && thread_holds_one(p)) {
      be__pool_park_update(p);
      return fail_deadlock(p, file, line, err);
    }
    return wait_turn(p, out, file, line, err);
  }
}

/* The affinity path: claim the slot this thread parked last in p, when
 * nothing forbids it (no_park). Returns it checked out, or NULL; *stale
 * gets a claimed slot whose connection must go the slow way (idle past
 * the validation window, or past its lifetime). */
static inline slot *claim_parked(be_pool *p, const char *file, int32_t line, slot **stale) {
  /* be__pool_tls by name, never through a pointer: GCC 12's UBSan null
   * check of a pointer to a thread-local tests stale flags and reports a
   * null pointer that is not (the ASan+UBSan stage saw it here). */
  if (be__pool_tls.pool_id != p->id || atomic_load_explicit(&p->no_park, BE__RELAXED)) return NULL;
  slot *s = be__pool_tls.slot;
  int32_t parked = BE__SLOT_PARKED;
  if (!atomic_compare_exchange_strong_explicit(&s->state, &parked, BE__SLOT_IN_USE,
                                               memory_order_acquire, BE__RELAXED))
    return NULL;
  int64_t now = be__clock_coarse_ns(p->clock);
  if (BE__UNLIKELY(now - atomic_load_explicit(&s->last_used_ns, BE__RELAXED) > p->window_ns ||
                   now >= s->expires_ns)) {
    *stale = s;
    return NULL;
  }
  be__pool_stamp(s, be__pool_self(), file, line, now);
  atomic_store_explicit(&s->claims, atomic_load_explicit(&s->claims, BE__RELAXED) + 1,
                        BE__RELAXED);
  return s;
}

/* The mutex path of an acquire (the affinity path did not apply): the
 * most recently used idle connection when it is fresh, else the slow
 * path. Out of line, so the affinity path saves no registers for it. */
static BE__NOINLINE int acquire_locked(be_conn **out, be_pool *p, const char *file, int32_t line,
                                       slot *stale, be_error **err) {
  *out = NULL;
  int64_t now = be__clock_coarse_ns(p->clock);
  pthread_mutex_lock(&p->mu);
  if (BE__LIKELY(stale == NULL && p->idle_n > 0 && p->wq_head == NULL && !p->closed)) {
    slot *s = p->idle[p->idle_n - 1];
    if (BE__LIKELY(now - atomic_load_explicit(&s->last_used_ns, BE__RELAXED) <= p->window_ns &&
                   now < s->expires_ns)) {
      p->idle_n--;
      be__pool_checkout(p, s, file, line, now);
      int64_t alert = be__pool_alert_due(p);
      if (BE__UNLIKELY(alert >= 0)) {
        int32_t in_use = p->out, waiting = p->waiting;
        pthread_mutex_unlock(&p->mu);
        be__pool_fire_usage_alert(p, in_use, waiting, alert);
      } else {
        pthread_mutex_unlock(&p->mu);
      }
      *out = s->conn;
      return BE_OK;
    }
  }
  return acquire_slow(p, out, file, line, stale, err);
}

int be_pool_acquire_at(be_conn **out, be_pool *p, const char *file, int32_t line, be_error **err) {
  if (BE__UNLIKELY(p == NULL || out == NULL)) {
    if (out) *out = NULL;
    return be__error_set(err, BE_E_MISUSE, "be_pool_acquire: %s is NULL", p ? "out" : "pool");
  }
  slot *stale = NULL;
  slot *s = claim_parked(p, file, line, &stale);
  if (BE__LIKELY(s != NULL)) {
    *out = s->conn;
    return BE_OK;
  }
  return acquire_locked(out, p, file, line, stale, err);
}

int(be_pool_acquire)(be_conn **out, be_pool *p, be_error **err) {
  return be_pool_acquire_at(out, p, NULL, 0, err);
}

/* ---- release ---- */

static void log_release_issue(be_pool *p, const char *msg, const char *file, int32_t line,
                              int64_t n) {
  if (!be__log_enabled(BE_LOG_WARN)) return;
  be__pool_log_line l;
  be__pool_log_init(&l, p);
  be__pool_log_site(&l, file, line);
  if (n >= 0) be__pool_log_int(&l, "count", n);
  be__pool_log_emit(&l, BE_LOG_WARN, msg);
}

/* Nothing of this holder's may reach the next one: statements left
 * pending (they hold a read snapshot), an open transaction, observers it
 * attached (a scope it did not end). The caller still owns c, so this
 * runs unlocked. Returns 1 when c must be closed rather than reused;
 * *rolled_back says whether a transaction was rolled back. */
/* The observers changed during the checkout: drop what the holder
 * attached (a scope it did not end, stats of its own) and, when it
 * detached one the release keeps, drop everything from there and attach
 * the pool's own again, so no observer of the holder sees the next
 * holder's statements. 1 when that failed (out of memory): the
 * connection is closed instead. */
static int restore_observers(be_pool *p, slot *s, be_conn *c) {
  int32_t n = be__conn_observer_count(c), k = 0;
  while (k < s->base_obs && k < n && be__conn_observer_ud(c, k) == s->base_ud[k]) k++;
  if (k == s->base_obs && n > k) {
    int32_t gone = be__conn_observers_truncate(c, k);
    log_release_issue(p,
                      "pool connection released with observers attached (a scope not ended?); "
                      "detached",
                      s->file, s->line, gone);
  } else if (k < s->base_obs) {
    int32_t gone = be__conn_observers_truncate(c, k);
    log_release_issue(p, "pool connection released without the pool's own observers; attached again",
                      s->file, s->line, gone);
    if (be__pool_attach_observers(p, c, NULL) != BE_OK || be__pool_note_observers(s, c) != BE_OK)
      return 1;
  }
  s->obs_gen = be__conn_observers_gen(c);
  return 0;
}

static inline int scrub(be_pool *p, slot *s, be_conn *c, int *rolled_back) {
  int destroy = 0;
  int64_t pending = be__conn_open_stmts(c);
  if (BE__UNLIKELY(pending > 0)) {
    be__conn_reset_open_stmts(c);
    log_release_issue(p, "pool connection released with statements not finalized; reset",
                      s->file, s->line, pending);
  }
  if (BE__UNLIKELY(be_conn_in_transaction(c))) {
    *rolled_back = 1;
    if (be_conn_rollback(c, NULL) != BE_OK) destroy = 1;
    be__conn_set_tx_depth(c, 0);
    log_release_issue(p, "pool connection released with an open transaction; rolled back",
                      s->file, s->line, -1);
  }
  if (BE__UNLIKELY(be__conn_observers_gen(c) != s->obs_gen)) destroy |= restore_observers(p, s, c);
  return destroy || be_conn_is_broken(c);
}

/* A release that closes the connection (broken, pool closed, lifetime
 * over) or resolves a reported leak. mu held; released here. */
static void release_slow(be_pool *p, slot *s, be_conn *c, int destroy, int64_t now) {
  int leak_resolved = be__pool_leak_marked(s);
  const char *file = atomic_load_explicit(&s->file, BE__RELAXED);
  int32_t line = atomic_load_explicit(&s->line, BE__RELAXED);
  int64_t held = now - atomic_load_explicit(&s->acquired_ns, BE__RELAXED);
  int close_it = destroy || p->closed || now >= s->expires_ns;
  if (close_it) {
    be__pool_out_dec(p);
    if (destroy) p->broken++;
    else if (!p->closed) p->expired++;
    p->destroys++;
    be__pool_slot_free(p, s);
  } else {
    be__pool_give_back(p, s, now, 1);
  }
  p->active++; /* keep the pool while we finish unlocked */
  pthread_mutex_unlock(&p->mu);
  if (close_it) be_conn_close(c);
  if (leak_resolved && be__log_enabled(BE_LOG_INFO)) {
    be__pool_log_line l;
    be__pool_log_init(&l, p);
    be__pool_log_site(&l, file, line);
    be__pool_log_int(&l, "held_ms", held / BE_NS_PER_MS);
    be__pool_log_emit(&l, BE_LOG_INFO, "pool leak resolved: connection released");
  }
  be__pool_unref(p);
}

/* What park() did. */
enum { PARK_NO,
       PARK_DONE,
       PARK_OTHER };

/* Park s for this thread (the affinity path, see pool_internal.h):
 * PARK_DONE when parked, PARK_NO when the release must take the mutex
 * (s is IN_USE and ours as before), PARK_OTHER when this thread has
 * another slot of p parked. */
static inline __attribute__((always_inline)) int park(be_pool *p, slot *s, int64_t now) {
  if (atomic_load_explicit(&p->no_park, BE__RELAXED)) return PARK_NO;
  if (be__pool_tls.pool_id == p->id && be__pool_tls.slot != s &&
      be__pool_state(be__pool_tls.slot) == BE__SLOT_PARKED)
    return PARK_OTHER;
  uintptr_t owner = atomic_load_explicit(&s->owner, BE__RELAXED);
  const char *file = atomic_load_explicit(&s->file, BE__RELAXED);
  int64_t since = atomic_load_explicit(&s->acquired_ns, BE__RELAXED);
  atomic_store_explicit(&s->last_used_ns, now, BE__RELAXED);
  be__pool_unstamp(s);
  atomic_store(&s->state, BE__SLOT_PARKING);                       /* then read no_park: both seq_cst */
  while (BE__UNLIKELY(atomic_load(&s->inspecting))) sched_yield(); /* a report reads our file */
  if (BE__LIKELY(!atomic_load(&p->no_park))) {
    be__pool_tls.pool_id = p->id;
    be__pool_tls.slot = s;
    /* the last touch: from here the pool may take s, close and go */
    atomic_store_explicit(&s->state, BE__SLOT_PARKED, memory_order_release);
    return PARK_DONE;
  }
  atomic_store_explicit(&s->owner, owner, BE__RELAXED); /* ours again: the mutex path */
  atomic_store_explicit(&s->file, file, BE__RELAXED);
  atomic_store_explicit(&s->acquired_ns, since, BE__RELAXED);
  atomic_store_explicit(&s->state, BE__SLOT_IN_USE, memory_order_release);
  return PARK_NO;
}

/* Park s in place of the slot this thread parked before, which goes onto
 * the idle stack under it: the idle connections keep their most recently
 * used order. 1 when parked. */
static int park_instead(be_pool *p, slot *s, int64_t now) {
  slot *old = be__pool_tls.slot;
  int32_t parked = BE__SLOT_PARKED;
  pthread_mutex_lock(&p->mu);
  if (atomic_compare_exchange_strong(&old->state, &parked, BE__SLOT_IDLE)) {
    p->idle[p->idle_n++] = old;
    p->out--;
  }
  pthread_mutex_unlock(&p->mu);
  return park(p, s, now) == PARK_DONE;
}

/* Park s unless the pool forbids it now: 1 when parked (the release is
 * done), 0 when the release must take the mutex. */
static inline __attribute__((always_inline)) int try_park(be_pool *p, slot *s, int64_t now) {
  int parked = park(p, s, now);
  return BE__LIKELY(parked == PARK_DONE) || (parked == PARK_OTHER && park_instead(p, s, now));
}

/* The mutex path of a release: the next waiter or the idle stack, or
 * release_slow. */
static BE__NOINLINE void release_locked(be_pool *p, slot *s, be_conn *c, int destroy,
                                        int rolled_back, int64_t now) {
  pthread_mutex_lock(&p->mu);
  if (BE__UNLIKELY(rolled_back)) p->rollbacks++;
  if (BE__LIKELY(!destroy && !p->closed && now < s->expires_ns && !be__pool_leak_marked(s))) {
    be__pool_give_back(p, s, now, 1);
    pthread_mutex_unlock(&p->mu);
    return;
  }
  release_slow(p, s, c, destroy, now);
}

/* A release of a connection its holder left something on (scrub), or a
 * broken one. */
static BE__NOINLINE void release_scrubbing(be_pool *p, slot *s, be_conn *c) {
  int rolled_back = 0;
  int destroy = scrub(p, s, c, &rolled_back);
  int64_t now = be__clock_coarse_ns(p->clock);
  if (!destroy && !rolled_back && now < s->expires_ns && !be__pool_leak_marked(s) &&
      try_park(p, s, now))
    return;
  release_locked(p, s, c, destroy, rolled_back, now);
}

void be_pool_release(be_pool *p, be_conn *c) {
  if (p == NULL || c == NULL) return;
  slot *s = be__conn_pool_data(c);
  if (BE__UNLIKELY(s == NULL || s->pool != p)) {
    be__pool_log(p, BE_LOG_ERROR, "be_pool_release: connection does not belong to this pool");
    return;
  }
  if (BE__UNLIKELY(be__pool_state(s) != BE__SLOT_IN_USE)) {
    be__pool_log(p, BE_LOG_ERROR,
                 "be_pool_release: connection is not checked out (released twice?)");
    return;
  }
  /* one call for what scrub() looks at, which is usually nothing */
  if (BE__UNLIKELY(be__conn_leftovers(c, s->obs_gen))) {
    release_scrubbing(p, s, c);
    return;
  }
  int64_t now = be__clock_coarse_ns(p->clock);
  if (BE__LIKELY(now < s->expires_ns && !be__pool_leak_marked(s)) && try_park(p, s, now)) return;
  release_locked(p, s, c, 0, 0, now);
}

/* ---- transactions ---- */

typedef struct tx_tramp {
  be_tx_fn fn;
  void *ud;
  int32_t ran;
} tx_tramp;

static int tx_trampoline(be_conn *c, void *ud, be_error **err) {
  tx_tramp *t = ud;
  t->ran = 1;
  return t->fn(c, t->ud, err);
}

int be_pool_tx_run_ex(be_pool *p, const be_tx_options *opts, be_tx_fn fn, void *ud,
                      be_error **err) {
  if (p == NULL || fn == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_pool_tx_run: %s is NULL", p ? "fn" : "pool");
  for (int attempt = 0;; attempt++) {
    be_conn *c = NULL;
    int rc = be_pool_acquire_at(&c, p, "be_pool_tx_run", 0, err);
    if (rc != BE_OK) return rc;
    tx_tramp t = {fn, ud, 0};
    be_error *e = NULL;
    rc = be_tx_run_ex(c, opts, tx_trampoline, &t, &e);
    int lost_before_start = rc == BE_E_CONN_LOST && !t.ran && be_conn_is_broken(c);
    be_pool_release(p, c); /* a broken one is closed here */
    if (lost_before_start && attempt == 0) {
      be_error_free(e);
      continue;
    }
    if (rc != BE_OK) {
      be__error_give(err, e);
      return rc;
    }
    be_error_free(e);
    return BE_OK;
  }
}

int be_pool_tx_run(be_pool *p, int32_t mode, be_tx_fn fn, void *ud, be_error **err) {
  be_tx_options o = BE_TX_OPTIONS_INIT;
  o.mode = mode;
  return be_pool_tx_run_ex(p, &o, fn, ud, err);
}
