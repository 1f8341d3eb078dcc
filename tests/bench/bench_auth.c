/* SPDX-License-Identifier: MIT */
/*
 * AuthService benchmark, one JSON line per measurement:
 *   raw_pwhash_verify   libsodium crypto_pwhash_str_verify alone (baseline)
 *   auth_login          be_auth_login, right password (ops/s, p50/p95/p99)
 *   auth_verify         be_auth_verify on live tokens (target p99 < 50 us)
 *   auth_login_timing   unknown-user vs wrong-password medians (target: within 10 %)
 *   auth_reset_timing   be_auth_request_reset: registered email (a token stored
 *                       and mailed) vs unknown email medians (target: within
 *                       10 %), with the pending-limit case and the mailer's own
 *                       cost alongside
 *   auth_login_timing_lowered
 *                       the same pair after the parameters were lowered
 *                       (t = 2, m = 64 MiB -> OWASP's t = 2, m = 19 MiB)
 *                       for an account hashed before (target: within 10 %),
 *                       with an account hashed after for reference
 *
 * Usage: bench_auth [logins [verifies [resets]]]  (defaults 30, 50000 and
 * 300). Hashing uses the library defaults (argon2id INTERACTIVE, t = 2,
 * m = 64 MiB) on a SQLite file in a temp dir, with the system clock. The
 * mailer copies each message and frees it, as a mailer that queues mail
 * for a background sender would.
 */
#include <backend/app.h>
#include <backend/auth.h>
#include <backend/histogram.h>
#include <backend/mailer.h>
#include <backend/pool.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PW "benchmark passphrase 1"
#define NT BE_NUL_TERMINATED /* string lengths */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc, be_error *e) {
  fprintf(stderr, "bench_auth: %s failed: %d %s\n", what, rc, e ? be_error_message(e) : "");
  exit(1);
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Exact median of n samples (sorts in place). */
static double median_us(int64_t *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp64);
  double m = n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
  return m / 1000.0;
}

static void print_hist(const char *name, const be_histogram *h, double seconds, const char *extra) {
  printf("{\"bench\":\"%s\",\"n\":%llu,\"ops_per_s\":%.1f,\"p50_us\":%.2f,\"p95_us\":%.2f,"
         "\"p99_us\":%.2f,\"max_us\":%.2f%s}\n",
         name, (unsigned long long)be_histogram_count(h),
         (double)be_histogram_count(h) / seconds, be_histogram_quantile(h, 0.50) / 1000.0,
         be_histogram_quantile(h, 0.95) / 1000.0, be_histogram_quantile(h, 0.99) / 1000.0,
         be_histogram_max(h) / 1000.0, extra ? extra : "");
}

static void exec1(be_app *app, const char *sql, char *out, size_t cap) {
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_pool_acquire(&c, be_app_pool(app), &e);
  if (rc != BE_OK) die("acquire", rc, e);
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, c, sql, &e);
  if (rc != BE_OK) die(sql, rc, e);
  rc = be_stmt_step(st, &e);
  if (rc < 0) die(sql, rc, e);
  if (out && rc == BE_ROW) snprintf(out, cap, "%s", be_stmt_column_text(st, 0, NULL));
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), c);
}

/* The bench's mailer: copy the message (what a queueing mailer does
 * before it returns), then drop it. user_data: the time spent, in ns. */
static int queue_send(const char *to, const char *subject, const char *body, void *ud,
                      be_error **err) {
  (void)err;
  int64_t t0 = now_ns();
  char *copy[3] = {strdup(to), strdup(subject), strdup(body)};
  for (int i = 0; i < 3; i++) {
    if (copy[i]) sodium_memzero(copy[i], strlen(copy[i]));
    free(copy[i]);
  }
  *(int64_t *)ud += now_ns() - t0;
  return BE_OK;
}

static int64_t timed_reset(be_app *app, const char *email) {
  be_error *e = NULL;
  int64_t t0 = now_ns();
  int rc = be_auth_request_reset(app, email, NT, &e);
  int64_t dt = now_ns() - t0;
  if (rc != BE_OK) die("request_reset", rc, e);
  return dt;
}

