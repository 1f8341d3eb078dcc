/* SPDX-License-Identifier: MIT */
/*
 * The main workloads through the app on SQLite and on PostgreSQL, side by
 * side: get by id (the cache cleared before each, so every get reads the
 * database), cached get, batch load of 1,000 users' posts (one statement:
 * IN lists on SQLite, one array parameter on PostgreSQL), update + audit
 * (one transaction), and login. One JSON line per case, the format of the
 * other benchmarks plus "driver":
 * {"bench":..., "driver":..., "ops":..., "ops_per_s":..., "p50_ns":..., "p95_ns":..., "p99_ns":...}
 *
 * SQLite: a WAL file in a temporary directory. PostgreSQL: the DSN given
 * as the first argument or BE_TEST_PG_DSN (a schema of its own, dropped
 * at the end); left out when there is none or libbackend has no libpq.
 * Single thread, cheapest argon2id parameters (login measures the
 * library, not the hash). Mind the server's settings when comparing
 * writes: tests/pg/cluster.sh runs with fsync=off, SQLite here with
 * synchronous NORMAL in WAL mode.
 *
 * Usage: bench_drivers [postgres-dsn|-] [users (2000)] [ops (2000)]
 */
#include <backend/backend.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT BE_NUL_TERMINATED

static void die(const char *what, int rc, be_error *e) {
  const be_error *c = e;
  while (c && be_error_cause(c)) c = be_error_cause(c);
  fprintf(stderr, "%s failed: %d %s (%s)\n", what, rc, be_error_message(e),
          c ? be_error_message(c) : "");
  exit(1);
}

static void report(const char *name, const char *driver, be_histogram *h, int64_t total_ns,
                   long ops) {
  printf("{\"bench\":\"%s\",\"driver\":\"%s\",\"ops\":%ld,\"ops_per_s\":%.0f,\"p50_ns\":%lld,"
         "\"p95_ns\":%lld,\"p99_ns\":%lld}\n",
         name, driver, ops, (double)ops * 1e9 / (double)total_ns,
         (long long)be_histogram_quantile(h, 0.50), (long long)be_histogram_quantile(h, 0.95),
         (long long)be_histogram_quantile(h, 0.99));
  fflush(stdout);
}

static void exec_sql(be_app *app, const char *sql) {
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_pool_acquire(&c, be_app_pool(app), &e);
  if (rc == BE_OK) rc = be_conn_exec(c, sql, &e);
  if (rc != BE_OK) die(sql, rc, e);
  be_pool_release(be_app_pool(app), c);
}

typedef struct run {
  be_app *app;
  const char *driver;
  long users, ops;
} run;

/* users users with a password, 10 posts each. */
static void seed(run *r) {
  exec_sql(r->app, "CREATE TABLE bench_posts(id BIGINT PRIMARY KEY, author BIGINT NOT NULL, "
                   "title TEXT NOT NULL)");
  exec_sql(r->app, "CREATE INDEX bench_posts_author ON bench_posts(author)");
  for (long i = 1; i <= r->users; i++) {
    char email[64];
    snprintf(email, sizeof email, "u%ld@bench.io", i);
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = email;
    in.name = "Bench User";
    int64_t id = 0;
    be_error *e = NULL;
    int rc = be_user_create(NULL, &id, r->app, 0, &in, &e);
    if (rc == BE_OK && i <= 10) rc = be_auth_set_password(r->app, 0, id, "bench password 1", NT, &e);
    if (rc != BE_OK) die("seed user", rc, e);
  }
  char sql[256];
  snprintf(sql, sizeof sql,
           "INSERT INTO bench_posts SELECT p, 1 + (p - 1) / 10, 'post' FROM "
           "(WITH RECURSIVE s(p) AS (SELECT 1 UNION ALL SELECT p + 1 FROM s WHERE p < %ld) "
           "SELECT p FROM s) AS q",
           r->users * 10);
  exec_sql(r->app, sql);
}

static void timed(run *r, const char *name, int (*op)(run *, long, be_error **)) {
  be_histogram *h = NULL;
  be_histogram_new(&h, NULL);
  int64_t start = be_clock_now_ns(NULL);
  long n = r->ops;
  for (long i = 0; i < n; i++) {
    int64_t t0 = be_clock_now_ns(NULL);
    be_error *e = NULL;
    int rc = op(r, i, &e);
    if (rc != BE_OK) die(name, rc, e);
    be_histogram_record(h, be_clock_now_ns(NULL) - t0);
  }
  report(name, r->driver, h, be_clock_now_ns(NULL) - start, n);
  be_histogram_free(h);
}

