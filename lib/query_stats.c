/* SPDX-License-Identifier: MIT */
#include <backend/query_stats.h>

#include <stdatomic.h>

#include "alloc.h"
#include "attached_observer.h"
#include "error.h"
#include "strbuf.h"

struct be_query_stats {
  _Atomic uint64_t queries, errors, rows;
  be_histogram *latency;
  be__attached_observer observer; /* the connections it is attached to */
};

static void observe(void *ud, const char *sql, uint64_t sql_hash, int64_t duration_ns, int64_t rows,
                    int rc) {
  (void)sql;
  (void)sql_hash;
  be_query_stats_record(BE__ATTACHED_OBSERVER_OWNER(ud, be_query_stats, observer), duration_ns,
                        rows, rc);
}

int be_query_stats_new(be_query_stats **out, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  be_query_stats *s = be__calloc(1, sizeof *s);
  if (s == NULL || be_histogram_new(&s->latency, NULL) != BE_OK) {
    be__free(s);
    return be__error_oom(err);
  }
  int rc = be__attached_observer_init(&s->observer, observe, err);
  if (rc != BE_OK) {
    be_histogram_free(s->latency);
    be__free(s);
    return rc;
  }
  *out = s;
  return BE_OK;
}

void be_query_stats_free(be_query_stats *stats) {
  if (stats == NULL) return;
  be__attached_observer_destroy(&stats->observer);
  be_histogram_free(stats->latency);
  be__free(stats);
}

void be_query_stats_record(be_query_stats *stats, int64_t duration_ns, int64_t rows, int32_t rc) {
  if (stats == NULL) return;
  atomic_fetch_add_explicit(&stats->queries, 1, memory_order_relaxed);
  if (rc < 0) atomic_fetch_add_explicit(&stats->errors, 1, memory_order_relaxed);
  if (rows > 0) atomic_fetch_add_explicit(&stats->rows, (uint64_t)rows, memory_order_relaxed);
  be_histogram_record(stats->latency, duration_ns);
}

int be_query_stats_attach(be_query_stats *stats, be_conn *conn, be_error **err) {
  if (stats == NULL) return be__error_set(err, BE_E_MISUSE, "stats is NULL");
  return be__attached_observer_attach(&stats->observer, conn, err);
}

void be_query_stats_detach(be_query_stats *stats, be_conn *conn) {
  if (stats) be__attached_observer_detach(&stats->observer, conn);
}

int64_t be_query_stats_queries(const be_query_stats *stats) {
  return stats ? (int64_t)atomic_load(&((be_query_stats *)stats)->queries) : 0;
}
int64_t be_query_stats_errors(const be_query_stats *stats) {
  return stats ? (int64_t)atomic_load(&((be_query_stats *)stats)->errors) : 0;
}
int64_t be_query_stats_rows(const be_query_stats *stats) {
  return stats ? (int64_t)atomic_load(&((be_query_stats *)stats)->rows) : 0;
}

const be_histogram *be_query_stats_histogram(const be_query_stats *stats) {
  return stats ? stats->latency : NULL;
}

int be_query_stats_to_json(char **out_json, size_t *out_len, const be_query_stats *stats,
                           be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_json == NULL || stats == NULL) return be__error_set(err, BE_E_MISUSE, "NULL argument");
  be__buf b;
  be__buf_init(&b);
  const be_histogram *h = stats->latency;
  be__buf_printf(&b, "{\"queries\":%llu,\"errors\":%llu,\"rows\":%llu,",
                 (unsigned long long)be_query_stats_queries(stats),
                 (unsigned long long)be_query_stats_errors(stats),
                 (unsigned long long)be_query_stats_rows(stats));
  be__buf_printf(&b, "\"p50_ns\":%lld,\"p95_ns\":%lld,\"p99_ns\":%lld,\"max_ns\":%lld}",
                 (long long)be_histogram_quantile(h, 0.50), (long long)be_histogram_quantile(h, 0.95),
                 (long long)be_histogram_quantile(h, 0.99), (long long)be_histogram_max(h));
  return be__buf_detach(&b, out_json, out_len) == BE_OK ? BE_OK : be__error_oom(err);
}

void be_query_stats_reset(be_query_stats *stats) {
  if (stats == NULL) return;
  atomic_store(&stats->queries, 0);
  atomic_store(&stats->errors, 0);
  atomic_store(&stats->rows, 0);
  be_histogram_reset(stats->latency);
}
