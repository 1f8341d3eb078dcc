/* SPDX-License-Identifier: MIT */
#include "sweep.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NT BE_NUL_TERMINATED
#define PASSWORD "a long correct passphrase"
#define MAX_OPEN_STATES 24

double sw_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *fmt, ...) {
  if (why[0] != '\0') return -1; /* keep the first failure */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return -1;
}

#define FAIL(res, ...) fail((res)->why, sizeof(res)->why, __VA_ARGS__)

/* ---- the counting allocator ------------------------------------------ */

static struct {
  int64_t live;    /* blocks handed out and not freed */
  int64_t count;   /* allocations since sw_alloc_fail_nth() */
  int64_t fail_at; /* 0: none */
  int from;        /* fail every allocation from fail_at on */
  int failed;
} A;

/* Count an allocation; 1 when it is the one to fail. */
static int fail_this(void) {
  ++A.count;
  if (A.fail_at == 0 || A.count < A.fail_at || (A.count > A.fail_at && !A.from)) return 0;
  A.failed = 1;
  return 1;
}

static void *a_malloc(size_t size, void *ud) {
  (void)ud;
  if (fail_this()) return NULL;
  void *p = malloc(size);
  if (p) A.live++;
  return p;
}

static void *a_realloc(void *p, size_t size, void *ud) {
  (void)ud;
  if (fail_this()) return NULL;
  return realloc(p, size); /* p is never NULL here: the library sends that to malloc */
}

static void a_free(void *p, void *ud) {
  (void)ud;
  A.live--;
  free(p);
}

int sw_alloc_install(void) {
  be_allocator a = BE_ALLOCATOR_INIT;
  a.malloc_fn = a_malloc;
  a.realloc_fn = a_realloc;
  a.free_fn = a_free;
  return be_set_allocator(&a, NULL) == BE_OK ? 0 : -1;
}

int64_t sw_alloc_live(void) { return A.live; }
void sw_alloc_fail_nth(int64_t n, int from) {
  A.fail_at = n;
  A.from = from;
  A.count = 0;
  A.failed = 0;
}
int64_t sw_alloc_count(void) { return A.count; }
int sw_alloc_failed(void) { return A.failed; }

/* ---- crash report ---------------------------------------------------- */

static char crash_what[256];

static void on_crash(int sig) {
  static const char head[] = "\n*** crashed while running: ";
  ssize_t w = write(2, head, sizeof head - 1);
  w = write(2, crash_what, strlen(crash_what));
  w = write(2, "\n", 1);
  (void)w;
  signal(sig, SIG_DFL);
  raise(sig);
}

void sw_crash_report_install(void) {
  int sigs[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_crash);
}

void sw_crash_report_set(const char *what) {
  snprintf(crash_what, sizeof crash_what, "%s", what);
}

/* ---- logical dumps through raw sqlite3 ------------------------------- */

typedef struct dbuf {
  char *p;
  size_t n, cap;
} dbuf;