static int op_get_uncached(run *r, long i, be_error **err) {
  int64_t id = 1 + i % r->users;
  be_cache_invalidate_prefix(be_app_cache(r->app), "user:", 5, NULL);
  be_user *u = NULL;
  int rc = be_user_get(&u, r->app, id, err);
  be_user_free(u);
  return rc;
}

static int op_get_cached(run *r, long i, be_error **err) {
  be_user *u = NULL;
  int rc = be_user_get(&u, r->app, 1 + i % 16, err);
  be_user_free(u);
  return rc;
}

static int op_batch_1000(run *r, long i, be_error **err) {
  int64_t keys[1000];
  for (int k = 0; k < 1000; k++) keys[k] = 1 + (i * 1000 + k) % r->users;
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  const char *cols[] = {"id", "title"};
  o.table = "bench_posts";
  o.columns = cols;
  o.column_count = 2;
  o.key_column = "author";
  be_conn *c = NULL;
  int rc = be_pool_acquire(&c, be_app_pool(r->app), err);
  if (rc != BE_OK) return rc;
  be_batch_result *res = NULL;
  rc = be_batch_load_int64(&res, c, &o, keys, 1000, err);
  be_batch_result_free(res);
  be_pool_release(be_app_pool(r->app), c);
  return rc;
}

static int op_update_audit(run *r, long i, be_error **err) {
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = i % 2 ? "Bench User" : "Bench User 2";
  return be_user_update(NULL, r->app, 0, 1 + i % r->users, &up, err);
}

static int op_login(run *r, long i, be_error **err) {
  char email[64];
  snprintf(email, sizeof email, "u%ld@bench.io", 1 + i % 10);
  char *token = NULL;
  int rc = be_auth_login(&token, NULL, r->app, email, NT, "bench password 1", NT, err);
  be_free(token);
  return rc;
}

static void bench(const char *driver, const char *database, long users, long ops) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = database;
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  run r = {NULL, driver, users, ops};
  be_error *e = NULL;
  int rc = be_app_new(&r.app, &o, &e);
  if (rc != BE_OK) die("be_app_new", rc, e);
  seed(&r);
  timed(&r, "get_by_id_uncached", op_get_uncached);
  timed(&r, "get_by_id_cached", op_get_cached);
  r.ops = ops / 10 > 0 ? ops / 10 : 1;
  timed(&r, "batch_posts_of_1000_users", op_batch_1000);
  r.ops = ops;
  timed(&r, "update_and_audit", op_update_audit);
  r.ops = ops / 10 > 0 ? ops / 10 : 1;
  timed(&r, "login", op_login);
  be_app_free(r.app);
}

/* A schema of its own on the server; its DSN in out. */
static void pg_schema(char *out, size_t size, const char *base, const char *verb) {
  char schema[64], sql[200];
  snprintf(schema, sizeof schema, "bench_%ld", (long)getpid());
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_conn_open(&c, be_postgres_driver(), base, &e);
  if (rc != BE_OK) die("connect", rc, e);
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE%s%s", schema,
           strcmp(verb, "create") == 0 ? "; CREATE SCHEMA " : "",
           strcmp(verb, "create") == 0 ? schema : "");
  rc = be_conn_exec(c, sql, &e);
  if (rc != BE_OK) die(sql, rc, e);
  be_conn_close(c);
  snprintf(out, size, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
           schema);
}

int main(int argc, char **argv) {
  const char *pg = argc > 1 && strcmp(argv[1], "-") != 0 ? argv[1] : getenv("BE_TEST_PG_DSN");
  long users = argc > 2 ? atol(argv[2]) : 2000;
  long ops = argc > 3 ? atol(argv[3]) : 2000;
  if (users < 1000 || ops < 1) {
    fprintf(stderr, "usage: bench_drivers [postgres-dsn|-] [users >= 1000] [ops]\n");
    return 2;
  }
  if (sodium_init() < 0) return 1;
  char dir[] = "/tmp/bench_drivers.XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  char path[128];
  snprintf(path, sizeof path, "%s/bench.db", dir);
  bench("sqlite", path, users, ops);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (pg == NULL || be_postgres_driver() == NULL) {
    fprintf(stderr, "postgres: left out (%s)\n",
            be_postgres_driver() ? "no DSN: give one or set BE_TEST_PG_DSN" : "built without libpq");
    return 0;
  }
  char dsn[1024];
  pg_schema(dsn, sizeof dsn, pg, "create");
  bench("postgres", dsn, users, ops);
  pg_schema(dsn, sizeof dsn, pg, "drop");
  return 0;
}