/* Reset requests: n registered emails, each asked for once (so each gets
 * a token stored and mailed), interleaved with as many unknown ones, and
 * a registered email that already has its pending tokens. */
static void reset_timing(be_app *app, int n, const int64_t *mailer_ns) {
  exec1(app, "WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM i WHERE k < 1999) "
             "INSERT INTO be_users (email, name, created_at, updated_at) "
             "SELECT 'reset' || k || '@example.test', 'Reset ' || k, 0, 0 FROM i",
        NULL, 0);
  for (int i = 0; i < BE_AUTH_RESET_MAX_PENDING; i++) timed_reset(app, "bench@example.test");
  int64_t *known = calloc((size_t)n, sizeof *known), *unknown = calloc((size_t)n, sizeof *unknown),
          *full = calloc((size_t)n, sizeof *full);
  int64_t mail0 = *mailer_ns;
  for (int i = 0; i < n; i++) {
    char email[64], nobody[64];
    snprintf(email, sizeof email, "reset%d@example.test", i % 2000);
    snprintf(nobody, sizeof nobody, "nobody%d@example.test", i);
    for (int k = 0; k < 3; k++) {
      int which = (k + i) % 3; /* rotate the order */
      if (which == 0) known[i] = timed_reset(app, email);
      else if (which == 1) unknown[i] = timed_reset(app, nobody);
      else full[i] = timed_reset(app, "bench@example.test");
    }
  }
  double mail_us = (double)(*mailer_ns - mail0) / n / 1000.0;
  double kn = median_us(known, n), unk = median_us(unknown, n), fu = median_us(full, n);
  double ratio = kn / unk;
  printf("{\"bench\":\"auth_reset_timing\",\"n\":%d,\"known_email_p50_us\":%.1f,"
         "\"unknown_email_p50_us\":%.1f,\"pending_limit_p50_us\":%.1f,\"ratio\":%.4f,"
         "\"ratio_pending_limit\":%.4f,\"mailer_mean_us\":%.2f,\"target\":\"0.90..1.10\","
         "\"ok\":%s}\n",
         n, kn, unk, fu, ratio, fu / unk, mail_us,
         ratio >= 0.9 && ratio <= 1.1 ? "true" : "false");
  free(known);
  free(unknown);
  free(full);
}

static be_app *open_app(const char *path, uint64_t memlimit, be_mailer *mailer) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.pwhash_memlimit = memlimit; /* 0: the default */
  /* Never block: the timing check wants the full wrong-password path
   * (verify + failure bookkeeping) every time. */
  o.throttle_after = 1000000;
  o.lockout_after = 1000000;
  o.mailer = mailer;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK) die("be_app_new", rc, e);
  return app;
}

/* A user with password PW; returns the id. */
static int64_t add_user(be_app *app, const char *email) {
  char sql[256], idtext[32];
  snprintf(sql, sizeof sql, "INSERT INTO be_users (email, name, created_at, updated_at) "
                            "VALUES ('%s', 'Bench', 0, 0)",
           email);
  exec1(app, sql, NULL, 0);
  snprintf(sql, sizeof sql, "SELECT id FROM be_users WHERE email = '%s'", email);
  exec1(app, sql, idtext, sizeof idtext);
  int64_t id = atoll(idtext);
  be_error *e = NULL;
  int rc = be_auth_set_password(app, 0, id, PW, NT, &e);
  if (rc != BE_OK) die("set_password", rc, e);
  return id;
}

/* One failing login's time; dies unless it is the 401. */
static int64_t timed_failure(be_app *app, const char *email, const char *pw) {
  char *tok = NULL;
  int64_t t0 = now_ns();
  int rc = be_auth_login(&tok, NULL, app, email, NT, pw, NT, NULL);
  int64_t dt = now_ns() - t0;
  if (rc != BE_E_UNAUTHORIZED) die(email, rc, NULL);
  return dt;
}

/* After pwhash_memlimit is lowered, an account hashed before keeps its
 * costlier hash until its next successful login; the dummy an unknown
 * email verifies must cost as much. Series interleaved, order rotated
 * per round. */
