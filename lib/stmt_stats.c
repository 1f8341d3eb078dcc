/* SPDX-License-Identifier: MIT */
/* Statement statistics per normalized statement (backend/stmt_stats.h).
 *
 * Two tables. `entries` holds one entry per normalized statement (at most
 * max_statements, append-only, plus the overflow entry). `map` is an
 * open-addressed table from a hash of the raw SQL text (be__sql_hash, which
 * storage computes once per prepared statement) to its entry, so a
 * statement text seen before is found without normalizing it again and
 * without a lock: slots are written once, entry pointer first, then the
 * key with release order, under the mutex; readers probe with acquire
 * loads. When the map is three quarters full, further new texts take the
 * mutex and normalize each time (still correct, only slower). */
#include <backend/histogram.h>
#include <backend/stmt_stats.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "attached_observer.h"
#include "clock.h"
#include "error.h"
#include "histogram.h"
#include "sqlnorm.h"
#include "storage.h"
#include "strbuf.h"
#include "versioned.h"

#define SQL_MAX 512 /* normalized text kept per statement ("..." marks a cut) */
#define STRIPES 4   /* counters per statement, one per thread stripe */
#define HIST_BITS 3 /* compact histograms: quantiles within 1/16 (6.25 %) */
static const char overflow_sql[] = "(other statements)";

#if defined(__GNUC__) || defined(__clang__)
#  define NOINLINE __attribute__((noinline))
#else
#  define NOINLINE
#endif

/* A statement's exact counters on one stripe: threads running the same
 * statement count on lines of their own (be__histogram_stripe). */
typedef struct counts {
  _Atomic uint64_t calls, errors, rows;
  char pad[BE__LINE - 3 * sizeof(uint64_t)];
} counts;

typedef struct entry {
  char *sql; /* SQL_MAX bytes in the text slab */
  uint64_t norm_hash;
  counts *c;       /* STRIPES of them in the counts slab */
  be_histogram *h; /* in the histogram slab: sum, max and quantiles of the timed runs */
} entry;

typedef struct slot {
  _Atomic uint64_t key; /* hash of the raw text; 0 = empty */
  _Atomic(entry *) e;
} slot;

struct be_stmt_stats {
  be_stmt_stats_options o;
  int64_t slow_ns, window_ns;
  pthread_mutex_t lock; /* registration, bursts */
  entry *entries;       /* max_statements, all allocated up front */
  _Atomic size_t n;     /* entries in use */
  entry overflow;
  char *texts;          /* max_statements * SQL_MAX */
  unsigned char *hists; /* (max_statements + 1) compact histograms */
  size_t hist_size;
  counts *counts; /* (max_statements + 1) * STRIPES, be__calloc_lines */
  _Atomic uint64_t overflow_calls;
  slot *map;
  size_t map_mask, map_n;
  int64_t window_start_ns, window_count;
  int window_fired;
  be__attached_observer observer;
};

static const be_stmt_stats_options defaults = BE_STMT_STATS_OPTIONS_INIT;

int be_stmt_stats_options_init(be_stmt_stats_options *opts, uint32_t version) {
  return be__versioned_init(opts, sizeof *opts, &defaults, version, BE_STMT_STATS_OPTIONS_VERSION);
}

int be_stmt_stat_init(be_stmt_stat *out, uint32_t version) {
  static const be_stmt_stat init = BE_STMT_STAT_INIT;
  return be__versioned_init(out, sizeof *out, &init, version, BE_STMT_STAT_VERSION);
}

NOINLINE static void record(be_stmt_stats *s, const be__stmt_run *run);
static inline void record_entry(be_stmt_stats *s, entry *e, counts *all, const be__stmt_run *run);

/* A statement that ran before under this stats has its entry in its memo
 * (be__run_memo: p[0] the entry, p[1] its counters, which an untimed run
 * touches alone): one load, no probe, no entry line. Otherwise storage
 * hands over the text's hash computed when the statement was prepared: a
 * run costs a probe, not a walk over the text. Entries never move nor
 * change text, so a memo stays right while the stats is attached. */
static void observe(void *ud, const be__stmt_run *run) {
  be_stmt_stats *s = BE__ATTACHED_OBSERVER_OWNER(ud, be_stmt_stats, observer);
  be__run_memo *m = run->memo;
  if (m != NULL && m->owner == s) record_entry(s, m->p[0], m->p[1], run);
  else record(s, run);
}

