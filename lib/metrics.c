/* SPDX-License-Identifier: MIT */
/* The app's per-operation recorder.
 *
 * A locked add costs ~16 ns and a clock read ~50 ns on a small VM, about
 * a third of a cached user get, so the hot path uses neither on most
 * calls. Each thread counts its calls and errors in a slot of its own
 * (plain loads and stores of relaxed atomics: one writer), found through
 * a thread-local cache keyed by the recorder's unique id. Durations are
 * sampled by what the thread's last timed call of the operation took
 * (metrics.h): every call from 20 us on, one in 16 from 1 us, one in 1024
 * below, so timing never costs more than about 1 % of a call. Timed calls go to a
 * histogram per (stripe, operation); threads take stripes round-robin.
 * Threads past MAX_SLOTS share slot 0, which counts with locked adds. The
 * untimed path is inline in metrics.h: a thread-local read, loads of the
 * call count and of the sampling shift, and a store of the count.
 *
 * Everything is allocated by be__metrics_new(), so recording never
 * allocates and never fails: the slots, and for each (stripe, operation)
 * a compact histogram of HIST_BITS sub-bucket bits (lib/histogram.h). */
#include <backend/metrics.h>
#include <backend/pool.h>
#include <backend/stmt_stats.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "app_resources.h"
#include "error.h"
#include "histogram.h"
#include "metrics.h"
#include "versioned.h"

#define MAX_SLOTS 128
#define HIST_BITS 4 /* quantiles within 1/32 (3.1 %) */

/* The histogram of op on stripe s. */
static be_histogram *hist_at(const be__metrics *m, unsigned s, int32_t op) {
  return (be_histogram *)(void *)(m->hists + ((size_t)s * BE_OP_COUNT + (size_t)op) * m->hist_size);
}

static const char *const op_names[BE_OP_COUNT] = {
  "user.create", "user.get", "user.get_by_email", "user.get_many", "user.update", "user.delete",
  "user.list", "auth.set_password", "auth.login", "auth.verify", "auth.verify_session",
  "auth.list_sessions", "auth.end_session", "auth.logout", "auth.revoke_all",
  "auth.change_password", "auth.request_reset", "auth.reset_password", "auth.purge_expired",
  "perm.check", "perm.role_create", "perm.role_delete", "perm.role_grant", "perm.role_revoke",
  "perm.user_assign", "perm.user_unassign", "perm.user_permissions", "perm.user_roles",
  "perm.role_permissions", "audit.write", "audit.query", "audit.verify", "audit.head",
  "user.get_fresh", "auth.import_password_hash", "pool.acquire", "cache.load"};

const char *be_op_name(int32_t op) {
  return op >= 0 && op < BE_OP_COUNT ? op_names[op] : "unknown";
}

