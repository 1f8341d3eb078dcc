/* SPDX-License-Identifier: MIT */
/* Storage layer costs, as JSON lines:
 *  - a prepared-statement-cache hit vs a fresh prepare (ns per prepare+finalize);
 *  - get-by-id through be_conn vs raw sqlite3 doing the same work in the same
 *    process (a kept statement: bind, step, read three columns, reset).
 * Run: ./build/tests/bench/bench_stmt_cache [rows] */
#include <backend/backend.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SQL_GET "SELECT id, name, email FROM users WHERE id = ?"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static inline uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void die(const char *what, int rc, be_error *e) {
  fprintf(stderr, "%s failed (%d): %s\n", what, rc, e ? be_error_message(e) : "");
  exit(1);
}

static volatile int64_t sink;

static double bench_prepare(be_conn *c, long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    be_stmt *s = NULL;
    if (be_conn_prepare(&s, c, SQL_GET, NULL) != BE_OK) die("prepare", -1, NULL);
    be_stmt_finalize(s);
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

static double bench_raw_prepare(sqlite3 *db, long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, SQL_GET, -1, &s, NULL) != SQLITE_OK) die("sqlite3_prepare_v2", -1, NULL);
    sqlite3_finalize(s);
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

static double bench_get_conn(be_conn *c, long n, int64_t rows, int in_tx) {
  double t0 = now_s();
  if (in_tx) be_conn_begin(c, BE_TX_DEFERRED, NULL);
  int64_t acc = 0;
  for (long i = 0; i < n; i++) {
    be_stmt *s = NULL;
    if (be_conn_prepare(&s, c, SQL_GET, NULL) != BE_OK) die("prepare", -1, NULL);
    be_stmt_bind_int64(s, 1, (int64_t)(next_rand() % (uint64_t)rows) + 1, NULL);
    if (be_stmt_step(s, NULL) != BE_ROW) die("step", -1, NULL);
    size_t l1, l2;
    acc += be_stmt_column_int64(s, 0);
    acc += (int64_t)(be_stmt_column_text(s, 1, &l1) != NULL) + (int64_t)l1;
    acc += (int64_t)(be_stmt_column_text(s, 2, &l2) != NULL) + (int64_t)l2;
    be_stmt_finalize(s);
  }
  if (in_tx) be_conn_commit(c, NULL);
  sink = acc;
  return (double)n / (now_s() - t0);
}

