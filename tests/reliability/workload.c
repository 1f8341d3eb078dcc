/* SPDX-License-Identifier: MIT */
#include "workload.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rw_fail(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return -1;
}

int64_t rw_parts(int64_t b) { return 3 + b % 5; }

int rw_app_open(be_app **out, const char *dsn, const be_driver *driver, char *why, size_t n) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = dsn;
  o.driver = driver;
  o.pool_min = 1;
  o.pool_max = 2;
  /* no passwords here: the cheapest hashing keeps be_app_new() fast */
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  be_error *e = NULL;
  int rc = be_app_new(out, &o, &e);
  if (rc != BE_OK) {
    rw_fail(why, n, "be_app_new(%s): %s", dsn, be_error_message(e));
    be_error_free(e);
    return -1;
  }
  return 0;
}

static int create_tables(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  return be_conn_exec(conn,
                      "CREATE TABLE IF NOT EXISTS crash_batch(id INTEGER PRIMARY KEY,"
                      " parts INTEGER NOT NULL, total INTEGER NOT NULL);"
                      "CREATE TABLE IF NOT EXISTS crash_part(batch INTEGER NOT NULL,"
                      " part INTEGER NOT NULL, val INTEGER NOT NULL, pad TEXT NOT NULL,"
                      " PRIMARY KEY (batch, part));",
                      err);
}

int rw_setup(be_app *app, char *why, size_t n) {
  be_error *e = NULL;
  int rc = be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, create_tables, NULL, &e);
  for (int u = 0; rc == BE_OK && u < RW_USERS; u++) {
    char email[64], name[32];
    snprintf(email, sizeof email, "u%d@example.com", u);
    snprintf(name, sizeof name, "user%d", u);
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = email;
    in.name = name;
    rc = be_user_create(NULL, NULL, app, 0, &in, &e);
    if (rc == BE_E_CONFLICT) { /* created by an earlier run */
      be_error_free(e);
      e = NULL;
      rc = BE_OK;
    }
  }
  if (rc != BE_OK) rw_fail(why, n, "setup: %s", be_error_message(e));
  be_error_free(e);
  return rc == BE_OK ? 0 : -1;
}

typedef struct batch_job {
  be_app *app;
  int64_t b;
} batch_job;

/* One transaction: every row of a batch, its header, and its audit row
 * (be_audit_write(), chained with the services' rows). */
static int write_batch(be_conn *conn, void *ud, be_error **err) {
  const batch_job *job = ud;
  int64_t b = job->b, parts = rw_parts(b), total = 0;
  char sql[256];
  for (int64_t p = 1; p <= parts; p++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO crash_part(batch, part, val, pad)"
             " VALUES (%lld, %lld, %lld, printf('%%0300d', %lld))",
             (long long)b, (long long)p, (long long)(b * 1000 + p), (long long)p);
    int rc = be_conn_exec(conn, sql, err);
    if (rc != BE_OK) return rc;
    total += b * 1000 + p;
  }
  snprintf(sql, sizeof sql, "INSERT INTO crash_batch(id, parts, total) VALUES (%lld, %lld, %lld)",
           (long long)b, (long long)parts, (long long)total);
  int rc = be_conn_exec(conn, sql, err);
  if (rc != BE_OK) return rc;
  char details[64];
  snprintf(details, sizeof details, "{\"parts\":%lld,\"total\":%lld}", (long long)parts,
           (long long)total);
  return be_audit_write(NULL, job->app, conn, 0, "crash.batch", BE_NUL_TERMINATED, "batch",
                        BE_NUL_TERMINATED, b, details, BE_NUL_TERMINATED, err);
}

int rw_step(be_app *app, rw_state *next, be_error **err) {
  if (next->updates <= next->batches) {
    int64_t j = next->updates + 1;
    char name[32];
    snprintf(name, sizeof name, "v%lld", (long long)j);
    be_user_input in = BE_USER_INPUT_INIT;
    in.fields = BE_USER_FIELD_NAME;
    in.name = name;
    int rc = be_user_update(NULL, app, 0, (j - 1) % RW_USERS + 1, &in, err);
    if (rc == BE_OK) next->updates = j;
    return rc;
  }
  batch_job job = {app, next->batches + 1};
  int rc = be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, write_batch, &job, err);
  if (rc == BE_OK) next->batches = job.b;
  return rc;
}

