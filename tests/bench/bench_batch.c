/* SPDX-License-Identifier: MIT */
/* Batch loading vs N+1 vs hand-written raw sqlite3, in one process.
 * 10,000 users with 10 posts each; one operation loads the posts of 1,000
 * users and groups them by user. Prints JSON lines: ops/s per mode and the
 * ratios. Target: the batch helper within 1.2x of raw, faster than N+1.
 * Usage: bench_batch [seconds_per_mode (default 2.0)] */
#include <backend/backend.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USERS 10000
#define POSTS_PER_USER 10
#define LOAD 1000

static int64_t keys[LOAD];
static volatile int64_t sink;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, be_error *e) {
  fprintf(stderr, "bench_batch: %s: %s\n", what, e ? be_error_message(e) : "failed");
  exit(1);
}

static void populate(const char *path) {
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) die("open", NULL);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                   "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
                   "CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
                   " title TEXT NOT NULL, created_at INTEGER NOT NULL);"
                   "BEGIN;",
               NULL, NULL, NULL);
  sqlite3_stmt *u, *p;
  sqlite3_prepare_v2(db, "INSERT INTO users(id, name) VALUES (?, ?)", -1, &u, NULL);
  sqlite3_prepare_v2(db, "INSERT INTO posts(user_id, title, created_at) VALUES (?, ?, ?)", -1, &p, NULL);
  char buf[64];
  for (int i = 1; i <= USERS; i++) {
    snprintf(buf, sizeof buf, "user %d", i);
    sqlite3_bind_int(u, 1, i);
    sqlite3_bind_text(u, 2, buf, -1, SQLITE_TRANSIENT);
    sqlite3_step(u);
    sqlite3_reset(u);
  }
  /* posts interleaved across users, as they would be written over time */
  for (int j = 0; j < POSTS_PER_USER; j++)
    for (int i = 1; i <= USERS; i++) {
      snprintf(buf, sizeof buf, "post %d by user %d", j, i);
      sqlite3_bind_int(p, 1, i);
      sqlite3_bind_text(p, 2, buf, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(p, 3, 1700000000 + j * USERS + i);
      sqlite3_step(p);
      sqlite3_reset(p);
    }
  sqlite3_finalize(u);
  sqlite3_finalize(p);
  sqlite3_exec(db, "COMMIT; CREATE INDEX posts_user ON posts(user_id); ANALYZE;", NULL, NULL, NULL);
  sqlite3_close(db);
}

static const char *const cols[] = {"id", "title", "created_at"};

/* ---- libbackend: N+1, one query per user ---- */
static int64_t op_n_plus_1(be_conn *c) {
  int64_t total = 0;
  be_params *p = NULL;
  be_params_new(&p, NULL);
  for (int i = 0; i < LOAD; i++) {
    be_params_clear(p);
    be_params_add_int64(p, keys[i], NULL);
    be_rows *r = NULL;
    be_error *e = NULL;
    if (be_rows_query(&r, c, "SELECT id, title, created_at FROM posts WHERE user_id = ?", p, &e) != BE_OK)
      die("n+1", e);
    total += (int64_t)be_rows_count(r);
    be_rows_free(r);
  }
  be_params_free(p);
  return total;
}

/* ---- libbackend: batch helper ---- */
static int32_t strategy;
static int64_t op_batch(be_conn *c) {
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "posts";
  o.columns = cols;
  o.column_count = 3;
  o.key_column = "user_id";
  o.strategy = strategy;
  be_batch_result *res = NULL;
  be_error *e = NULL;
  if (be_batch_load_int64(&res, c, &o, keys, LOAD, &e) != BE_OK) die("batch", e);
  int64_t total = 0;
  const be_rows *rows = be_batch_result_rows(res);
  for (size_t k = 0; k < be_batch_result_key_count(res); k++) {
    size_t first, n = be_batch_result_group(res, k, &first);
    if (n) total += be_rows_int64(rows, first, 0) > 0;
    total += (int64_t)n - (n > 0);
  }
  be_batch_result_free(res);
  return total;
}

