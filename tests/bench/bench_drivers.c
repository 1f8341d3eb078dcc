/* SPDX-License-Identifier: MIT */
/*
 * The main workloads through the app on SQLite and on PostgreSQL, side by
 * side, and how they scale with processes and data: get by id (the cache
 * cleared before each, so every get reads the database), cached get,
 * batch load of 1,000 users' posts (one statement: IN lists on SQLite, one
 * array parameter on PostgreSQL), update + audit (one transaction), and
 * login. One JSON line per case, the format of the other benchmarks plus
 * the driver, the data size, the process count and the load average:
 * {"bench":..., "driver":..., "users":..., "procs":..., "ops":..., "ops_per_s":...,
 *  "p50_ns":..., "p95_ns":..., "p99_ns":..., "load1":..., "argon2":"min"|"default"}
 * and one {"bench":"generate",...} line with the time the data took.
 *
 * --procs P forks P worker processes per case, each with its own app (own
 * pool, own cache) on the same database; they start together, each runs
 * --ops operations (a tenth of that for batch and login), and the line
 * gives all P's operations over the wall time from the first start to the
 * last finish, with quantiles over every operation of every worker.
 *
 * Data: --users users (ids 1..N, 10 posts each) made in one statement per
 * table (a recursive CTE on SQLite, generate_series on PostgreSQL), so a
 * million users take seconds, not hours; ten of them get a password for
 * login. With --data DIR the SQLite file (DIR/bench_<N>.db) and the
 * PostgreSQL schema (bench_<N>) are kept and reused by later runs of the
 * same size; without it both are temporary.
 *
 * Cheapest argon2id parameters by default (login measures the library, not
 * the hash); --argon2 default uses the library's own (interactive) ones,
 * where a login costs the hash. The ten passwords are set with the
 * parameters of the run that generates the data; login rehashes them to
 * the app's parameters on first use.
 * Mind the server's settings when comparing writes: tests/pg/cluster.sh
 * runs with fsync=off unless BE_PG_DURABLE=1; SQLite here is WAL with
 * synchronous NORMAL (the app's default).
 */
#define _DEFAULT_SOURCE /* getloadavg */
#include <backend/backend.h>

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NT BE_NUL_TERMINATED
#define BATCH_KEYS 1000
#define MAX_PROCS 64

static void die(const char *what, int rc, be_error *e) {
  const be_error *c = e;
  while (c && be_error_cause(c)) c = be_error_cause(c);
  fprintf(stderr, "%s failed: %d %s (%s)\n", what, rc, e ? be_error_message(e) : "",
          c ? be_error_message(c) : "");
  exit(1);
}

typedef struct config {
  const char *dsn;  /* PostgreSQL, or NULL */
  const char *data; /* kept data directory, or NULL */
  int sqlite, postgres;
  long users, ops, procs;
  int real_hash; /* --argon2 default: the library's own parameters */
} config;

static int real_hash; /* config.real_hash, for open_app in every process */

typedef struct run {
  be_app *app;
  const char *driver;
  const char *database;
  long users, worker;
} run;

/* Shared between the parent and its workers: each worker's start and end
 * and every operation's latency. */
typedef struct shared {
  int64_t start[MAX_PROCS], end[MAX_PROCS];
  int64_t lat[]; /* procs * ops */
} shared;

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* A user id spread over the whole table, different per worker. */
static int64_t any_user(const run *r, long i) {
  return 1 + (int64_t)(mix(((uint64_t)r->worker << 40) ^ (uint64_t)i) % (uint64_t)r->users);
}

static void must_exec(be_conn *c, const char *sql) {
  be_error *e = NULL;
  int rc = be_conn_exec(c, sql, &e);
  if (rc != BE_OK) die(sql, rc, e);
}

static be_app *open_app(const char *database) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = database;
  if (!real_hash) {
    o.insecure_test_hashing = 1;
    o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
    o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  }
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK) die("be_app_new", rc, e);
  return app;
}

/* The statements that make users users (ids 1..users) and 10 posts each,
 * one statement per table, in one transaction. */