int be_op_find(int32_t *out_op, const char *name, size_t len, be_error **err) {
  if (out_op == NULL || name == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_op_find: %s is NULL", out_op ? "name" : "out_op");
  if (len == BE_NUL_TERMINATED) len = strlen(name);
  for (int32_t i = 0; i < BE_OP_COUNT; i++)
    if (strlen(op_names[i]) == len && memcmp(op_names[i], name, len) == 0) {
      *out_op = i;
      return BE_OK;
    }
  return be__error_set(err, BE_E_NOT_FOUND, "no operation named \"%.*s\"", (int)(len > 64 ? 64 : len),
                       name);
}

int be_op_stats_init(be_op_stats *out, uint32_t version) {
  static const be_op_stats init = BE_OP_STATS_INIT;
  return be__versioned_init(out, sizeof *out, &init, version, BE_OP_STATS_VERSION);
}

static _Atomic uint64_t next_id = 1;
/* initial-exec: no __tls_get_addr call on the hot path (as lib/ebr.c) */
__thread be__metrics_tl be__metrics_tls __attribute__((tls_model("initial-exec")));

static void destroy(be__metrics *m) {
  be__free(m->slots);
  be__free(m->hists);
  be__free(m);
}

int be__metrics_new(be__metrics **out, const be_clock *clock, be_error **err) {
  be__metrics *m = be__calloc(1, sizeof *m);
  if (m == NULL) return be__error_oom(err);
  m->hist_size = be__histogram_size(HIST_BITS);
  m->slots = be__calloc(MAX_SLOTS, sizeof *m->slots);
  m->hists = be__malloc((size_t)BE_METRICS_STRIPES * BE_OP_COUNT * m->hist_size);
  if (m->slots == NULL || m->hists == NULL) {
    destroy(m);
    return be__error_oom(err);
  }
  if (pthread_mutex_init(&m->lock, NULL) != 0) {
    destroy(m);
    return be__error_set(err, BE_E_INTERNAL, "cannot create a mutex");
  }
  for (unsigned s = 0; s < BE_METRICS_STRIPES; s++)
    for (int32_t op = 0; op < BE_OP_COUNT; op++) be__histogram_init(hist_at(m, s, op), HIST_BITS);
  m->slots[0].shared = 1;
  atomic_store(&m->nslots, 1);
  m->clock = clock;
  m->id = atomic_fetch_add(&next_id, 1);
  *out = m;
  return BE_OK;
}

void be__metrics_free(be__metrics *m) {
  if (m == NULL) return;
  pthread_mutex_destroy(&m->lock);
  destroy(m);
}

int be__metrics_scratch(be_histogram **out) { return be__histogram_new_bits(out, HIST_BITS); }

/* The calling thread's slot in m: its own, a new one, or the shared one
 * when MAX_SLOTS are taken; remembered in the thread-local cache. */
be__tslot *be__metrics_find_slot(be__metrics *m) {
  pthread_t self = pthread_self();
  be__tslot *found = NULL;
  pthread_mutex_lock(&m->lock);
  int n = atomic_load(&m->nslots);
  for (int i = 1; i < n && found == NULL; i++)
    if (pthread_equal(m->slots[i].owner, self)) found = &m->slots[i];
  if (found == NULL && n == MAX_SLOTS) found = &m->slots[0];
  if (found == NULL) {
    found = &m->slots[n];
    found->owner = self;
    atomic_store(&m->nslots, n + 1);
  }
  pthread_mutex_unlock(&m->lock);
  be__metrics_tls.id = m->id;
  be__metrics_tls.slot = found;
  return found;
}

void be__metrics_start(be__metrics *m, int32_t op, be__op_timer *t) {
  t->h = hist_at(m, be__histogram_stripe(BE_METRICS_STRIPES), op);
  t->t0 = be_clock_now_ns(m->clock);
}

static void bump(const be__tslot *s, _Atomic uint64_t *c) {
  if (s->shared) atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  else atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

void be__metrics_finish(be__metrics *m, const be__op_timer *t, int32_t op, int rc) {
  be__tslot *s = t->slot;
  if (rc < 0) {
    bump(s, &s->errors[op]);
    if (be_code_http_status(rc) >= 500) bump(s, &s->server_errors[op]);
  }
  if (t->h == NULL) return;
  int64_t d = be_clock_now_ns(m->clock) - t->t0;
  /* weighted by its sampling interval, the histogram stands for every
   * call whatever the interval was when each was timed */
  be__histogram_record_n(t->h, d, t->weight);
  bump(s, &s->timed[op]);
  uint8_t shift = d >= BE__METRICS_ALWAYS_NS ? 0 : d >= BE__METRICS_OFTEN_NS ? BE__METRICS_OFTEN_SHIFT
                                                                             : BE__METRICS_RARE_SHIFT;
  atomic_store_explicit(&s->shift[op], shift, memory_order_relaxed);
}

void be__metrics_merge(const be__metrics *m, int32_t first, int32_t last, be_histogram *dst,
                       be__op_counts *counts) {
  if (m == NULL) return;
  for (unsigned s = 0; s < BE_METRICS_STRIPES; s++)
    for (int32_t i = first; i < last; i++) be_histogram_merge(dst, hist_at(m, s, i), NULL);
  be__metrics *w = (be__metrics *)m;
  int n = atomic_load_explicit(&w->nslots, memory_order_acquire);
  for (int k = 0; k < n; k++) {
    be__tslot *s = &w->slots[k];
    for (int32_t i = first; i < last; i++) {
      counts->calls += (int64_t)atomic_load_explicit(&s->calls[i], memory_order_relaxed);
      counts->errors += (int64_t)atomic_load_explicit(&s->errors[i], memory_order_relaxed);
      counts->server_errors += (int64_t)atomic_load_explicit(&s->server_errors[i], memory_order_relaxed);
      counts->timed += (int64_t)atomic_load_explicit(&s->timed[i], memory_order_relaxed);
    }
  }
}

int64_t be__metrics_memory_bytes(const be__metrics *m) {
  if (m == NULL) return 0;
  return (int64_t)(sizeof *m + MAX_SLOTS * sizeof(be__tslot) + (size_t)BE_METRICS_STRIPES * BE_OP_COUNT * m->hist_size);
}

void be__metrics_reset(be__metrics *m) {
  if (m == NULL) return;
  for (unsigned s = 0; s < BE_METRICS_STRIPES; s++)
    for (int32_t i = 0; i < BE_OP_COUNT; i++) be_histogram_reset(hist_at(m, s, i));
  int n = atomic_load(&m->nslots);
  for (int k = 0; k < n; k++)
    for (int i = 0; i < BE_OP_COUNT; i++) {
      atomic_store(&m->slots[k].calls[i], 0);
      atomic_store(&m->slots[k].errors[i], 0);
      atomic_store(&m->slots[k].server_errors[i], 0);
      atomic_store(&m->slots[k].timed[i], 0);
    }
}

int64_t be__metrics_estimate_total(const be_histogram *h, int64_t calls) {
  int64_t timed = be_histogram_count(h);
  if (timed == 0) return 0;
  return (int64_t)((double)be_histogram_sum(h) * (double)calls / (double)timed + 0.5);
}

int be_app_op_stats_get(be_op_stats *out, be_app *app, int32_t op, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_app_op_stats_get: %s is NULL", out ? "app" : "out");
  if (out->version != BE_OP_STATS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown be_op_stats version %u", (unsigned)out->version);
  if (op < 0 || op >= BE_OP_COUNT) return be__error_field(err, "op", "must be a BE_OP_* operation");
  be_histogram *h = NULL;
  if (be__metrics_scratch(&h) != BE_OK) return be__error_oom(err);
  be_op_stats s = BE_OP_STATS_INIT;
  be__op_counts c = {0, 0, 0, 0};
  s.op = op;
  be__metrics_merge(app->res.metrics, op, op + 1, h, &c);
  s.calls = c.calls;
  s.errors = c.errors;
  s.server_errors = c.server_errors;
  s.timed = c.timed;
  s.total_ns = be__metrics_estimate_total(h, c.calls);
  s.p50_ns = be_histogram_quantile(h, 0.50);
  s.p95_ns = be_histogram_quantile(h, 0.95);
  s.p99_ns = be_histogram_quantile(h, 0.99);
  s.max_ns = be_histogram_max(h);
  be_histogram_free(h);
  *out = s;
  return BE_OK;
}

void be_app_metrics_reset(be_app *app) {
  if (app == NULL) return;
  be__metrics_reset(app->res.metrics);
  be_query_stats_reset((be_query_stats *)be_pool_query_stats(app->res.pool));
  be_stmt_stats_reset(app->res.stmt_stats);
}