static void put(dbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) abort();
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void putf(dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(dbuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Columns left out of a dump ("*"), as {table, column} pairs ending with
 * {NULL, NULL}. */
typedef struct colmask {
  const char *table, *column;
} colmask;

/* Compared with a clean run's dump (the reference), a dump leaves out the
 * columns whose values differ between two clean runs of the same flow. */
static const colmask ref_mask[] = {
  /* BLAKE2b of a session token: 32 random bytes per login */
  {"be_sessions", "token_hash"},
  /* seconds of the real clock: migrate.c stamps applied_at with the
   * system clock, not the app's fake one (libbackend's record, the host's) */
  {"be_schema_migrations", "applied_at"},
  {"schema_migrations", "applied_at"},
  {NULL, NULL},
};

/* Compared with the database before a call that failed, a dump leaves out
 * nothing, except for the flows that name columns (flow.may_change). */
static const colmask no_mask[] = {{NULL, NULL}};

static int is_masked(const colmask *mask, const char *table, const char *column) {
  for (; mask != NULL && mask->table != NULL; mask++)
    if (strcmp(mask->table, table) == 0 && strcmp(mask->column, column) == 0) return 1;
  return 0;
}

static void put_value(dbuf *b, sqlite3_stmt *st, int col) {
  switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: put(b, "null", 4); break;
    case SQLITE_INTEGER: putf(b, "i%lld", (long long)sqlite3_column_int64(st, col)); break;
    case SQLITE_FLOAT: putf(b, "f%.17g", sqlite3_column_double(st, col)); break;
    case SQLITE_TEXT: {
      int n = sqlite3_column_bytes(st, col);
      putf(b, "t%d:", n);
      put(b, (const char *)sqlite3_column_text(st, col), (size_t)n);
      break;
    }
    default: {
      const unsigned char *p = sqlite3_column_blob(st, col);
      int n = sqlite3_column_bytes(st, col);
      static const char hex[] = "0123456789abcdef";
      put(b, "x", 1);
      for (int i = 0; i < n; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        put(b, two, 2);
      }
    }
  }
}

/* Every row of table in a fixed order: by rowid (insertion order, so a
 * masked random column cannot reorder the rows), or for a WITHOUT ROWID
 * table, which has none, by every column. */
static sqlite3_stmt *table_rows(sqlite3 *db, const char *table) {
  char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY rowid", table);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  if (rc == SQLITE_OK) return st;
  sql = sqlite3_mprintf("SELECT * FROM \"%w\"", table);
  rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  int n = rc == SQLITE_OK ? sqlite3_column_count(st) : 0;
  sqlite3_finalize(st);
  st = NULL;
  if (n == 0) return NULL;
  char order[512] = "";
  for (int i = 1, at = 0; i <= n && at < (int)sizeof order - 8; i++)
    at += snprintf(order + at, sizeof order - (size_t)at, "%s%d", i > 1 ? ", " : "", i);
  sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY %s", table, order);
  rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  return rc == SQLITE_OK ? st : NULL;
}

static int dump_table(dbuf *b, sqlite3 *db, const char *table, const colmask *mask,
                      const colmask *more) {
  sqlite3_stmt *st = table_rows(db, table);
  if (st == NULL) return -1;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    putf(b, "%s:", table);
    for (int c = 0; c < sqlite3_column_count(st); c++) {
      put(b, " ", 1);
      const char *name = sqlite3_column_name(st, c);
      if (is_masked(mask, table, name) || is_masked(more, table, name)) put(b, "*", 1);
      else put_value(b, st, c);
    }
    put(b, "\n", 1);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* One raw connection, to the file last asked for: opening one per check
 * would parse the schema each time, most of a run's cost. remove_db()
 * closes it. */
static struct {
  char path[PATH_MAX];
  sqlite3 *db;
  const char *sql[4]; /* statements kept prepared, by their (static) text */
  sqlite3_stmt *st[4];
} raw;

static void raw_drop(void) {
  for (int i = 0; i < 4; i++) {
    sqlite3_finalize(raw.st[i]);
    raw.st[i] = NULL;
    raw.sql[i] = NULL;
  }
  sqlite3_close(raw.db);
  raw.db = NULL;
}

/* sql (a static string) prepared on db, reset; NULL on error. */
static sqlite3_stmt *raw_stmt(sqlite3 *db, const char *sql) {
  int i = 0;
  while (i < 4 && raw.sql[i] != NULL && raw.sql[i] != sql) i++;
  if (i == 4) return NULL;
  if (raw.sql[i] == NULL) {
    if (sqlite3_prepare_v2(db, sql, -1, &raw.st[i], NULL) != SQLITE_OK) return NULL;
    raw.sql[i] = sql;
  }
  sqlite3_reset(raw.st[i]);
  sqlite3_clear_bindings(raw.st[i]);
  return raw.st[i];
}

static sqlite3 *raw_get(const char *path) {
  if (raw.db != NULL && strcmp(raw.path, path) == 0) return raw.db;
  raw_drop();
  if (sqlite3_open_v2(path, &raw.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    raw_drop();
    return NULL;
  }
  snprintf(raw.path, sizeof raw.path, "%s", path);
  sqlite3_busy_timeout(raw.db, 5000);
  return raw.db;
}

/* Every schema entry, then every row of every table in rowid order. No
 * file is the empty dump (like a database with no tables). */
static int dump2(dbuf *b, const char *path, const colmask *mask, const colmask *more) {
  b->n = 0;
  put(b, "", 0);
  if (access(path, F_OK) != 0) return 0;
  sqlite3 *db = raw_get(path);
  if (db == NULL) return -1;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name", -1, &st, NULL);
  char tables[32][64];
  int nt = 0;
  while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *sql = (const char *)sqlite3_column_text(st, 2);
    putf(b, "schema: %s %s ", type, name);
    if (sql) put(b, sql, strlen(sql));
    put(b, "\n", 1);
    if (strcmp(type, "table") != 0) continue;
    if (nt == 32) rc = SQLITE_FULL; /* more tables than this dump keeps: grow tables[] */
    else snprintf(tables[nt++], sizeof tables[0], "%s", name);
  }
  sqlite3_finalize(st);
  for (int i = 0; rc == SQLITE_OK && i < nt; i++)
    if (dump_table(b, db, tables[i], mask, more) != 0) rc = SQLITE_ERROR;
  return rc == SQLITE_OK ? 0 : -1;
}

static int dump(dbuf *b, const char *path, const colmask *mask) { return dump2(b, path, mask, NULL); }

/* Say where two dumps first differ. */
static int dump_diff(sw_result *res, const char *what, const dbuf *got, const dbuf *want) {
  if (got->n == want->n && memcmp(got->p, want->p, got->n) == 0) return 0;
  size_t i = 0;
  while (i < got->n && i < want->n && got->p[i] == want->p[i]) i++;
  size_t line = i;
  while (line > 0 && got->p[line - 1] != '\n') line--;
  int glen = (int)strcspn(got->p + line, "\n"), wlen = (int)strcspn(want->p + line, "\n");
  return FAIL(res, "%s: the database differs; first difference:\n    got:  %.*s\n    want: %.*s", what,
              glen < 200 ? glen : 200, got->p + line, wlen < 200 ? wlen : 200, want->p + line);
}

/* Append " <letter> v1 v2 ..." for the versions record table `table` holds
 * (nothing when it does not exist). */
static size_t append_versions(char *key, size_t n, size_t at, sqlite3 *db, const char *table, char letter) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT version FROM %s ORDER BY version", table);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    at += (size_t)snprintf(key + at, n - at, "%s%c", at ? " " : "", letter);
    while (sqlite3_step(st) == SQLITE_ROW && at < n)
      at += (size_t)snprintf(key + at, n - at, " %lld", (long long)sqlite3_column_int64(st, 0));
  }
  sqlite3_finalize(st);
  return at < n ? at : n - 1;
}

/* "none" when there is no migration record, else the versions libbackend's
 * record (be_schema_migrations, "v") and the host's (schema_migrations,
 * "h") hold. */
static void migration_key(char *key, size_t n, const char *path) {
  snprintf(key, n, "none");
  sqlite3 *db = access(path, F_OK) == 0 ? raw_get(path) : NULL;
  if (db == NULL) return;
  size_t at = append_versions(key, n, 0, db, "be_schema_migrations", 'v');
  at = append_versions(key, n, at, db, "schema_migrations", 'h');
  if (at == 0) snprintf(key, n, "none");
}

/* ---- the environment ------------------------------------------------- */

typedef struct open_state {
  char key[128];
  dbuf dump;
} open_state;