/* ---- hand-written raw sqlite3: same work (copy rows, group by user) ---- */
typedef struct raw_row {
  int64_t id, user_id, created_at;
  const char *title;
  size_t title_len;
} raw_row;

static sqlite3 *raw_db;
static sqlite3_stmt *raw_in, *raw_json;

static int64_t op_raw(int json) {
  static int pos[USERS + 1];
  sqlite3_stmt *st = json ? raw_json : raw_in;
  if (json) {
    char *buf = malloc(LOAD * 8 + 2), *p = buf;
    *p++ = '[';
    for (int i = 0; i < LOAD; i++) p += sprintf(p, i ? ",%lld" : "%lld", (long long)keys[i]);
    *p++ = ']';
    sqlite3_bind_text(st, 1, buf, (int)(p - buf), SQLITE_TRANSIENT);
    free(buf);
  } else {
    for (int i = 0; i < LOAD; i++) sqlite3_bind_int64(st, i + 1, keys[i]);
  }
  for (int i = 0; i < LOAD; i++) pos[keys[i]] = i;
  size_t cap = 16384, n = 0, arena_cap = 1 << 18, arena_len = 0;
  raw_row *rows = malloc(cap * sizeof *rows);
  char *arena = malloc(arena_cap);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
    raw_row *r = &rows[n++];
    r->id = sqlite3_column_int64(st, 0);
    const unsigned char *t = sqlite3_column_text(st, 1);
    int tl = sqlite3_column_bytes(st, 1);
    if (arena_len + (size_t)tl + 1 > arena_cap) die("raw arena", NULL);
    memcpy(arena + arena_len, t, (size_t)tl + 1);
    r->title = arena + arena_len;
    r->title_len = (size_t)tl;
    arena_len += (size_t)tl + 1;
    r->created_at = sqlite3_column_int64(st, 2);
    r->user_id = sqlite3_column_int64(st, 3);
  }
  sqlite3_reset(st);
  /* group by user in the caller's key order (counting sort) */
  size_t count[LOAD] = {0}, first[LOAD];
  for (size_t i = 0; i < n; i++) count[pos[rows[i].user_id]]++;
  size_t at = 0;
  for (int k = 0; k < LOAD; k++) {
    first[k] = at;
    at += count[k];
  }
  raw_row *grouped = malloc((n ? n : 1) * sizeof *grouped);
  for (size_t i = 0; i < n; i++) grouped[first[pos[rows[i].user_id]]++] = rows[i];
  int64_t total = (int64_t)n + (grouped[0].id > 0 ? 0 : 0);
  free(grouped);
  free(rows);
  free(arena);
  return total;
}

static int64_t op_raw_in(be_conn *c) {
  (void)c;
  return op_raw(0);
}
static int64_t op_raw_json(be_conn *c) {
  (void)c;
  return op_raw(1);
}

struct mode;
static int64_t op_check(struct mode *m, be_conn *c);

/* Modes run interleaved in rounds (A B C ... A B C ...) so that load from
 * other processes on a shared machine hits every mode alike; each mode's
 * rate is the median over rounds. */
#define ROUNDS 7
#define MODES 6
typedef struct mode {
  const char *name;
  int64_t (*op)(be_conn *);
  int32_t strategy;
  double rates[ROUNDS];
  int64_t rows;
  int ops;
} mode;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double run_round(mode *m, be_conn *c, double secs) {
  strategy = m->strategy;
  int ops = 0;
  double t0 = now_s(), t;
  do {
    sink += op_check(m, c);
    ops++;
  } while ((t = now_s()) - t0 < secs);
  m->ops += ops;
  return ops / (t - t0);
}

static int64_t op_check(mode *m, be_conn *c) {
  strategy = m->strategy;
  return m->op(c);
}

