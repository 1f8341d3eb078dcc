/* SPDX-License-Identifier: MIT */
/* Thread stress (tests/README.md, "stress"): one app on a SQLite file
 * (WAL) and one standalone cache, hammered by 8 or more threads doing
 * random operations for a bounded time: user get / get-many / update,
 * login + verify + logout, permission check / grant / revoke, audited
 * host transactions incrementing counters, direct pool acquires, and
 * cache set / get / get-copy / get-or-load / delete / prefix
 * invalidation. A watchdog aborts with each thread's current operation
 * when no operation completes for --stall seconds (a deadlock). At the
 * end it checks:
 *  - the pool has nothing in use or waiting, and handed out at least the
 *    connections the threads acquired themselves;
 *  - the standalone cache's hits + misses equal the lookups made, its
 *    inserts equal entries plus removals, and its entries stay within
 *    the bound;
 *  - no lost update: each thread's counter row equals its committed
 *    increments, the shared row their sum;
 *  - every user read through the cache equals its row in the database;
 *    every user's permissions equal what the role rows give;
 *  - the audit chain verifies and holds every row;
 *  - every call returned BE_OK or the refusal its operation expects.
 * Under ThreadSanitizer (CI) any race report fails it too.
 *
 * Operations are a table (ops[] below): adding one (e.g. metrics
 * recording and snapshots) is one function and one line.
 *
 *   ./build/tests/thread_stress --seconds 600 --threads 16
 *   (BE_STRESS_SECONDS, BE_STRESS_THREADS, BE_RELIABILITY_SEED set the
 *   same; --stall sets the watchdog, default 60 s) */
#include <backend/backend.h>

#include "fuzz_support.h" /* fz_json_valid() */

#include <sodium.h>
#include <sqlite3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USERS 24
#define ROLES 4
#define PERMS 6
#define MAX_THREADS 64
#define CACHE_KEYS 64
#define CACHE_MAX_ENTRIES 40

typedef struct worker {
  int id;
  uint64_t rng;
  int64_t increments;            /* committed counter increments */
  int64_t acquires;              /* direct pool acquires */
  int64_t lookups;               /* standalone cache lookups */
  int64_t calls[BE_OP_COUNT];    /* service calls made, by BE_OP_* (since the quiet reset) */
  int64_t errors[BE_OP_COUNT];   /* of which returned an error */
  int64_t metric_reads;          /* metrics, status and statistics read */
  int64_t sql_updates;           /* "UPDATE counters ..." run (since the quiet reset) */
  int64_t sql_counts;            /* "SELECT count(*) FROM be_users" run (since the quiet reset) */
  _Atomic(const char *) current; /* the operation running, for the watchdog */
} worker;

static be_app *app;
static be_cache *cache;
static int64_t user_ids[USERS];
static atomic_llong progress;
static atomic_int stop;
static int stall_s = 60;
static int nthreads = 8;
static worker workers[MAX_THREADS];
/* Phase 1 may reset the metrics while others record; then every thread
 * parks, the main thread resets them once with nothing running and zeroes
 * the threads' call counts, and phase 2 (no resets) must count exactly. */
static atomic_int phase = 1, pause_req, parked;
static atomic_llong resets; /* be_app_metrics_reset() calls in phase 1 */

/* ---- helpers ---- */