static int check(const be_stmt_stats_options *o, be_error **err) {
  if (o->max_statements < 1 || o->max_statements > 100000)
    return be__error_field(err, "max_statements", "must be 1..100000");
  if (o->slow_threshold_ms < 0) return be__error_field(err, "slow_threshold_ms", "must be >= 0");
  if (o->burst_count < 1) return be__error_field(err, "burst_count", "must be >= 1");
  if (o->burst_window_ms < 1) return be__error_field(err, "burst_window_ms", "must be >= 1");
  return BE_OK;
}

static size_t map_size(int32_t max_statements) {
  size_t n = 64;
  while (n < (size_t)max_statements * 4) n *= 2;
  return n;
}

static void destroy(be_stmt_stats *s) {
  be__free(s->entries);
  be__free(s->texts);
  be__free(s->hists);
  be__free_lines(s->counts);
  be__free(s->map);
  be__free(s);
}

/* Everything up front (recording never allocates, so it cannot fail):
 * the entries, their texts and histograms, the map. */
static int allocate(be_stmt_stats *s, be_error **err) {
  size_t max = (size_t)s->o.max_statements, msize = map_size(s->o.max_statements);
  s->hist_size = be__histogram_size(HIST_BITS);
  s->entries = be__calloc(max, sizeof *s->entries);
  s->texts = be__malloc(max * SQL_MAX);
  s->hists = be__malloc((max + 1) * s->hist_size);
  s->counts = be__calloc_lines((max + 1) * STRIPES * sizeof(counts));
  s->map = be__calloc(msize, sizeof *s->map);
  s->map_mask = msize - 1;
  if (s->entries == NULL || s->texts == NULL || s->hists == NULL || s->counts == NULL ||
      s->map == NULL)
    return be__error_oom(err);
  for (size_t i = 0; i <= max; i++) {
    entry *e = i < max ? &s->entries[i] : &s->overflow;
    e->c = s->counts + i * STRIPES;
    e->h = (be_histogram *)(void *)(s->hists + i * s->hist_size);
    be__histogram_init(e->h, HIST_BITS);
    if (i < max) e->sql = s->texts + i * SQL_MAX;
  }
  s->overflow.sql = (char *)overflow_sql;
  return BE_OK;
}

int be_stmt_stats_new(be_stmt_stats **out, const be_stmt_stats_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_stmt_stats_new: out is NULL");
  *out = NULL;
  be_stmt_stats_options o;
  int rc = be__versioned_read(&o, sizeof o, opts, &defaults, BE_STMT_STATS_OPTIONS_VERSION,
                              "be_stmt_stats_options", err);
  if (rc == BE_OK) rc = check(&o, err);
  if (rc != BE_OK) return rc;
  be_stmt_stats *s = be__calloc(1, sizeof *s);
  if (s == NULL) return be__error_oom(err);
  s->o = o;
  s->slow_ns = be__ms_to_ns(o.slow_threshold_ms);
  s->window_ns = be__ms_to_ns(o.burst_window_ms);
  rc = allocate(s, err);
  if (rc == BE_OK) {
    /* slow runs must be timed exactly when they count towards bursts */
    rc = be__attached_observer_init(&s->observer, observe, o.incidents ? s->slow_ns : INT64_MAX, 0, err);
  } else {
    destroy(s);
    return rc;
  }
  if (rc == BE_OK && pthread_mutex_init(&s->lock, NULL) != 0) {
    be__attached_observer_destroy(&s->observer);
    rc = be__error_set(err, BE_E_INTERNAL, "be_stmt_stats_new: cannot create a mutex");
  }
  if (rc != BE_OK) {
    destroy(s);
    return rc;
  }
  *out = s;
  return BE_OK;
}

void be_stmt_stats_free(be_stmt_stats *stats) {
  if (stats == NULL) return;
  be__attached_observer_destroy(&stats->observer);
  pthread_mutex_destroy(&stats->lock);
  destroy(stats);
}

