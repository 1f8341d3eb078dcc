/* SPDX-License-Identifier: MIT */
/* backend-cli: the helpers every command shares — the exit-code table,
 * reporting errors (a line, or RFC 9457 problem JSON with --json), usage
 * errors, option parsing, opening the app, finding a user, reading a
 * password without echo, and the terminal progress bar. */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- exit codes: one table, by error category ---- */

static const struct {
  int32_t category;
  int exit_code;
  const char *what;
} exit_table[] = {
  {BE_CAT_NONE, CLI_EXIT_OK, "success (`can`: allowed)"},
  {-1, CLI_EXIT_FAILURE, "the command ran and the answer is no (audit chain broken, version mismatch)"},
  {-2, CLI_EXIT_USAGE, "usage: unknown command or option, missing or extra argument"},
  {BE_CAT_VALIDATION, 3, "validation: bad input (the message names the field)"},
  {BE_CAT_UNAUTHENTICATED, 4, "unauthenticated: wrong email or password"},
  {BE_CAT_PERMISSION_DENIED, 5, "permission denied (`can`: denied)"},
  {BE_CAT_NOT_FOUND, 6, "not found: no such user or role, or no database file"},
  {BE_CAT_CONFLICT, 7, "conflict: already exists, or changed meanwhile"},
  {BE_CAT_RATE_LIMITED, 8, "rate limited: too many attempts, try later"},
  {BE_CAT_UNAVAILABLE, 9, "unavailable: database busy or locked, unreachable, pool exhausted"},
  {BE_CAT_TIMEOUT, 10, "timeout: a deadline passed"},
  {BE_CAT_INTERNAL, 11, "storage or internal: the database failed, is read-only or is not a database; a bug"},
  {BE_CAT_UNSUPPORTED, 12, "unsupported by this build or driver"},
};

int cli_exit_code(int32_t code) {
  int32_t cat = be_code_category(code);
  for (size_t i = 0; i < sizeof exit_table / sizeof exit_table[0]; i++)
    if (exit_table[i].category == cat) return exit_table[i].exit_code;
  return CLI_EXIT_FAILURE;
}

int cli_exit_code_documented(int code) {
  for (size_t i = 0; i < sizeof exit_table / sizeof exit_table[0]; i++)
    if (exit_table[i].exit_code == code) return 1;
  return 0;
}

void cli_print_exit_codes(FILE *f) {
  fputs("exit codes:\n", f);
  for (size_t i = 0; i < sizeof exit_table / sizeof exit_table[0]; i++)
    fprintf(f, "  %2d  %s\n", exit_table[i].exit_code, exit_table[i].what);
}

/* ---- errors ---- */

static int is_storage_code(int32_t code) {
  return code == BE_E_STORAGE || code == BE_E_BUSY || code == BE_E_DB_UNREACHABLE ||
         code == BE_E_CONN_LOST || code == BE_E_POOL_EXHAUSTED || code == BE_E_TIMEOUT;
}

int cli_fail(cli_ctx *ctx, be_error *err) {
  int32_t code = err ? be_error_code(err) : BE_E_INTERNAL;
  if (ctx->json && err) {
    char *json = NULL;
    if (be_error_to_json(&json, NULL, err) == BE_OK) fprintf(stderr, "%s\n", json);
    be_free(json);
  } else {
    fprintf(stderr, "backend-cli%s%s: %s", *ctx->cmd_name ? " " : "", ctx->cmd_name,
            err ? be_error_message(err) : "failed");
    char *db = cli_utf8_clean(ctx->db); /* as the messages name it */
    if (is_storage_code(code) && err && db && strstr(be_error_message(err), db) == NULL) fprintf(stderr, " (database '%s')", db);
    free(db);
    fputc('\n', stderr);
    for (size_t i = 0; err && i < be_error_field_count(err); i++)
      fprintf(stderr, "  %s: %s\n", be_error_field_name(err, i), be_error_field_message(err, i));
    /* every cause down the chain (the database's own words are often two
     * or three deep), but one whose text the line above already holds */
    for (const be_error *up = err, *cause = err ? be_error_cause(err) : NULL; cause;
         up = cause, cause = be_error_cause(cause))
      if (strstr(be_error_message(up), be_error_message(cause)) == NULL)
        fprintf(stderr, "  cause: %s\n", be_error_message(cause));
  }
  be_error_free(err);
  return cli_exit_code(code);
}