static _Noreturn void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("thread_stress: FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

static uint64_t rnd(worker *w) { /* xorshift64* */
  w->rng ^= w->rng >> 12, w->rng ^= w->rng << 25, w->rng ^= w->rng >> 27;
  return w->rng * 2685821657736338717ull;
}

static int64_t pick_user(worker *w) { return user_ids[rnd(w) % USERS]; }

/* rc must be one of the listed codes (ended by 1); frees err. */
static void expect(const char *what, int rc, be_error *err, ...) {
  va_list ap;
  va_start(ap, err);
  int ok = 0;
  for (int c = va_arg(ap, int); c != 1; c = va_arg(ap, int)) ok |= c == rc;
  va_end(ap);
  if (!ok) die("%s returned %s: %s", what, be_code_name(rc), err ? be_error_message(err) : "");
  be_error_free(err);
}

/* Count one service call of operation op that returned rc. */
static void note(worker *w, int32_t op, int rc) {
  w->calls[op]++;
  if (rc != BE_OK) w->errors[op]++;
}

/* ---- operations: each returns nothing and checks its own result ---- */

static void op_user_get(worker *w) {
  be_user *u = NULL;
  be_error *err = NULL;
  int64_t id = pick_user(w);
  int rc = be_user_get(&u, app, id, &err);
  note(w, BE_OP_USER_GET, rc);
  expect("be_user_get", rc, err, BE_OK, 1);
  if (be_user_id(u) != id) die("be_user_get(%lld) gave user %lld", (long long)id, (long long)be_user_id(u));
  be_user_free(u);
}

static void op_user_get_many(worker *w) {
  int64_t ids[8];
  size_t n = 1 + rnd(w) % 8;
  for (size_t i = 0; i < n; i++) ids[i] = pick_user(w);
  be_user_list *list = NULL;
  be_error *err = NULL;
  int rc = be_user_get_many(&list, app, ids, n, &err);
  note(w, BE_OP_USER_GET_MANY, rc);
  expect("be_user_get_many", rc, err, BE_OK, 1);
  for (size_t i = 0; i < n; i++)
    if (be_user_id(be_user_list_get(list, i)) != ids[i]) die("be_user_get_many: entry %zu", i);
  be_user_list_free(list);
}

static void op_user_update(worker *w) {
  char name[48];
  snprintf(name, sizeof name, "t%d-%llu", w->id, (unsigned long long)(rnd(w) % 100000));
  be_user_input in = BE_USER_INPUT_INIT;
  in.fields = BE_USER_FIELD_NAME;
  in.name = name;
  be_error *err = NULL;
  be_user *u = NULL;
  int rc = be_user_update(&u, app, 0, pick_user(w), &in, &err);
  note(w, BE_OP_USER_UPDATE, rc);
  expect("be_user_update", rc, err, BE_OK, 1);
  if (strcmp(be_user_name(u), name) != 0) die("be_user_update returned name %s", be_user_name(u));
  be_user_free(u);
}

static void op_login(worker *w) {
  int k = (int)(rnd(w) % USERS);
  char email[48];
  snprintf(email, sizeof email, "stress%d@example.test", k);
  char *tok = NULL;
  int64_t uid = 0;
  be_error *err = NULL;
  int rc = be_auth_login(&tok, &uid, app, email, BE_NUL_TERMINATED, "stress-password-42", BE_NUL_TERMINATED, &err);
  note(w, BE_OP_AUTH_LOGIN, rc);
  expect("be_auth_login", rc, err, BE_OK, 1);
  if (uid != user_ids[k]) die("login as %s gave user %lld", email, (long long)uid);
  int64_t vid = 0;
  note(w, BE_OP_AUTH_VERIFY, rc = be_auth_verify(&vid, app, tok, BE_NUL_TERMINATED, &err));
  expect("be_auth_verify", rc, err, BE_OK, 1);
  if (vid != uid) die("token of user %lld verified as %lld", (long long)uid, (long long)vid);
  note(w, BE_OP_AUTH_LOGOUT, rc = be_auth_logout(app, tok, BE_NUL_TERMINATED, &err));
  expect("be_auth_logout", rc, err, BE_OK, 1);
  note(w, BE_OP_AUTH_VERIFY, rc = be_auth_verify(&vid, app, tok, BE_NUL_TERMINATED, &err));
  expect("be_auth_verify after logout", rc, err, BE_E_UNAUTHORIZED, 1);
  be_auth_token_free(tok);
}

static void perm_name(worker *w, char *role, char *perm) {
  sprintf(role, "role%d", (int)(rnd(w) % ROLES));
  sprintf(perm, "res%d:act", (int)(rnd(w) % PERMS));
}

static void op_perm_check(worker *w) {
  char role[16], perm[16];
  perm_name(w, role, perm);
  be_error *err = NULL;
  int rc = be_perm_check(app, pick_user(w), perm, BE_NUL_TERMINATED, &err);
  note(w, BE_OP_PERM_CHECK, rc);
  expect("be_perm_check", rc, err, BE_OK, BE_E_FORBIDDEN, 1);
}

static void op_perm_change(worker *w) {
  char role[16], perm[16];
  perm_name(w, role, perm);
  be_error *err = NULL;
  if (rnd(w) % 2) {
    int rc = be_perm_role_grant(app, 0, role, BE_NUL_TERMINATED, perm, BE_NUL_TERMINATED, &err);
    note(w, BE_OP_PERM_ROLE_GRANT, rc);
    expect("be_perm_role_grant", rc, err, BE_OK, 1);
  } else {
    int rc = be_perm_role_revoke(app, 0, role, BE_NUL_TERMINATED, perm, BE_NUL_TERMINATED, &err);
    note(w, BE_OP_PERM_ROLE_REVOKE, rc);
    expect("be_perm_role_revoke", rc, err, BE_OK, 1);
  }
}

typedef struct incr {
  worker *w;
} incr;

static int incr_tx(be_conn *conn, void *ud, be_error **err) {
  worker *w = ((incr *)ud)->w;
  char sql[128];
  snprintf(sql, sizeof sql, "UPDATE counters SET value = value + 1 WHERE id IN (0, %d)", w->id + 1);
  int rc = be_conn_exec(conn, sql, err);
  w->sql_updates++;
  if (rc != BE_OK) return rc;
  char details[64];
  snprintf(details, sizeof details, "{\"thread\":%d}", w->id);
  rc = be_audit_write(NULL, app, conn, 0, "stress.increment", BE_NUL_TERMINATED, "counter", BE_NUL_TERMINATED,
                      w->id + 1, details, BE_NUL_TERMINATED, err);
  note(w, BE_OP_AUDIT_WRITE, rc);
  return rc;
}

static void op_audited_increment(worker *w) {
  incr c = {w};
  be_error *err = NULL;
  expect("be_pool_tx_run (audited increment)",
         be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, incr_tx, &c, &err), err, BE_OK, 1);
  w->increments++;
}