int be_stmt_stats_attach(be_stmt_stats *stats, be_conn *conn, be_error **err) {
  if (stats == NULL) return be__error_set(err, BE_E_MISUSE, "be_stmt_stats_attach: stats is NULL");
  return be__attached_observer_attach(&stats->observer, conn, err);
}

void be_stmt_stats_detach(be_stmt_stats *stats, be_conn *conn) {
  if (stats) be__attached_observer_detach(&stats->observer, conn);
}

static entry *map_find(const be_stmt_stats *s, uint64_t key) {
  for (size_t i = key & s->map_mask, probes = 0; probes <= s->map_mask; i = (i + 1) & s->map_mask, probes++) {
    uint64_t k = atomic_load_explicit(&s->map[i].key, memory_order_acquire);
    if (k == key) return atomic_load_explicit(&s->map[i].e, memory_order_relaxed);
    if (k == 0) return NULL;
  }
  return NULL;
}

/* The entry for normalized text norm (hash nh): an existing one, a new one
 * while below the bound, else the overflow entry. Lock held. */
static entry *shape_entry(be_stmt_stats *s, const char *norm, uint64_t nh) {
  size_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
  for (size_t i = 0; i < n; i++)
    if (s->entries[i].norm_hash == nh) return &s->entries[i];
  if (n >= (size_t)s->o.max_statements) return &s->overflow;
  entry *e = &s->entries[n];
  memcpy(e->sql, norm, strlen(norm) + 1);
  e->norm_hash = nh;
  atomic_store_explicit(&s->n, n + 1, memory_order_release);
  return e;
}

/* First sight of a raw text: normalize, find or make its entry, remember
 * the raw hash when the map has room. */
static entry *register_text(be_stmt_stats *s, const char *sql, uint64_t key) {
  char norm[SQL_MAX];
  uint64_t nh = be__sql_normalize(sql, norm, sizeof norm);
  pthread_mutex_lock(&s->lock);
  entry *e = map_find(s, key);
  if (e == NULL) e = shape_entry(s, norm, nh);
  if (s->map_n < (s->map_mask + 1) / 4 * 3 && map_find(s, key) == NULL) {
    size_t i = key & s->map_mask;
    while (atomic_load_explicit(&s->map[i].key, memory_order_relaxed) != 0) i = (i + 1) & s->map_mask;
    atomic_store_explicit(&s->map[i].e, e, memory_order_relaxed);
    atomic_store_explicit(&s->map[i].key, key, memory_order_release);
    s->map_n++;
  }
  pthread_mutex_unlock(&s->lock);
  return e;
}

/* One more slow statement: a burst incident once per window. */
static void note_slow(be_stmt_stats *s, const entry *e, int64_t duration_ns) {
  int64_t now = be_clock_now_ns(s->o.clock);
  pthread_mutex_lock(&s->lock);
  if (s->window_count == 0 || now - s->window_start_ns > s->window_ns) {
    s->window_start_ns = now;
    s->window_count = 0;
    s->window_fired = 0;
  }
  int64_t count = ++s->window_count;
  int fire = count >= s->o.burst_count && !s->window_fired;
  if (fire) s->window_fired = 1;
  pthread_mutex_unlock(&s->lock);
  if (!fire) return;
  be_incident in = BE_INCIDENT_INIT;
  in.kind = BE_INCIDENT_SLOW_QUERIES;
  in.value = count;
  in.threshold = s->o.burst_count;
  snprintf(in.message, sizeof in.message, "%lld statements over %lld ms within %lld ms; latest %lld ms: %s",
           (long long)count, (long long)s->o.slow_threshold_ms,
           (long long)s->o.burst_window_ms, (long long)(duration_ns / BE_NS_PER_MS), e->sql);
  be_incident_log_record(s->o.incidents, &in, NULL);
}

/* A slow run: recorded, then counted towards a burst. Out of line. */
NOINLINE static void record_slow(be_stmt_stats *s, entry *e, int64_t duration_ns, uint32_t weight) {
  be__histogram_record_weighted(e->h, duration_ns, weight);
  note_slow(s, e, duration_ns);
}

/* One run of the statement whose entry is e (counters all, e->c): counted on the calling
 * thread's stripe; its duration recorded when storage timed it (weight). */