int rw_checkpoint(be_app *app, const char *mode, be_error **err) {
  be_conn *conn = NULL;
  int rc = be_pool_acquire(&conn, be_app_pool(app), err);
  if (rc != BE_OK) return rc;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA wal_checkpoint(%s)", mode);
  rc = be_conn_exec(conn, sql, err);
  be_pool_release(be_app_pool(app), conn);
  return rc;
}

/* ---- checks on the file, with SQLite itself ---- */

/* The first column of the first row of sql as an integer. */
static int q_int(sqlite3 *db, const char *sql, int64_t *out, char *why, size_t n) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc == SQLITE_ROW) return 0;
  return rw_fail(why, n, "%s: %s", sql, sqlite3_errmsg(db));
}

static int open_file(sqlite3 **db, const char *path, char *why, size_t n) {
  int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL);
  /* The checker's own writes (a rollback, a WAL checkpoint at close) need
   * no flush: nothing cuts its power. */
  if (rc == SQLITE_OK) rc = sqlite3_exec(*db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
  if (rc == SQLITE_OK) return sqlite3_busy_timeout(*db, 5000), 0;
  rw_fail(why, n, "open %s: %s", path, sqlite3_errmsg(*db));
  sqlite3_close(*db);
  *db = NULL;
  return -1;
}

static int check_integrity(sqlite3 *db, char *why, size_t n) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0)
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_CORRUPT;
  else if (rc == SQLITE_ROW) {
    rw_fail(why, n, "integrity_check: %s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return -1;
  }
  if (rc != SQLITE_OK) rw_fail(why, n, "integrity_check failed: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return -1;
  int64_t bad = 0;
  if (q_int(db, "SELECT count(*) FROM pragma_foreign_key_check", &bad, why, n) != 0) return -1;
  return bad == 0 ? 0 : rw_fail(why, n, "foreign_key_check: %lld violations", (long long)bad);
}

/* Updates of user u (0-based) among the first j updates. */
static int64_t updates_of(int64_t j, int u) { return j > u ? (j - u - 1) / RW_USERS + 1 : 0; }

static int check_users(sqlite3 *db, int64_t *updates, char *why, size_t n) {
  int64_t cnt[RW_USERS], total = 0, ids = 0;
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM be_users WHERE id BETWEEN 1 AND %d", RW_USERS);
  if (q_int(db, sql, &ids, why, n) != 0) return -1;
  if (ids != RW_USERS) return rw_fail(why, n, "%lld of the %d users", (long long)ids, RW_USERS);
  for (int u = 0; u < RW_USERS; u++) {
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM be_audit_log WHERE action = 'user.update'"
             " AND target_type = 'user' AND target_id = %d",
             u + 1);
    if (q_int(db, sql, &cnt[u], why, n) != 0) return -1;
    total += cnt[u];
  }
  for (int u = 0; u < RW_USERS; u++) {
    if (cnt[u] != updates_of(total, u))
      return rw_fail(why, n, "user %d has %lld updates of %lld: not a prefix", u + 1,
                     (long long)cnt[u], (long long)total);
    char want[32];
    if (cnt[u] == 0) snprintf(want, sizeof want, "user%d", u);
    else snprintf(want, sizeof want, "v%lld", (long long)(u + 1 + (cnt[u] - 1) * RW_USERS));
    snprintf(sql, sizeof sql, "SELECT name = '%s' FROM be_users WHERE id = %d", want, u + 1);
    int64_t same = 0;
    if (q_int(db, sql, &same, why, n) != 0) return -1;
    if (!same) return rw_fail(why, n, "user %d: name is not %s after its %lld audited updates",
                              u + 1, want, (long long)cnt[u]);
  }
  *updates = total;
  return 0;
}

