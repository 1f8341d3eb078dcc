/* SPDX-License-Identifier: MIT */
/* be_pool's lifecycle: options, creation (with min_conns opened), close,
 * free, the reference that lets the last thread out free the pool, the
 * maintenance thread, and the accessors. How the pool works and where the
 * rest of it lives: pool_internal.h. */
#include <backend/histogram.h>
#include <backend/log.h>
#include <backend/pool.h>
#include <backend/query_stats.h>
#include <backend/slowlog.h>

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "pool.h"
#include "pool_internal.h"
#include "postgres.h"
#include "storage.h"

typedef be__pool_slot slot;

__thread be__pool_tl be__pool_tls __attribute__((tls_model("initial-exec")));

/* Pool ids for be__pool_tls: a freed pool's memory may hold a new pool. */
static _Atomic uint64_t last_pool_id;

/* Thread tokens (be__pool_self), one per thread for the process's life. */
static _Atomic uintptr_t last_token;

uintptr_t be__pool_new_token(void) { return atomic_fetch_add(&last_token, 1) + 1; }

/* ---- options ---- */

/* Bytes of be_pool_options that a caller of each version has. */
static size_t options_size(uint32_t version) {
  switch (version) {
    case 1: return offsetof(be_pool_options, stmt_stats);
    case 2: return sizeof(be_pool_options);
    default: return 0;
  }
}

int be_pool_options_init(be_pool_options *o, uint32_t version) {
  size_t n = options_size(version);
  if (o == NULL || n == 0) return BE_E_MISUSE;
  /* static: zeroed padding, so the result equals the macro byte for byte */
  static const be_pool_options defaults = BE_POOL_OPTIONS_INIT;
  memcpy(o, &defaults, n); /* an older caller's struct is shorter */
  o->version = version;
  return BE_OK;
}

/* The caller's options, the fields its version lacks at their defaults. */
static int read_options(be_pool_options *o, const be_pool_options *opts, be_error **err) {
  be_pool_options d = BE_POOL_OPTIONS_INIT;
  *o = d;
  size_t n = options_size(opts->version);
  if (n == 0)
    return be__error_set(err, BE_E_MISUSE, "be_pool_new: unknown options version %u",
                         (unsigned)opts->version);
  memcpy(o, opts, n);
  return BE_OK;
}

static int check_options(const be_pool_options *o, be_error **err) {
  if (o->dsn == NULL) return be__error_set(err, BE_E_MISUSE, "be_pool_new: dsn is NULL");
  if (o->driver == NULL && be__driver_for_dsn(o->dsn) == NULL)
    return be__error_set(err, BE_E_UNSUPPORTED,
                         "be_pool_new: the dsn names a PostgreSQL database, but this libbackend "
                         "was built without libpq");
  if (o->max_conns < 1) return be__error_field(err, "max_conns", "must be at least 1");
  if (o->min_conns < 0) return be__error_field(err, "min_conns", "must not be negative");
  if (o->min_conns > o->max_conns)
    return be__error_field(err, "min_conns", "must not exceed max_conns (%d > %d)",
                           (int)o->min_conns, (int)o->max_conns);
  if (o->acquire_timeout_ms < 0)
    return be__error_field(err, "acquire_timeout_ms", "must not be negative");
  if (o->validation_window_ms < -1)
    return be__error_field(err, "validation_window_ms", "must be -1 (never), 0 (always) or more");
  if (o->max_lifetime_ms < 0) return be__error_field(err, "max_lifetime_ms", "must not be negative");
  if (o->lifetime_jitter_permille < 0 || o->lifetime_jitter_permille > 1000)
    return be__error_field(err, "lifetime_jitter_permille", "must be within 0..1000");
  if (o->usage_alert_percent < 0 || o->usage_alert_percent > 100)
    return be__error_field(err, "usage_alert_percent", "must be within 0..100");
  if (o->idle_timeout_ms < 0) return be__error_field(err, "idle_timeout_ms", "must not be negative");
  if (o->leak_threshold_ms < 0)
    return be__error_field(err, "leak_threshold_ms", "must not be negative");
  if (o->background_thread && o->maintenance_interval_ms <= 0)
    return be__error_field(err, "maintenance_interval_ms",
                           "must be positive with a background thread");
  if (o->usage_alert_interval_ms < 0)
    return be__error_field(err, "usage_alert_interval_ms", "must not be negative");
  if (o->slowlog == NULL && o->slow_query_threshold_ms < -1)
    return be__error_field(err, "slow_query_threshold_ms",
                           "must be -1 (no slow-query log), 0 (every statement) or more");
  if (o->slowlog == NULL && o->slow_query_threshold_ms >= 0 &&
      (o->slow_query_capacity < 1 || o->slow_query_capacity > 65536))
    return be__error_field(err, "slow_query_capacity", "must be within 1..65536");
  return BE_OK;
}

