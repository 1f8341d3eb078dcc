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
  int alert = be__pool_alert_due(p);
  int32_t in_use = p->in_use, waiting = p->waiting;
  p->active--;
  pthread_mutex_unlock(&p->mu);
  if (alert) be__pool_fire_usage_alert(p, in_use, waiting);
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
  pthread_mutex_unlock(&p->mu);
  if (rc != BE_E_NOMEM && be_error_code(cause) != BE_E_NOMEM)
    be__pool_log(p, BE_LOG_ERROR, "pool cannot open a connection");
  rc = be__pool_open_error(p, rc, cause, "cannot open a connection", err);
  be__pool_unref(p);
  return rc;
}

/* The pool is full and this thread holds one of its connections: waiting
 * could never end (mu held). */
static int fail_deadlock(be_pool *p, const char *file, int32_t line, be_error **err) {
  int32_t in_use = p->in_use, max = p->max_conns, waiting = p->waiting;
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
  int32_t in_use = p->in_use, idle = p->idle_n, waiting = p->waiting, max = p->max_conns;
  const slot *h = be__pool_longest_holder(p);
  int64_t now = be__clock_coarse_ns(p->clock);
  int64_t held_ms = h ? (now - h->acquired_ns) / BE_NS_PER_MS : 0;
  int64_t timeout_ms = p->acquire_timeout_ns / BE_NS_PER_MS;
  char site[160]; /* the holder may release (and its file go) once we unlock */
  if (h && h->file) snprintf(site, sizeof site, "%.140s:%d", h->file, (int)h->line);
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
  be__pool_in_use_dec(p);
  if (p->idle_n > 0 || p->closed) {
    be__pool_slot_free(p, s);
    return RETRY;
  }
  /* keep the capacity: open a replacement in the same slot */
  s->state = BE__SLOT_OPENING;
  p->opening++;
  return open_for_caller(p, s, out, file, line, 0, 0, err);
}

/* Take the top idle connection (nobody waits): one past its lifetime is
 * closed (RETRY), one idle too long is validated first. */
static int take_idle(be_pool *p, be_conn **out, const char *file, int32_t line, be_error **err) {
  slot *s = p->idle[--p->idle_n];
  int64_t now = be__clock_coarse_ns(p->clock);
  if (now >= s->expires_ns) {
    be_conn *c = s->conn;
    p->expired++;
    p->destroys++;
    be__pool_slot_free(p, s);
    pthread_mutex_unlock(&p->mu);
    be_conn_close(c);
    pthread_mutex_lock(&p->mu);
    return RETRY;
  }
  be__pool_checkout(p, s, file, line, now);
  if (now - s->last_used_ns <= p->window_ns) return slow_success(p, s, out, 0, 0);
  return validate_idle(p, s, out, file, line, err);
}

static int thread_holds_one(const be_pool *p) {
  pthread_t self = pthread_self();
  for (int32_t i = 0; i < p->max_conns; i++) {
    const slot *s = &p->slots[i];
    if (s->state == BE__SLOT_IN_USE && pthread_equal(s->owner, self)) return 1;
  }
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
  w->thread = pthread_self();
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

/* Called with mu held; returns with it released. The whole slow path
 * holds a reference (active), so a concurrent be_pool_free() cannot free
 * the pool under a caller that is still on its way out. */
static int acquire_slow(be_pool *p, be_conn **out, const char *file, int32_t line,
                        be_error **err) {
  p->active++;
  for (;;) {
    if (p->closed) return fail_closed(p, "pool is closed", err);
    if (p->wq_head == NULL && p->idle_n > 0) {
      int rc = take_idle(p, out, file, line, err);
      if (rc == RETRY) continue;
      return rc;
    }
    if (p->wq_head == NULL && p->total < p->max_conns)
      return open_for_caller(p, be__pool_reserve_slot(p), out, file, line, 0, 0, err);
    if (p->deadlock_detection && thread_holds_one(p)) return fail_deadlock(p, file, line, err);
    return wait_turn(p, out, file, line, err);
  }
}

int be_pool_acquire_at(be_conn **out, be_pool *p, const char *file, int32_t line, be_error **err) {
  if (out) *out = NULL;
  if (BE__UNLIKELY(p == NULL || out == NULL))
    return be__error_set(err, BE_E_MISUSE, "be_pool_acquire: %s is NULL", p ? "out" : "pool");
  int64_t now = be__clock_coarse_ns(p->clock);
  pthread_mutex_lock(&p->mu);
  if (BE__LIKELY(p->idle_n > 0 && p->wq_head == NULL && !p->closed)) {
    slot *s = p->idle[p->idle_n - 1];
    if (BE__LIKELY(now - s->last_used_ns <= p->window_ns && now < s->expires_ns)) {
      p->idle_n--;
      be__pool_checkout(p, s, file, line, now);
      if (BE__UNLIKELY(p->in_use == p->alert_at) && p->alert_armed) {
        p->alert_armed = 0;
        int32_t in_use = p->in_use, waiting = p->waiting;
        pthread_mutex_unlock(&p->mu);
        be__pool_fire_usage_alert(p, in_use, waiting);
      } else {
        pthread_mutex_unlock(&p->mu);
      }
      *out = s->conn;
      return BE_OK;
    }
  }
  return acquire_slow(p, out, file, line, err);
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
static inline int scrub(be_pool *p, const slot *s, be_conn *c, int *rolled_back) {
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
  if (BE__UNLIKELY(be__conn_observer_count(c) > s->base_obs)) {
    int32_t n = be__conn_observers_truncate(c, s->base_obs);
    log_release_issue(p,
                      "pool connection released with observers attached (a scope not ended?); "
                      "detached",
                      s->file, s->line, n);
  }
  return destroy || be_conn_is_broken(c);
}

/* A release that closes the connection (broken, pool closed, lifetime
 * over) or resolves a reported leak. mu held; released here. */
static void release_slow(be_pool *p, slot *s, be_conn *c, int destroy, int64_t now) {
  int leak_resolved = s->leak_reported;
  const char *file = s->file;
  int32_t line = s->line;
  int64_t held = now - s->acquired_ns;
  int close_it = destroy || p->closed || now >= s->expires_ns;
  if (close_it) {
    be__pool_in_use_dec(p);
    if (destroy) p->broken++;
    else if (!p->closed) p->expired++;
    p->destroys++;
    be__pool_slot_free(p, s);
    be__pool_grant_capacity(p);
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

void be_pool_release(be_pool *p, be_conn *c) {
  if (p == NULL || c == NULL) return;
  slot *s = be__conn_pool_data(c);
  if (BE__UNLIKELY(s == NULL || s->pool != p)) {
    be__pool_log(p, BE_LOG_ERROR, "be_pool_release: connection does not belong to this pool");
    return;
  }
  int rolled_back = 0;
  int destroy = scrub(p, s, c, &rolled_back);
  int64_t now = be__clock_coarse_ns(p->clock);

  pthread_mutex_lock(&p->mu);
  if (BE__UNLIKELY(s->state != BE__SLOT_IN_USE)) {
    pthread_mutex_unlock(&p->mu);
    be__pool_log(p, BE_LOG_ERROR,
                 "be_pool_release: connection is not checked out (released twice?)");
    return;
  }
  if (BE__UNLIKELY(rolled_back)) p->rollbacks++;
  if (BE__LIKELY(!destroy && !p->closed && now < s->expires_ns && !s->leak_reported)) {
    be__pool_give_back(p, s, now, 1);
    pthread_mutex_unlock(&p->mu);
    return;
  }
  release_slow(p, s, c, destroy, now);
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