static double median_rate(mode *m) {
  double r[ROUNDS];
  memcpy(r, m->rates, sizeof r);
  qsort(r, ROUNDS, sizeof r[0], cmp_double);
  return r[ROUNDS / 2];
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  char dir[] = "/tmp/bench_batch.XXXXXX";
  if (mkdtemp(dir) == NULL) die("mkdtemp", NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/bench.db", dir);
  populate(path);
  srand(42);
  static char used[USERS + 1];
  for (int i = 0; i < LOAD;) {
    int64_t k = 1 + rand() % USERS;
    if (!used[k]) {
      used[k] = 1;
      keys[i++] = k;
    }
  }
  be_conn *c = NULL;
  be_error *e = NULL;
  if (be_conn_open(&c, be_sqlite_driver(), path, &e) != BE_OK) die("be_conn_open", e);
  sqlite3_open(path, &raw_db);
  char *sql = malloc(LOAD * 2 + 200), *p = sql;
  p += sprintf(p, "SELECT id, title, created_at, user_id FROM posts WHERE user_id IN (");
  for (int i = 0; i < LOAD; i++) p += sprintf(p, i ? ",?" : "?");
  strcpy(p, ")");
  sqlite3_prepare_v2(raw_db, sql, -1, &raw_in, NULL);
  free(sql);
  sqlite3_prepare_v2(raw_db, "SELECT id, title, created_at, user_id FROM posts WHERE user_id IN"
                             " (SELECT value FROM json_each(?))",
                     -1, &raw_json, NULL);

  mode modes[MODES] = {
    {"n_plus_1", op_n_plus_1, BE_BATCH_AUTO, {0}, 0, 0},
    {"batch_in_list", op_batch, BE_BATCH_IN_LIST, {0}, 0, 0},
    {"batch_json_each", op_batch, BE_BATCH_JSON_EACH, {0}, 0, 0},
    {"batch_default", op_batch, BE_BATCH_AUTO, {0}, 0, 0},
    {"raw_sqlite_in_list", op_raw_in, 0, {0}, 0, 0},
    {"raw_sqlite_json_each", op_raw_json, 0, {0}, 0, 0},
  };
  for (int i = 0; i < MODES; i++) modes[i].rows = op_check(&modes[i], c); /* warm-up */
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < MODES; i++) modes[i].rates[r] = run_round(&modes[i], c, secs / ROUNDS);
  double rate[MODES];
  for (int i = 0; i < MODES; i++) {
    rate[i] = median_rate(&modes[i]);
    printf("{\"bench\":\"batch\",\"mode\":\"%s\",\"users\":%d,\"load\":%d,\"rows_per_op\":%lld,"
           "\"ops\":%d,\"ops_per_sec\":%.1f,\"ms_per_op\":%.3f}\n",
           modes[i].name, USERS, LOAD, (long long)modes[i].rows, modes[i].ops, rate[i], 1000.0 / rate[i]);
  }
  double n1 = rate[0], bin = rate[1], bjs = rate[2], bauto = rate[3], rin = rate[4], rjs = rate[5];
  double raw_best = rin > rjs ? rin : rjs;
  printf("{\"bench\":\"batch\",\"ratio\":\"raw_best_over_batch_default\",\"value\":%.3f,\"target_max\":1.2,"
         "\"met\":%s}\n",
         raw_best / bauto, raw_best / bauto <= 1.2 ? "true" : "false");
  printf("{\"bench\":\"batch\",\"ratio\":\"raw_in_over_batch_in_list\",\"value\":%.3f}\n", rin / bin);
  printf("{\"bench\":\"batch\",\"ratio\":\"raw_json_over_batch_json_each\",\"value\":%.3f}\n", rjs / bjs);
  printf("{\"bench\":\"batch\",\"ratio\":\"batch_default_over_n_plus_1\",\"value\":%.3f,\"target_min\":1.0,"
         "\"met\":%s}\n",
         bauto / n1, bauto > n1 ? "true" : "false");
  sqlite3_finalize(raw_in);
  sqlite3_finalize(raw_json);
  sqlite3_close(raw_db);
  be_conn_close(c);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return 0;
}
