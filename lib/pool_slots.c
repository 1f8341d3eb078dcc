/* SPDX-License-Identifier: MIT */
/* The pool's capacity: reserving and freeing slots, the wait queue,
 * opening connections into reserved slots (with the pool's clock and
 * observers) and their lifetimes. Declared in pool_internal.h. */
#include <backend/query_stats.h>
#include <backend/slowlog.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include "clock.h"
#include "error.h"
#include "pool_internal.h"
#include "storage.h"

typedef be__pool_slot slot;

be__pool_slot *be__pool_reserve_slot(be_pool *p) {
  for (int32_t i = 0; i < p->max_conns; i++) {
    slot *s = &p->slots[i];
    if (be__pool_state(s) == BE__SLOT_FREE) {
      atomic_store_explicit(&s->state, BE__SLOT_OPENING, BE__RELAXED);
      s->conn = NULL;
      p->opening++;
      p->total++;
      return s;
    }
  }
  return NULL;
}

/* Capacity became free: if anyone waits, give the head waiter a
 * reservation to open a connection for itself. */
static void grant_capacity(be_pool *p) {
  if (p->wq_head == NULL || p->closed || p->total >= p->max_conns) return;
  slot *s = be__pool_reserve_slot(p);
  if (s == NULL) return;
  be__pool_waiter *w = be__pool_dequeue_head(p);
  w->slot = s;
  w->grant = BE__GRANT_CREATE;
  pthread_cond_signal(&w->cond);
}

void be__pool_slot_free(be_pool *p, slot *s) {
  atomic_store_explicit(&s->state, BE__SLOT_FREE, BE__RELAXED);
  s->conn = NULL;
  be__pool_unstamp(s);
  p->total--;
  grant_capacity(p);
}

void be__pool_slot_destroy(be_pool *p, slot *s) {
  be_conn *c = s->conn;
  p->destroys++;
  be__pool_slot_free(p, s);
  pthread_mutex_unlock(&p->mu);
  be_conn_close(c);
  pthread_mutex_lock(&p->mu);
}

int32_t be__pool_unpark_all(be_pool *p) {
  int32_t n = 0;
  for (int32_t i = 0; i < p->max_conns; i++) {
    slot *s = &p->slots[i];
    int32_t st;
    while ((st = atomic_load(&s->state)) == BE__SLOT_PARKING) sched_yield(); /* a few instructions */
    int32_t parked = BE__SLOT_PARKED;
    if (st == BE__SLOT_PARKED &&
        atomic_compare_exchange_strong(&s->state, &parked, BE__SLOT_IDLE)) {
      p->idle[p->idle_n++] = s; /* keeps its last_used_ns */
      p->out--;
      n++;
    }
  }
  return n;
}

void be__pool_pressure_on(be_pool *p) {
  p->pressure = 1;
  be__pool_park_update(p);
  be__pool_unpark_all(p);
}

void be__pool_unlink_waiter(be_pool *p, be__pool_waiter *w) {
  if (w->prev) w->prev->next = w->next;
  else p->wq_head = w->next;
  if (w->next) w->next->prev = w->prev;
  else p->wq_tail = w->prev;
  w->next = w->prev = NULL;
  p->waiting--;
  if (p->wq_head == NULL) be__pool_park_update(p);
}

/* xorshift64*: good enough to spread lifetimes */
static uint64_t next_rand(be_pool *p) {
  uint64_t x = p->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  p->rng = x;
  return x * UINT64_C(2685821657736338717);
}

int64_t be__pool_lifetime_end(be_pool *p, int64_t created) {
  if (p->lifetime_ns <= 0) return INT64_MAX;
  int64_t cut = 0;
  if (p->jitter_permille > 0) {
    int64_t span = p->lifetime_ns / 1000 * p->jitter_permille;
    if (span > 0) cut = (int64_t)(next_rand(p) % (uint64_t)(span + 1));
  }
  return be__pool_add_sat(created, p->lifetime_ns - cut);
}

/* connection_init_sql, then connection_init, on a new connection. */
static int setup_conn(be_pool *p, be_conn *c, be_error **cause) {
  int rc = p->init_sql ? be_conn_exec(c, p->init_sql, cause) : BE_OK;
  if (rc == BE_OK && p->init_fn) {
    rc = p->init_fn(c, p->init_ud, cause);
    if (rc > 0) rc = BE_E_INTERNAL; /* not a BE_E_* code: still a failure */
    if (rc != BE_OK && *cause == NULL)
      rc = be__error_set(cause, rc, "connection_init returned %d", rc);
  }
  return rc;
}

int be__pool_open_conn(be_pool *p, slot *s, be_error **cause) {
  be_conn *c = NULL;
  int rc = atomic_load_explicit(&p->opened_once, memory_order_relaxed)
             ? be__conn_open_existing(&c, p->driver, p->dsn, cause)
             : be_conn_open(&c, p->driver, p->dsn, cause);
  if (rc != BE_OK) return rc;
  atomic_store_explicit(&p->opened_once, 1, memory_order_relaxed);
  /* statements are timed on the pool's clock: a fake clock drives the
   * slow-query log and the latency histogram in tests */
  be__conn_set_clock(c, p->clock);
  rc = be__pool_attach_observers(p, c, cause);
  if (rc != BE_OK) { /* out of memory: closing detaches what was attached */
    be_conn_close(c);
    return rc;
  }
  rc = setup_conn(p, c, cause);
  if (rc != BE_OK) {
    be_conn_close(c);
    return rc == BE_E_NOMEM ? rc : BE__POOL_SETUP_FAILED;
  }
  if (be__pool_note_observers(s, c) != BE_OK) { /* with any connection_init attached */
    be_conn_close(c);
    return be__error_oom(cause);
  }
  be__conn_set_pool_data(c, s);
  s->conn = c;
  return BE_OK;
}