static void op_pool(worker *w) {
  be_conn *conn = NULL;
  be_error *err = NULL;
  expect("be_pool_acquire", be_pool_acquire(&conn, be_app_pool(app), &err), err, BE_OK, 1);
  w->acquires++;
  be_rows *rows = NULL;
  expect("SELECT on a pooled connection",
         be_rows_query(&rows, conn, "SELECT count(*) FROM be_users", NULL, &err), err, BE_OK, 1);
  w->sql_counts++;
  if (be_rows_int64(rows, 0, 0) != USERS) die("%lld users", (long long)be_rows_int64(rows, 0, 0));
  be_rows_free(rows);
  be_pool_release(be_app_pool(app), conn);
}

static int cache_loader(const void *k, size_t kl, be_cache_load *out, void *ud, be_error **err) {
  (void)ud;
  (void)err;
  return be_cache_load_set_value(out, k, kl, BE_CACHE_TTL_DEFAULT, NULL);
}

/* Standalone cache: the value of key K is always K itself or "v:" K, so
 * any returned value can be checked without knowing the interleaving. */
static void check_value(const char *key, size_t kl, const void *v, size_t vl) {
  if (!((vl == kl && memcmp(v, key, kl) == 0) ||
        (vl == kl + 2 && memcmp(v, "v:", 2) == 0 && memcmp((const char *)v + 2, key, kl) == 0)))
    die("cache key %.*s holds a value of another key", (int)kl, key);
}

static void op_cache(worker *w) {
  char key[32], val[40];
  int k = (int)(rnd(w) % CACHE_KEYS);
  size_t kl = (size_t)snprintf(key, sizeof key, "%s%d", k % 2 ? "a:" : "b:", k);
  be_cache_entry *e = NULL;
  switch (rnd(w) % 6) {
    case 0: {
      size_t vl = (size_t)snprintf(val, sizeof val, "v:%s", key);
      expect("be_cache_set", be_cache_set(cache, key, kl, val, vl, (int64_t)(rnd(w) % 50) + 1, NULL), NULL, BE_OK, 1);
      break;
    }
    case 1:
      w->lookups++;
      if (be_cache_get(&e, cache, key, kl, NULL) == BE_OK) {
        size_t vl = 0;
        const void *v = be_cache_entry_value(e, &vl);
        check_value(key, kl, v, vl);
        be_cache_entry_release(e);
      }
      break;
    case 2: {
      size_t len = 0;
      w->lookups++;
      int rc = be_cache_get_copy(val, sizeof val, &len, cache, key, kl, NULL);
      if (rc == BE_OK) check_value(key, kl, val, len);
      else expect("be_cache_get_copy", rc, NULL, BE_E_NOT_FOUND, 1);
      break;
    }
    case 3: {
      w->lookups++;
      expect("be_cache_get_or_load", be_cache_get_or_load(&e, NULL, cache, key, kl, cache_loader, NULL, NULL),
             NULL, BE_OK, 1);
      size_t vl = 0;
      const void *v = be_cache_entry_value(e, &vl);
      check_value(key, kl, v, vl);
      be_cache_entry_release(e);
      break;
    }
    case 4: expect("be_cache_delete", be_cache_delete(cache, key, kl, NULL), NULL, BE_OK, BE_E_NOT_FOUND, 1); break;
    default: expect("be_cache_invalidate_prefix", be_cache_invalidate_prefix(cache, "a:", 2, NULL), NULL, BE_OK, 1);
  }
}