static void bench_lowered(const char *dir, int n) {
  char path[256];
  snprintf(path, sizeof path, "%s/lowered.db", dir);
  be_app *app = open_app(path, 0, NULL);
  add_user(app, "old@example.test");
  be_app_free(app);
  const uint64_t lowered = 19 * 1024 * 1024;
  app = open_app(path, lowered, NULL);
  add_user(app, "new@example.test");
  int64_t *s[3];
  for (int k = 0; k < 3; k++) s[k] = calloc((size_t)n, sizeof *s[k]);
  static const char *const email[3] = {"nobody@example.test", "old@example.test",
                                       "new@example.test"};
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) {
      int which = (i + k) % 3;
      s[which][i] = timed_failure(app, email[which], "wrong passphrase 99");
    }
  double unk = median_us(s[0], n), old = median_us(s[1], n), fresh = median_us(s[2], n);
  double ratio = unk / old;
  printf("{\"bench\":\"auth_login_timing_lowered\",\"n\":%d,\"stored\":\"argon2id m=65536,t=2\","
         "\"current\":\"argon2id m=19456,t=2\",\"unknown_user_p50_us\":%.1f,"
         "\"wrong_password_old_hash_p50_us\":%.1f,\"ratio\":%.4f,"
         "\"wrong_password_new_hash_p50_us\":%.1f,\"target\":\"0.90..1.10\",\"ok\":%s}\n",
         n, unk, old, ratio, fresh, ratio >= 0.9 && ratio <= 1.1 ? "true" : "false");
  for (int k = 0; k < 3; k++) free(s[k]);
  be_app_free(app);
}

/* The stored hash of bench@example.test and its "m=..,t=..,p=.." text. */
static void stored_hash(char hash[crypto_pwhash_STRBYTES], char *ptext, size_t ptext_size, be_app *app) {
  exec1(app, "SELECT password_hash FROM be_users WHERE email = 'bench@example.test'", hash, crypto_pwhash_STRBYTES);
  const char *params = strstr(hash, "$m=");
  if (params) {
    const char *end = strchr(params + 1, '$');
    snprintf(ptext, ptext_size, "%.*s", end ? (int)(end - params - 1) : 0, params + 1);
  }
}

/* One unknown-user and one wrong-password login, timed. Alternate which of
 * the two goes first, so position in the loop (caches, a neighbour's burst)
 * cannot favour one. */
static void time_failed_logins(int64_t *unknown, int64_t *wrong, be_app *app, int i) {
  for (int k = 0; k < 2; k++) {
    int do_unknown = (k == 0) == (i % 2 == 0);
    char *tok = NULL;
    int rc;
    int64_t t0 = now_ns();
    if (do_unknown) {
      rc = be_auth_login(&tok, NULL, app, "nobody@example.test", NT, PW, NT, NULL);
      *unknown = now_ns() - t0;
    } else {
      rc = be_auth_login(&tok, NULL, app, "bench@example.test", NT, "wrong passphrase 99",
                         NT, NULL);
      *wrong = now_ns() - t0;
    }
    if (rc != BE_E_UNAUTHORIZED) die(do_unknown ? "unknown-user login" : "wrong-password login", rc, NULL);
  }
}

/* Token verify: round-robin over the live sessions; prints its line. */
static be_histogram *bench_verify(be_app *app, char **tokens, int n, int verifies, int64_t id) {
  be_histogram *h_verify;
  be_error *e = NULL;
  int rc;
  char extra[160];
  be_histogram_new(&h_verify, NULL);
  for (int i = 0; i < 1000; i++) /* warm-up: statement cache, pool */
    if (be_auth_verify(NULL, app, tokens[i % n], NT, NULL) != BE_OK) die("verify warm-up", -1, NULL);
  int64_t start = now_ns();
  for (int i = 0; i < verifies; i++) {
    int64_t t0 = now_ns();
    int64_t uid = 0;
    rc = be_auth_verify(&uid, app, tokens[i % n], NT, &e);
    be_histogram_record(h_verify, now_ns() - t0);
    if (rc != BE_OK || uid != id) die("verify", rc, e);
  }
  double verify_s = (now_ns() - start) / 1e9;
  double p99 = be_histogram_quantile(h_verify, 0.99) / 1000.0;
  snprintf(extra, sizeof extra, ",\"target_p99_us\":50,\"ok\":%s", p99 < 50 ? "true" : "false");
  print_hist("auth_verify", h_verify, verify_s, extra);
  return h_verify;
}