static void generate_sql(be_conn *c, const run *r, int pg) {
  char src[200], sql[600];
  if (pg) snprintf(src, sizeof src, "generate_series(1, %ld) AS s(p)", r->users * 10);
  else
    snprintf(src, sizeof src,
             "(WITH RECURSIVE s(p) AS (SELECT 1 UNION ALL SELECT p + 1 FROM s WHERE p < %ld) "
             "SELECT p FROM s) AS q",
             r->users * 10);
  must_exec(c, "BEGIN");
  snprintf(sql, sizeof sql,
           "INSERT INTO be_users (id, email, name, created_at, updated_at) "
           "SELECT p, 'u' || p || '@bench.io', 'Bench User', 0, 0 FROM %s WHERE p <= %ld",
           src, r->users);
  must_exec(c, sql);
  must_exec(c, "CREATE TABLE bench_posts(id BIGINT PRIMARY KEY, author BIGINT NOT NULL, "
               "title TEXT NOT NULL)");
  snprintf(sql, sizeof sql, "INSERT INTO bench_posts SELECT p, 1 + (p - 1) / 10, 'post' FROM %s",
           src);
  must_exec(c, sql);
  must_exec(c, "CREATE INDEX bench_posts_author ON bench_posts(author)");
  if (pg)
    must_exec(c, "SELECT setval(pg_get_serial_sequence('be_users', 'id'), "
                 "(SELECT max(id) FROM be_users))");
  must_exec(c, "COMMIT");
  must_exec(c, "ANALYZE");
}

/* The data, unless a kept database already has it; ten passwords. */
static void generate(run *r) {
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_pool_acquire(&c, be_app_pool(r->app), &e);
  if (rc != BE_OK) die("acquire", rc, e);
  rc = be_conn_exec(c, "SELECT 1 FROM bench_posts LIMIT 1", &e);
  be_error_free(e);
  e = NULL;
  int64_t t0 = be_clock_now_ns(NULL);
  if (rc != BE_OK) generate_sql(c, r, strcmp(r->driver, "postgres") == 0);
  be_pool_release(be_app_pool(r->app), c);
  if (rc == BE_OK) return;
  for (int64_t id = 1; id <= 10; id++) {
    rc = be_auth_set_password(r->app, 0, id, "bench password 1", NT, &e);
    if (rc != BE_OK) die("set password", rc, e);
  }
  printf("{\"bench\":\"generate\",\"driver\":\"%s\",\"users\":%ld,\"posts\":%ld,\"seconds\":%.1f}\n",
         r->driver, r->users, r->users * 10, (double)(be_clock_now_ns(NULL) - t0) / 1e9);
  fflush(stdout);
}

static int op_get_uncached(run *r, long i, be_error **err) {
  be_cache_invalidate_prefix(be_app_cache(r->app), "user:", 5, NULL);
  be_user *u = NULL;
  int rc = be_user_get(&u, r->app, any_user(r, i), err);
  be_user_free(u);
  return rc;
}

static int op_get_cached(run *r, long i, be_error **err) {
  be_user *u = NULL;
  int rc = be_user_get(&u, r->app, 1 + i % 16, err);
  be_user_free(u);
  return rc;
}

/* The posts of 1,000 consecutive authors from a random start: 10,000 rows. */
static int op_batch_1000(run *r, long i, be_error **err) {
  int64_t keys[BATCH_KEYS];
  int64_t first = any_user(r, i);
  for (int k = 0; k < BATCH_KEYS; k++) keys[k] = 1 + (first - 1 + k) % r->users;
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
  rc = be_batch_load_int64(&res, c, &o, keys, BATCH_KEYS, err);
  be_batch_result_free(res);
  be_pool_release(be_app_pool(r->app), c);
  return rc;
}

static int op_update_audit(run *r, long i, be_error **err) {
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = i % 2 ? "Bench User" : "Bench User 2";
  return be_user_update(NULL, r->app, 0, any_user(r, i), &up, err);
}

static int op_login(run *r, long i, be_error **err) {
  char email[64];
  snprintf(email, sizeof email, "u%ld@bench.io", 1 + (r->worker + i) % 10);
  char *token = NULL;
  int rc = be_auth_login(&token, NULL, r->app, email, NT, "bench password 1", NT, err);
  be_free(token);
  return rc;
}

typedef int (*op_fn)(run *, long, be_error **);

/* One worker: its own app, wait for the start signal, run ops operations. */
static void worker(run *r, shared *sh, long ops, op_fn op, int ready_fd, int go_fd) {
  r->app = open_app(r->database);
  char b = 1;
  if (write(ready_fd, &b, 1) != 1 || read(go_fd, &b, 1) < 0) exit(1);
  int64_t *lat = sh->lat + r->worker * ops;
  sh->start[r->worker] = be_clock_now_ns(NULL);
  for (long i = 0; i < ops; i++) {
    int64_t t0 = be_clock_now_ns(NULL);
    be_error *e = NULL;
    int rc = op(r, i, &e);
    if (rc != BE_OK) die("operation", rc, e);
    lat[i] = be_clock_now_ns(NULL) - t0;
  }
  sh->end[r->worker] = be_clock_now_ns(NULL);
  be_app_free(r->app);
  exit(0);
}

