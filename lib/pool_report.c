/* SPDX-License-Identifier: MIT */
/* What the pool tells its host: stats snapshots (be_pool_stats_get), its
 * structured log lines, and the usage-alert and leak callbacks. Everything
 * here runs unlocked except the snapshot's copy of the counters. */
#include <backend/histogram.h>
#include <backend/log.h>
#include <backend/pool.h>

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "pool_internal.h"
#include "versioned.h"

/* ---- log lines ---- */

void be__pool_log_init(be__pool_log_line *l, const be_pool *p) {
  l->f[0].key = "pool";
  l->f[0].value = p->name;
  l->n = 1;
}

void be__pool_log_int(be__pool_log_line *l, const char *key, int64_t v) {
  if (l->n >= 8) return;
  snprintf(l->buf[l->n], sizeof l->buf[0], "%lld", (long long)v);
  l->f[l->n].key = key;
  l->f[l->n].value = l->buf[l->n];
  l->n++;
}

void be__pool_log_site(be__pool_log_line *l, const char *file, int32_t line) {
  if (l->n >= 8) return;
  if (file) snprintf(l->buf[l->n], sizeof l->buf[0], "%.140s:%d", file, (int)line);
  else snprintf(l->buf[l->n], sizeof l->buf[0], "unknown");
  l->f[l->n].key = "acquired_at";
  l->f[l->n].value = l->buf[l->n];
  l->n++;
}

void be__pool_log_emit(be__pool_log_line *l, int32_t level, const char *msg) {
  be_log(level, msg, l->f, l->n, NULL);
}

void be__pool_log(const be_pool *p, int32_t level, const char *msg) {
  if (!be__log_enabled(level)) return;
  be__pool_log_line l;
  be__pool_log_init(&l, p);
  be__pool_log_emit(&l, level, msg);
}

/* ---- callbacks ---- */

int64_t be__pool_alert_crossing(be_pool *p) {
  int64_t now = be__clock_coarse_ns(p->clock);
  if (p->alert_fired && p->alert_interval_ns > 0 && now - p->alert_last_ns < p->alert_interval_ns) {
    p->alert_suppressed++;
    return -1;
  }
  int64_t suppressed = p->alert_suppressed;
  p->alert_fired = 1;
  p->alert_last_ns = now;
  p->alert_suppressed = 0;
  return suppressed;
}

void be__pool_incident(be_pool *p, int32_t kind, int32_t in_use, int32_t idle, int32_t waiting,
                       int64_t value, int64_t threshold, int64_t suppressed, const char *message) {
  if (p->incidents == NULL) return;
  be_incident in = BE_INCIDENT_INIT;
  in.suppressed = suppressed;
  in.kind = kind;
  in.in_use = in_use;
  in.idle = idle;
  in.waiting = waiting;
  in.max_conns = p->max_conns;
  in.value = value;
  in.threshold = threshold;
  snprintf(in.message, sizeof in.message, "%s: %s", p->name, message ? message : "");
  be_incident_log_record(p->incidents, &in, NULL);
}

void be__pool_fire_usage_alert(be_pool *p, int32_t in_use, int32_t waiting, int64_t suppressed) {
  if (be__log_enabled(BE_LOG_WARN)) {
    be__pool_log_line l;
    be__pool_log_init(&l, p);
    be__pool_log_int(&l, "in_use", in_use);
    be__pool_log_int(&l, "max", p->max_conns);
    be__pool_log_int(&l, "waiting", waiting);
    be__pool_log_int(&l, "suppressed", suppressed);
    be__pool_log_emit(&l, BE_LOG_WARN, "pool usage high");
  }
  if (p->incidents) {
    char msg[96];
    snprintf(msg, sizeof msg, "%d of %d connections in use (alert at %d)", (int)in_use,
             (int)p->max_conns, (int)p->alert_at);
    be__pool_incident(p, BE_INCIDENT_POOL_USAGE, in_use, 0, waiting,
                      (int64_t)in_use * 100 / p->max_conns, p->alert_percent, suppressed, msg);
  }
  if (p->on_usage) p->on_usage(p, in_use, p->max_conns, waiting, p->usage_ud);
}