int main(int argc, char **argv) {
  int logins = argc > 1 ? atoi(argv[1]) : 30;
  int verifies = argc > 2 ? atoi(argv[2]) : 50000;
  int resets = argc > 3 ? atoi(argv[3]) : 300;
  if (logins < 4) logins = 4;
  if (verifies < 100) verifies = 100;
  if (resets < 4) resets = 4;
  if (sodium_init() < 0) return 1;

  char dir[] = "/tmp/bench_auth.XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  char path[256];
  snprintf(path, sizeof path, "%s/auth.db", dir);
  int64_t mailer_ns = 0;
  be_mailer mailer = BE_MAILER_INIT;
  mailer.send = queue_send;
  mailer.user_data = &mailer_ns;
  be_app *app = open_app(path, 0, &mailer);
  be_error *e = NULL;
  int rc;
  int64_t id = add_user(app, "bench@example.test");
  char hash[crypto_pwhash_STRBYTES], ptext[64] = "";
  stored_hash(hash, ptext, sizeof ptext, app);

  /* Interleave every series so drift (thermal, neighbours) hits all alike. */
  int n = logins;
  int64_t *raw = calloc((size_t)n, sizeof *raw), *unknown = calloc((size_t)n, sizeof *unknown),
          *wrong = calloc((size_t)n, sizeof *wrong);
  char **tokens = calloc((size_t)n, sizeof *tokens);
  be_histogram *h_raw, *h_login;
  be_histogram_new(&h_raw, NULL);
  be_histogram_new(&h_login, NULL);
  double login_s = 0, raw_s = 0;
  for (int i = 0; i < n; i++) {
    int64_t t0 = now_ns();
    if (crypto_pwhash_str_verify(hash, PW, strlen(PW)) != 0) die("raw verify", -1, NULL);
    raw[i] = now_ns() - t0;
    raw_s += raw[i] / 1e9;
    be_histogram_record(h_raw, raw[i]);

    t0 = now_ns();
    rc = be_auth_login(&tokens[i], NULL, app, "bench@example.test", NT, PW, NT, &e);
    int64_t dt = now_ns() - t0;
    if (rc != BE_OK) die("login", rc, e);
    be_histogram_record(h_login, dt);
    login_s += dt / 1e9;

    time_failed_logins(&unknown[i], &wrong[i], app, i);
  }
  char extra[160];
  snprintf(extra, sizeof extra, ",\"params\":\"argon2id %s\"", ptext);
  print_hist("raw_pwhash_verify", h_raw, raw_s, extra);
  print_hist("auth_login", h_login, login_s, extra);

  be_histogram *h_verify = bench_verify(app, tokens, n, verifies, id);

  double raw_p50 = median_us(raw, n), unk = median_us(unknown, n), wr = median_us(wrong, n);
  double ratio = unk / wr;
  printf("{\"bench\":\"auth_login_timing\",\"n\":%d,\"unknown_user_p50_us\":%.1f,"
         "\"wrong_password_p50_us\":%.1f,\"diff_us\":%.1f,\"ratio\":%.4f,\"raw_verify_p50_us\":%.1f,"
         "\"target\":\"0.90..1.10\",\"ok\":%s}\n",
         n, unk, wr, unk - wr, ratio, raw_p50, ratio >= 0.9 && ratio <= 1.1 ? "true" : "false");

  reset_timing(app, resets, &mailer_ns);

  for (int i = 0; i < n; i++) be_auth_token_free(tokens[i]);
  free(tokens);
  free(raw);
  free(unknown);
  free(wrong);
  be_histogram_free(h_raw);
  be_histogram_free(h_login);
  be_histogram_free(h_verify);
  be_app_free(app);
  bench_lowered(dir, n);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return 0;
}