/* The message is formatted at any length and made valid UTF-8 (a path or
 * an argument may hold any bytes), so it always becomes an error: problem
 * JSON with --json, never a cut character or a fallback to plain text. */
static int fail_v(cli_ctx *ctx, int32_t code, const char *fmt, va_list ap) {
  char *msg = cli_vformat_utf8(fmt, ap);
  be_error *err = NULL;
  be_error_new(&err, code, msg); /* on failure err is the out-of-memory error */
  free(msg);
  return cli_fail(ctx, err);
}

int cli_fail_code(cli_ctx *ctx, int32_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = fail_v(ctx, code, fmt, ap);
  va_end(ap);
  return rc;
}

void cli_print_usage(const cli_ctx *ctx, FILE *f) {
  fprintf(f, "usage: backend-cli [--db PATH] [--json] %s%s%s\n", ctx->cmd_name,
          ctx->usage && *ctx->usage ? " " : "", ctx->usage ? ctx->usage : "");
  if (ctx->help) fprintf(f, "%s", ctx->help);
}

int cli_usage_error(cli_ctx *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = cli_vformat(fmt, ap);
  va_end(ap);
  const char *m = msg ? msg : "usage error";
  if (ctx->json) { /* bytes that are not UTF-8 become U+FFFD: JSON holds any argument */
    char *full = cli_format_utf8("%s; usage: backend-cli %s %s", m, ctx->cmd_name, ctx->usage ? ctx->usage : "");
    be_error *err = NULL;
    be_error_new(&err, BE_E_VALIDATION, full); /* on failure err is the out-of-memory error */
    free(full);
    char *json = NULL;
    if (be_error_to_json(&json, NULL, err) == BE_OK) fprintf(stderr, "%s\n", json);
    be_free(json);
    be_error_free(err);
  } else { /* a terminal shows the argument's bytes as they are */
    fprintf(stderr, "backend-cli%s%s: %s\n", *ctx->cmd_name ? " " : "", ctx->cmd_name, m);
    if (*ctx->cmd_name) cli_print_usage(ctx, stderr);
    else fputs("usage: backend-cli [--db PATH] [--json] COMMAND [ARGS...]  (backend-cli --help lists them)\n", stderr);
  }
  free(msg);
  return CLI_EXIT_USAGE;
}

/* ---- arguments ---- */

static const cli_opt *find_opt(const cli_opt *opts, const char *arg, const char **inline_value) {
  *inline_value = NULL;
  for (const cli_opt *o = opts; o && o->long_name; o++) {
    size_t n = strlen(o->long_name);
    if (strcmp(arg, o->long_name) == 0 || (o->short_name && strcmp(arg, o->short_name) == 0)) return o;
    if (o->takes_value && strncmp(arg, o->long_name, n) == 0 && arg[n] == '=') {
      *inline_value = arg + n + 1;
      return o;
    }
  }
  return NULL;
}

int cli_parse(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, const char **pos, int min_pos,
              int max_pos, int *n_pos) {
  int n = 0, only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && a[0] == '-' && a[1] != '\0') {
      const char *inl = NULL;
      const cli_opt *o = find_opt(opts, a, &inl);
      if (o == NULL) return cli_usage_error(ctx, "unknown option %s", a);
      if (!o->takes_value) *o->value = "1";
      else if (inl) *o->value = inl;
      else if (i + 1 < argc) *o->value = argv[++i];
      else return cli_usage_error(ctx, "option %s needs a value", a);
      continue;
    }
    if (n >= max_pos) return cli_usage_error(ctx, "unexpected argument '%s'", a);
    pos[n++] = a;
  }
  if (n < min_pos) return cli_usage_error(ctx, "missing argument");
  if (n_pos) *n_pos = n;
  return CLI_EXIT_OK;
}

