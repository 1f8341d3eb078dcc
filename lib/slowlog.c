/* SPDX-License-Identifier: MIT */
#include <backend/slowlog.h>

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "attached_observer.h"
#include "clock.h"
#include "error.h"
#include "sqlnorm.h"
#include "strbuf.h"
#include "versioned.h"

typedef struct entry {
  int64_t duration_ns, rows, wall_ns;
  char *sql; /* max_sql_bytes, preallocated: recording never allocates */
} entry;

struct be_slowlog {
  be_slowlog_options opts;
  int64_t threshold_ns; /* opts.threshold_ms in the unit statements are timed in */
  pthread_mutex_t lock;
  entry *ring;
  size_t head; /* next slot to write */
  size_t count;
  uint64_t total;
  char *slab;                     /* capacity * max_sql_bytes */
  be__attached_observer observer; /* the connections it is attached to */
};

static void record(be_slowlog *l, const char *sql, int64_t duration_ns, int64_t rows);

/* An untimed run (weight 0) is shorter than the threshold: storage times
 * every run that could be over it (exact_over_ns). */
static void observe(void *ud, const be__stmt_run *run) {
  if (run->weight == 0) return;
  record(BE__ATTACHED_OBSERVER_OWNER(ud, be_slowlog, observer), run->sql, run->duration_ns,
         run->rows);
}

static const be_slowlog_options defaults = BE_SLOWLOG_OPTIONS_INIT;

int be_slowlog_options_init(be_slowlog_options *opts, uint32_t version) {
  return be__versioned_init(opts, sizeof *opts, &defaults, version, BE_SLOWLOG_OPTIONS_VERSION);
}

int be_slowlog_new(be_slowlog **out, const be_slowlog_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  be_slowlog_options o;
  int rc = be__versioned_read(&o, sizeof o, opts, &defaults, BE_SLOWLOG_OPTIONS_VERSION,
                              "be_slowlog_options", err);
  if (rc != BE_OK) return rc;
  if (o.threshold_ms < 0) return be__error_field(err, "threshold_ms", "must be >= 0");
  if (o.capacity < 1 || o.capacity > 65536) return be__error_field(err, "capacity", "must be 1..65536");
  if (o.max_sql_bytes < 32 || o.max_sql_bytes > 65536)
    return be__error_field(err, "max_sql_bytes", "must be 32..65536");
  be_slowlog *l = be__calloc(1, sizeof *l);
  if (l == NULL) return be__error_oom(err);
  l->opts = o;
  l->threshold_ns = be__ms_to_ns(o.threshold_ms);
  l->ring = be__calloc((size_t)o.capacity, sizeof *l->ring);
  l->slab = be__malloc((size_t)o.capacity * (size_t)o.max_sql_bytes);
  if (l->ring == NULL || l->slab == NULL) {
    be__free(l->ring);
    be__free(l->slab);
    be__free(l);
    return be__error_oom(err);
  }
  for (size_t i = 0; i < (size_t)o.capacity; i++) l->ring[i].sql = l->slab + i * (size_t)o.max_sql_bytes;
  rc = be__attached_observer_init(&l->observer, observe, l->threshold_ns,
                                  BE__OBS_TIMED_ONLY | BE__OBS_NO_WEIGHT, err);
  if (rc == BE_OK && pthread_mutex_init(&l->lock, NULL) != 0) {
    be__attached_observer_destroy(&l->observer);
    rc = be__error_set(err, BE_E_INTERNAL, "cannot create a mutex");
  }
  if (rc != BE_OK) {
    be__free(l->ring);
    be__free(l->slab);
    be__free(l);
    return rc;
  }
  *out = l;
  return BE_OK;
}

void be_slowlog_free(be_slowlog *log) {
  if (log == NULL) return;
  be__attached_observer_destroy(&log->observer);
  pthread_mutex_destroy(&log->lock);
  be__free(log->ring);
  be__free(log->slab);
  be__free(log);
}

static void record(be_slowlog *l, const char *sql, int64_t duration_ns, int64_t rows) {
  if (duration_ns <= l->threshold_ns) return;
  int64_t wall = be_clock_wall_ns(l->opts.clock);
  pthread_mutex_lock(&l->lock);
  entry *e = &l->ring[l->head];
  be__sql_normalize(sql, e->sql, (size_t)l->opts.max_sql_bytes);
  e->duration_ns = duration_ns;
  e->rows = rows;
  e->wall_ns = wall;
  l->head = (l->head + 1) % (size_t)l->opts.capacity;
  if (l->count < (size_t)l->opts.capacity) l->count++;
  l->total++;
  pthread_mutex_unlock(&l->lock);
}

