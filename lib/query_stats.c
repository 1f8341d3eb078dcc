/* SPDX-License-Identifier: MIT */
/* Query counters and latency. Statements on attached connections are
 * counted by storage on each connection (be__conn_run_counts: no locked
 * instruction, no line shared between threads) and added up when read
 * (be__attached_observer_counts); the stats is called for timed runs
 * only, to record their durations. Durations, and the statements the host
 * records itself, go to stripes per thread (be__histogram_stripe), so no
 * shared line bounces between cores either; readers add the stripes up. */
#include <backend/query_stats.h>

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>

#include "alloc.h"
#include "attached_observer.h"
#include "error.h"
#include "histogram.h"
#include "strbuf.h"

#define STRIPES 4

/* 128 bytes apart: with any 16-byte aligned start, two stripes' counters
 * never share a 64-byte cache line. */
typedef struct stripe {
  _Atomic uint64_t queries, errors, rows;
  be_histogram *latency;
  char pad[128 - 4 * sizeof(uint64_t)];
} stripe;

struct be_query_stats {
  stripe stripes[STRIPES];
  pthread_mutex_t view_lock;      /* one refresh of `view` at a time */
  be_histogram *view;             /* the stripes merged, refreshed by be_query_stats_histogram() */
  be__attached_observer observer; /* the connections it is attached to */
};


/* A timed run (BE__OBS_TIMED_ONLY): storage counted it already. */
static void observe(void *ud, const be__stmt_run *run) {
  be_query_stats *s = BE__ATTACHED_OBSERVER_OWNER(ud, be_query_stats, observer);
  be__histogram_record_weighted(s->stripes[be__histogram_stripe(STRIPES)].latency, run->duration_ns,
                                run->weight);
}

static void destroy(be_query_stats *s) {
  for (int i = 0; i < STRIPES; i++) be_histogram_free(s->stripes[i].latency);
  be_histogram_free(s->view);
  be__free(s);
}

int be_query_stats_new(be_query_stats **out, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  be_query_stats *s = be__calloc(1, sizeof *s);
  if (s == NULL) return be__error_oom(err);
  int ok = be_histogram_new(&s->view, NULL) == BE_OK;
  for (int i = 0; i < STRIPES && ok; i++) ok = be_histogram_new(&s->stripes[i].latency, NULL) == BE_OK;
  if (!ok) {
    destroy(s);
    return be__error_oom(err);
  }
  int rc = be__attached_observer_init(&s->observer, observe, INT64_MAX, BE__OBS_TIMED_ONLY, err); /* sampled is enough */
  if (rc == BE_OK && pthread_mutex_init(&s->view_lock, NULL) != 0) {
    be__attached_observer_destroy(&s->observer);
    rc = be__error_set(err, BE_E_INTERNAL, "cannot create a mutex");
  }
  if (rc != BE_OK) {
    destroy(s);
    return rc;
  }
  *out = s;
  return BE_OK;
}

void be_query_stats_free(be_query_stats *stats) {
  if (stats == NULL) return;
  be__attached_observer_destroy(&stats->observer);
  pthread_mutex_destroy(&stats->view_lock);
  destroy(stats);
}

/* A statement the host timed, into the calling thread's stripe. */
void be_query_stats_record(be_query_stats *stats, int64_t duration_ns, int64_t rows, int32_t rc) {
  if (stats == NULL) return;
  stripe *s = &stats->stripes[be__histogram_stripe(STRIPES)];
  atomic_fetch_add_explicit(&s->queries, 1, memory_order_relaxed);
  if (rc < 0) atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
  if (rows > 0) atomic_fetch_add_explicit(&s->rows, (uint64_t)rows, memory_order_relaxed);
  be__histogram_record1(s->latency, duration_ns);
}

int be_query_stats_attach(be_query_stats *stats, be_conn *conn, be_error **err) {
  if (stats == NULL) return be__error_set(err, BE_E_MISUSE, "stats is NULL");
  return be__attached_observer_attach(&stats->observer, conn, err);
}