int cli_parse_int(cli_ctx *ctx, const char *what, const char *text, int64_t lo, int64_t hi, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || end == text || *end != '\0' || v < lo || v > hi)
    return cli_usage_error(ctx, "%s must be a whole number from %lld to %lld, not '%s'", what,
                           (long long)lo, (long long)hi, text);
  *out = v;
  return CLI_EXIT_OK;
}

/* ---- the app ---- */

/* The path a file: URI names (after an empty or "localhost" authority,
 * before '?' or '#') in buf; NULL for an in-memory database and when the
 * path cannot be read off (%-escapes, another host, too long). */
static const char *uri_file(const char *uri, char *buf, size_t cap) {
  const char *p = uri + 5, *query = strchr(p, '?');
  if (query && (strstr(query, "mode=memory") || strstr(query, "vfs=memdb"))) return NULL;
  if (strncmp(p, "//", 2) == 0) {
    p += 2;
    if (strncmp(p, "localhost/", 10) == 0) p += 9;
    else if (*p != '/') return NULL;
  }
  size_t n = strcspn(p, "?#");
  if (n == 0 || n >= cap || memchr(p, '%', n) || (n == 8 && strncmp(p, ":memory:", 8) == 0)) return NULL;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

const char *cli_db_file(const char *db, char *buf, size_t cap) {
  if (strcmp(db, ":memory:") == 0 || *db == '\0') return NULL;
  return strncmp(db, "file:", 5) == 0 ? uri_file(db, buf, cap) : db;
}

/* The reason a database file cannot be used, found before SQLite would
 * create or half-open it; 0 when it looks usable. */
static int check_file(cli_ctx *ctx, int mode) {
  char buf[4096];
  const char *path = cli_db_file(ctx->db, buf, sizeof buf);
  if (path == NULL) return 0;
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT && mode == CLI_OPEN_CREATE) return 0;
    if (errno == ENOENT)
      return cli_fail_code(ctx, BE_E_NOT_FOUND,
                           "no database file '%s' (create it with `backend-cli --db %s init`)", ctx->db,
                           ctx->db);
    /* a path too long, a component that is not a directory, no search
     * permission: nothing a retry would change (exit 11, not 9) */
    return cli_fail_code(ctx, BE_E_STORAGE, "cannot use database file '%s': %s", ctx->db,
                         strerror(errno));
  }
  if (S_ISDIR(st.st_mode))
    return cli_fail_code(ctx, BE_E_STORAGE, "database '%s' is a directory, not a file", ctx->db);
  if (access(path, R_OK | W_OK) != 0)
    return cli_fail_code(ctx, BE_E_STORAGE,
                         "database file '%s' is read-only (%s): libbackend opens it for reading and writing "
                         "(WAL journal, migrations)",
                         ctx->db, strerror(errno));
  return 0;
}

/* The SQLite drivers besides the default, made once and kept for the
 * process: EXISTING opens read-write without SQLITE_OPEN_CREATE (the
 * default journal mode, WAL); INSPECT opens read-only, never creates and
 * leaves the file's journal mode alone (PRAGMA journal_mode=WAL is a
 * write, and SQLite does not wait on a lock for it). NULL when out of
 * memory. */
enum {
  DRIVER_EXISTING,
  DRIVER_INSPECT,
};

static const be_driver *cli_driver(int which) {
  static be_driver *made[2];
  if (made[which] == NULL) {
    be_sqlite_options o = BE_SQLITE_OPTIONS_INIT;
    o.open_flags = which == DRIVER_EXISTING ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (which == DRIVER_INSPECT) o.journal_mode = BE_SQLITE_JOURNAL_DEFAULT;
    be_sqlite_driver_new(&made[which], &o, NULL);
  }
  return made[which];
}

static int fail_open(cli_ctx *ctx, be_error *err);
static void waiter_start(const char *db);