/* ---- the pool's own lifetime ---- */

/* Release what pool_alloc() allocated (any of it may be NULL). */
static void pool_free_parts(be_pool *p) {
  be_slowlog_free(p->own_slowlog);
  be_query_stats_free(p->qstats);
  be_histogram_free(p->wait_hist);
  be__free(p->scratch_leaks);
  be__free(p->scratch_conns);
  be__free(p->idle);
  for (int32_t i = 0; p->slots && i < p->max_conns; i++) be__free(p->slots[i].base_ud);
  be__free_lines(p->slots);
  be__free(p->dsn);
  be__free(p->name);
  be__free(p->init_sql);
  be__free(p);
}

void be__pool_destroy(be_pool *p) {
  /* every slot is free or idle-and-already-closed by now; closing the idle
   * ones detaches them, so nothing is attached to the stats and the log
   * when pool_free_parts() frees them */
  for (int32_t i = 0; i < p->idle_n; i++) be_conn_close(p->idle[i]->conn);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->closed_cond);
  if (p->bg_started) pthread_cond_destroy(&p->bg_cond);
  pool_free_parts(p);
}

int be__pool_last_one_out(const be_pool *p) {
  return p->free_requested && p->out == 0 && p->opening == 0 && p->active == 0;
}

void be__pool_unlock_maybe_destroy(be_pool *p) {
  int destroy = be__pool_last_one_out(p);
  pthread_mutex_unlock(&p->mu);
  if (destroy) be__pool_destroy(p);
}

void be__pool_unref(be_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->active--;
  be__pool_unlock_maybe_destroy(p);
}

/* ---- creation ---- */

/* The query stats every connection gets, and the slow-query log: the
 * caller's, or one of the pool's own. They fail only for memory or a
 * mutex (the options were checked). */
static int make_observers(be_pool *p, const be_pool_options *o, be_error **err) {
  int rc = be_query_stats_new(&p->qstats, err);
  if (rc != BE_OK) return rc;
  if (o->slowlog) {
    p->slowlog = o->slowlog;
  } else if (o->slow_query_threshold_ms >= 0) {
    be_slowlog_options so = BE_SLOWLOG_OPTIONS_INIT;
    so.threshold_ms = o->slow_query_threshold_ms;
    so.capacity = o->slow_query_capacity;
    so.clock = o->clock;
    rc = be_slowlog_new(&p->own_slowlog, &so, err);
    p->slowlog = p->own_slowlog;
  }
  return rc;
}

/* Allocate the pool and everything it owns, and its mutex. */
static int pool_alloc(be_pool **out, const be_pool_options *o, be_error **err) {
  be_pool *p = be__calloc(1, sizeof *p);
  if (p == NULL) return be__error_oom(err);
  size_t n = (size_t)o->max_conns;
  p->slots = be__calloc_lines(n * sizeof *p->slots);
  p->idle = be__calloc(n, sizeof *p->idle);
  p->scratch_conns = be__calloc(n, sizeof *p->scratch_conns);
  p->scratch_leaks = be__calloc(n, sizeof *p->scratch_leaks);
  p->dsn = be__strdup(o->dsn);
  p->name = be__strdup(o->name ? o->name : "pool");
  p->init_sql = o->connection_init_sql ? be__strdup(o->connection_init_sql) : NULL;
  atomic_init(&p->opened_once, 0);
  int hrc = be_histogram_new(&p->wait_hist, NULL);
  if (p->slots == NULL || p->idle == NULL || p->scratch_conns == NULL ||
      p->scratch_leaks == NULL || p->dsn == NULL || p->name == NULL || hrc != BE_OK ||
      (o->connection_init_sql && p->init_sql == NULL)) {
    pool_free_parts(p);
    return be__error_oom(err);
  }
  int rc = make_observers(p, o, err);
  if (rc != BE_OK) {
    pool_free_parts(p);
    return rc;
  }
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    pool_free_parts(p);
    return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot create a mutex");
  }
  if (pthread_cond_init(&p->closed_cond, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    pool_free_parts(p);
    return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot create a condition variable");
  }
  for (size_t i = 0; i < n; i++) {
    slot *s = &p->slots[i];
    s->pool = p;
    atomic_init(&s->state, BE__SLOT_FREE);
    atomic_init(&s->acquired_ns, INT64_MAX);
    atomic_init(&s->leak_mark, INT64_MIN);
  }
  p->id = atomic_fetch_add(&last_pool_id, 1) + 1;
  *out = p;
  return BE_OK;
}

