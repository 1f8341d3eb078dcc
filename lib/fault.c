/* SPDX-License-Identifier: MIT */
/* The fault-injecting driver: forwards to an inner driver, counts calls,
 * and fails the calls its rules pick. */
#include <backend/fault.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "storage.h"

typedef struct rule {
  int32_t mode;
  int32_t code;
  int64_t n;
  int64_t seen; /* calls since the rule was set */
  double p;     /* BE_FAULT_RANDOM */
  uint64_t rng; /* xorshift64* state */
} rule;

struct be_fault {
  be_driver drv; /* handed out; first so a be_driver* can find us */
  const be_driver *inner;
  pthread_mutex_t mu;
  rule rules[BE_FAULT_OP_COUNT];
  _Atomic int active;    /* any rule not OFF: skip the lock when 0 */
  _Atomic int64_t epoch; /* connections opened before it are dead */
  _Atomic int64_t calls[BE_FAULT_OP_COUNT];
  _Atomic int64_t injected[BE_FAULT_OP_COUNT];
};

typedef struct fconn {
  void *inner;
  be_fault *f;
  int64_t epoch;
  _Atomic int dead;
} fconn;

typedef struct fstmt {
  void *inner;
  fconn *c;
} fstmt;

static const char *const op_names[BE_FAULT_OP_COUNT] = {
  "open", "prepare", "bind", "step", "reset", "exec", "begin", "commit",
  "rollback", "savepoint", "release", "rollback_to", "ping", "close", "finalize"};

const char *be_fault_op_name(int32_t op) {
  return op >= 0 && op < BE_FAULT_OP_COUNT ? op_names[op] : "unknown";
}

static uint64_t next_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * UINT64_C(2685821657736338717);
}

/* Count a call of op and say whether (and how) it must fail: 0 or a code. */
static int32_t decide(be_fault *f, int op, int64_t *call_no) {
  *call_no = atomic_fetch_add(&f->calls[op], 1) + 1;
  if (!atomic_load_explicit(&f->active, memory_order_acquire)) return 0;
  int32_t code = 0;
  pthread_mutex_lock(&f->mu);
  rule *r = &f->rules[op];
  if (r->mode != BE_FAULT_OFF) {
    r->seen++;
    switch (r->mode) {
      case BE_FAULT_NTH:
        if (r->seen == r->n) code = r->code;
        break;
      case BE_FAULT_FROM:
        if (r->seen >= r->n) code = r->code;
        break;
      case BE_FAULT_RANDOM:
        if ((double)(next_rand(&r->rng) >> 11) * (1.0 / 9007199254740992.0) < r->p) code = r->code;
        break;
      default: break;
    }
  }
  pthread_mutex_unlock(&f->mu);
  return code;
}

static int inject(be_fault *f, fconn *c, int op, int32_t code, int64_t k, be_error **err) {
  atomic_fetch_add(&f->injected[op], 1);
  if (code == BE_E_CONN_LOST && c) atomic_store(&c->dead, 1);
  return be__error_set(err, code, "injected fault: %s call %lld", op_names[op], (long long)k);
}

static int conn_dead(fconn *c) {
  return atomic_load(&c->dead) || c->epoch < atomic_load(&c->f->epoch);
}

/* The common gate: count, then fail when the connection is dead or a rule
 * fires. Returns BE_OK to go on. */
static int gate(fconn *c, int op, be_error **err) {
  int64_t k;
  int32_t code = decide(c->f, op, &k);
  if (conn_dead(c)) {
    atomic_fetch_add(&c->f->injected[op], 1);
    return be__error_set(err, BE_E_CONN_LOST, "injected fault: connection lost (%s call %lld)",
                         op_names[op], (long long)k);
  }
  return code ? inject(c->f, c, op, code, k, err) : BE_OK;
}

#define CONN(p) ((fconn *)(p))
#define STMT(p) ((fstmt *)(p))
#define INNER(c) ((c)->f->inner)

/* An open (counted as BE_FAULT_OP_OPEN either way) through the inner
 * driver's open, or its open_existing when `existing`. */
