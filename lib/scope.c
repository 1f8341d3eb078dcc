/* SPDX-License-Identifier: MIT */
#include <backend/log.h>
#include <backend/scope.h>

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "attached_observer.h"
#include "error.h"
#include "log.h"
#include "sqlnorm.h"
#include "versioned.h"

#define SQL_KEEP 512

/* One distinct statement shape. Keyed by the 64-bit hash of the whole
 * normalised text; the text itself is kept only for the worst offender. */
typedef struct shape {
  uint64_t hash;
  int64_t count;
  int reported;
} shape;

struct be_scope {
  be_scope_options opts;
  int ended;
  shape *shapes; /* open addressing on hash; count 0 = empty */
  size_t nshapes, nslots;
  int64_t queries, worst, reports;
  uint64_t worst_hash;
  char worst_sql[SQL_KEEP];
  int oom;                        /* the shape table could not grow: counting degraded, not fatal */
  be__attached_observer observer; /* the connections it counts */
};

static const be_scope_options defaults = BE_SCOPE_OPTIONS_INIT;

int be_scope_options_init(be_scope_options *opts, uint32_t version) {
  return be__versioned_init(opts, sizeof *opts, &defaults, version, BE_SCOPE_OPTIONS_VERSION);
}

static shape *lookup(be_scope *s, uint64_t h) {
  if (s->nshapes * 2 >= s->nslots) {
    size_t n = s->nslots ? s->nslots * 2 : 32;
    shape *t = be__calloc(n, sizeof *t);
    if (t == NULL) {
      s->oom = 1;
      if (s->nshapes + 1 >= s->nslots) return NULL;
    } else {
      for (size_t i = 0; i < s->nslots; i++) {
        if (s->shapes[i].count == 0) continue;
        size_t j = (size_t)s->shapes[i].hash & (n - 1);
        while (t[j].count) j = (j + 1) & (n - 1);
        t[j] = s->shapes[i];
      }
      be__free(s->shapes);
      s->shapes = t;
      s->nslots = n;
    }
  }
  size_t j = (size_t)h & (s->nslots - 1);
  while (s->shapes[j].count && s->shapes[j].hash != h) j = (j + 1) & (s->nslots - 1);
  if (s->shapes[j].count == 0) {
    s->shapes[j].hash = h;
    s->nshapes++;
  }
  return &s->shapes[j];
}

static void report(be_scope *s, const char *norm, int64_t count) {
  s->reports++;
  if (!be__log_enabled(s->opts.log_level)) return;
  char cnt[24], thr[24];
  snprintf(cnt, sizeof cnt, "%lld", (long long)count);
  snprintf(thr, sizeof thr, "%d", (int)s->opts.repeat_threshold);
  be_log_field f[] = {
    {"sql", norm},
    {"count", cnt},
    {"threshold", thr},
    {"hint", "batch-load: collect the keys and load them in one statement "
             "(be_batch_load_int64/_text or a be_loader) instead of one query per key"},
  };
  be_log(s->opts.log_level, "N+1 query: the same statement ran more than threshold times in one scope",
         f, sizeof f / sizeof f[0], NULL);
}

static void observe(void *ud, const be__stmt_run *run) {
  const char *sql = run->sql;
  be_scope *s = BE__ATTACHED_OBSERVER_OWNER(ud, be_scope, observer);
  char norm[SQL_KEEP];
  uint64_t h = be__sql_normalize(sql, norm, sizeof norm);
  s->queries++;
  shape *sh = lookup(s, h);
  if (sh == NULL) return;
  sh->count++;
  if (sh->count > s->worst) {
    s->worst = sh->count;
    if (s->worst_hash != h || s->worst_sql[0] == '\0') memcpy(s->worst_sql, norm, sizeof norm);
    s->worst_hash = h;
  }
  if (sh->count > s->opts.repeat_threshold && !sh->reported) {
    sh->reported = 1;
    report(s, norm, sh->count);
  }
}

int be_scope_begin(be_scope **out, be_conn *conn, const be_scope_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  if (conn == NULL) return be__error_set(err, BE_E_MISUSE, "conn is NULL");
  be_scope_options o;
  int rc = be__versioned_read(&o, sizeof o, opts, &defaults, BE_SCOPE_OPTIONS_VERSION,
                              "be_scope_options", err);
  if (rc != BE_OK) return rc;
  if (o.repeat_threshold < 1) return be__error_field(err, "repeat_threshold", "must be >= 1");
  if (strcmp(be_log_level_name(o.log_level), "?") == 0 || o.log_level == BE_LOG_OFF)
    return be__error_field(err, "log_level", "must be a BE_LOG_* level below BE_LOG_OFF");
  be_scope *s = be__calloc(1, sizeof *s);
  if (s == NULL) return be__error_oom(err);
  s->opts = o;
  /* counts, never times, never reads a weight */
  rc = be__attached_observer_init(&s->observer, observe, INT64_MAX, BE__OBS_NO_WEIGHT, err);
  if (rc != BE_OK) {
    be__free(s);
    return rc;
  }
  rc = be__attached_observer_attach(&s->observer, conn, err);
  if (rc != BE_OK) {
    be__attached_observer_destroy(&s->observer);
    be__free(s);
    return rc;
  }
  *out = s;
  return BE_OK;
}

int be_scope_attach(be_scope *scope, be_conn *conn, be_error **err) {
  if (scope == NULL || conn == NULL) return be__error_set(err, BE_E_MISUSE, "scope or conn is NULL");
  if (scope->ended) return be__error_set(err, BE_E_MISUSE, "the scope has ended");
  return be__attached_observer_attach(&scope->observer, conn, err);
}

void be_scope_end(be_scope *scope) {
  if (scope == NULL || scope->ended) return;
  be__attached_observer_detach_all(&scope->observer);
  scope->ended = 1;
}

void be_scope_free(be_scope *scope) {
  if (scope == NULL) return;
  be_scope_end(scope);
  be__attached_observer_destroy(&scope->observer);
  be__free(scope->shapes);
  be__free(scope);
}

int64_t be_scope_query_count(const be_scope *scope) { return scope ? scope->queries : 0; }
int64_t be_scope_distinct_count(const be_scope *scope) {
  return scope ? (int64_t)scope->nshapes : 0;
}
int64_t be_scope_worst_count(const be_scope *scope) { return scope ? scope->worst : 0; }
const char *be_scope_worst_sql(const be_scope *scope) {
  return scope && scope->worst > 0 ? scope->worst_sql : NULL;
}
int64_t be_scope_report_count(const be_scope *scope) { return scope ? scope->reports : 0; }
