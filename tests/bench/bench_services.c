/* SPDX-License-Identifier: MIT */
/*
 * Services benchmark: user get (uncached / cached), update + audit
 * transaction against a hand-written raw sqlite3 transaction doing the
 * same two writes, and the permission check. One JSON line per case:
 * {"bench":..., "ops":..., "ops_per_s":..., "p50_ns":..., "p95_ns":..., "p99_ns":...}
 *
 * Runs on a WAL database file in a temporary directory (synchronous
 * NORMAL, as the app's SQLite driver sets it), single thread.
 * Targets: cached get p99 < 5 us, permission check p99 < 50 us,
 * update+audit >= 50 % of the raw transaction's ops/s.
 *
 * Usage: bench_services [users (10000)] [ops (20000)]
 */
#include <backend/backend.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, int rc, be_error *e) {
  fprintf(stderr, "%s failed: %d %s\n", what, rc, be_error_message(e));
  exit(1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static double report(const char *name, be_histogram *h, int64_t total_ns, long ops) {
  double ops_s = (double)ops * 1e9 / (double)total_ns;
  printf("{\"bench\":\"%s\",\"ops\":%ld,\"ops_per_s\":%.0f,\"p50_ns\":%lld,\"p95_ns\":%lld,"
         "\"p99_ns\":%lld}\n",
         name, ops, ops_s, (long long)be_histogram_quantile(h, 0.50),
         (long long)be_histogram_quantile(h, 0.95), (long long)be_histogram_quantile(h, 0.99));
  fflush(stdout);
  return ops_s;
}

int main(int argc, char **argv) {
  long nusers = argc > 1 ? atol(argv[1]) : 10000;
  long ops = argc > 2 ? atol(argv[2]) : 20000;
  if (nusers < 1 || ops < 1) return 2;
  char dir[] = "/tmp/bench_services.XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  char path[256];
  snprintf(path, sizeof path, "%s/bench.db", dir);
  be_log_set_handler(NULL, NULL, BE_LOG_ERROR);

  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK) die("be_app_new", rc, e);
  int64_t *ids = malloc((size_t)nusers * sizeof *ids);
  for (long i = 0; i < nusers; i++) {
    char email[64];
    snprintf(email, sizeof email, "bench%ld@example.test", i);
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = email;
    in.name = "Bench User";
    in.bio = "a short bio";
    in.extra = "{\"plan\":\"pro\",\"tags\":[1,2,3]}";
    rc = be_user_create(NULL, &ids[i], app, 0, &in, &e);
    if (rc != BE_OK) die("be_user_create", rc, e);
  }
  rc = be_perm_role_create(NULL, app, 0, "member", &e);
  if (rc == BE_OK) rc = be_perm_role_grant(app, 0, "member", "posts:read", &e);
  if (rc == BE_OK) rc = be_perm_role_grant(app, 0, "member", "posts:write", &e);
  if (rc == BE_OK) rc = be_perm_role_grant(app, 0, "member", "profile:*", &e);
  for (long i = 0; i < nusers && i < 1000 && rc == BE_OK; i++)
    rc = be_perm_user_assign(app, 0, ids[i], "member", &e);
  if (rc != BE_OK) die("seed permissions", rc, e);

  be_histogram *h = NULL;
  be_histogram_new(&h);
  be_cache *cache = be_app_cache(app);
  be_clock *clk = NULL; /* system */

  /* 1. get by id, uncached: the key is dropped before each (untimed) */
  int64_t total = 0;
  for (long i = 0; i < ops; i++) {
    int64_t id = ids[next_rand() % (uint64_t)nusers];
    char key[32];
    int klen = snprintf(key, sizeof key, "user:%lld", (long long)id);
    be_cache_delete(cache, key, (size_t)klen);
    be_user *u = NULL;
    int64_t t0 = be_clock_now_ns(clk);
    rc = be_user_get(&u, app, id, &e);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (rc != BE_OK) die("be_user_get", rc, e);
    be_user_free(u);
    be_histogram_record(h, dt);
    total += dt;
  }
  report("user_get_uncached", h, total, ops);

  /* 2. get by id, cached (all users warm) */
  for (long i = 0; i < nusers; i++) {
    be_user *u = NULL;
    be_user_get(&u, app, ids[i], NULL);
    be_user_free(u);
  }
  be_histogram_reset(h);
  total = 0;
  long cached_ops = ops * 10;
  for (long i = 0; i < cached_ops; i++) {
    int64_t id = ids[next_rand() % (uint64_t)nusers];
    be_user *u = NULL;
    int64_t t0 = be_clock_now_ns(clk);
    rc = be_user_get(&u, app, id, &e);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (rc != BE_OK) die("be_user_get cached", rc, e);
    be_user_free(u);
    be_histogram_record(h, dt);
    total += dt;
  }
  double cached = report("user_get_cached", h, total, cached_ops);
  (void)cached;
  int64_t cached_p99 = be_histogram_quantile(h, 0.99);

  /* 3. update + audit in one transaction */
  be_histogram_reset(h);
  total = 0;
  long wops = ops / 2 > 0 ? ops / 2 : 1;
  for (long i = 0; i < wops; i++) {
    int64_t id = ids[next_rand() % (uint64_t)nusers];
    char name[32];
    snprintf(name, sizeof name, "Name %ld", i);
    be_user_input up = BE_USER_INPUT_INIT;
    up.fields = BE_USER_FIELD_NAME;
    up.name = name;
    int64_t t0 = be_clock_now_ns(clk);
    rc = be_user_update(NULL, app, 1, id, &up, &e);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (rc != BE_OK) die("be_user_update", rc, e);
    be_histogram_record(h, dt);
    total += dt;
  }
  double lib_w = report("user_update_audit", h, total, wops);

  /* 3b. the same two writes by hand with raw sqlite3 on the same file */
  sqlite3 *db = NULL;
  sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                   "CREATE TABLE IF NOT EXISTS audit_raw AS SELECT * FROM audit_log WHERE 0;",
               NULL, NULL, NULL);
  sqlite3_stmt *upd = NULL, *ins = NULL, *begin = NULL, *commit = NULL;
  sqlite3_prepare_v2(db, "UPDATE users SET name = ?1, updated_at = ?2 WHERE id = ?3", -1, &upd, NULL);
  sqlite3_prepare_v2(db, "INSERT INTO audit_raw (id, actor_id, action, target_type, target_id, at,"
                         " details, prev_hash, hash) VALUES (NULL, 1, 'user.update', 'user', ?1, ?2,"
                         " ?3, ?4, ?5)", -1, &ins, NULL);
  sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
  sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
  unsigned char hash[32] = {1};
  be_histogram_reset(h);
  total = 0;
  for (long i = 0; i < wops; i++) {
    int64_t id = ids[next_rand() % (uint64_t)nusers];
    char name[32], details[96];
    snprintf(name, sizeof name, "Raw %ld", i);
    snprintf(details, sizeof details, "{\"fields\":[\"name\"],\"name\":{\"from\":\"x\",\"to\":\"%s\"}}", name);
    int64_t t0 = be_clock_now_ns(clk);
    int64_t now = be_clock_wall_ns(NULL);
    sqlite3_step(begin);
    sqlite3_reset(begin);
    sqlite3_bind_text(upd, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(upd, 2, now);
    sqlite3_bind_int64(upd, 3, id);
    int r1 = sqlite3_step(upd);
    sqlite3_reset(upd);
    sqlite3_bind_int64(ins, 1, id);
    sqlite3_bind_int64(ins, 2, now);
    sqlite3_bind_text(ins, 3, details, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(ins, 4, hash, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(ins, 5, hash, 32, SQLITE_TRANSIENT);
    int r2 = sqlite3_step(ins);
    sqlite3_reset(ins);
    int r3 = sqlite3_step(commit);
    sqlite3_reset(commit);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (r1 != SQLITE_DONE || r2 != SQLITE_DONE || r3 != SQLITE_DONE) {
      fprintf(stderr, "raw tx failed: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    be_histogram_record(h, dt);
    total += dt;
  }
  double raw_w = report("raw_sqlite_update_audit", h, total, wops);
  sqlite3_finalize(upd);
  sqlite3_finalize(ins);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  sqlite3_close(db);

  /* 4. permission check: first right after a grant (every user's
   * decision must be reloaded: the epoch moved), then warm. Each check
   * reads the epoch from the database. */
  long pusers = nusers < 1000 ? nusers : 1000;
  rc = be_perm_role_grant(app, 0, "member", "comments:read", &e);
  if (rc != BE_OK) die("grant", rc, e);
  be_histogram_reset(h);
  total = 0;
  for (long i = 0; i < pusers; i++) {
    int64_t t0 = be_clock_now_ns(clk);
    rc = be_perm_check(app, ids[i], "posts:write", NULL);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (rc != BE_OK) die("be_perm_check cold", rc, NULL);
    be_histogram_record(h, dt);
    total += dt;
  }
  report("perm_check_after_change", h, total, pusers);
  be_histogram_reset(h);
  total = 0;
  long pops = ops * 5;
  for (long i = 0; i < pops; i++) {
    int64_t id = ids[next_rand() % (uint64_t)pusers];
    const char *perm = (i & 1) ? "posts:write" : "profile:edit";
    int64_t t0 = be_clock_now_ns(clk);
    rc = be_perm_check(app, id, perm, NULL);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (rc != BE_OK) die("be_perm_check", rc, NULL);
    be_histogram_record(h, dt);
    total += dt;
  }
  report("perm_check", h, total, pops);
  int64_t perm_p99 = be_histogram_quantile(h, 0.99);
  /* denied checks cost an error object */
  be_histogram_reset(h);
  total = 0;
  for (long i = 0; i < ops; i++) {
    int64_t id = ids[next_rand() % (uint64_t)pusers];
    int64_t t0 = be_clock_now_ns(clk);
    rc = be_perm_check(app, id, "admin:delete", NULL);
    int64_t dt = be_clock_now_ns(clk) - t0;
    if (rc != BE_E_FORBIDDEN) die("be_perm_check deny", rc, NULL);
    be_histogram_record(h, dt);
    total += dt;
  }
  report("perm_check_denied", h, total, ops);

  printf("{\"targets\":{\"cached_get_p99_lt_5us\":%s,\"perm_check_p99_lt_50us\":%s,"
         "\"update_audit_ge_50pct_raw\":%s,\"update_audit_vs_raw\":%.2f}}\n",
         cached_p99 < 5000 ? "true" : "false", perm_p99 < 50000 ? "true" : "false",
         lib_w >= 0.5 * raw_w ? "true" : "false", lib_w / raw_w);
  be_histogram_free(h);
  free(ids);
  be_app_free(app);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;
  return 0;
}