/* ---- metrics, status and statistics read while the others record ---- */

static void check_json(const char *what, char *json, size_t len) {
  if (json == NULL || strlen(json) != len || !fz_json_valid(json, len)) die("%s: not one valid JSON value", what);
  be_free(json);
}

static void read_status(worker *w) {
  be_error *err = NULL;
  char *out = NULL;
  size_t len = 0;
  be_app_status st = BE_APP_STATUS_INIT;
  switch (rnd(w) % 3) {
    case 0:
      expect("be_app_status_get", be_app_status_get(&st, app, &err), err, BE_OK, 1);
      if (st.pool_in_use < 0 || st.pool_in_use > st.pool_max || st.pool_total > st.pool_max)
        die("status: pool %d in use, %d open of %d", st.pool_in_use, st.pool_total, st.pool_max);
      break;
    case 1:
      expect("be_app_status_json", be_app_status_json(&out, &len, app, &err), err, BE_OK, 1);
      check_json("be_app_status_json", out, len);
      break;
    default:
      expect("be_app_status_text", be_app_status_text(&out, &len, app, &err), err, BE_OK, 1);
      if (out == NULL || strlen(out) != len || len == 0) die("be_app_status_text: %zu bytes", len);
      be_free(out);
  }
}

static void read_metrics(worker *w) {
  be_error *err = NULL;
  char *out = NULL;
  size_t len = 0;
  switch (rnd(w) % 4) {
    case 0:
      expect("be_app_metrics_json", be_app_metrics_json(&out, &len, app, &err), err, BE_OK, 1);
      check_json("be_app_metrics_json", out, len);
      break;
    case 1:
      expect("be_app_metrics_prometheus", be_app_metrics_prometheus(&out, &len, app, &err), err, BE_OK, 1);
      if (out == NULL || strlen(out) != len || strstr(out, "# TYPE") == NULL) die("be_app_metrics_prometheus");
      be_free(out);
      break;
    case 2: {
      be_app_memory m = BE_APP_MEMORY_INIT;
      expect("be_app_memory_get", be_app_memory_get(&m, app, &err), err, BE_OK, 1);
      if (m.library_bytes <= 0 || m.metrics_bytes < 0) die("be_app_memory_get: %lld bytes", (long long)m.library_bytes);
      break;
    }
    default: {
      be_op_stats st = BE_OP_STATS_INIT;
      int32_t op = (int32_t)(rnd(w) % BE_OP_COUNT);
      expect("be_app_op_stats_get", be_app_op_stats_get(&st, app, op, &err), err, BE_OK, 1);
      if (st.op != op || st.calls < 0 || st.errors < 0 || st.server_errors > st.errors)
        die("be_app_op_stats_get(%s): %lld calls, %lld errors", be_op_name(op), (long long)st.calls,
            (long long)st.errors);
    }
  }
}

static void read_stmts_incidents(worker *w) {
  be_error *err = NULL;
  if (rnd(w) % 2) {
    be_stmt_stat top[8];
    size_t n = 0;
    for (int i = 0; i < 8; i++) be_stmt_stat_init(&top[i], BE_STMT_STAT_VERSION);
    expect("be_stmt_stats_top", be_stmt_stats_top(top, 8, &n, be_app_stmt_stats(app), &err), err, BE_OK, 1);
    for (size_t i = 0; i < n; i++)
      if (top[i].sql == NULL || top[i].calls < 0 || top[i].errors > top[i].calls || (i && top[i].total_ns > top[i - 1].total_ns))
        die("be_stmt_stats_top: entry %zu", i);
  } else {
    char *out = NULL;
    size_t len = 0;
    expect("be_incident_log_to_json", be_incident_log_to_json(&out, &len, be_app_incidents(app), &err), err, BE_OK, 1);
    check_json("be_incident_log_to_json", out, len);
  }
}