static inline void record_entry(be_stmt_stats *s, entry *e, counts *all, const be__stmt_run *run) {
  counts *c = &all[be__histogram_stripe(STRIPES)];
  atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
  if (e == &s->overflow) atomic_fetch_add_explicit(&s->overflow_calls, 1, memory_order_relaxed);
  if (run->rc < 0) atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
  if (run->rows > 0) atomic_fetch_add_explicit(&c->rows, (uint64_t)run->rows, memory_order_relaxed);
  if (run->weight == 0) return;
  uint32_t w = run->stmt_weight; /* this statement's own untimed runs, not every statement's */
  int64_t d = run->duration_ns < 0 ? 0 : run->duration_ns;
  if (s->o.incidents && d > s->slow_ns) record_slow(s, e, d, w);
  else be__histogram_record_weighted(e->h, d, w);
}

/* One run of a statement by its text (run->sql_hash: be__sql_hash),
 * remembered in the statement's memo when nobody holds it. Out of line:
 * observe() calls it only for a statement without this stats' memo. */
NOINLINE static void record(be_stmt_stats *s, const be__stmt_run *run) {
  entry *e = map_find(s, run->sql_hash);
  if (e == NULL) e = register_text(s, run->sql, run->sql_hash);
  be__run_memo *m = run->memo;
  if (m != NULL && m->owner == NULL) *m = (be__run_memo){s, {e, e->c}};
  record_entry(s, e, e->c, run);
}

void be_stmt_stats_record(be_stmt_stats *stats, const char *sql, int64_t duration_ns, int64_t rows,
                          int32_t rc) {
  if (stats == NULL || sql == NULL) return;
  be__stmt_run run = {sql, be__sql_hash(sql), duration_ns, rows, rc, 1, 1, NULL};
  record(stats, &run);
}

/* The sum over e's stripes of the counter at offset. */
static int64_t count_of(const entry *e, size_t offset) {
  uint64_t n = 0;
  for (int i = 0; i < STRIPES; i++)
    n += atomic_load_explicit((_Atomic uint64_t *)(void *)((char *)&e->c[i] + offset),
                              memory_order_relaxed);
  return (int64_t)n;
}

static int64_t calls_of(const entry *e) { return count_of(e, offsetof(counts, calls)); }

static void snapshot(be_stmt_stat *out, const entry *e) {
  int64_t timed = be_histogram_count(e->h);
  out->sql = e->sql;
  out->calls = calls_of(e);
  out->errors = count_of(e, offsetof(counts, errors));
  out->rows = count_of(e, offsetof(counts, rows));
  out->total_ns = be_histogram_sum(e->h);
  out->mean_ns = timed ? out->total_ns / timed : 0;
  out->max_ns = be_histogram_max(e->h);
  out->p50_ns = be_histogram_quantile(e->h, 0.50);
  out->p95_ns = be_histogram_quantile(e->h, 0.95);
  out->p99_ns = be_histogram_quantile(e->h, 0.99);
}

static int by_total_desc(const void *a, const void *b) {
  const be_stmt_stat *x = a, *y = b;
  if (x->total_ns != y->total_ns) return x->total_ns < y->total_ns ? 1 : -1;
  return x->calls < y->calls ? 1 : x->calls > y->calls ? -1
                                                       : 0;
}

/* Every entry with calls, sorted by total time: *out_all (be__free) and
 * its length. */
static int collect(be_stmt_stat **out_all, size_t *out_n, be_stmt_stats *s) {
  size_t n = atomic_load_explicit(&s->n, memory_order_acquire);
  be_stmt_stat *all = be__calloc(n + 1, sizeof *all);
  if (all == NULL) return BE_E_NOMEM;
  size_t k = 0;
  for (size_t i = 0; i <= n; i++) {
    const entry *e = i < n ? &s->entries[i] : &s->overflow;
    if (calls_of(e) == 0) continue;
    all[k].version = BE_STMT_STAT_VERSION;
    snapshot(&all[k++], e);
  }
  qsort(all, k, sizeof *all, by_total_desc);
  *out_all = all;
  *out_n = k;
  return BE_OK;
}