int cli_open_app(be_app **out, cli_ctx *ctx, be_app_options *opts, int mode) {
  *out = NULL;
  int rc = check_file(ctx, mode);
  if (rc != 0) return rc;
  be_app_options defaults = BE_APP_OPTIONS_INIT;
  if (opts == NULL) opts = &defaults;
  opts->database = ctx->db;
  /* a command that reads never creates the file, whatever the DSN (a
   * file: URI the stat() above may not see through) */
  if (mode == CLI_OPEN_EXISTING && opts->driver == NULL && strcmp(ctx->db, ":memory:") != 0)
    opts->driver = cli_driver(DRIVER_EXISTING);
  be_error *err = NULL;
  waiter_start(ctx->db);
  if (be_app_new(out, opts, &err) == BE_OK) return CLI_EXIT_OK;
  cli_close_app(NULL);
  return fail_open(ctx, err);
}

int cli_open_conn(be_conn **out, cli_ctx *ctx, int mode) {
  *out = NULL;
  int rc = check_file(ctx, mode);
  if (rc != 0) return rc;
  be_error *err = NULL;
  const be_driver *inspect = cli_driver(DRIVER_INSPECT);
  if (inspect == NULL) return cli_fail_code(ctx, BE_E_NOMEM, "out of memory");
  if (be_conn_open(out, inspect, ctx->db, &err) == BE_OK) return CLI_EXIT_OK;
  return fail_open(ctx, err);
}

/* Report a failed open, naming the database: the message is made valid
 * UTF-8 at its full length (the path may hold any bytes and be long). */
static int fail_open(cli_ctx *ctx, be_error *err) {
  be_error *wrapped = NULL;
  char *msg = cli_format_utf8("cannot open database '%s': %s", ctx->db, be_error_message(err));
  int32_t code = be_error_code(err);
  be_error_wrap(&wrapped, code, msg, err); /* takes err, also on failure */
  free(msg);
  return cli_fail(ctx, wrapped);
}

/* A USER argument that is neither an email nor a positive id is a usage
 * error; *id gets the id (0 for an email). */
static int parse_user(int64_t *id, cli_ctx *ctx, const char *who) {
  *id = 0;
  if (strchr(who, '@')) return CLI_EXIT_OK;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(who, &end, 10);
  if (errno || end == who || *end != '\0' || v <= 0)
    return cli_usage_error(ctx, "USER is an email or a numeric id, not '%s'", who);
  *id = v;
  return CLI_EXIT_OK;
}

int cli_find_user(int64_t *out_id, cli_ctx *ctx, be_app *app, const char *who) {
  be_error *err = NULL;
  int64_t id = 0;
  int rc = parse_user(&id, ctx, who);
  if (rc != CLI_EXIT_OK || id > 0) {
    if (rc == CLI_EXIT_OK) *out_id = id;
    return rc;
  }
  be_user *u = NULL;
  if (be_user_get_by_email(&u, app, who, BE_NUL_TERMINATED, &err) != BE_OK) return cli_fail(ctx, err);
  *out_id = be_user_id(u);
  be_user_free(u);
  return CLI_EXIT_OK;
}

int cli_run(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, int n_pos, int user_pos, cli_app_fn fn,
            void *data) {
  const char *pos[2] = {NULL, NULL};
  int rc = cli_parse(ctx, argc, argv, opts, pos, n_pos, n_pos, NULL);
  if (rc) return rc;
  int64_t user = 0;
  /* the arguments first: a bad USER is a usage error whatever the database */
  if (user_pos >= 0 && (rc = parse_user(&user, ctx, pos[user_pos])) != 0) return rc;
  be_app *app = NULL;
  if ((rc = cli_open_app(&app, ctx, NULL, CLI_OPEN_EXISTING)) != 0) return rc;
  if (user_pos < 0 || (rc = cli_find_user(&user, ctx, app, pos[user_pos])) == 0) rc = fn(ctx, app, pos, user, data);
  cli_close_app(app);
  return rc;
}

/* ---- passwords ---- */