static double bench_get_raw(sqlite3 *db, long n, int64_t rows, int in_tx) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v3(db, SQL_GET, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
    die("sqlite3_prepare_v3", -1, NULL);
  double t0 = now_s();
  if (in_tx) sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  int64_t acc = 0;
  for (long i = 0; i < n; i++) {
    sqlite3_bind_int64(s, 1, (sqlite3_int64)(next_rand() % (uint64_t)rows) + 1);
    if (sqlite3_step(s) != SQLITE_ROW) die("sqlite3_step", -1, NULL);
    acc += sqlite3_column_int64(s, 0);
    const unsigned char *a = sqlite3_column_text(s, 1);
    acc += (int64_t)(a != NULL) + sqlite3_column_bytes(s, 1);
    const unsigned char *b = sqlite3_column_text(s, 2);
    acc += (int64_t)(b != NULL) + sqlite3_column_bytes(s, 2);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
  if (in_tx) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sink = acc;
  double r = (double)n / (now_s() - t0);
  sqlite3_finalize(s);
  return r;
}

/* A database at path with a users table of rows rows, open through be_conn. */
static be_conn *open_populated(const char *path, int64_t rows) {
  be_error *e = NULL;
  be_conn *c = NULL;
  int rc = be_conn_open(&c, be_sqlite_driver(), path, &e);
  if (rc) die("be_conn_open", rc, e);
  rc = be_conn_exec(c, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                       "email TEXT NOT NULL UNIQUE)",
                    &e);
  if (rc) die("create", rc, e);
  be_conn_begin(c, BE_TX_IMMEDIATE, NULL);
  for (int64_t i = 1; i <= rows; i++) {
    be_stmt *s = NULL;
    char name[32], email[48];
    snprintf(name, sizeof name, "user %lld", (long long)i);
    snprintf(email, sizeof email, "user%lld@example.com", (long long)i);
    be_conn_prepare(&s, c, "INSERT INTO users VALUES (?, ?, ?)", NULL);
    be_stmt_bind_int64(s, 1, i, NULL);
    be_stmt_bind_text(s, 2, name, BE_NUL_TERMINATED, NULL);
    be_stmt_bind_text(s, 3, email, BE_NUL_TERMINATED, NULL);
    if (be_stmt_step(s, &e) != BE_DONE) die("insert", -1, e);
    be_stmt_finalize(s);
  }
  be_conn_commit(c, NULL);
  return c;
}

static void print_results(int64_t rows, double hit, double fresh, double raw_prep,
                          const double get_conn[2], const double get_raw[2]) {
  printf("{\"bench\":\"stmt_cache\",\"case\":\"cache_hit\",\"what\":\"be_conn_prepare+be_stmt_finalize\","
         "\"ns_per_op\":%.1f}\n",
         hit);
  printf("{\"bench\":\"stmt_cache\",\"case\":\"fresh_prepare\",\"what\":\"be_conn_prepare+be_stmt_finalize, "
         "cache off\",\"ns_per_op\":%.1f}\n",
         fresh);
  printf("{\"bench\":\"stmt_cache\",\"case\":\"raw_prepare\",\"what\":\"sqlite3_prepare_v2+sqlite3_finalize\","
         "\"ns_per_op\":%.1f}\n",
         raw_prep);
  printf("{\"bench\":\"stmt_cache\",\"case\":\"hit_speedup\",\"fresh_over_hit\":%.1f}\n", fresh / hit);
  /* autocommit: each get is its own read transaction (SQLite takes and
   * drops its WAL read lock with fcntl each time); in_tx: all gets of a
   * round in one read transaction, so the layer's own cost shows most */
  for (int tx = 0; tx < 2; tx++) {
    const char *mode = tx ? "in_tx" : "autocommit";
    printf("{\"bench\":\"get_by_id\",\"mode\":\"%s\",\"impl\":\"raw_sqlite3\",\"rows\":%lld,"
           "\"ops_per_sec\":%.0f}\n",
           mode, (long long)rows, get_raw[tx]);
    printf("{\"bench\":\"get_by_id\",\"mode\":\"%s\",\"impl\":\"be_conn\",\"rows\":%lld,"
           "\"ops_per_sec\":%.0f}\n",
           mode, (long long)rows, get_conn[tx]);
    printf("{\"bench\":\"get_by_id\",\"mode\":\"%s\",\"raw_over_be_conn\":%.3f,"
           "\"overhead_pct\":%.1f}\n",
           mode, get_raw[tx] / get_conn[tx],
           (get_raw[tx] / get_conn[tx] - 1.0) * 100.0);
  }
}

int main(int argc, char **argv) {
  int64_t rows = argc > 1 ? atoll(argv[1]) : 10000;
  char dir[] = "/tmp/bench_stmt.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[128];
  snprintf(path, sizeof path, "%s/bench.db", dir);

  be_conn *c = open_populated(path, rows);
  be_error *e = NULL;
  int rc;

  /* a second, uncached connection for fresh prepares, and a raw handle */
  be_conn *nocache = NULL;
  if ((rc = be_conn_open(&nocache, be_sqlite_driver(), path, &e))) die("open", rc, e);
  be_conn_set_stmt_cache_size(nocache, 0, NULL);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    return 1;

  /* best of 3 rounds, interleaved so drift hits both sides alike */
  double hit = 1e18, fresh = 1e18, raw_prep = 1e18;
  double get_conn[2] = {0, 0}, get_raw[2] = {0, 0};
  const long n_hit = 1000000, n_fresh = 50000, n_get = 100000;
  for (int round = 0; round < 3; round++) {
    double v;
    if ((v = bench_prepare(c, n_hit)) < hit) hit = v;
    if ((v = bench_prepare(nocache, n_fresh)) < fresh) fresh = v;
    if ((v = bench_raw_prepare(db, n_fresh)) < raw_prep) raw_prep = v;
  }
  /* get-by-id: many short alternating rounds (the order flips each round),
   * best of each side, so neither side gets the warmer caches or the
   * quieter moment */
  for (int round = 0; round < 24; round++) {
    int tx = (round >> 1) & 1;
    double v;
    if (round & 1) {
      if ((v = bench_get_raw(db, n_get, rows, tx)) > get_raw[tx]) get_raw[tx] = v;
      if ((v = bench_get_conn(c, n_get, rows, tx)) > get_conn[tx]) get_conn[tx] = v;
    } else {
      if ((v = bench_get_conn(c, n_get, rows, tx)) > get_conn[tx]) get_conn[tx] = v;
      if ((v = bench_get_raw(db, n_get, rows, tx)) > get_raw[tx]) get_raw[tx] = v;
    }
  }
  print_results(rows, hit, fresh, raw_prep, get_conn, get_raw);
  sqlite3_close(db);
  be_conn_close(nocache);
  be_conn_close(c);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return 0;
}