int be__pool_attach_observers(be_pool *p, be_conn *c, be_error **cause) {
  /* statement statistics first: they are the one observer an untimed run
   * calls, and an untimed run's walk over the list stops after the last
   * such observer (query stats and the slow-query log see timed runs) */
  int rc = p->stmt_stats ? be_stmt_stats_attach(p->stmt_stats, c, cause) : BE_OK;
  if (rc == BE_OK) rc = be_query_stats_attach(p->qstats, c, cause);
  if (rc == BE_OK && p->slowlog) rc = be_slowlog_attach(p->slowlog, c, cause);
  return rc;
}

int be__pool_note_observers(slot *s, be_conn *c) {
  int32_t n = be__conn_observer_count(c);
  if (n > s->base_cap) {
    void **ud = be__realloc(s->base_ud, (size_t)n * sizeof *ud);
    if (ud == NULL) return BE_E_NOMEM;
    s->base_ud = ud;
    s->base_cap = n;
  }
  s->base_obs = n;
  for (int32_t i = 0; i < n; i++) s->base_ud[i] = be__conn_observer_ud(c, i);
  s->obs_gen = be__conn_observers_gen(c);
  return BE_OK;
}

be_conn *be__pool_settle_open(be_pool *p, slot *s, int rc, int64_t now) {
  p->opening--;
  if (rc != BE_OK) {
    p->open_failures++;
    be__pool_slot_free(p, s);
    return NULL;
  }
  p->creates++;
  s->created_ns = now;
  s->expires_ns = be__pool_lifetime_end(p, now);
  if (!p->closed) return NULL;
  be_conn *orphan = s->conn;
  p->destroys++;
  be__pool_slot_free(p, s);
  return orphan;
}

int be__pool_open_idle(be_pool *p, slot *s, be_error **cause) {
  int rc = be__pool_open_conn(p, s, cause);
  int64_t now = be__clock_coarse_ns(p->clock);
  pthread_mutex_lock(&p->mu);
  be_conn *orphan = be__pool_settle_open(p, s, rc, now);
  if (rc == BE_OK && orphan == NULL) be__pool_give_back(p, s, now, 0);
  pthread_mutex_unlock(&p->mu);
  if (orphan) be_conn_close(orphan);
  return rc;
}

int be__pool_open_error(const be_pool *p, int rc, be_error *cause, const char *what,
                        be_error **err) {
  if (rc == BE_E_NOMEM || be_error_code(cause) == BE_E_NOMEM) {
    be_error_free(cause);
    return be__error_oom(err);
  }
  if (rc == BE__POOL_SETUP_FAILED)
    return be__error_wrap(err, be_error_code(cause), cause, "%s: %s: connection setup failed: %s",
                          p->name, what, be_error_message(cause));
  int32_t code = be_error_code(cause);
  if (code != BE_E_BUSY && code != BE_E_STORAGE) code = BE_E_DB_UNREACHABLE;
  return be__error_wrap(err, code, cause, "%s: %s: %s", p->name, what,
                        cause ? be_error_message(cause) : "open failed");
}

slot *be__pool_longest_holder(const be_pool *p, int64_t *acquired_ns) {
  slot *best = NULL;
  int64_t best_ns = INT64_MAX;
  for (int32_t i = 0; i < p->max_conns; i++) {
    slot *s = &p->slots[i];
    if (be__pool_state(s) != BE__SLOT_IN_USE) continue;
    int64_t t = atomic_load_explicit(&s->acquired_ns, memory_order_acquire);
    if (t < best_ns) { /* INT64_MAX: being claimed, not held yet */
      best = s;
      best_ns = t;
    }
  }
  *acquired_ns = best_ns;
  return best;
}

int be__pool_site_copy(slot *s, char *file, size_t cap, int32_t *line) {
  atomic_store(&s->inspecting, 1);
  const char *f = atomic_load(&s->state) == BE__SLOT_IN_USE
                    ? atomic_load_explicit(&s->file, BE__RELAXED)
                    : NULL;
  snprintf(file, cap, "%s", f ? f : "");
  *line = f ? atomic_load_explicit(&s->line, BE__RELAXED) : 0;
  atomic_store_explicit(&s->inspecting, 0, memory_order_release);
  return f != NULL;
}

uint64_t be__pool_claims(const be_pool *p) {
  uint64_t n = 0;
  for (int32_t i = 0; i < p->max_conns; i++)
    n += atomic_load_explicit(&p->slots[i].claims, BE__RELAXED);
  return n;
}

int32_t be__pool_parked(const be_pool *p) {
  int32_t n = 0;
  for (int32_t i = 0; i < p->max_conns; i++) n += be__pool_state(&p->slots[i]) == BE__SLOT_PARKED;
  return n;
}
