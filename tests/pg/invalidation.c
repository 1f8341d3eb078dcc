/* SPDX-License-Identifier: MIT */
/*
 * Many processes, one PostgreSQL database: cached profiles follow.
 *
 * The parent opens an app on a fresh schema and table prefix of the test
 * server (BE_TEST_PG_DSN), creates users and starts N child processes
 * (fork + exec of this program with --child), each with its own app on
 * the same database, a fake clock and a 200 ms profile TTL (fake time
 * only moves when the parent says so, so a child sees a change only
 * through an invalidation, or through the TTL once told to advance).
 *
 * 1. Delay: for each of CHANGES updates, every child caches the old
 *    profile, polls be_user_get() for the new one, and reports the
 *    monotonic time it saw it; the delay runs from be_user_update()'s
 *    return (after COMMIT) in the parent. p50 / p95 / max as JSON.
 * 2. Fallback: every listener connection is killed with
 *    pg_terminate_backend() from another connection; the children's
 *    status says down; a change is NOT seen (the stale copy stays, no
 *    notification), then is seen once the fake clock passes the TTL; the
 *    fake clock passes the reconnect backoff, the listeners come back
 *    (status listening, reconnects 1) and invalidation works again.
 *
 * Exit 0 on success, 1 on failure, 77 (SKIP) without a server or libpq.
 */
#include <backend/backend.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NCHILD 3
#define NUSERS 20
#define CHANGES 200
#define TTL_MS 200
#define MAXOBS (CHANGES * NCHILD)

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void check(int rc, be_error *e, const char *what) {
  if (rc != BE_OK) die("%s: %s (%d)", what, e ? be_error_message(e) : "", rc);
}

static be_app *open_app(const char *dsn, const char *prefix, be_clock *clock) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = dsn;
  o.table_prefix = prefix;
  o.clock = clock;
  o.pool_max = 2;
  o.insecure_test_hashing = 1;
  if (clock) o.user_cache_ttl_ms = TTL_MS;
  be_app *app = NULL;
  be_error *e = NULL;
  check(be_app_new(&app, &o, &e), e, "be_app_new");
  return app;
}

/* The name of user id (a fresh copy in buf). */
static void user_name(be_app *app, int64_t id, char *buf, size_t cap) {
  be_user *u = NULL;
  be_error *e = NULL;
  check(be_user_get(&u, app, id, &e), e, "be_user_get");
  snprintf(buf, cap, "%s", be_user_name(u));
  be_user_free(u);
}

/* ---- the child: one app, commands on stdin, answers on stdout ---- */

static void child_status(be_app *app, be_app_status *s) {
  *s = (be_app_status)BE_APP_STATUS_INIT;
  be_error *e = NULL;
  check(be_app_status_get(s, app, &e), e, "be_app_status_get");
}

/* Poll until the profile's name is want: the monotonic time seen, or -1. */
static int64_t child_watch(be_app *app, int64_t id, const char *want) {
  char name[256];
  int64_t give_up = mono_ns() + INT64_C(5000000000);
  struct timespec nap = {0, 50000};
  while (mono_ns() < give_up) {
    user_name(app, id, name, sizeof name);
    if (strcmp(name, want) == 0) return mono_ns();
    nanosleep(&nap, NULL);
  }
  return -1;
}

/* Wait until the status's invalidation state is want: ms waited, or -1. */
static int64_t child_wait_state(be_app *app, int32_t want) {
  int64_t t0 = mono_ns();
  struct timespec nap = {0, 1000000};
  be_app_status s;
  while (mono_ns() - t0 < INT64_C(10000000000)) {
    child_status(app, &s);
    if (s.invalidation == want) return (mono_ns() - t0) / 1000000;
    nanosleep(&nap, NULL);
  }
  return -1;
}