static int fault_open(void **out, const char *dsn, be_fault *f, int existing, be_error **err) {
  *out = NULL;
  int64_t k;
  int32_t code = decide(f, BE_FAULT_OP_OPEN, &k);
  if (code) return inject(f, NULL, BE_FAULT_OP_OPEN, code, k, err);
  fconn *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->f = f;
  c->epoch = atomic_load(&f->epoch);
  be__open_fn open = existing ? be__driver_open_existing(f->inner) : f->inner->open;
  int rc = open(&c->inner, dsn, f->inner->driver_data, err);
  if (rc != BE_OK) {
    be__free(c);
    return rc;
  }
  *out = c;
  return BE_OK;
}

static int fd_open(void **out, const char *dsn, void *driver_data, be_error **err) {
  return fault_open(out, dsn, driver_data, 0, err);
}

static int fd_open_existing(void **out, const char *dsn, void *driver_data, be_error **err) {
  return fault_open(out, dsn, driver_data, 1, err);
}

static void fd_close(void *conn) {
  fconn *c = conn;
  atomic_fetch_add(&c->f->calls[BE_FAULT_OP_CLOSE], 1);
  INNER(c)->close(c->inner);
  be__free(c);
}

static int fd_prepare(void *conn, void **out, const char *sql, size_t len, be_error **err) {
  fconn *c = conn;
  *out = NULL;
  int rc = gate(c, BE_FAULT_OP_PREPARE, err);
  if (rc) return rc;
  fstmt *s = be__malloc(sizeof *s);
  if (s == NULL) return be__error_oom(err);
  s->c = c;
  rc = INNER(c)->prepare(c->inner, &s->inner, sql, len, err);
  if (rc != BE_OK) {
    be__free(s);
    return rc;
  }
  *out = s;
  return BE_OK;
}

#define SGATE(s, op)                  \
  do {                                \
    int g_ = gate((s)->c, (op), err); \
    if (g_) return g_;                \
  } while (0)

static int fd_bind_null(void *p, int32_t i, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_BIND);
  return INNER(s->c)->bind_null(s->inner, i, err);
}
static int fd_bind_int64(void *p, int32_t i, int64_t v, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_BIND);
  return INNER(s->c)->bind_int64(s->inner, i, v, err);
}
static int fd_bind_double(void *p, int32_t i, double v, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_BIND);
  return INNER(s->c)->bind_double(s->inner, i, v, err);
}
static int fd_bind_text(void *p, int32_t i, const char *v, size_t n, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_BIND);
  return INNER(s->c)->bind_text(s->inner, i, v, n, err);
}
/* Only in the table when the inner driver has it (be_fault_driver_new). */
static int fd_bind_text_static(void *p, int32_t i, const char *v, size_t n, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_BIND);
  return be__driver_bind_text_static(INNER(s->c))(s->inner, i, v, n, err);
}
static int fd_bind_blob(void *p, int32_t i, const void *v, size_t n, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_BIND);
  return INNER(s->c)->bind_blob(s->inner, i, v, n, err);
}
static int fd_step(void *p, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_STEP);
  return INNER(s->c)->step(s->inner, err);
}
static int32_t fd_column_count(void *p) { return INNER(STMT(p)->c)->column_count(STMT(p)->inner); }
static const char *fd_column_name(void *p, int32_t col) {
  return INNER(STMT(p)->c)->column_name(STMT(p)->inner, col);
}
static int32_t fd_column_type(void *p, int32_t col) {
  return INNER(STMT(p)->c)->column_type(STMT(p)->inner, col);
}
static int64_t fd_column_int64(void *p, int32_t col) {
  return INNER(STMT(p)->c)->column_int64(STMT(p)->inner, col);
}
static double fd_column_double(void *p, int32_t col) {
  return INNER(STMT(p)->c)->column_double(STMT(p)->inner, col);
}
static const char *fd_column_text(void *p, int32_t col, size_t *len) {
  return INNER(STMT(p)->c)->column_text(STMT(p)->inner, col, len);
}
/* Only in the table when the inner driver has it (be_fault_driver_new). */
static int32_t fd_column_value(void *p, int32_t col, int64_t *i, double *d, const void **ptr,
                               size_t *len) {
  return INNER(STMT(p)->c)->column_value(STMT(p)->inner, col, i, d, ptr, len);
}
static const void *fd_column_blob(void *p, int32_t col, size_t *len) {
  return INNER(STMT(p)->c)->column_blob(STMT(p)->inner, col, len);
}
static int fd_reset(void *p, be_error **err) {
  fstmt *s = p;
  SGATE(s, BE_FAULT_OP_RESET);
  return INNER(s->c)->reset(s->inner, err);
}
static void fd_finalize(void *p) {
  fstmt *s = p;
  atomic_fetch_add(&s->c->f->calls[BE_FAULT_OP_FINALIZE], 1);
  INNER(s->c)->finalize(s->inner);
  be__free(s);
}