static void op_metrics_read(worker *w) {
  switch (rnd(w) % 3) {
    case 0: read_status(w); break;
    case 1: read_metrics(w); break;
    default: read_stmts_incidents(w);
  }
  w->metric_reads++;
}

/* Only in phase 1: not atomic against the recorders, by its contract. */
static void op_metrics_reset(worker *w) {
  if (atomic_load(&phase) == 1) {
    be_app_metrics_reset(app);
    atomic_fetch_add(&resets, 1);
  } else {
    op_metrics_read(w);
  }
}

typedef struct op {
  const char *name;
  int weight;
  void (*fn)(worker *w);
  atomic_llong count;
} op;

static op ops[] = {
  {"user_get", 20, op_user_get, 0},
  {"user_get_many", 6, op_user_get_many, 0},
  {"user_update", 8, op_user_update, 0},
  {"login_verify_logout", 2, op_login, 0},
  {"perm_check", 20, op_perm_check, 0},
  {"perm_grant_revoke", 4, op_perm_change, 0},
  {"audited_increment", 8, op_audited_increment, 0},
  {"pool_acquire", 8, op_pool, 0},
  {"cache", 30, op_cache, 0},
  {"metrics_read", 12, op_metrics_read, 0},
  {"metrics_reset", 1, op_metrics_reset, 0},
};
#define NOPS (sizeof ops / sizeof ops[0])

/* ---- threads ---- */

static void *work(void *arg) {
  worker *w = arg;
  int total = 0;
  for (size_t i = 0; i < NOPS; i++) total += ops[i].weight;
  while (!atomic_load(&stop)) {
    if (atomic_load(&pause_req)) {
      atomic_fetch_add(&parked, 1);
      while (atomic_load(&pause_req)) usleep(1000);
      continue;
    }
    int r = (int)(rnd(w) % (uint64_t)total);
    size_t i = 0;
    while (r >= ops[i].weight) r -= ops[i++].weight;
    atomic_store(&w->current, ops[i].name);
    ops[i].fn(w);
    atomic_store(&w->current, (const char *)NULL);
    atomic_fetch_add(&ops[i].count, 1);
    atomic_fetch_add(&progress, 1);
  }
  return NULL;
}

/* Abort when no operation completed for stall_s seconds. */
static void *watchdog(void *arg) {
  (void)arg;
  long long last = -1;
  int still = 0;
  while (!atomic_load(&stop)) {
    sleep(1);
    long long now = atomic_load(&progress);
    still = now == last ? still + 1 : 0;
    last = now;
    if (still >= stall_s) {
      fprintf(stderr, "thread_stress: FAIL: no operation completed for %d s (deadlock?)\n", stall_s);
      for (int t = 0; t < nthreads; t++) {
        const char *cur = atomic_load(&workers[t].current);
        fprintf(stderr, "  thread %d: %s\n", t, cur ? cur : "(between operations)");
      }
      abort();
    }
  }
  return NULL;
}

/* ---- setup ---- */

static int setup_tx(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  int rc = be_conn_exec(conn, "CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)", err);
  char sql[96];
  for (int t = 0; t <= nthreads && rc == BE_OK; t++) {
    snprintf(sql, sizeof sql, "INSERT INTO counters VALUES (%d, 0)", t);
    rc = be_conn_exec(conn, sql, err);
  }
  return rc;
}

static void setup(const char *path) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.pool_min = 2;
  o.pool_max = 4;           /* fewer connections than threads: acquires queue */
  o.cache_max_entries = 16; /* fewer than the users: evictions */
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  o.hash_wait_ms = 60000;
  be_error *err = NULL;
  expect("be_app_new", be_app_new(&app, &o, &err), err, BE_OK, 1);
  expect("counters", be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, setup_tx, NULL, &err), err, BE_OK, 1);
  for (int u = 0; u < USERS; u++) {
    char email[48], name[32];
    snprintf(email, sizeof email, "stress%d@example.test", u);
    snprintf(name, sizeof name, "Stress %d", u);
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = email;
    in.name = name;
    expect("be_user_create", be_user_create(NULL, &user_ids[u], app, 0, &in, &err), err, BE_OK, 1);
    expect("be_auth_set_password",
           be_auth_set_password(app, 0, user_ids[u], "stress-password-42", BE_NUL_TERMINATED, &err), err, BE_OK, 1);
  }
  for (int r = 0; r < ROLES; r++) {
    char role[16];
    snprintf(role, sizeof role, "role%d", r);
    expect("be_perm_role_create", be_perm_role_create(NULL, app, 0, role, BE_NUL_TERMINATED, &err), err, BE_OK, 1);
    for (int u = r; u < USERS; u += ROLES - 1)
      expect("be_perm_user_assign", be_perm_user_assign(app, 0, user_ids[u], role, BE_NUL_TERMINATED, &err), err,
             BE_OK, 1);
  }
  be_cache_options co = BE_CACHE_OPTIONS_INIT;
  co.shard_count = 4;
  co.max_entries = CACHE_MAX_ENTRIES;
  expect("be_cache_new", be_cache_new(&cache, &co, &err), err, BE_OK, 1);
  expect("be_cache_register_prefix", be_cache_register_prefix(cache, "a:", 2, &err), err, BE_OK, 1);
}