static int read_line(char *buf, size_t cap, FILE *f) {
  if (fgets(buf, (int)cap, f) == NULL) return -1;
  size_t n = strlen(buf);
  if (n == cap - 1 && buf[n - 1] != '\n') return -2;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  return 0;
}

int cli_read_password(char **out, cli_ctx *ctx, const char *prompt) {
  enum { CAP = 1024 };
  *out = NULL;
  char *buf = calloc(1, CAP);
  if (buf == NULL) return cli_fail_code(ctx, BE_E_NOMEM, "out of memory");
  int tty = isatty(STDIN_FILENO);
  struct termios old, quiet;
  if (tty) { /* echo off first, then the prompt: nothing typed after it is flushed */
    if (tcgetattr(STDIN_FILENO, &old) == 0) {
      quiet = old;
      quiet.c_lflag &= ~(tcflag_t)ECHO;
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    } else tty = 0;
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
  }
  int rc = read_line(buf, CAP, stdin);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  if (rc != 0) {
    cli_password_free(buf);
    return cli_fail_code(ctx, BE_E_VALIDATION,
                         rc == -1 ? "no password on standard input" : "password longer than 1023 bytes");
  }
  *out = buf;
  return CLI_EXIT_OK;
}

void cli_password_free(char *pw) {
  if (pw == NULL) return;
  explicit_bzero(pw, strlen(pw));
  free(pw);
}

/* ---- the busy-wait notice ---- */

/* While the app is open and no progress bar is drawn, a thread says on a
 * terminal that the command is waiting (a locked database waits up to the
 * driver's 5 s busy timeout before failing with exit 9). */
static struct {
  pthread_t thread;
  int running;
  atomic_int stop, bar_active;
  const char *db;
} waiter;

static int64_t now_ms(void);

static void *wait_notice(void *arg) {
  (void)arg;
  int64_t start = now_ms();
  int shown = 0;
  while (!atomic_load(&waiter.stop)) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int64_t waited = now_ms() - start;
    if (waited < 1000 || atomic_load(&waiter.bar_active) || atomic_load(&waiter.stop)) continue;
    fprintf(stderr, "\rwaiting for %s: %.1f s (locked by another process? gives up at 5 s) ", waiter.db,
            (double)waited / 1000.0);
    fflush(stderr);
    shown = 1;
  }
  if (shown) fputs("\r\033[K", stderr);
  return NULL;
}

static void waiter_start(const char *db) {
  if (!isatty(STDERR_FILENO) || waiter.running) return;
  atomic_store(&waiter.stop, 0);
  waiter.db = db;
  waiter.running = pthread_create(&waiter.thread, NULL, wait_notice, NULL) == 0;
}

void cli_close_app(be_app *app) {
  if (waiter.running) {
    atomic_store(&waiter.stop, 1);
    pthread_join(waiter.thread, NULL);
    waiter.running = 0;
  }
  be_app_free(app);
}

/* ---- progress ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_progress_begin(cli_progress *p, const char *label, int64_t total) {
  p->label = label;
  p->total = total > 0 ? total : 1;
  p->enabled = isatty(STDERR_FILENO);
  p->last_drawn = 0;
  atomic_store(&waiter.bar_active, 1);
  cli_progress_update(p, 0);
}

void cli_progress_update(cli_progress *p, int64_t done) {
  if (!p->enabled) return;
  int64_t t = now_ms();
  if (done < p->total && done > 0 && t - p->last_drawn < 80) return;
  p->last_drawn = t;
  enum { WIDTH = 30 };
  int fill = (int)(done * WIDTH / p->total);
  char bar[WIDTH + 1];
  for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
  bar[WIDTH] = '\0';
  fprintf(stderr, "\r%-24s [%s] %3d%% %lld/%lld", p->label, bar, (int)(done * 100 / p->total),
          (long long)done, (long long)p->total);
  fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
  atomic_store(&waiter.bar_active, 0);
  if (!p->enabled) return;
  cli_progress_update(p, p->total);
  fputc('\n', stderr);
}