static int check_batches(sqlite3 *db, int64_t *batches, char *why, size_t n) {
  int64_t count = 0, max = 0, broken = 0, orphans = 0, audit_rows = 0, audited = 0;
  if (q_int(db, "SELECT count(*) FROM crash_batch", &count, why, n) != 0 ||
      q_int(db, "SELECT coalesce(max(id), 0) FROM crash_batch", &max, why, n) != 0 ||
      q_int(db,
            "SELECT count(*) FROM crash_batch b WHERE b.parts != 3 + b.id % 5"
            " OR b.parts != (SELECT count(*) FROM crash_part p WHERE p.batch = b.id)"
            " OR b.total != (SELECT coalesce(sum(val), 0) FROM crash_part p WHERE p.batch = b.id)",
            &broken, why, n) != 0 ||
      q_int(db, "SELECT count(*) FROM crash_part WHERE batch NOT IN (SELECT id FROM crash_batch)",
            &orphans, why, n) != 0 ||
      q_int(db, "SELECT count(*) FROM be_audit_log WHERE action = 'crash.batch'", &audit_rows, why,
            n) != 0 ||
      q_int(db,
            "SELECT count(DISTINCT target_id) FROM be_audit_log WHERE action = 'crash.batch'"
            " AND target_type = 'batch' AND target_id IN (SELECT id FROM crash_batch)",
            &audited, why, n) != 0)
    return -1;
  if (count != max) return rw_fail(why, n, "batches 1..%lld with %lld missing", (long long)max,
                                   (long long)(max - count));
  if (broken) return rw_fail(why, n, "%lld batches half-applied", (long long)broken);
  if (orphans) return rw_fail(why, n, "%lld rows of batches without header", (long long)orphans);
  if (audit_rows != count || audited != count)
    return rw_fail(why, n, "%lld batches, %lld audit rows, %lld batches audited", (long long)count,
                   (long long)audit_rows, (long long)audited);
  *batches = max;
  return 0;
}

static int check_audit(const char *path, const be_driver *driver, int64_t rows, char *why,
                       size_t n) {
  be_app *app = NULL;
  if (rw_app_open(&app, path, driver, why, n) != 0) return -1;
  int64_t bad = -1, checked = -1;
  be_error *e = NULL;
  int rc = be_audit_verify(&bad, &checked, app, &e);
  if (rc != BE_OK) rw_fail(why, n, "be_audit_verify: %s", be_error_message(e));
  else if (bad != 0) rw_fail(why, n, "audit chain broken at row %lld", (long long)bad);
  else if (checked != rows) rw_fail(why, n, "audit chain has %lld rows, table %lld",
                                    (long long)checked, (long long)rows);
  be_error_free(e);
  be_app_free(app);
  return rc == BE_OK && bad == 0 && checked == rows ? 0 : -1;
}

int rw_check(rw_state *found, const char *path, const be_driver *driver, char *why, size_t n) {
  sqlite3 *db = NULL;
  if (open_file(&db, path, why, n) != 0) return -1;
  int64_t rows = 0;
  int r = check_integrity(db, why, n);
  if (r == 0) r = check_users(db, &found->updates, why, n);
  if (r == 0) r = check_batches(db, &found->batches, why, n);
  if (r == 0) r = q_int(db, "SELECT count(*) FROM be_audit_log", &rows, why, n);
  sqlite3_close(db);
  if (r != 0) return -1;
  int64_t gap = found->updates - found->batches;
  if (gap != 0 && gap != 1)
    return rw_fail(why, n, "%lld updates but %lld batches: commits out of order",
                   (long long)found->updates, (long long)found->batches);
  return check_audit(path, driver, rows, why, n);
}

int rw_read_state(rw_state *out, const char *path, char *why, size_t n) {
  sqlite3 *db = NULL;
  if (open_file(&db, path, why, n) != 0) return -1;
  int r = q_int(db, "SELECT count(*) FROM be_audit_log WHERE action = 'user.update'", &out->updates,
                why, n);
  if (r == 0) r = q_int(db, "SELECT coalesce(max(id), 0) FROM crash_batch", &out->batches, why, n);
  sqlite3_close(db);
  return r;
}
