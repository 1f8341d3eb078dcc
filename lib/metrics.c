/* SPDX-License-Identifier: MIT */
/* The app's per-operation recorder. A histogram per (stripe, operation),
 * allocated on first use and installed with a compare-and-swap; a thread
 * records into its own stripe (assigned round-robin on its first record),
 * so threads rarely write the same cache lines. */
#include <backend/metrics.h>
#include <backend/pool.h>
#include <backend/stmt_stats.h>

#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "app_resources.h"
#include "error.h"
#include "metrics.h"
#include "versioned.h"

typedef struct stripe {
  _Atomic(be_histogram *) h[BE_OP_COUNT];
  _Atomic uint64_t errors[BE_OP_COUNT];
  _Atomic uint64_t server_errors[BE_OP_COUNT];
  char pad[64]; /* keep the next stripe's counters off this one's last line */
} stripe;

struct be__metrics {
  const be_clock *clock;
  stripe stripes[BE_METRICS_STRIPES];
};

static const char *const op_names[BE_OP_COUNT] = {
  "user.create", "user.get", "user.get_by_email", "user.get_many", "user.update", "user.delete",
  "user.list", "auth.set_password", "auth.login", "auth.verify", "auth.verify_session",
  "auth.list_sessions", "auth.end_session", "auth.logout", "auth.revoke_all",
  "auth.change_password", "auth.request_reset", "auth.reset_password", "auth.purge_expired",
  "perm.check", "perm.role_create", "perm.role_delete", "perm.role_grant", "perm.role_revoke",
  "perm.user_assign", "perm.user_unassign", "perm.user_permissions", "perm.user_roles",
  "perm.role_permissions", "audit.write", "audit.query", "audit.verify", "audit.head",
  "pool.acquire", "cache.load"};

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

int be__metrics_new(be__metrics **out, const be_clock *clock, be_error **err) {
  be__metrics *m = be__calloc(1, sizeof *m);
  if (m == NULL) return be__error_oom(err);
  m->clock = clock;
  *out = m;
  return BE_OK;
}

void be__metrics_free(be__metrics *m) {
  if (m == NULL) return;
  for (int s = 0; s < BE_METRICS_STRIPES; s++)
    for (int i = 0; i < BE_OP_COUNT; i++) be_histogram_free(atomic_load(&m->stripes[s].h[i]));
  be__free(m);
}

static _Atomic unsigned next_stripe;
static _Thread_local unsigned my_stripe; /* 0 = not assigned yet, else stripe + 1 */

static stripe *stripe_of(be__metrics *m) {
  unsigned s = my_stripe;
  if (s == 0) s = my_stripe = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) % BE_METRICS_STRIPES + 1;
  return &m->stripes[s - 1];
}

/* The stripe's histogram of op, made on first use; NULL when out of memory
 * (the sample is dropped). */
static be_histogram *hist_of(stripe *st, int32_t op) {
  be_histogram *h = atomic_load_explicit(&st->h[op], memory_order_acquire);
  if (h != NULL) return h;
  be_histogram *mine = NULL;
  if (be_histogram_new(&mine, NULL) != BE_OK) return NULL;
  if (atomic_compare_exchange_strong_explicit(&st->h[op], &h, mine, memory_order_acq_rel,
                                              memory_order_acquire))
    return mine;
  be_histogram_free(mine);
  return h;
}

int be__metrics_begin(be__metrics *m, int32_t op, be_histogram **out_h, int64_t *out_t0) {
  if (m == NULL) return BE_OK;
  be_histogram *h = hist_of(stripe_of(m), op);
  if (h == NULL) return BE_E_NOMEM;
  *out_h = h;
  *out_t0 = be_clock_now_ns(m->clock);
  return BE_OK;
}

void be__metrics_end(be__metrics *m, be_histogram *h, int32_t op, int64_t t0, int rc) {
  if (m == NULL) return;
  be_histogram_record(h, be_clock_now_ns(m->clock) - t0);
  if (rc < 0) {
    stripe *st = stripe_of(m);
    atomic_fetch_add_explicit(&st->errors[op], 1, memory_order_relaxed);
    if (be_code_http_status(rc) >= 500)
      atomic_fetch_add_explicit(&st->server_errors[op], 1, memory_order_relaxed);
  }
}

void be__metrics_merge(const be__metrics *m, int32_t first, int32_t last, be_histogram *dst,
                       int64_t *errors, int64_t *server_errors) {
  if (m == NULL) return;
  be__metrics *w = (be__metrics *)m;
  for (int s = 0; s < BE_METRICS_STRIPES; s++)
    for (int32_t i = first; i < last; i++) {
      be_histogram *h = atomic_load_explicit(&w->stripes[s].h[i], memory_order_acquire);
      if (h) be_histogram_merge(dst, h, NULL);
      *errors += (int64_t)atomic_load_explicit(&w->stripes[s].errors[i], memory_order_relaxed);
      *server_errors += (int64_t)atomic_load_explicit(&w->stripes[s].server_errors[i], memory_order_relaxed);
    }
}

int64_t be__metrics_memory_bytes(const be__metrics *m) {
  if (m == NULL) return 0;
  be__metrics *w = (be__metrics *)m;
  int64_t n = 0;
  for (int s = 0; s < BE_METRICS_STRIPES; s++)
    for (int i = 0; i < BE_OP_COUNT; i++) n += atomic_load(&w->stripes[s].h[i]) != NULL;
  return (int64_t)sizeof *m + n * be_histogram_memory_bytes();
}

void be__metrics_reset(be__metrics *m) {
  if (m == NULL) return;
  for (int s = 0; s < BE_METRICS_STRIPES; s++)
    for (int i = 0; i < BE_OP_COUNT; i++) {
      be_histogram_reset(atomic_load(&m->stripes[s].h[i]));
      atomic_store(&m->stripes[s].errors[i], 0);
      atomic_store(&m->stripes[s].server_errors[i], 0);
    }
}

int be_app_op_stats_get(be_op_stats *out, be_app *app, int32_t op, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_app_op_stats_get: %s is NULL", out ? "app" : "out");
  if (out->version != BE_OP_STATS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown be_op_stats version %u", (unsigned)out->version);
  if (op < 0 || op >= BE_OP_COUNT) return be__error_field(err, "op", "must be a BE_OP_* operation");
  be_histogram *h = NULL;
  if (be_histogram_new(&h, NULL) != BE_OK) return be__error_oom(err);
  be_op_stats s = BE_OP_STATS_INIT;
  s.op = op;
  be__metrics_merge(app->res.metrics, op, op + 1, h, &s.errors, &s.server_errors);
  s.calls = be_histogram_count(h);
  s.total_ns = be_histogram_sum(h);
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