/* ---- the checks at the end ---- */

static be_rows *query(be_conn *conn, const char *fmt, ...) {
  char sql[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  be_rows *rows = NULL;
  be_error *err = NULL;
  expect(sql, be_rows_query(&rows, conn, sql, NULL, &err), err, BE_OK, 1);
  return rows;
}

static void check_counters(be_conn *conn) {
  int64_t sum = 0;
  for (int t = 0; t < nthreads; t++) {
    be_rows *r = query(conn, "SELECT value FROM counters WHERE id = %d", t + 1);
    if (be_rows_int64(r, 0, 0) != workers[t].increments)
      die("lost update: thread %d committed %lld increments, its row holds %lld", t,
          (long long)workers[t].increments, (long long)be_rows_int64(r, 0, 0));
    sum += workers[t].increments;
    be_rows_free(r);
  }
  be_rows *r = query(conn, "SELECT value FROM counters WHERE id = 0");
  if (be_rows_int64(r, 0, 0) != sum)
    die("lost update: the shared counter holds %lld, %lld increments committed", (long long)be_rows_int64(r, 0, 0),
        (long long)sum);
  be_rows_free(r);
}

static void check_users_and_perms(be_conn *conn) {
  for (int u = 0; u < USERS; u++) {
    be_user *user = NULL;
    be_error *err = NULL;
    expect("be_user_get", be_user_get(&user, app, user_ids[u], &err), err, BE_OK, 1);
    be_rows *r = query(conn, "SELECT name FROM be_users WHERE id = %lld", (long long)user_ids[u]);
    if (strcmp(be_rows_text(r, 0, 0, NULL), be_user_name(user)) != 0)
      die("user %lld: cached name %s, database %s", (long long)user_ids[u], be_user_name(user),
          be_rows_text(r, 0, 0, NULL));
    be_rows_free(r);
    be_user_free(user);
    be_perm_list *list = NULL;
    expect("be_perm_user_permissions", be_perm_user_permissions(&list, app, user_ids[u], &err), err, BE_OK, 1);
    r = query(conn,
              "SELECT DISTINCT rp.permission FROM be_user_roles ur JOIN be_role_permissions rp"
              " ON rp.role_id = ur.role_id WHERE ur.user_id = %lld ORDER BY 1",
              (long long)user_ids[u]);
    int same = be_rows_count(r) == be_perm_list_count(list);
    for (size_t i = 0; same && i < be_rows_count(r); i++)
      same = strcmp(be_rows_text(r, i, 0, NULL), be_perm_list_get(list, i)) == 0;
    if (!same) die("user %lld: permissions differ from the role rows", (long long)user_ids[u]);
    be_rows_free(r);
    be_perm_list_free(list);
  }
}

static void check_pool_and_cache(int64_t acquires, int64_t lookups) {
  be_pool_stats ps = BE_POOL_STATS_INIT;
  be_error *err = NULL;
  expect("be_pool_stats_get", be_pool_stats_get(&ps, be_app_pool(app), &err), err, BE_OK, 1);
  if (ps.in_use != 0 || ps.waiting != 0 || ps.total > ps.max_conns)
    die("pool: %d in use, %d waiting, %d open of %d", ps.in_use, ps.waiting, ps.total, ps.max_conns);
  if (ps.acquires < acquires) die("pool counted %lld acquires, the threads made %lld", (long long)ps.acquires,
                                  (long long)acquires);
  printf("pool: %lld acquires (%lld direct), %lld waited, %lld handed off, 0 in use, 0 waiting\n",
         (long long)ps.acquires, (long long)acquires, (long long)ps.waits, (long long)ps.handoffs);
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  expect("be_cache_stats_get", be_cache_stats_get(&cs, cache, &err), err, BE_OK, 1);
  int64_t removed = cs.evictions_size + cs.evictions_count + cs.expirations + cs.invalidations + cs.replacements;
  if (cs.hits + cs.misses != lookups)
    die("cache: %lld hits + %lld misses != %lld lookups", (long long)cs.hits, (long long)cs.misses,
        (long long)lookups);
  if (cs.inserts != cs.entries + removed)
    die("cache: %lld inserts != %lld entries + %lld removed", (long long)cs.inserts, (long long)cs.entries,
        (long long)removed);
  if (cs.entries > CACHE_MAX_ENTRIES) die("cache: %lld entries over the bound", (long long)cs.entries);
  printf("cache: %lld lookups = %lld hits + %lld misses; %lld inserts = %lld entries + %lld removed\n",
         (long long)lookups, (long long)cs.hits, (long long)cs.misses, (long long)cs.inserts, (long long)cs.entries,
         (long long)removed);
}

static void check_all(void) {
  int64_t acquires = 0, lookups = 0;
  for (int t = 0; t < nthreads; t++) acquires += workers[t].acquires, lookups += workers[t].lookups;
  check_pool_and_cache(acquires, lookups);
  be_conn *conn = NULL;
  be_error *err = NULL;
  expect("be_pool_acquire", be_pool_acquire(&conn, be_app_pool(app), &err), err, BE_OK, 1);
  check_counters(conn);
  check_users_and_perms(conn);
  be_rows *r = query(conn, "SELECT count(*) FROM be_audit_log");
  int64_t audit_rows = be_rows_int64(r, 0, 0);
  be_rows_free(r);
  be_pool_release(be_app_pool(app), conn);
  int64_t bad = -1, rows = 0;
  expect("be_audit_verify", be_audit_verify(&bad, &rows, app, &err), err, BE_OK, 1);
  if (bad != 0 || rows != audit_rows)
    die("audit chain: first bad row %lld, %lld of %lld rows checked", (long long)bad, (long long)rows,
        (long long)audit_rows);
  printf("audit chain intact: %lld rows; counters: no lost update\n", (long long)rows);
}

/* The metrics of phase 2 (no reset ran): every service operation counted
 * exactly the calls and errors the threads saw; the statement statistics
 * hold at least the statements the threads ran; the status agrees and its
 * JSON is valid. Run before check_all(), whose calls would count. */
static void check_metrics(void) {
  int64_t api_calls = 0, updates = 0, counts = 0, reads = 0;
  for (int32_t op = 0; op < BE_OP_SERVICE_COUNT; op++) {
    int64_t calls = 0, errors = 0;
    for (int t = 0; t < nthreads; t++) calls += workers[t].calls[op], errors += workers[t].errors[op];
    be_op_stats st = BE_OP_STATS_INIT;
    be_error *err = NULL;
    expect("be_app_op_stats_get", be_app_op_stats_get(&st, app, op, &err), err, BE_OK, 1);
    if (st.calls != calls || st.errors != errors)
      die("metrics: %s counted %lld calls, %lld errors; the threads made %lld calls, saw %lld errors", be_op_name(op),
          (long long)st.calls, (long long)st.errors, (long long)calls, (long long)errors);
    if (calls) printf("  %-22s %8lld calls %7lld errors (metrics agree)\n", be_op_name(op), (long long)calls,
                      (long long)errors);
    api_calls += calls;
  }
  for (int t = 0; t < nthreads; t++)
    updates += workers[t].sql_updates, counts += workers[t].sql_counts, reads += workers[t].metric_reads;
  be_stmt_stats *ss = be_app_stmt_stats(app);
  size_t cap = be_stmt_stats_count(ss), n = 0;
  be_stmt_stat *top = calloc(cap + 1, sizeof *top);
  for (size_t i = 0; i <= cap; i++) be_stmt_stat_init(&top[i], BE_STMT_STAT_VERSION);
  be_error *err = NULL;
  expect("be_stmt_stats_top", be_stmt_stats_top(top, cap + 1, &n, ss, &err), err, BE_OK, 1);
  int64_t seen_updates = 0, seen_counts = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(top[i].sql, "UPDATE counters", 15) == 0) seen_updates += top[i].calls;
    if (strstr(top[i].sql, "count(*) FROM be_users")) seen_counts += top[i].calls;
  }
  free(top);
  if (seen_updates < updates || seen_counts < counts)
    die("statement statistics: %lld counter updates (threads ran %lld), %lld user counts (threads ran %lld)",
        (long long)seen_updates, (long long)updates, (long long)seen_counts, (long long)counts);
  be_app_status st = BE_APP_STATUS_INIT;
  expect("be_app_status_get", be_app_status_get(&st, app, &err), err, BE_OK, 1);
  if (st.api_calls != api_calls || st.pool_in_use != 0)
    die("status: %lld service calls (threads made %lld), %d in use", (long long)st.api_calls, (long long)api_calls,
        st.pool_in_use);
  char *json = NULL;
  size_t len = 0;
  expect("be_app_status_json", be_app_status_json(&json, &len, app, &err), err, BE_OK, 1);
  check_json("be_app_status_json", json, len);
  printf("metrics: %lld service calls counted exactly (phase 2, after %lld resets in phase 1); statements: "
         "%lld >= %lld counter updates, %lld >= %lld user counts; %lld metric reads; status JSON valid\n",
         (long long)api_calls, (long long)atomic_load(&resets), (long long)seen_updates, (long long)updates,
         (long long)seen_counts, (long long)counts, (long long)reads);
}