struct sw_env {
  char dir[PATH_MAX / 2];
  char tmpl[PATH_MAX], db[PATH_MAX];
  be_driver *sqlite;       /* the SQLite driver every app is on, directly or wrapped */
  const be_driver *driver; /* the driver the runs' apps use */
  be_clock *clock;
  be_migrator *host;
  dbuf ref[SW_FLOWS];       /* the clean run's dump (ref_mask) */
  dbuf ref_again[SW_FLOWS]; /* the same without the flow's may_change columns */
  int have_ref[SW_FLOWS];
  /* app open: the database after each transaction a clean open commits
   * (ref_mask), with the versions be_schema_migrations then records */
  open_state open_states[MAX_OPEN_STATES];
  int nopen_states;
  /* what every run's database holds before its call: the template
   * (the warm-up only reads; each clean run checks that) */
  dbuf before;
  dbuf before_masked[SW_FLOWS]; /* the same without a flow's may_change columns */
  dbuf after;
};

static void remove_db(const char *path) {
  char p[PATH_MAX + 8];
  raw_drop();
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static int copy_file(const char *from, const char *to) {
  remove_db(to);
  FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
  char buf[65536];
  size_t n;
  int rc = in && out ? 0 : -1;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out) != n) rc = -1;
  if (in && ferror(in)) rc = -1;
  if (in) fclose(in);
  if (out && fclose(out) != 0) rc = -1;
  return rc;
}

static int app_new(be_app **out, sw_env *env, const be_driver *driver, const char *path,
                   be_error **err) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.driver = driver;
  o.clock = env->clock;
  o.host_migrations = env->host;
  /* one connection kept: the pool hands out the most recently used idle
   * one, so a dead connection wrongly kept is what the next call gets */
  o.pool_min = 1;
  o.pool_max = 4;
  /* a keyed audit chain and peppered password hashes, as a production
   * app is advised to run */
  static const uint8_t audit_key[32] = "sweep audit key, 32 bytes long!";
  static const uint8_t pepper[32] = "sweep pepper, thirty-two bytes!";
  o.audit_key = audit_key;
  o.audit_key_len = sizeof audit_key;
  o.pepper = pepper;
  o.pepper_len = sizeof pepper;
  o.pepper_id = 1;
  /* the cheapest argon2id libsodium allows: a login costs microseconds */
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  return be_app_new(out, &o, err);
}

/* Users 1..4: admin, ada and bob with a password, cy disabled. */
static int seed_users(be_app *app, be_error **e) {
  static const struct {
    const char *email, *name;
    int32_t status;
  } u[] = {{"admin@example.test", "Admin", BE_USER_ACTIVE},
           {"ada@example.test", "Ada", BE_USER_ACTIVE},
           {"bob@example.test", "Bob", BE_USER_ACTIVE},
           {"cy@example.test", "Cy", BE_USER_DISABLED}};
  int rc = BE_OK;
  for (size_t i = 0; rc == BE_OK && i < sizeof u / sizeof u[0]; i++) {
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = u[i].email;
    in.name = u[i].name;
    in.status = u[i].status;
    int64_t id = 0;
    rc = be_user_create(NULL, &id, app, 0, &in, e);
    if (rc == BE_OK && u[i].status == BE_USER_ACTIVE)
      rc = be_auth_set_password(app, 0, id, PASSWORD, NT, e);
  }
  return rc;
}

/* admin holds "*" (user 1), editor posts:read and posts:write (users 2
 * and 3), viewer posts:read (user 4, disabled: no permissions). */
static int seed_perms(be_app *app, be_error **e) {
  static const char *const grants[][2] = {
    {"admin", "*"}, {"editor", "posts:read"}, {"editor", "posts:write"}, {"viewer", "posts:read"}};
  static const struct {
    int64_t user;
    const char *role;
  } assign[] = {{1, "admin"}, {2, "editor"}, {3, "editor"}, {4, "viewer"}};
  const char *roles[] = {"admin", "editor", "viewer"};
  int rc = BE_OK;
  for (int i = 0; rc == BE_OK && i < 3; i++) rc = be_perm_role_create(NULL, app, 1, roles[i], NT, e);
  for (int i = 0; rc == BE_OK && i < 4; i++) rc = be_perm_role_grant(app, 1, grants[i][0], NT, grants[i][1], NT, e);
  for (int i = 0; rc == BE_OK && i < 4; i++) rc = be_perm_user_assign(app, 1, assign[i].user, assign[i].role, NT, e);
  return rc;
}

/* A session each for ada and bob. */
static int seed_sessions(be_app *app, be_error **e) {
  const char *emails[] = {"ada@example.test", "bob@example.test"};
  int rc = BE_OK;
  for (int i = 0; rc == BE_OK && i < 2; i++) {
    char *token = NULL;
    rc = be_auth_login(&token, NULL, app, emails[i], NT, PASSWORD, NT, e);
    be_auth_token_free(token);
  }
  return rc;
}

static const char *const check_perms[] = {"posts:read", "posts:write", "posts:delete", "users:admin"};
#define NPERMS (sizeof check_perms / sizeof check_perms[0])

/* Read users 1 and 2 into the cache (3 and 4 stay out) and cache every
 * permission decision. */
static int warm(sw_result *res, be_app *app) {
  for (int64_t id = 1; id <= 2; id++) {
    be_user *u = NULL;
    int rc = be_user_get(&u, app, id, NULL);
    be_user_free(u);
    if (rc != BE_OK) return FAIL(res, "warm-up: be_user_get(%lld): %s", (long long)id, be_code_name(rc));
  }
  for (int64_t id = 1; id <= 5; id++)
    for (size_t p = 0; p < NPERMS; p++) {
      int rc = be_perm_check(app, id, check_perms[p], NT, NULL);
      if (rc != BE_OK && rc != BE_E_FORBIDDEN) return FAIL(res, "warm-up: be_perm_check: %s", be_code_name(rc));
    }
  return 0;
}