void be_query_stats_detach(be_query_stats *stats, be_conn *conn) {
  if (stats) be__attached_observer_detach(&stats->observer, conn);
}

/* The sum of one counter over the stripes (the host's own records) and
 * the attached connections (run, offset into be__run_counts). */
static int64_t total(const be_query_stats *stats, size_t offset, size_t run) {
  if (stats == NULL) return 0;
  be__run_counts counted;
  be__attached_observer_counts((be__attached_observer *)&stats->observer, &counted);
  uint64_t n = *(const uint64_t *)(const void *)((const char *)&counted + run);
  for (int i = 0; i < STRIPES; i++)
    n += atomic_load_explicit((_Atomic uint64_t *)(void *)((char *)&stats->stripes[i] + offset),
                              memory_order_relaxed);
  return (int64_t)n;
}

int64_t be_query_stats_queries(const be_query_stats *stats) {
  return total(stats, offsetof(stripe, queries), offsetof(be__run_counts, runs));
}
int64_t be_query_stats_errors(const be_query_stats *stats) {
  return total(stats, offsetof(stripe, errors), offsetof(be__run_counts, errors));
}
int64_t be_query_stats_rows(const be_query_stats *stats) {
  return total(stats, offsetof(stripe, rows), offsetof(be__run_counts, rows));
}

const be_histogram *be_query_stats_histogram(const be_query_stats *stats) {
  if (stats == NULL) return NULL;
  be_query_stats *s = (be_query_stats *)stats;
  pthread_mutex_lock(&s->view_lock);
  be_histogram_reset(s->view);
  for (int i = 0; i < STRIPES; i++) be_histogram_merge(s->view, s->stripes[i].latency, NULL);
  pthread_mutex_unlock(&s->view_lock);
  return s->view;
}

int be_query_stats_histogram_merge(be_histogram *into, const be_query_stats *stats,
                                   be_error **err) {
  if (into == NULL || stats == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_query_stats_histogram_merge: NULL argument");
  for (int i = 0; i < STRIPES; i++) {
    int rc = be_histogram_merge(into, stats->stripes[i].latency, err);
    if (rc != BE_OK) return rc;
  }
  return BE_OK;
}

int be_query_stats_to_json(char **out_json, size_t *out_len, const be_query_stats *stats,
                           be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_json == NULL || stats == NULL) return be__error_set(err, BE_E_MISUSE, "NULL argument");
  be_histogram *h = NULL; /* our own: the shared view may be refreshed while we read */
  if (be_histogram_new(&h, NULL) != BE_OK) return be__error_oom(err);
  be_query_stats_histogram_merge(h, stats, NULL);
  be__buf b;
  be__buf_init(&b);
  be__buf_printf(&b, "{\"queries\":%llu,\"errors\":%llu,\"rows\":%llu,",
                 (unsigned long long)be_query_stats_queries(stats),
                 (unsigned long long)be_query_stats_errors(stats),
                 (unsigned long long)be_query_stats_rows(stats));
  be__buf_printf(&b, "\"p50_ns\":%lld,\"p95_ns\":%lld,\"p99_ns\":%lld,\"max_ns\":%lld}",
                 (long long)be_histogram_quantile(h, 0.50), (long long)be_histogram_quantile(h, 0.95),
                 (long long)be_histogram_quantile(h, 0.99), (long long)be_histogram_max(h));
  be_histogram_free(h);
  return be__buf_detach(&b, out_json, out_len) == BE_OK ? BE_OK : be__error_oom(err);
}

void be_query_stats_reset(be_query_stats *stats) {
  if (stats == NULL) return;
  for (int i = 0; i < STRIPES; i++) {
    stripe *s = &stats->stripes[i];
    atomic_store(&s->queries, 0);
    atomic_store(&s->errors, 0);
    atomic_store(&s->rows, 0);
    be_histogram_reset(s->latency);
  }
  be__attached_observer_counts_reset(&stats->observer);
  pthread_mutex_lock(&stats->view_lock);
  be_histogram_reset(stats->view);
  pthread_mutex_unlock(&stats->view_lock);
}