int be_stmt_stats_top(be_stmt_stat *out, size_t cap, size_t *out_n, be_stmt_stats *stats,
                      be_error **err) {
  if (out_n) *out_n = 0;
  if (out_n == NULL || stats == NULL || (out == NULL && cap > 0))
    return be__error_set(err, BE_E_MISUSE, "be_stmt_stats_top: NULL argument");
  for (size_t i = 0; i < cap; i++)
    if (out[i].version != BE_STMT_STAT_VERSION)
      return be__error_set(err, BE_E_MISUSE, "unknown be_stmt_stat version %u",
                           (unsigned)out[i].version);
  be_stmt_stat *all = NULL;
  size_t n = 0;
  if (collect(&all, &n, stats) != BE_OK) return be__error_oom(err);
  if (n > cap) n = cap;
  memcpy(out, all, n * sizeof *all);
  be__free(all);
  *out_n = n;
  return BE_OK;
}

size_t be_stmt_stats_count(be_stmt_stats *stats) {
  if (stats == NULL) return 0;
  size_t n = atomic_load_explicit(&stats->n, memory_order_acquire), k = 0;
  for (size_t i = 0; i < n; i++) k += calls_of(&stats->entries[i]) > 0;
  return k + (calls_of(&stats->overflow) > 0);
}

int64_t be_stmt_stats_overflow(const be_stmt_stats *stats) {
  return stats ? (int64_t)atomic_load(&((be_stmt_stats *)stats)->overflow_calls) : 0;
}

static void stat_json(be__buf *b, const be_stmt_stat *st) {
  be__buf_puts(b, "{\"sql\":");
  be__buf_json_string(b, st->sql, strlen(st->sql));
  be__buf_printf(b,
                 ",\"calls\":%lld,\"errors\":%lld,\"rows\":%lld,\"total_ns\":%lld,\"mean_ns\":%lld,"
                 "\"max_ns\":%lld,\"p50_ns\":%lld,\"p95_ns\":%lld,\"p99_ns\":%lld}",
                 (long long)st->calls, (long long)st->errors, (long long)st->rows,
                 (long long)st->total_ns, (long long)st->mean_ns, (long long)st->max_ns,
                 (long long)st->p50_ns, (long long)st->p95_ns, (long long)st->p99_ns);
}

int be_stmt_stats_to_json(char **out_json, size_t *out_len, be_stmt_stats *stats, size_t top_n,
                          be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_json == NULL || stats == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_stmt_stats_to_json: NULL argument");
  be_stmt_stat *all = NULL;
  size_t n = 0;
  if (collect(&all, &n, stats) != BE_OK) return be__error_oom(err);
  be__buf b;
  be__buf_init(&b);
  be__buf_printf(&b, "{\"statements\":%zu,\"overflow_calls\":%lld,\"top\":[", n,
                 (long long)be_stmt_stats_overflow(stats));
  size_t shown = top_n && top_n < n ? top_n : n;
  for (size_t i = 0; i < shown; i++) {
    if (i) be__buf_puts(&b, ",");
    stat_json(&b, &all[i]);
  }
  be__buf_puts(&b, "]}");
  be__free(all);
  if (be__buf_detach(&b, out_json, out_len) != BE_OK) return be__error_oom(err);
  return BE_OK;
}

int64_t be_stmt_stats_memory_bytes(be_stmt_stats *stats) {
  if (stats == NULL) return 0;
  size_t max = (size_t)stats->o.max_statements;
  return (int64_t)(sizeof *stats + max * (sizeof(entry) + SQL_MAX) + (max + 1) * stats->hist_size +
                   ((max + 1) * STRIPES + 1) * sizeof(counts) /* + about a stripe to align */ +
                   (stats->map_mask + 1) * sizeof(slot));
}

void be_stmt_stats_reset(be_stmt_stats *stats) {
  if (stats == NULL) return;
  pthread_mutex_lock(&stats->lock);
  size_t n = atomic_load(&stats->n);
  for (size_t i = 0; i <= n; i++) {
    entry *e = i < n ? &stats->entries[i] : &stats->overflow;
    be_histogram_reset(e->h);
    for (int k = 0; k < STRIPES; k++) {
      atomic_store(&e->c[k].calls, 0);
      atomic_store(&e->c[k].errors, 0);
      atomic_store(&e->c[k].rows, 0);
    }
  }
  atomic_store(&stats->overflow_calls, 0);
  stats->window_count = 0;
  pthread_mutex_unlock(&stats->lock);
}