static int make_template(sw_env *env) {
  be_app *app = NULL;
  be_error *e = NULL;
  sw_result res = {0};
  int rc = app_new(&app, env, env->driver, env->tmpl, &e);
  if (rc == BE_OK) rc = seed_users(app, &e);
  if (rc == BE_OK) rc = seed_perms(app, &e);
  if (rc == BE_OK) rc = seed_sessions(app, &e);
  /* the first cache read of this thread takes a reader slot for the life
   * of the process: take it now, outside every counted run */
  if (rc == BE_OK && warm(&res, app) != 0) rc = BE_E_INTERNAL;
  if (rc == BE_OK && dump(&env->before, env->tmpl, no_mask) != 0) rc = BE_E_INTERNAL;
  if (rc != BE_OK) fprintf(stderr, "sweep: template: %s (%s) %s\n", be_code_name(rc), be_error_message(e), res.why);
  be_error_free(e);
  raw_drop();
  be_app_free(app); /* the last connection: SQLite moves the WAL into the file */
  char wal[PATH_MAX + 8];
  snprintf(wal, sizeof wal, "%s-wal", env->tmpl);
  if (rc == BE_OK && access(wal, F_OK) == 0) {
    fprintf(stderr, "sweep: template: %s stayed after the last connection closed\n", wal);
    rc = BE_E_INTERNAL;
  }
  return rc == BE_OK ? 0 : -1;
}

/* Open an app on no file with op's nth call failing, and keep the state
 * it leaves; *arc gets be_app_new()'s result. */
static int open_state_after(sw_env *env, be_driver *drv, be_fault *f, int32_t op, int64_t nth,
                            int *arc) {
  remove_db(env->db);
  be_fault_reset_counts(f);
  be_fault_set(f, op, BE_FAULT_NTH, nth, BE_E_STORAGE, NULL);
  be_app *app = NULL;
  *arc = app_new(&app, env, drv, env->db, NULL);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  be_app_free(app);
  if (env->nopen_states == MAX_OPEN_STATES) return -1;
  open_state *p = &env->open_states[env->nopen_states++];
  migration_key(p->key, sizeof p->key, env->db);
  return dump(&p->dump, env->db, ref_mask);
}

/* The state between libbackend's migrations and the host's, before the
 * host's record table exists (key is the state's after it was made, "...
 * h"): the exec that creates that table failing, found among the last
 * execs of the run. */
static int host_record_missing_state(sw_env *env, be_driver *drv, be_fault *f, const char *key,
                                     int64_t execs) {
  size_t want = strlen(key) - 2; /* the key without " h" */
  for (int64_t m = execs; m > 0 && m > execs - 8; m--) {
    int arc = 0;
    if (open_state_after(env, drv, f, BE_FAULT_OP_EXEC, m, &arc) != 0) return -1;
    const open_state *p = &env->open_states[env->nopen_states - 1];
    if (strlen(p->key) == want && strncmp(p->key, key, want) == 0) return 0;
    free(p->dump.p);
    env->nopen_states--;
  }
  return -1;
}

/* The states a clean open passes through, one per transaction it
 * commits: opening an app on no file with the first open failing
 * (nothing), then with the kth BEGIN failing (so exactly the first k - 1
 * transactions committed: each migration, then the audit key's
 * registration), until an open succeeds (all of them); and the one
 * before the host's migration record is made. */
static int make_open_states(sw_env *env) {
  be_driver *drv = NULL;
  be_fault *f = NULL;
  if (be_fault_driver_new(&drv, &f, env->sqlite, NULL) != BE_OK) return -1;
  int rc = 0;
  for (int k = 0; rc == 0; k++) {
    int arc = 0;
    rc = open_state_after(env, drv, f, k == 0 ? BE_FAULT_OP_OPEN : BE_FAULT_OP_BEGIN, k == 0 ? 1 : k,
                          &arc);
    const char *key = env->open_states[env->nopen_states - 1].key;
    size_t n = strlen(key);
    if (rc == 0 && n >= 2 && strcmp(key + n - 2, " h") == 0) {
      char made[128];
      snprintf(made, sizeof made, "%s", key);
      rc = host_record_missing_state(env, drv, f, made, be_fault_calls(f, BE_FAULT_OP_EXEC));
    }
    if (arc == BE_OK) break; /* every migration: an open can still fail after them */
  }
  be_fault_free(f);
  return rc;
}

static int host_migrations(sw_env *env) {
  if (be_migrator_new(&env->host, NULL) != BE_OK) return -1;
  if (be_migrator_add(env->host, 1000, "notes",
                      "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", NULL) != BE_OK)
    return -1;
  return be_migrator_add(env->host, 1001, "first note", "INSERT INTO notes VALUES (1, 'seed')", NULL) == BE_OK
           ? 0
           : -1;
}

static void drop_logs(int32_t level, const char *message, const be_log_field *fields,
                      size_t field_count, void *user_data) {
  (void)level, (void)message, (void)fields, (void)field_count, (void)user_data;
}

/* dir, else $TMPDIR, else /dev/shm (a sweep rewrites its database
 * thousands of times: in memory that costs little), else /tmp. */