static void report(const char *name, const run *r, const config *cf, shared *sh, long ops) {
  be_histogram *h = NULL;
  be_histogram_new(&h, NULL);
  int64_t first = sh->start[0], last = sh->end[0];
  for (long w = 0; w < cf->procs; w++) {
    if (sh->start[w] < first) first = sh->start[w];
    if (sh->end[w] > last) last = sh->end[w];
  }
  for (long k = 0; k < cf->procs * ops; k++) be_histogram_record(h, sh->lat[k]);
  double load[1] = {-1};
  if (getloadavg(load, 1) < 1) load[0] = -1;
  long total = cf->procs * ops;
  printf("{\"bench\":\"%s\",\"driver\":\"%s\",\"users\":%ld,\"procs\":%ld,\"ops\":%ld,"
         "\"ops_per_s\":%.0f,\"p50_ns\":%lld,\"p95_ns\":%lld,\"p99_ns\":%lld,\"load1\":%.2f,\"argon2\":\"%s\"}\n",
         name, r->driver, r->users, cf->procs, total, (double)total * 1e9 / (double)(last - first),
         (long long)be_histogram_quantile(h, 0.50), (long long)be_histogram_quantile(h, 0.95),
         (long long)be_histogram_quantile(h, 0.99), load[0], real_hash ? "default" : "min");
  fflush(stdout);
  be_histogram_free(h);
}

/* Fork cf->procs workers running op, start them together, report. */
static void timed(run *r, const config *cf, const char *name, op_fn op, long ops) {
  size_t size = sizeof(shared) + (size_t)(cf->procs * ops) * sizeof(int64_t);
  shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int ready[2], go[2];
  if (sh == MAP_FAILED || pipe(ready) != 0 || pipe(go) != 0) die("mmap/pipe", errno, NULL);
  for (long w = 0; w < cf->procs; w++) {
    pid_t pid = fork();
    if (pid < 0) die("fork", errno, NULL);
    if (pid == 0) {
      close(go[1]);
      run mine = *r;
      mine.worker = w;
      worker(&mine, sh, ops, op, ready[1], go[0]);
    }
  }
  close(go[0]);
  char b;
  for (long w = 0; w < cf->procs; w++)
    if (read(ready[0], &b, 1) != 1) die("worker start", -1, NULL);
  close(go[1]); /* every worker's read returns: go */
  int failed = 0;
  for (long w = 0; w < cf->procs; w++) {
    int st = 0;
    if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = 1;
  }
  if (failed) die(name, -1, NULL);
  report(name, r, cf, sh, ops);
  close(ready[0]);
  close(ready[1]);
  munmap(sh, size);
}

static void bench(const config *cf, const char *driver, const char *database) {
  run r = {NULL, driver, database, cf->users, 0};
  r.app = open_app(database);
  generate(&r);
  /* the workers open their own apps: none inherits this one's connections */
  be_app_free(r.app);
  r.app = NULL;
  long tenth = cf->ops / 10 > 0 ? cf->ops / 10 : 1;
  timed(&r, cf, "get_by_id_uncached", op_get_uncached, cf->ops);
  timed(&r, cf, "get_by_id_cached", op_get_cached, cf->ops);
  timed(&r, cf, "batch_posts_of_1000_users", op_batch_1000, tenth);
  timed(&r, cf, "update_and_audit", op_update_audit, cf->ops);
  timed(&r, cf, "login", op_login, tenth);
}

/* The schema the run uses on the server: made (create) or, unless kept,
 * dropped (drop); its DSN in out. */
static void pg_schema(char *out, size_t size, const config *cf, int create) {
  char schema[64], sql[200];
  snprintf(schema, sizeof schema, "bench_%ld", cf->data ? cf->users : (long)getpid());
  snprintf(out, size, "%s%soptions=-csearch_path%%3D%s", cf->dsn, strchr(cf->dsn, '?') ? "&" : "?",
           schema);
  if (cf->data && !create) return;
  if (cf->data) snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", schema);
  else if (create)
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  else snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_conn_open(&c, be_postgres_driver(), cf->dsn, &e);
  if (rc != BE_OK) die("connect", rc, e);
  must_exec(c, sql);
  be_conn_close(c);
}