static int child_command(be_app *app, be_clock *clock, const char *line) {
  char arg[256];
  int64_t id = 0, n = 0;
  if (sscanf(line, "get %" SCNd64, &id) == 1) {
    user_name(app, id, arg, sizeof arg);
    printf("%s\n", arg);
  } else if (sscanf(line, "watch %" SCNd64 " %255s", &id, arg) == 2) {
    printf("ready\n");
    fflush(stdout);
    printf("seen %" PRId64 "\n", child_watch(app, id, arg));
  } else if (sscanf(line, "state %" SCNd64, &n) == 1) {
    printf("%" PRId64 "\n", child_wait_state(app, (int32_t)n));
  } else if (sscanf(line, "advance %" SCNd64, &n) == 1) {
    be_clock_advance(clock, n * 1000000, NULL);
    printf("ok\n");
  } else if (strncmp(line, "status", 6) == 0) {
    be_app_status s;
    child_status(app, &s);
    char *json = NULL;
    check(be_app_status_json(&json, NULL, app, NULL), NULL, "be_app_status_json");
    const char *inv = strstr(json, "\"invalidation\":");
    printf("%d %" PRId64 " %" PRId64 " %" PRId64 " %s\n", (int)s.invalidation, s.invalidation_received,
           s.invalidation_reconnects, s.invalidation_down_since_ms, inv ? inv : "?");
    be_free(json);
  } else {
    return 0; /* quit */
  }
  fflush(stdout);
  return 1;
}

static int child_main(const char *dsn, const char *prefix) {
  be_clock *clock = NULL;
  check(be_clock_fake_new(&clock, 1, INT64_C(1800000000) * 1000000000, NULL), NULL, "fake clock");
  be_app *app = open_app(dsn, prefix, clock);
  printf("up\n");
  fflush(stdout);
  char line[512];
  while (fgets(line, sizeof line, stdin) && child_command(app, clock, line)) {
  }
  be_app_free(app);
  be_clock_free(clock);
  return 0;
}

/* ---- the parent ---- */

typedef struct child {
  pid_t pid;
  FILE *in, *out;
} child;

static child kids[NCHILD];