static const char *temp_base(const char *dir) {
  const char *tmp = getenv("TMPDIR");
  if (dir != NULL) return dir;
  if (tmp != NULL && *tmp != '\0') return tmp;
  return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

sw_env *sw_env_new(const char *dir) {
  sw_env *env = calloc(1, sizeof *env);
  if (env == NULL) return NULL;
  snprintf(env->dir, sizeof env->dir, "%s/be-sweep-XXXXXX", temp_base(dir));
  if (mkdtemp(env->dir) == NULL) {
    fprintf(stderr, "sweep: mkdtemp %s: %s\n", env->dir, strerror(errno));
    free(env);
    return NULL;
  }
  snprintf(env->tmpl, sizeof env->tmpl, "%s/template.db", env->dir);
  snprintf(env->db, sizeof env->db, "%s/run.db", env->dir);
  /* every failed call logs a warning or two: thousands of lines */
  be_log_set_handler(drop_logs, NULL, BE_LOG_WARN, NULL);
  /* wall clock 2026-01-01: the times of every run are the same */
  /* synchronous=OFF: the sweeps check what a call leaves behind, not what
   * survives a power cut (power_test does), and fsync would make them slow */
  be_sqlite_options so = BE_SQLITE_OPTIONS_INIT;
  so.synchronous = BE_SQLITE_SYNC_OFF;
  if (be_sqlite_driver_new(&env->sqlite, &so, NULL) == BE_OK) env->driver = env->sqlite;
  if (env->sqlite == NULL ||
      be_clock_fake_new(&env->clock, 0, INT64_C(1767225600000) * BE_NS_PER_MS, NULL) != BE_OK ||
      host_migrations(env) != 0 || make_template(env) != 0 || make_open_states(env) != 0) {
    fprintf(stderr, "sweep: could not set up in %s\n", env->dir);
    sw_env_free(env);
    return NULL;
  }
  return env;
}

const be_driver *sw_env_sqlite(sw_env *env) { return env->sqlite; }
void sw_env_use_driver(sw_env *env, const be_driver *driver) { env->driver = driver; }

void sw_env_free(sw_env *env) {
  if (env == NULL) return;
  remove_db(env->db);
  remove_db(env->tmpl);
  rmdir(env->dir);
  for (int i = 0; i < SW_FLOWS; i++) free(env->ref[i].p), free(env->ref_again[i].p);
  for (int i = 0; i < env->nopen_states; i++) free(env->open_states[i].dump.p);
  free(env->before.p);
  for (int i = 0; i < SW_FLOWS; i++) free(env->before_masked[i].p);
  free(env->after.p);
  be_migrator_free(env->host);
  be_clock_free(env->clock);
  be_sqlite_driver_free(env->sqlite);
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
  free(env);
}

/* ---- checks against the rows ----------------------------------------- */

static int64_t raw_int(sqlite3 *db, const char *sql, int64_t dflt) {
  sqlite3_stmt *st = NULL;
  int64_t v = dflt;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static int same_text(sqlite3_stmt *st, int col, const char *s) {
  const char *r = (const char *)sqlite3_column_text(st, col);
  return r != NULL && s != NULL && strcmp(r, s) == 0;
}

/* u (NULL: "no such user") equals user id's row. */
static int user_matches(sw_result *res, sqlite3 *db, const be_user *u, int64_t id, const char *what) {
  static const char sql[] = "SELECT email, name, bio, extra, status, created_at, updated_at FROM be_users WHERE id = ?";
  sqlite3_stmt *st = raw_stmt(db, sql);
  if (st == NULL) return FAIL(res, "%s: raw read: %s", what, sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, id);
  int row = sqlite3_step(st) == SQLITE_ROW, ok = 1;
  if (!row || u == NULL) ok = !row && u == NULL;
  else
    ok = be_user_id(u) == id && same_text(st, 0, be_user_email(u)) && same_text(st, 1, be_user_name(u)) &&
         same_text(st, 2, be_user_bio(u)) && same_text(st, 3, be_user_extra(u)) &&
         sqlite3_column_int64(st, 4) == be_user_status(u) &&
         sqlite3_column_int64(st, 5) / BE_NS_PER_MS == be_user_created_at_ms(u) &&
         sqlite3_column_int64(st, 6) / BE_NS_PER_MS == be_user_updated_at_ms(u);
  char row_name[128] = "";
  if (row) snprintf(row_name, sizeof row_name, "%s", (const char *)sqlite3_column_text(st, 1));
  sqlite3_reset(st);
  if (ok) return 0;
  return FAIL(res, "%s: user %lld is %s%s%s, its row %s%s%s", what, (long long)id,
              u ? "\"" : "", u ? be_user_name(u) : "missing", u ? "\"" : "", row ? "\"" : "",
              row ? row_name : "is missing", row ? "\" (or another field differs)" : "");
}

/* What the rows say be_perm_check(user, perm) must answer. */
static int perm_expected(sqlite3 *db, int64_t user, const char *perm) {
  static const char sql[] =
    "SELECT rp.permission FROM be_users u JOIN be_user_roles ur ON ur.user_id = u.id "
    "JOIN be_role_permissions rp ON rp.role_id = ur.role_id WHERE u.id = ? AND u.status = 0";
  sqlite3_stmt *st = raw_stmt(db, sql);
  if (st == NULL) return BE_E_INTERNAL;
  sqlite3_bind_int64(st, 1, user);
  int allowed = 0;
  while (!allowed && sqlite3_step(st) == SQLITE_ROW)
    allowed = be_perm_covers((const char *)sqlite3_column_text(st, 0), perm);
  sqlite3_reset(st);
  return allowed ? BE_OK : BE_E_FORBIDDEN;
}

/* The cache, the permission decisions, the audit chain and the pool agree
 * with the database; every call here runs without injected failures and
 * must succeed. */
static int check_state(sw_result *res, be_app *app, const char *path, const char *when) {
  sqlite3 *db = raw_get(path);
  if (db == NULL) return FAIL(res, "%s: cannot open the database", when);
  int64_t max = raw_int(db, "SELECT COALESCE(MAX(id), 0) FROM be_users", 0);
  char what[160];
  for (int64_t id = 1; id <= max + 1 && res->why[0] == '\0'; id++) {
    be_user *u = NULL;
    int rc = be_user_get(&u, app, id, NULL);
    snprintf(what, sizeof what, "%s: be_user_get(%lld)", when, (long long)id);
    if (rc != BE_OK && rc != BE_E_NOT_FOUND) FAIL(res, "%s failed: %s", what, be_code_name(rc));
    else user_matches(res, db, u, id, what);
    be_user_free(u);
    for (size_t p = 0; p < NPERMS && res->why[0] == '\0'; p++) {
      int want = perm_expected(db, id, check_perms[p]);
      rc = be_perm_check(app, id, check_perms[p], NT, NULL);
      if (rc != want)
        FAIL(res, "%s: be_perm_check(%lld, %s) = %s, the rows say %s", when, (long long)id,
             check_perms[p], be_code_name(rc), be_code_name(want));
    }
  }
  int64_t bad = -1, rows = -1, want_rows = raw_int(db, "SELECT COUNT(*) FROM be_audit_log", 0);
  int rc = be_audit_verify(&bad, &rows, app, NULL);
  if (rc != BE_OK || bad != 0 || rows != want_rows)
    FAIL(res, "%s: be_audit_verify: %s, first bad row %lld, %lld of %lld rows", when, be_code_name(rc),
         (long long)bad, (long long)rows, (long long)want_rows);
  be_pool_stats ps = BE_POOL_STATS_INIT;
  rc = be_pool_stats_get(&ps, be_app_pool(app), NULL);
  if (rc != BE_OK || ps.in_use != 0 || ps.waiting != 0)
    FAIL(res, "%s: pool: %s, %d in use, %d waiting", when, be_code_name(rc), (int)ps.in_use, (int)ps.waiting);
  return res->why[0] ? -1 : 0;
}

/* ---- the flows ------------------------------------------------------- */

/* What one call of a flow produced (freed by call_free). */
typedef struct call {
  be_app *app;
  be_user *user;
  int64_t id;
  char *token;
  be_user_list *list;
} call;

static void call_free(call *c) {
  be_user_free(c->user);
  be_auth_token_free(c->token);
  be_user_list_free(c->list);
  c->user = NULL, c->token = NULL, c->list = NULL;
}

static int f_user_create(call *c, be_error **err) {
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = " New.User@Example.test ";
  in.name = "New";
  in.bio = "created under faults";
  in.extra = "{\"plan\":\"pro\"}";
  return be_user_create(&c->user, &c->id, c->app, 1, &in, err);
}

static int f_login(call *c, be_error **err) {
  return be_auth_login(&c->token, &c->id, c->app, "ada@example.test", NT, PASSWORD, NT, err);
}

/* Counts a failure against ada's throttle: the clean result is the 401. */
static int f_login_bad_password(call *c, be_error **err) {
  return be_auth_login(&c->token, &c->id, c->app, "ada@example.test", NT, "not the passphrase at all",
                       NT, err);
}

/* New email and name, and disabled: her sessions are revoked and the
 * authorisation epoch moves (she loses posts:read and posts:write). */
static int f_user_update(call *c, be_error **err) {
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_EMAIL | BE_USER_FIELD_NAME | BE_USER_FIELD_STATUS;
  up.email = "ada.l@example.test";
  up.name = "Ada L.";
  up.status = BE_USER_DISABLED;
  return be_user_update(&c->user, c->app, 1, 2, &up, err);
}

static int f_perm_grant(call *c, be_error **err) {
  return be_perm_role_grant(c->app, 1, "editor", NT, "posts:delete", NT, err);
}

static int f_perm_revoke(call *c, be_error **err) {
  return be_perm_role_revoke(c->app, 1, "editor", NT, "posts:write", NT, err);
}

/* User 3 is not cached: read from the database, then cached. */
static int f_user_get(call *c, be_error **err) {
  c->id = 3;
  return be_user_get(&c->user, c->app, 3, err);
}

/* Users 1 and 2 are cached, 3 and 4 are not, 99 does not exist. */
static const int64_t many_ids[] = {3, 1, 99, 2, 3, 4};
#define NMANY (sizeof many_ids / sizeof many_ids[0])

static int f_get_many(call *c, be_error **err) {
  return be_user_get_many(&c->list, c->app, many_ids, NMANY, err);
}

static int note_insert(be_conn *conn, int64_t id, const char *body, be_error **err) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, "INSERT INTO notes (id, body) VALUES (?, ?)", err);
  if (rc != BE_OK) return rc;
  rc = be_stmt_bind_int64(st, 1, id, err);
  if (rc == BE_OK) rc = be_stmt_bind_text(st, 2, body, NT, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  be_stmt_finalize(st);
  return rc == BE_DONE ? BE_OK : rc;
}

static int tx_deepest(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  return note_insert(conn, 3, "two savepoints deep", err);
}

static int tx_inner_ok(be_conn *conn, void *ud, be_error **err) {
  int rc = note_insert(conn, 2, "one savepoint deep", err);
  return rc == BE_OK ? be_tx_run(conn, BE_TX_IMMEDIATE, tx_deepest, ud, err) : rc;
}

/* Writes note 4, then fails on its own: note 1 exists (BE_E_CONFLICT).
 * Its savepoint must take note 4 away again. */
static int tx_inner_fails(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  int rc = note_insert(conn, 4, "must be rolled back", err);
  return rc == BE_OK ? note_insert(conn, 1, "duplicate", err) : rc;
}

/* A host transaction: a note and its audit row, a nested transaction (two
 * savepoints deep) that succeeds, and one that fails and whose failure
 * the outer callback handles and goes on from, as a host's best-effort
 * step would. The clean result: notes 10, 2, 3, 11, never note 4. */
static int tx_outer(be_conn *conn, void *ud, be_error **err) {
  be_app *app = ud;
  int rc = note_insert(conn, 10, "outer", err);
  if (rc == BE_OK)
    rc = be_audit_write(NULL, app, conn, 0, "note.add", NT, "note", NT, 10, "{}", NT, err);
  if (rc == BE_OK) rc = be_tx_run(conn, BE_TX_IMMEDIATE, tx_inner_ok, ud, err);
  if (rc != BE_OK) return rc;
  be_error *ie = NULL;
  be_tx_run(conn, BE_TX_IMMEDIATE, tx_inner_fails, ud, &ie); /* expected to fail: handled */
  be_error_free(ie);
  return note_insert(conn, 11, "after the failed savepoint", err);
}

static int f_tx_savepoints(call *c, be_error **err) {
  return be_pool_tx_run(be_app_pool(c->app), BE_TX_IMMEDIATE, tx_outer, c->app, err);
}

/* ---- what a clean-result call returned ---- */

static int out_user(sw_result *res, call *c, sqlite3 *db, int64_t id) {
  if (c->user == NULL || c->id != (id ? id : be_user_id(c->user)))
    return FAIL(res, "the call succeeded without its user");
  return user_matches(res, db, c->user, be_user_id(c->user), "the user it returned");
}

static int out_create(sw_result *res, call *c, sqlite3 *db) { return out_user(res, c, db, 0); }
static int out_get(sw_result *res, call *c, sqlite3 *db) { return out_user(res, c, db, 3); }

static int out_update(sw_result *res, call *c, sqlite3 *db) {
  c->id = 2;
  return out_user(res, c, db, 2);
}

static int out_login(sw_result *res, call *c, sqlite3 *db) {
  (void)db;
  int64_t who = 0;
  int rc = c->token ? be_auth_verify(&who, c->app, c->token, NT, NULL) : BE_E_INTERNAL;
  if (rc != BE_OK || who != 2 || c->id != 2)
    return FAIL(res, "the login's token does not verify (%s, user %lld)", be_code_name(rc), (long long)who);
  return 0;
}

static int out_many(sw_result *res, call *c, sqlite3 *db) {
  if (be_user_list_count(c->list) != NMANY) return FAIL(res, "be_user_get_many: %zu entries", be_user_list_count(c->list));
  for (size_t i = 0; i < NMANY; i++)
    if (user_matches(res, db, be_user_list_get(c->list, i), many_ids[i], "be_user_get_many") != 0) return -1;
  return 0;
}

typedef struct flow {
  const char *name;
  int expect; /* what a clean run returns */
  int (*run)(call *c, be_error **err);
  int (*out)(sw_result *res, call *c, sqlite3 *db); /* checks what it returned; NULL: nothing */
  const colmask *may_change;                        /* columns a failed call may leave changed; NULL: none */
} flow;

/* A wrong password is counted (failed_logins, and locked_until once
 * throttled) in a transaction of its own that commits before the 401 is
 * built; when building the answer then fails (no memory for the error
 * object: BE_E_NOMEM instead of the 401), the count stays, as it should:
 * the guess was checked against the real hash. */
static const colmask counted_guess[] = {{"be_users", "failed_logins"}, {"be_users", "locked_until"}, {NULL, NULL}};

#define F_APP_OPEN 0
static const flow flows[SW_FLOWS] = {
  {"app_open", BE_OK, NULL, NULL, NULL}, /* be_app_new() with migrations on no file: run_open() */
  {"user_create", BE_OK, f_user_create, out_create, NULL},
  {"login", BE_OK, f_login, out_login, NULL},
  {"login_bad_password", BE_E_UNAUTHORIZED, f_login_bad_password, NULL, counted_guess},
  {"user_update", BE_OK, f_user_update, out_update, NULL},
  {"perm_grant", BE_OK, f_perm_grant, NULL, NULL},
  {"perm_revoke", BE_OK, f_perm_revoke, NULL, NULL},
  {"user_get", BE_OK, f_user_get, out_get, NULL},
  {"get_many", BE_OK, f_get_many, out_many, NULL},
  {"tx_savepoints", BE_OK, f_tx_savepoints, NULL, NULL},
};

const char *sw_flow_name(int flow) { return flow >= 0 && flow < SW_FLOWS ? flows[flow].name : "?"; }

int sw_flow_find(const char *name) {
  for (int i = 0; i < SW_FLOWS; i++)
    if (strcmp(flows[i].name, name) == 0) return i;
  return -1;
}

/* ---- one run --------------------------------------------------------- */

/* A failure the caller can act on: a known negative code that is not a
 * bug's (internal, misuse), with an error object of the same code. */
static int typed(sw_result *res, int rc, const be_error *e) {
  const char *msg = e ? be_error_message(e) : "(no error object)";
  if (rc >= 0) return FAIL(res, "returned %d: neither the clean result nor an error", rc);
  if (strcmp(be_code_name(rc), "BE_E_UNKNOWN") == 0 || rc == BE_E_INTERNAL || rc == BE_E_MISUSE)
    return FAIL(res, "returned %s (%d): %s", be_code_name(rc), rc, msg);
  if (e == NULL || be_error_code(e) != rc)
    return FAIL(res, "returned %s but its error object says %s", be_code_name(rc),
                e ? be_code_name(be_error_code(e)) : "nothing");
  return 0;
}

/* The database equals the clean run's; the clean run records it. */
/* The database equals the clean run's (AFTER: after the call; AGAIN:
 * after the call made again, which may also change the flow's
 * may_change columns again); the clean run (CLEAN) records it. */
enum { CLEAN,
       AFTER,
       AGAIN };
static int as_clean(sw_result *res, sw_env *env, int fi, int how, const char *when) {
  const colmask *more = how == AGAIN ? flows[fi].may_change : NULL;
  if (dump2(&env->after, env->db, ref_mask, more) != 0) return FAIL(res, "%s: cannot dump the database", when);
  if (how != CLEAN) return dump_diff(res, when, &env->after, more ? &env->ref_again[fi] : &env->ref[fi]);
  env->ref[fi].n = 0;
  put(&env->ref[fi], env->after.p, env->after.n);
  env->have_ref[fi] = 1;
  if (flows[fi].may_change && dump2(&env->ref_again[fi], env->db, ref_mask, flows[fi].may_change) != 0)
    return FAIL(res, "%s: cannot dump the database", when);
  return 0;
}

static int call_output(sw_result *res, sw_env *env, const flow *f, call *c) {
  if (f->out == NULL) return 0;
  sqlite3 *db = raw_get(env->db);
  if (db == NULL) return FAIL(res, "cannot open the database");
  return f->out(res, c, db);
}

/* After a failed call: the same call without failures gives the clean
 * result and the clean run's database. */
static void call_again(sw_result *res, sw_env *env, int fi, be_app *app) {
  const flow *f = &flows[fi];
  call again = {app, NULL, 0, NULL, NULL};
  be_error *e = NULL;
  int rc = f->run(&again, &e);
  if (rc != f->expect)
    FAIL(res, "the call again without failures returned %s: %s", be_code_name(rc),
         e ? be_error_message(e) : "");
  else if (call_output(res, env, f, &again) == 0 && as_clean(res, env, fi, AGAIN, "after the call again") == 0)
    check_state(res, app, env->db, "after the call again");
  be_error_free(e);
  call_free(&again);
}

static void judge(sw_result *res, sw_env *env, int fi, call *c, const be_error *e, int clean) {
  const flow *f = &flows[fi];
  if (res->rc == f->expect) {
    if (call_output(res, env, f, c) == 0) as_clean(res, env, fi, clean ? CLEAN : AFTER, "after the call");
  } else if (clean) {
    FAIL(res, "the clean run returned %s: %s", be_code_name(res->rc), e ? be_error_message(e) : "");
  } else if (typed(res, res->rc, e) == 0) {
    const colmask *m = f->may_change ? f->may_change : no_mask;
    if (dump(&env->after, env->db, m) != 0) FAIL(res, "cannot dump the database");
    else
      dump_diff(res, "after the failed call (compared with before it)", &env->after,
                f->may_change ? &env->before_masked[fi] : &env->before);
  }
  if (res->why[0] != '\0') return;
  if (check_state(res, c->app, env->db, "after the call") == 0 && res->rc != f->expect)
    call_again(res, env, fi, c->app);
}

static int run_flow(sw_result *res, sw_env *env, int fi, const sw_hook *hook) {
  be_app *app = NULL;
  be_error *e = NULL;
  const colmask *m = flows[fi].may_change;
  if (hook->clean && m != NULL && dump(&env->before_masked[fi], env->tmpl, m) != 0)
    return FAIL(res, "cannot dump the template");
  if (copy_file(env->tmpl, env->db) != 0) return FAIL(res, "cannot copy the template");
  if (app_new(&app, env, env->driver, env->db, &e) != BE_OK) {
    FAIL(res, "be_app_new on the template: %s", be_error_message(e));
    be_error_free(e);
    return -1;
  }
  call c = {app, NULL, 0, NULL, NULL};
  if (warm(res, app) == 0 && hook->clean) {
    if (dump(&env->after, env->db, no_mask) != 0) FAIL(res, "cannot dump the database");
    else dump_diff(res, "after the warm-up (compared with the template)", &env->after, &env->before);
  }
  if (res->why[0] == '\0') {
    hook->arm(hook->user_data);
    res->rc = flows[fi].run(&c, &e);
    res->injected = hook->disarm(hook->user_data);
    res->clean_result = res->rc == flows[fi].expect;
    judge(res, env, fi, &c, e, hook->clean);
  }
  be_error_free(e);
  call_free(&c);
  be_app_free(app);
  return res->why[0] ? -1 : 0;
}

/* A failed open keeps the transactions it committed (each migration,
 * then the audit key's registration), each one whole: the database
 * equals the state after one of them; an open without failures then
 * finishes the job. */
static void open_failed(sw_result *res, sw_env *env, be_app **app) {
  char key[128];
  migration_key(key, sizeof key, env->db);
  if (dump(&env->after, env->db, ref_mask) != 0) {
    FAIL(res, "cannot dump the database");
    return;
  }
  const open_state *same = NULL, *near = NULL;
  for (int i = 0; i < env->nopen_states && same == NULL; i++) {
    const open_state *p = &env->open_states[i];
    if (p->dump.n == env->after.n && memcmp(p->dump.p, env->after.p, p->dump.n) == 0) same = p;
    else if (strcmp(p->key, key) == 0) near = p;
  }
  if (same == NULL && near == NULL) {
    FAIL(res, "after the failed be_app_new, the migration records hold \"%s\": no clean open passes through that", key);
    return;
  }
  if (same == NULL) {
    dump_diff(res, "after the failed be_app_new (compared with a clean open's state with the same migrations)", &env->after, &near->dump);
    return;
  }
  be_error *e = NULL;
  if (app_new(app, env, env->driver, env->db, &e) != BE_OK)
    FAIL(res, "be_app_new again without failures: %s", be_error_message(e));
  else as_clean(res, env, F_APP_OPEN, AGAIN, "after be_app_new again");
  be_error_free(e);
}

static int run_open(sw_result *res, sw_env *env, const sw_hook *hook) {
  be_app *app = NULL;
  be_error *e = NULL;
  remove_db(env->db);
  hook->arm(hook->user_data);
  res->rc = app_new(&app, env, env->driver, env->db, &e);
  res->injected = hook->disarm(hook->user_data);
  res->clean_result = res->rc == BE_OK;
  if (res->rc == BE_OK) as_clean(res, env, F_APP_OPEN, hook->clean ? CLEAN : AFTER, "after be_app_new");
  else if (hook->clean) FAIL(res, "the clean be_app_new failed: %s", be_error_message(e));
  else if (app != NULL) FAIL(res, "be_app_new failed but gave an app");
  else if (typed(res, res->rc, e) == 0) open_failed(res, env, &app);
  if (res->why[0] == '\0' && app != NULL) check_state(res, app, env->db, "after be_app_new");
  be_error_free(e);
  be_app_free(app);
  return res->why[0] ? -1 : 0;
}

int sw_run(sw_result *res, sw_env *env, int fi, const sw_hook *hook) {
  memset(res, 0, sizeof *res);
  if (fi < 0 || fi >= SW_FLOWS) return FAIL(res, "no flow %d", fi);
  if (!hook->clean && !env->have_ref[fi]) return FAIL(res, "%s has had no clean run", flows[fi].name);
  int64_t live = sw_alloc_live();
  if (fi == F_APP_OPEN) run_open(res, env, hook);
  else run_flow(res, env, fi, hook);
  if (sw_alloc_live() != live)
    FAIL(res, "leak: %lld blocks allocated through the allocator hook are still live after the app was freed",
         (long long)(sw_alloc_live() - live));
  return res->why[0] ? -1 : 0;
}