static void run_sqlite(const config *cf) {
  char dir[] = "/tmp/bench_drivers.XXXXXX", path[1024];
  if (cf->data) {
    if (mkdir(cf->data, 0755) != 0 && errno != EEXIST) die(cf->data, errno, NULL);
    snprintf(path, sizeof path, "%s/bench_%ld.db", cf->data, cf->users);
  } else {
    if (mkdtemp(dir) == NULL) die("mkdtemp", errno, NULL);
    snprintf(path, sizeof path, "%s/bench.db", dir);
  }
  bench(cf, "sqlite", path);
  if (cf->data) return;
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* 0 when run, 77 when PostgreSQL was asked for but cannot be used. */
static int run_postgres(const config *cf) {
  if (cf->dsn == NULL || cf->dsn[0] == '\0' || be_postgres_driver() == NULL) {
    fprintf(stderr, "################################################################\n"
                    "postgres: SKIPPED, not run (%s)\n"
                    "################################################################\n",
            be_postgres_driver() ? "no DSN: give --dsn or set BE_TEST_PG_DSN"
                                 : "libbackend built without libpq");
    return 77;
  }
  char dsn[1024];
  pg_schema(dsn, sizeof dsn, cf, 1);
  bench(cf, "postgres", dsn);
  pg_schema(dsn, sizeof dsn, cf, 0);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: bench_drivers [options]\n"
             "  --driver sqlite|postgres|both  which databases (both; postgres needs a DSN)\n"
             "  --dsn DSN          PostgreSQL server (default $BE_TEST_PG_DSN)\n"
             "  --users N          users to generate, 10 posts each, N >= %d (2000)\n"
             "  --procs P          worker processes per case, 1..%d (1)\n"
             "  --ops N            operations per worker per case; batch and login run\n"
             "                     a tenth of that (2000)\n"
             "  --data DIR         keep the data (DIR/bench_N.db, schema bench_N) and\n"
             "                     reuse it on later runs of the same size\n"
             "  --argon2 min|default  password hash cost: libsodium's minimum (min)\n"
             "                     or the library's default, interactive\n"
             "  --help             this text\n"
             "Prints one JSON line per case. Exit 77 when only postgres was asked for\n"
             "and there is no server or no libpq.\n",
          BATCH_KEYS, MAX_PROCS);
}

static int parse(config *cf, int argc, char **argv) {
  static const struct option opts[] = {
    {"driver", required_argument, 0, 'd'}, {"dsn", required_argument, 0, 's'}, {"users", required_argument, 0, 'u'}, {"procs", required_argument, 0, 'p'}, {"ops", required_argument, 0, 'o'}, {"data", required_argument, 0, 'D'}, {"argon2", required_argument, 0, 'a'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'h') return usage(stdout), 0;
    if (c == 'd' && strcmp(optarg, "both") != 0) {
      cf->sqlite = strcmp(optarg, "sqlite") == 0;
      cf->postgres = strcmp(optarg, "postgres") == 0;
      if (!cf->sqlite && !cf->postgres) return usage(stderr), 2;
    }
    if (c == 's') cf->dsn = optarg;
    if (c == 'u') cf->users = atol(optarg);
    if (c == 'p') cf->procs = atol(optarg);
    if (c == 'o') cf->ops = atol(optarg);
    if (c == 'D') cf->data = optarg;
    if (c == 'a' && strcmp(optarg, "min") != 0 && strcmp(optarg, "default") != 0)
      return usage(stderr), 2;
    if (c == 'a') cf->real_hash = strcmp(optarg, "default") == 0;
    if (c == '?') return usage(stderr), 2;
  }
  if (optind < argc || cf->users < BATCH_KEYS || cf->ops < 1 || cf->procs < 1 ||
      cf->procs > MAX_PROCS)
    return usage(stderr), 2;
  return -1;
}

int main(int argc, char **argv) {
  config cf = {getenv("BE_TEST_PG_DSN"), NULL, 1, 1, 2000, 2000, 1, 0};
  int rc = parse(&cf, argc, argv);
  if (rc >= 0) return rc;
  real_hash = cf.real_hash;
  if (sodium_init() < 0) return 1;
  if (cf.sqlite) run_sqlite(&cf);
  if (!cf.postgres) return 0;
  rc = run_postgres(&cf);
  return rc == 77 && cf.sqlite ? 0 : rc;
}