/* The options as the pool uses them: nanoseconds, the alert threshold. */
static void configure(be_pool *p, const be_pool_options *o) {
  p->driver = o->driver ? o->driver : be__driver_for_dsn(o->dsn);
  p->clock = o->clock;
  p->min_conns = o->min_conns;
  p->max_conns = o->max_conns;
  p->acquire_timeout_ns = be__ms_to_ns(o->acquire_timeout_ms);
  p->window_ns = o->validation_window_ms < 0    ? INT64_MAX
                 : o->validation_window_ms == 0 ? -1
                                                : be__ms_to_ns(o->validation_window_ms);
  p->lifetime_ns = be__ms_to_ns(o->max_lifetime_ms);
  p->jitter_permille = o->lifetime_jitter_permille;
  p->idle_timeout_ns = be__ms_to_ns(o->idle_timeout_ms);
  p->leak_ns = be__ms_to_ns(o->leak_threshold_ms);
  p->deadlock_detection = o->deadlock_detection;
  p->on_usage = o->on_usage_alert;
  p->usage_ud = o->usage_alert_user_data;
  p->on_leak = o->on_leak;
  p->leak_ud = o->leak_user_data;
  p->init_fn = o->connection_init;
  p->init_ud = o->connection_init_user_data;
  p->alert_at = o->usage_alert_percent > 0
                  ? (int32_t)(((int64_t)o->max_conns * o->usage_alert_percent + 99) / 100)
                  : 0;
  if (p->alert_at < 1 && o->usage_alert_percent > 0) p->alert_at = 1;
  p->alert_armed = p->alert_at > 0;
  p->alert_percent = o->usage_alert_percent;
  int32_t margin = o->max_conns / 5 > 1 ? o->max_conns / 5 : 1;
  /* out never goes below 0: a lower level would never re-arm the alert,
   * nor end the pressure that stops parking */
  p->rearm_at = p->alert_at > margin ? p->alert_at - margin : 0;
  p->alert_interval_ns = be__ms_to_ns(o->usage_alert_interval_ms);
  p->stmt_stats = o->stmt_stats;
  p->incidents = o->incidents;
  p->rng = ((uint64_t)(uintptr_t)p ^ (uint64_t)be_clock_now_ns(NULL)) | 1;
  p->bg_interval_ns = be__ms_to_ns(o->maintenance_interval_ms);
}

/* Open min_conns idle connections; the first failure means the database
 * is unreachable. */
static int open_min_conns(be_pool *p, be_error **err) {
  for (int32_t i = 0; i < p->min_conns; i++) {
    pthread_mutex_lock(&p->mu);
    slot *s = be__pool_reserve_slot(p);
    pthread_mutex_unlock(&p->mu);
    be_error *cause = NULL;
    int rc = be__pool_open_idle(p, s, &cause);
    if (rc != BE_OK) {
      char what[64];
      snprintf(what, sizeof what, "cannot open connection %d of min_conns %d", (int)i + 1,
               (int)p->min_conns);
      return be__pool_open_error(p, rc, cause, what, err);
    }
  }
  return BE_OK;
}