#define CGATE(c, op)               \
  do {                             \
    int g_ = gate((c), (op), err); \
    if (g_) return g_;             \
  } while (0)

static int fd_exec(void *p, const char *sql, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_EXEC);
  return INNER(CONN(p))->exec(CONN(p)->inner, sql, err);
}
static int fd_begin(void *p, int32_t mode, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_BEGIN);
  return INNER(CONN(p))->begin(CONN(p)->inner, mode, err);
}
static int fd_commit(void *p, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_COMMIT);
  return INNER(CONN(p))->commit(CONN(p)->inner, err);
}
static int fd_rollback(void *p, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_ROLLBACK);
  return INNER(CONN(p))->rollback(CONN(p)->inner, err);
}
static int fd_savepoint(void *p, const char *name, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_SAVEPOINT);
  return INNER(CONN(p))->savepoint(CONN(p)->inner, name, err);
}
static int fd_release(void *p, const char *name, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_RELEASE);
  return INNER(CONN(p))->release(CONN(p)->inner, name, err);
}
static int fd_rollback_to(void *p, const char *name, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_ROLLBACK_TO);
  return INNER(CONN(p))->rollback_to(CONN(p)->inner, name, err);
}
static int fd_ping(void *p, be_error **err) {
  CGATE(CONN(p), BE_FAULT_OP_PING);
  return INNER(CONN(p))->ping(CONN(p)->inner, err);
}
static int64_t fd_last_insert_id(void *p) { return INNER(CONN(p))->last_insert_id(CONN(p)->inner); }
static int64_t fd_changes(void *p) { return INNER(CONN(p))->changes(CONN(p)->inner); }
static int32_t fd_bind_limit(void *p) { return INNER(CONN(p))->bind_limit(CONN(p)->inner); }
static int32_t fd_in_transaction(void *p) {
  return INNER(CONN(p))->in_transaction(CONN(p)->inner);
}

/* The optional operations (driver version 2) pass through uncounted and
 * never fail by a rule, but a lost connection stays lost for them too. */
static int dead_gate(fconn *c, const char *op, be_error **err) {
  if (!conn_dead(c)) return BE_OK;
  return be__error_set(err, BE_E_CONN_LOST, "injected fault: connection lost (%s)", op);
}

static int fd_next_statement(void *p, size_t *out_len, const char *sql, size_t len,
                             be_error **err) {
  *out_len = 0;
  int rc = dead_gate(CONN(p), "next_statement", err);
  if (rc) return rc;
  return be__driver_next_statement(INNER(CONN(p)))(CONN(p)->inner, out_len, sql, len, err);
}

static int fd_status(void *p, int32_t what, int64_t *out_value, int64_t *out_hw, char *text,
                     size_t cap, be_error **err) {
  int rc = dead_gate(CONN(p), "status", err);
  if (rc != BE_OK) return rc;
  return be__driver_status(INNER(CONN(p)))(CONN(p)->inner, what, out_value, out_hw, text, cap, err);
}

/* Notifications (version 5) pass through like the other optional ones. */
static int fd_listen(void *p, const char *channel, be_error **err) {
  int rc = dead_gate(CONN(p), "listen", err);
  return rc != BE_OK ? rc : INNER(CONN(p))->listen(CONN(p)->inner, channel, err);
}