/* Park every worker, reset the metrics with nothing recording, zero the
 * threads' counts, start phase 2 (no resets). */
static void quiet_reset(void) {
  atomic_store(&pause_req, 1);
  while (atomic_load(&parked) < nthreads) usleep(1000);
  be_app_metrics_reset(app);
  for (int t = 0; t < nthreads; t++) {
    memset(workers[t].calls, 0, sizeof workers[t].calls);
    memset(workers[t].errors, 0, sizeof workers[t].errors);
    workers[t].sql_updates = workers[t].sql_counts = 0;
  }
  atomic_store(&phase, 2);
  atomic_store(&parked, 0);
  atomic_store(&pause_req, 0);
}

/* ---- main ---- */

static int arg_int(int argc, char **argv, const char *name, const char *env, int def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
  const char *e = getenv(env);
  return e && *e ? atoi(e) : def;
}

int main(int argc, char **argv) {
  int seconds = arg_int(argc, argv, "--seconds", "BE_STRESS_SECONDS", 20);
  nthreads = arg_int(argc, argv, "--threads", "BE_STRESS_THREADS", 8);
  stall_s = arg_int(argc, argv, "--stall", "BE_STRESS_STALL", 60);
  unsigned seed = (unsigned)arg_int(argc, argv, "--seed", "BE_RELIABILITY_SEED", (int)time(NULL));
  if (nthreads < 1 || nthreads > MAX_THREADS) die("--threads: 1..%d", MAX_THREADS);
  be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL);
  char dir[] = "/tmp/be_stress_XXXXXX", path[64];
  if (mkdtemp(dir) == NULL) die("mkdtemp");
  snprintf(path, sizeof path, "%s/stress.db", dir);
  printf("thread_stress: %d threads, %d s, seed %u, %s\n", nthreads, seconds, seed, path);
  setup(path);

  pthread_t th[MAX_THREADS], dog;
  for (int t = 0; t < nthreads; t++) {
    workers[t].id = t;
    workers[t].rng = ((uint64_t)seed << 20) + (uint64_t)t * 0x9E3779B97F4A7C15ull + 1;
    if (pthread_create(&th[t], NULL, work, &workers[t]) != 0) die("pthread_create");
  }
  if (pthread_create(&dog, NULL, watchdog, NULL) != 0) die("pthread_create");
  sleep((unsigned)(seconds / 2));
  quiet_reset();
  sleep((unsigned)(seconds - seconds / 2));
  atomic_store(&stop, 1);
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  pthread_join(dog, NULL);

  long long total = 0;
  for (size_t i = 0; i < NOPS; i++) {
    printf("  %-22s %10lld\n", ops[i].name, (long long)atomic_load(&ops[i].count));
    total += atomic_load(&ops[i].count);
  }
  printf("operations: %lld in %d s (%.0f/s)\n", total, seconds, (double)total / seconds);
  check_metrics();
  check_all();
  be_cache_free(cache);
  be_app_free(app);
  static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char f[80];
    snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
    unlink(f);
  }
  if (rmdir(dir) != 0) fprintf(stderr, "could not remove %s\n", dir);
  printf("thread_stress: ok\n");
  return 0;
}