static void *bg_main(void *arg) {
  be_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->bg_stop) {
    struct timespec ts;
    be__clock_deadline_after(&ts, p->bg_interval_ns);
    int rc = 0;
    while (!p->bg_stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&p->bg_cond, &p->mu, &ts);
    if (p->bg_stop) break;
    pthread_mutex_unlock(&p->mu);
    be_pool_maintain(p, NULL);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static int start_maintenance_thread(be_pool *p, be_error **err) {
  if (be__cond_init_monotonic(&p->bg_cond) != 0)
    return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot create a condition variable");
  p->bg_started = 1;
  if (pthread_create(&p->bg, NULL, bg_main, p) != 0)
    return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot start the maintenance thread");
  return BE_OK;
}

int be_pool_new(be_pool **out, const be_pool_options *opts, be_error **err) {
  if (out) *out = NULL;
  if (out == NULL || opts == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_pool_new: %s is NULL", out ? "options" : "out");
  be_pool_options local;
  const be_pool_options *o = &local;
  int rc = read_options(&local, opts, err);
  if (rc == BE_OK) rc = check_options(o, err);
  if (rc != BE_OK) return rc;
  be_pool *p = NULL;
  rc = pool_alloc(&p, o, err);
  if (rc != BE_OK) return rc;
  configure(p, o);
  rc = open_min_conns(p, err);
  if (rc == BE_OK && o->background_thread) rc = start_maintenance_thread(p, err);
  if (rc != BE_OK) {
    be__pool_destroy(p);
    return rc;
  }
  *out = p;
  return BE_OK;
}

/* ---- close and free ---- */

/* Whether the calling thread is p's maintenance thread (mu held). */
static int on_bg_thread(const be_pool *p) {
  return p->bg_started && pthread_equal(p->bg, pthread_self());
}

/* Wake every waiter with BE_E_POOL_CLOSED and tell the maintenance
 * thread to stop (mu held). */
static void wake_for_close(be_pool *p) {
  be__pool_waiter *w;
  while ((w = be__pool_dequeue_head(p)) != NULL) {
    w->grant = BE__GRANT_CLOSED;
    pthread_cond_signal(&w->cond);
  }
  if (p->bg_started) {
    p->bg_stop = 1;
    pthread_cond_signal(&p->bg_cond);
  }
}

/* A second close, or be_pool_free()'s, returns only once the first one
 * has ended: be_pool_free() went on to free the pool while the first
 * close was still closing connections or joining the maintenance thread
 * (which then freed it under that close, or nobody did). */
void be_pool_close(be_pool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  if (p->closed) { /* a reference while waiting: a free may follow the first close at once */
    p->active++;
    while (!p->close_done && !on_bg_thread(p)) pthread_cond_wait(&p->closed_cond, &p->mu);
    p->active--;
    be__pool_unlock_maybe_destroy(p);
    return;
  }
  p->closed = 1;
  be__pool_park_update(p);
  be__pool_unpark_all(p); /* closed below with the idle ones */
  wake_for_close(p);
  int join = p->bg_started;
  /* close idle connections one at a time, unlocked */
  while (p->idle_n > 0) be__pool_slot_destroy(p, p->idle[--p->idle_n]);
  int self = on_bg_thread(p);
  pthread_mutex_unlock(&p->mu);
  if (join) {
    if (self) pthread_detach(p->bg);
    else pthread_join(p->bg, NULL);
  }
  pthread_mutex_lock(&p->mu);
  p->close_done = 1;
  pthread_cond_broadcast(&p->closed_cond);
  pthread_mutex_unlock(&p->mu);
}

void be_pool_free(be_pool *p) {
  if (p == NULL) return;
  be_pool_close(p);
  pthread_mutex_lock(&p->mu);
  int32_t in_use = p->out; /* nothing is parked once closed */
  pthread_mutex_unlock(&p->mu);
  if (in_use > 0 && be__log_enabled(BE_LOG_WARN)) {
    be__pool_log_line l;
    be__pool_log_init(&l, p);
    be__pool_log_int(&l, "in_use", in_use);
    be__pool_log_emit(&l, BE_LOG_WARN,
                      "pool freed with connections still out; they close on release");
  }
  pthread_mutex_lock(&p->mu);
  p->free_requested = 1;
  be__pool_unlock_maybe_destroy(p);
}

/* ---- accessors ---- */

const be_query_stats *be_pool_query_stats(const be_pool *p) { return p ? p->qstats : NULL; }

be_slowlog *be_pool_slowlog(const be_pool *p) { return p ? p->slowlog : NULL; }

int be__pool_holds(const be_pool *p, const be_conn *c) {
  if (p == NULL || c == NULL) return 0;
  const slot *s = be__conn_pool_data(c);
  /* Like be_pool_release(): a caller holding c may look at its slot
   * unlocked; the owner check makes any other caller's answer 0. */
  return s != NULL && s->pool == p && be__pool_state(s) == BE__SLOT_IN_USE &&
         atomic_load_explicit(&s->owner, BE__RELAXED) == be__pool_self();
}

int32_t be__pool_alert_percent(const be_pool *pool) { return pool ? pool->alert_percent : 0; }