int be_slowlog_attach(be_slowlog *log, be_conn *conn, be_error **err) {
  if (log == NULL) return be__error_set(err, BE_E_MISUSE, "log is NULL");
  return be__attached_observer_attach(&log->observer, conn, err);
}

void be_slowlog_detach(be_slowlog *log, be_conn *conn) {
  if (log) be__attached_observer_detach(&log->observer, conn);
}

int be_slowlog_record(be_slowlog *log, const char *sql, int64_t duration_ns, int64_t rows,
                      be_error **err) {
  if (log == NULL || sql == NULL) return be__error_set(err, BE_E_MISUSE, "log or sql is NULL");
  record(log, sql, duration_ns, rows);
  return BE_OK;
}

size_t be_slowlog_count(be_slowlog *log) {
  if (log == NULL) return 0;
  pthread_mutex_lock(&log->lock);
  size_t n = log->count;
  pthread_mutex_unlock(&log->lock);
  return n;
}

int64_t be_slowlog_total(be_slowlog *log) {
  if (log == NULL) return 0;
  pthread_mutex_lock(&log->lock);
  int64_t n = (int64_t)log->total;
  pthread_mutex_unlock(&log->lock);
  return n;
}

/* Entry i counted from the oldest held. Locked. */
static const entry *nth(const be_slowlog *l, size_t i) {
  size_t cap = (size_t)l->opts.capacity;
  return &l->ring[(l->head + cap - l->count + i) % cap];
}

int be_slowlog_get(char **out_sql, int64_t *out_duration_ns, int64_t *out_rows,
                   int64_t *out_wall_ns, be_slowlog *log, size_t index, be_error **err) {
  if (out_sql) *out_sql = NULL;
  if (log == NULL) return be__error_set(err, BE_E_MISUSE, "log is NULL");
  int rc = BE_OK;
  pthread_mutex_lock(&log->lock);
  if (index >= log->count) {
    rc = be__error_set(err, BE_E_NOT_FOUND, "no slow-query entry %zu (%zu held)", index, log->count);
  } else {
    const entry *e = nth(log, index);
    if (out_sql && (*out_sql = be__strdup(e->sql)) == NULL) rc = be__error_oom(err);
    if (out_duration_ns) *out_duration_ns = e->duration_ns;
    if (out_rows) *out_rows = e->rows;
    if (out_wall_ns) *out_wall_ns = e->wall_ns;
  }
  pthread_mutex_unlock(&log->lock);
  return rc;
}

int be_slowlog_to_json(char **out_json, size_t *out_len, be_slowlog *log, be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_json == NULL || log == NULL) return be__error_set(err, BE_E_MISUSE, "NULL argument");
  be__buf b;
  be__buf_init(&b);
  pthread_mutex_lock(&log->lock);
  be__buf_printf(&b, "{\"threshold_ms\":%lld,\"total\":%llu,\"entries\":[",
                 (long long)log->opts.threshold_ms, (unsigned long long)log->total);
  for (size_t i = 0; i < log->count; i++) {
    const entry *e = nth(log, i);
    be__buf_puts(&b, i ? ",{\"sql\":" : "{\"sql\":");
    be__buf_json_string(&b, e->sql, strlen(e->sql));
    be__buf_printf(&b, ",\"duration_ns\":%lld,\"rows\":%lld,\"wall_ns\":%lld}",
                   (long long)e->duration_ns, (long long)e->rows, (long long)e->wall_ns);
  }
  pthread_mutex_unlock(&log->lock);
  be__buf_puts(&b, "]}");
  if (b.failed) {
    be__buf_free(&b);
    return be__error_oom(err);
  }
  return be__buf_detach(&b, out_json, out_len) == BE_OK ? BE_OK : be__error_oom(err);
}

void be_slowlog_clear(be_slowlog *log) {
  if (log == NULL) return;
  pthread_mutex_lock(&log->lock);
  log->head = log->count = 0;
  log->total = 0;
  pthread_mutex_unlock(&log->lock);
}