static int fd_notify(void *p, const char *channel, const char *payload, size_t len,
                     be_error **err) {
  int rc = dead_gate(CONN(p), "notify", err);
  return rc != BE_OK ? rc : INNER(CONN(p))->notify(CONN(p)->inner, channel, payload, len, err);
}

static int fd_wait_notification(void *p, int32_t *out_got, char *payload, size_t cap,
                                size_t *out_len, int32_t wake_fd, int64_t timeout_ms,
                                be_error **err) {
  *out_got = 0;
  *out_len = 0;
  int rc = dead_gate(CONN(p), "wait_notification", err);
  if (rc != BE_OK) return rc;
  return INNER(CONN(p))->wait_notification(CONN(p)->inner, out_got, payload, cap, out_len,
                                           wake_fd, timeout_ms, err);
}

static int fd_table_exists(void *p, int32_t *out_exists, const char *name, be_error **err) {
  *out_exists = 0;
  int rc = dead_gate(CONN(p), "table_exists", err);
  if (rc) return rc;
  return be__driver_table_exists(INNER(CONN(p)))(CONN(p)->inner, out_exists, name, err);
}

static const be_driver template = {
  .version = BE_DRIVER_VERSION,
  .open = fd_open,
  .close = fd_close,
  .prepare = fd_prepare,
  .bind_null = fd_bind_null,
  .bind_int64 = fd_bind_int64,
  .bind_double = fd_bind_double,
  .bind_text = fd_bind_text,
  .bind_blob = fd_bind_blob,
  .step = fd_step,
  .column_count = fd_column_count,
  .column_name = fd_column_name,
  .column_type = fd_column_type,
  .column_int64 = fd_column_int64,
  .column_double = fd_column_double,
  .column_text = fd_column_text,
  .column_blob = fd_column_blob,
  .reset = fd_reset,
  .finalize = fd_finalize,
  .exec = fd_exec,
  .begin = fd_begin,
  .commit = fd_commit,
  .rollback = fd_rollback,
  .savepoint = fd_savepoint,
  .release = fd_release,
  .rollback_to = fd_rollback_to,
  .last_insert_id = fd_last_insert_id,
  .changes = fd_changes,
  .ping = fd_ping,
  .bind_limit = fd_bind_limit,
  .in_transaction = fd_in_transaction,
  .next_statement = fd_next_statement,
  .table_exists = fd_table_exists,
  .open_existing = fd_open_existing,
  .bind_text_static = fd_bind_text_static,
  .column_value = fd_column_value,
  .status = fd_status,
  .listen = fd_listen,
  .notify = fd_notify,
  .wait_notification = fd_wait_notification,
};

int be_fault_driver_new(be_driver **out_driver, be_fault **out_fault, const be_driver *inner,
                        be_error **err) {
  if (out_driver == NULL || out_fault == NULL || inner == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_fault_driver_new: NULL argument");
  *out_driver = NULL;
  *out_fault = NULL;
  if (inner->version == 0 || inner->version > BE_DRIVER_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown driver table version %u",
                         (unsigned)inner->version);
  be_fault *f = be__calloc(1, sizeof *f);
  if (f == NULL) return be__error_oom(err);
  if (pthread_mutex_init(&f->mu, NULL) != 0) {
    be__free(f);
    return be__error_set(err, BE_E_INTERNAL, "pthread_mutex_init failed");
  }
  f->inner = inner;
  f->drv = template;
  f->drv.name = inner->name;
  f->drv.placeholder_style = inner->placeholder_style;
  f->drv.features = inner->features;
  f->drv.driver_data = f;
  /* absent from the inner driver (or a version-1 table): absent here too */
  if (be__driver_next_statement(inner) == NULL) f->drv.next_statement = NULL;
  if (be__driver_table_exists(inner) == NULL) f->drv.table_exists = NULL;
  if (be__driver_open_existing(inner) == NULL) f->drv.open_existing = NULL;
  if (be__driver_bind_text_static(inner) == NULL) f->drv.bind_text_static = NULL;
  if (inner->version < 3 || inner->column_value == NULL) f->drv.column_value = NULL;
  if (be__driver_status(inner) == NULL) f->drv.status = NULL;
  if (!be__driver_notifies(inner)) {
    f->drv.listen = NULL;
    f->drv.notify = NULL;
    f->drv.wait_notification = NULL;
  }
  *out_driver = &f->drv;
  *out_fault = f;
  return BE_OK;
}

static int op_ok(int32_t op) { return op == BE_FAULT_OP_ALL || (op >= 0 && op < BE_FAULT_OP_CLOSE); }

static void refresh_active(be_fault *f) {
  int any = 0;
  for (int i = 0; i < BE_FAULT_OP_COUNT; i++) any |= f->rules[i].mode != BE_FAULT_OFF;
  atomic_store_explicit(&f->active, any, memory_order_release);
}

static void put_rule(be_fault *f, int32_t op, const rule *r) {
  pthread_mutex_lock(&f->mu);
  for (int i = 0; i < BE_FAULT_OP_CLOSE; i++) {
    if (op != BE_FAULT_OP_ALL && i != op) continue;
    f->rules[i] = *r;
    /* different ops draw different sequences from one seed */
    if (r->mode == BE_FAULT_RANDOM) {
      f->rules[i].rng = r->rng ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(i + 1));
      if (f->rules[i].rng == 0) f->rules[i].rng = 1;
    }
  }
  refresh_active(f);
  pthread_mutex_unlock(&f->mu);
}