static void spawn(child *k, const char *self, const char *dsn, const char *prefix) {
  int to[2], from[2];
  if (pipe(to) != 0 || pipe(from) != 0) die("pipe: %s", strerror(errno));
  k->pid = fork();
  if (k->pid < 0) die("fork: %s", strerror(errno));
  if (k->pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    close(to[0]), close(to[1]), close(from[0]), close(from[1]);
    execl(self, self, "--child", dsn, prefix, (char *)NULL);
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  k->in = fdopen(to[1], "w");
  k->out = fdopen(from[0], "r");
}

static void say(child *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(k->in, fmt, ap);
  va_end(ap);
  fflush(k->in);
}

static void hear(child *k, char *buf, size_t cap) {
  if (fgets(buf, (int)cap, k->out) == NULL) die("child %d went away", (int)k->pid);
  buf[strcspn(buf, "\n")] = '\0';
}

/* Every child's answer to a command. */
static void all(const char *cmd, char ans[NCHILD][512]) {
  for (int i = 0; i < NCHILD; i++) say(&kids[i], "%s\n", cmd);
  for (int i = 0; i < NCHILD; i++) hear(&kids[i], ans[i], 512);
}

static void rename_user(be_app *app, int64_t id, const char *name) {
  be_user_input in = BE_USER_INPUT_INIT;
  in.fields = BE_USER_FIELD_NAME;
  in.name = name;
  be_error *e = NULL;
  check(be_user_update(NULL, app, 0, id, &in, &e), e, "be_user_update");
}

/* Every child caches id's current name, which must be want. */
static void expect_cached(int64_t id, const char *want) {
  char cmd[64], ans[NCHILD][512];
  snprintf(cmd, sizeof cmd, "get %" PRId64, id);
  all(cmd, ans);
  for (int i = 0; i < NCHILD; i++)
    if (strcmp(ans[i], want) != 0) die("child %d has \"%s\" for user %" PRId64 ", not \"%s\"", i, ans[i], id, want);
}

/* One change watched by every child: delays (ns after the update
 * returned) appended to d; returns how many were seen before it returned. */
static int watched_change(be_app *app, int64_t id, const char *old, const char *name, int64_t *d, int *nd) {
  expect_cached(id, old);
  char ans[NCHILD][512];
  for (int i = 0; i < NCHILD; i++) say(&kids[i], "watch %" PRId64 " %s\n", id, name);
  for (int i = 0; i < NCHILD; i++) {
    hear(&kids[i], ans[i], 512);
    if (strcmp(ans[i], "ready") != 0) die("child %d: %s", i, ans[i]);
  }
  rename_user(app, id, name);
  int64_t t1 = mono_ns();
  int early = 0;
  for (int i = 0; i < NCHILD; i++) {
    int64_t seen = 0;
    hear(&kids[i], ans[i], 512);
    if (sscanf(ans[i], "seen %" SCNd64, &seen) != 1 || seen < 0)
      die("child %d never saw user %" PRId64 " renamed to %s", i, id, name);
    early += seen < t1;
    d[(*nd)++] = seen < t1 ? 0 : seen - t1;
  }
  return early;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static double pct_us(int64_t *d, int n, double q) {
  qsort(d, (size_t)n, sizeof *d, cmp64);
  int i = (int)(q * (n - 1) + 0.5);
  return (double)d[i] / 1000.0;
}

static char names[NUSERS][32];
static int64_t ids[NUSERS];
static int version;

static void next_name(int u, char *out) {
  snprintf(out, 32, "u%d_v%d", u, ++version);
}

static void measure(be_app *app) {
  static int64_t d[MAXOBS];
  int nd = 0, early = 0;
  int64_t t0 = mono_ns();
  for (int c = 0; c < CHANGES; c++) {
    int u = c % NUSERS;
    char name[32];
    next_name(u, name);
    early += watched_change(app, ids[u], names[u], name, d, &nd);
    memcpy(names[u], name, sizeof name);
  }
  double secs = (double)(mono_ns() - t0) / 1e9;
  double p50 = pct_us(d, nd, 0.50), p95 = pct_us(d, nd, 0.95), p99 = pct_us(d, nd, 0.99);
  printf("{\"test\":\"invalidation_delay\",\"processes\":%d,\"changes\":%d,\"observations\":%d,"
         "\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
         "\"seen_before_update_returned\":%d,\"seconds\":%.2f}\n",
         NCHILD, CHANGES, nd, p50, p95, p99, (double)d[nd - 1] / 1000.0, early, secs);
  if (p95 > 1e6) die("p95 invalidation delay %.1f us is over 1 s", p95);
}

/* Terminate every listener of the channel from a connection of our own;
 * returns how many backends went. */
static int64_t kill_listeners(const char *dsn, const char *channel) {
  be_conn *c = NULL;
  be_error *e = NULL;
  check(be_conn_open(&c, be_postgres_driver(), dsn, &e), e, "open");
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
           "WHERE query = 'LISTEN \"%s\"' AND pid <> pg_backend_pid()", channel);
  be_stmt *st = NULL;
  check(be_conn_prepare(&st, c, sql, &e), e, "prepare");
  if (be_stmt_step(st, &e) != BE_ROW) die("terminate: %s", be_error_message(e));
  int64_t n = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  be_conn_close(c);
  return n;
}

/* Every child's invalidation state reaches want; the slowest wait in ms. */
static int64_t wait_state(int32_t want) {
  char cmd[32], ans[NCHILD][512];
  snprintf(cmd, sizeof cmd, "state %d", (int)want);
  all(cmd, ans);
  int64_t worst = 0;
  for (int i = 0; i < NCHILD; i++) {
    int64_t ms = strtoll(ans[i], NULL, 10);
    if (ms < 0) die("child %d never reached invalidation state %d", i, (int)want);
    if (ms > worst) worst = ms;
  }
  return worst;
}

static void fallback(be_app *app, const char *dsn, const char *channel) {
  char ans[NCHILD][512], name[32];
  int u = 0;
  expect_cached(ids[u], names[u]);
  int64_t t0 = mono_ns();
  int64_t killed = kill_listeners(dsn, channel);
  if (killed < NCHILD) die("only %" PRId64 " listener connections found", killed);
  int64_t down_ms = wait_state(BE_APP_INVALIDATION_DOWN);
  double detect_ms = (double)(mono_ns() - t0) / 1e6;
  all("status", ans);
  fprintf(stderr, "child 0 while down: %s\n", ans[0]);
  /* down: a change goes unheard, the stale copy stays */
  next_name(u, name);
  rename_user(app, ids[u], name);
  struct timespec nap = {0, 300000000};
  nanosleep(&nap, NULL);
  expect_cached(ids[u], names[u]);
  /* past the TTL (fake time), still before the first retry: the copy expired */
  all("advance 300", ans);
  expect_cached(ids[u], name);
  memcpy(names[u], name, sizeof name);
  all("status", ans);
  for (int i = 0; i < NCHILD; i++)
    if (atoi(ans[i]) != BE_APP_INVALIDATION_DOWN) die("child %d came back before its backoff: %s", i, ans[i]);
  /* past the backoff: the listeners reconnect */
  t0 = mono_ns();
  all("advance 2000", ans);
  int64_t up_ms = wait_state(BE_APP_INVALIDATION_LISTENING);
  double reconnect_ms = (double)(mono_ns() - t0) / 1e6;
  all("status", ans);
  fprintf(stderr, "child 0 after reconnecting: %s\n", ans[0]);
  for (int i = 0; i < NCHILD; i++) {
    int st = 0;
    long long rec = 0, recon = 0;
    if (sscanf(ans[i], "%d %lld %lld", &st, &rec, &recon) != 3 || recon != 1)
      die("child %d: reconnects should be 1: %s", i, ans[i]);
  }
  /* and invalidation works again */
  static int64_t d[20 * NCHILD];
  int nd = 0;
  for (int c = 0; c < 20; c++) {
    int v = c % NUSERS;
    next_name(v, name);
    watched_change(app, ids[v], names[v], name, d, &nd);
    memcpy(names[v], name, sizeof name);
  }
  printf("{\"test\":\"invalidation_fallback\",\"listeners_killed\":%" PRId64 ",\"down_detected_ms\":%.1f,"
         "\"down_wait_ms_max\":%" PRId64 ",\"stale_while_down\":true,\"expired_by_ttl_ms\":%d,"
         "\"reconnected_ms\":%.1f,\"reconnect_wait_ms_max\":%" PRId64 ",\"after_reconnect_changes\":20,"
         "\"after_reconnect_p50_us\":%.1f,\"after_reconnect_p95_us\":%.1f}\n",
         killed, detect_ms, down_ms, TTL_MS, reconnect_ms, up_ms, pct_us(d, nd, 0.5), pct_us(d, nd, 0.95));
}

/* A fresh schema for this run; its DSN into out. */
static void fresh_schema(const char *base, const char *schema, char *out, size_t cap) {
  be_conn *c = NULL;
  be_error *e = NULL;
  check(be_conn_open(&c, be_postgres_driver(), base, &e), e, "open");
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  check(be_conn_exec(c, sql, &e), e, "create schema");
  be_conn_close(c);
  snprintf(out, cap, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?", schema);
}

static void drop_schema(const char *base, const char *schema) {
  be_conn *c = NULL;
  if (be_conn_open(&c, be_postgres_driver(), base, NULL) != BE_OK) return;
  char sql[128];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
  be_conn_exec(c, sql, NULL);
  be_conn_close(c);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0) return child_main(argv[2], argv[3]);
  const char *base = getenv("BE_TEST_PG_DSN");
  if (be_postgres_driver() == NULL || base == NULL || base[0] == '\0') {
    fprintf(stderr, "SKIPPED: invalidation across processes: %s -- NOT RUN, NOT PASSED\n",
            be_postgres_driver() == NULL ? "built without libpq" : "BE_TEST_PG_DSN is not set");
    return 77;
  }
  signal(SIGPIPE, SIG_IGN);
  char schema[64], prefix[32], channel[64], dsn[1024], ans[512];
  snprintf(schema, sizeof schema, "inv_%ld", (long)getpid());
  snprintf(prefix, sizeof prefix, "inv%ld_", (long)getpid());
  snprintf(channel, sizeof channel, "%suser_changes", prefix);
  fresh_schema(base, schema, dsn, sizeof dsn);
  be_app *app = open_app(dsn, prefix, NULL);
  for (int u = 0; u < NUSERS; u++) {
    be_user_input in = BE_USER_INPUT_INIT;
    char email[64];
    snprintf(email, sizeof email, "u%d@example.com", u);
    snprintf(names[u], sizeof names[u], "u%d_v0", u);
    in.email = email;
    in.name = names[u];
    be_error *e = NULL;
    check(be_user_create(NULL, &ids[u], app, 0, &in, &e), e, "be_user_create");
  }
  for (int i = 0; i < NCHILD; i++) {
    spawn(&kids[i], argv[0], dsn, prefix);
    hear(&kids[i], ans, sizeof ans);
    if (strcmp(ans, "up") != 0) die("child %d did not start: %s", i, ans);
  }
  measure(app);
  fallback(app, dsn, channel);
  for (int i = 0; i < NCHILD; i++) {
    say(&kids[i], "quit\n");
    int status = 0;
    waitpid(kids[i].pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("child %d exited badly", i);
  }
  be_app_free(app);
  drop_schema(base, schema);
  return 0;
}