void be__pool_report_leaks(be_pool *p, const be__pool_leak_note *notes, int32_t n) {
  for (int32_t i = 0; i < n; i++) {
    const be__pool_leak_note *note = &notes[i];
    const char *file = note->has_file ? note->file : NULL;
    if (be__log_enabled(BE_LOG_WARN)) {
      be__pool_log_line l;
      be__pool_log_init(&l, p);
      be__pool_log_site(&l, file, note->line);
      be__pool_log_int(&l, "held_ms", note->held_ns / BE_NS_PER_MS);
      be__pool_log_emit(&l, BE_LOG_WARN, "pool connection held longer than the leak threshold");
    }
    if (p->on_leak) p->on_leak(p, file, note->line, note->held_ns, p->leak_ud);
  }
}

/* ---- stats ---- */

/* Quantile q of all acquires' waits: `zeros` acquires did not wait (not
 * in the histogram), n did. */
static int64_t wait_quantile(const be_pool *p, uint64_t zeros, uint64_t n, double q) {
  uint64_t total = zeros + n;
  if (total == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)total);
  if ((double)rank < q * (double)total) rank++;
  if (rank < 1) rank = 1;
  if (rank > total) rank = total;
  if (rank <= zeros || n == 0) return 0;
  uint64_t r = rank - zeros;
  return be_histogram_quantile(p->wait_hist, ((double)r - 0.5) / (double)n);
}

static const size_t stats_size[] = {0, sizeof(be_pool_stats)};

int be_pool_stats_init(be_pool_stats *out, uint32_t version) {
  static const be_pool_stats defaults = BE_POOL_STATS_INIT;
  return be__versioned_init(out, sizeof *out, &defaults, version, BE_POOL_STATS_VERSION);
}

/* The gauges and counters, copied under mu. */
static void copy_counters(be_pool_stats *s, const be_pool *p) {
  int32_t parked = be__pool_parked(p);
  s->in_use = p->out - parked;
  s->idle = p->idle_n + parked;
  s->waiting = p->waiting;
  s->opening = p->opening;
  s->total = p->total;
  s->min_conns = p->min_conns;
  s->max_conns = p->max_conns;
  s->acquires = p->acquires + be__pool_claims(p);
  s->waits = p->waits;
  s->handoffs = p->handoffs;
  s->timeouts = p->timeouts;
  s->deadlocks = p->deadlocks;
  s->open_failures = p->open_failures;
  s->creates = p->creates;
  s->destroys = p->destroys;
  s->validations = p->validations;
  s->broken = p->broken;
  s->expired = p->expired;
  s->idle_closed = p->idle_closed;
  s->rollbacks = p->rollbacks;
  s->leaks = p->leaks;
}

int be_pool_stats_get(be_pool_stats *out, be_pool *p, be_error **err) {
  if (p == NULL || out == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_pool_stats_get: %s is NULL", p ? "out" : "pool");
  uint32_t version = out->version;
  if (version < 1 || version > BE_POOL_STATS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_pool_stats_get: unknown stats version %u",
                         (unsigned)version);
  be_pool_stats s;
  memset(&s, 0, sizeof s);
  s.version = version;
  pthread_mutex_lock(&p->mu);
  int64_t now = be_clock_now_ns(p->clock);
  copy_counters(&s, p);
  s.oldest_waiter_ns = p->wq_head ? now - p->wq_head->enq_ns : 0;
  int64_t held_since;
  const be__pool_slot *h = be__pool_longest_holder(p, &held_since);
  s.longest_held_ns = h ? be__clock_coarse_ns(p->clock) - held_since : 0;
  if (s.longest_held_ns < 0) s.longest_held_ns = 0;
  if (s.oldest_waiter_ns < 0) s.oldest_waiter_ns = 0;
  uint64_t zeros = s.acquires - p->waited_ok;
  pthread_mutex_unlock(&p->mu);
  uint64_t n = be_histogram_count(p->wait_hist);
  s.wait_p50_ns = wait_quantile(p, zeros, n, 0.50);
  s.wait_p95_ns = wait_quantile(p, zeros, n, 0.95);
  s.wait_p99_ns = wait_quantile(p, zeros, n, 0.99);
  s.wait_max_ns = be_histogram_max(p->wait_hist);
  memcpy(out, &s, stats_size[version]);
  return BE_OK;
}