int be_fault_set(be_fault *f, int32_t op, int32_t mode, int64_t n, int32_t code,
                 be_error **err) {
  if (f == NULL || !op_ok(op))
    return be__error_set(err, BE_E_MISUSE, "be_fault_set: %s", f ? "unknown op" : "fault is NULL");
  if (mode != BE_FAULT_OFF && mode != BE_FAULT_NTH && mode != BE_FAULT_FROM)
    return be__error_set(err, BE_E_MISUSE, "be_fault_set: unknown mode %d", (int)mode);
  if (mode != BE_FAULT_OFF && (n < 1 || code >= 0))
    return be__error_set(err, BE_E_MISUSE, "be_fault_set: %s",
                         n < 1 ? "n must be >= 1" : "code must be negative");
  rule r = {mode, code, n, 0, 0.0, 0};
  put_rule(f, op, &r);
  return BE_OK;
}

int be_fault_set_random(be_fault *f, int32_t op, double p, uint64_t seed, int32_t code,
                        be_error **err) {
  if (f == NULL || !op_ok(op) || !(p >= 0.0 && p <= 1.0) || code >= 0)
    return be__error_set(err, BE_E_MISUSE,
                         "be_fault_set_random: NULL fault, unknown op, probability outside "
                         "0..1 or code not negative");
  rule r = {BE_FAULT_RANDOM, code, 0, 0, p, seed};
  put_rule(f, op, &r);
  return BE_OK;
}

void be_fault_clear(be_fault *f, int32_t op) {
  if (f == NULL || !op_ok(op)) return;
  rule r = {BE_FAULT_OFF, 0, 0, 0, 0.0, 0};
  put_rule(f, op, &r);
}

int64_t be_fault_calls(const be_fault *f, int32_t op) {
  if (f == NULL || op < 0 || op >= BE_FAULT_OP_COUNT) return 0;
  return atomic_load(&((be_fault *)f)->calls[op]);
}

int64_t be_fault_injected(const be_fault *f, int32_t op) {
  if (f == NULL || op < 0 || op >= BE_FAULT_OP_COUNT) return 0;
  return atomic_load(&((be_fault *)f)->injected[op]);
}

void be_fault_reset_counts(be_fault *f) {
  if (f == NULL) return;
  for (int i = 0; i < BE_FAULT_OP_COUNT; i++) {
    atomic_store(&f->calls[i], 0);
    atomic_store(&f->injected[i], 0);
  }
}

int be_fault_lose_connections(be_fault *f, be_error **err) {
  if (f == NULL) return be__error_set(err, BE_E_MISUSE, "be_fault_lose_connections: fault is NULL");
  atomic_fetch_add(&f->epoch, 1);
  return BE_OK;
}

void be_fault_free(be_fault *f) {
  if (f == NULL) return;
  pthread_mutex_destroy(&f->mu);
  be__free(f);
}
