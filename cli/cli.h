/* SPDX-License-Identifier: MIT */
/* backend-cli: what every command file shares — the command table's
 * types, the invocation context, the exit codes, and the helpers of
 * cli/cli.c (errors, opening the app, arguments, passwords, progress).
 *
 * Adding a command: write `static int cmd_x(cli_ctx *ctx, int argc, char **argv)`
 * in a cli/cmd_<group>.c file, list it in that file's `cli_<group>_cmds[]`
 * table, and (for a new file) add the table to `cli_groups[]` in
 * cli/dispatch.c and the file to cli/meson.build. Global options (--db, --json,
 * --help) are already removed from argv when the command runs; argv[0] is
 * the command's own name. */
#ifndef BACKEND_CLI_H
#define BACKEND_CLI_H

#include <backend/backend.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (documented in `backend-cli --help` and the README). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1 /* the command ran and said no (audit chain broken, version mismatch) */
#define CLI_EXIT_USAGE 2   /* bad arguments: the usage goes to stderr */

/* Everything a command needs about this invocation. */
typedef struct cli_ctx {
  const char *db;       /* --db, $BACKEND_DB or "backend.db" */
  int json;             /* --json: results as JSON on stdout, errors as problem JSON on stderr */
  const char *cmd_name; /* "user add": for messages and usage */
  const char *usage;    /* the command's argument synopsis */
  const char *help;     /* the command's longer description, options */
} cli_ctx;

typedef int (*cli_fn)(cli_ctx *ctx, int argc, char **argv);

/* One row of a command table; a table ends with a row whose name is NULL.
 * A row with `subs` is a group ("user") whose subcommands are in subs. */
typedef struct cli_cmd {
  const char *name;
  const char *usage;   /* arguments after the name, e.g. "EMAIL NAME [--bio TEXT]" */
  const char *summary; /* one line for the command list */
  const char *help;    /* more lines for `--help`, or NULL */
  cli_fn run;
  const struct cli_cmd *subs;
} cli_cmd;

/* The command tables, one per cli/cmd_*.c file. */
extern const cli_cmd cli_basic_cmds[];
extern const cli_cmd cli_db_cmds[];
extern const cli_cmd cli_user_cmds[];
extern const cli_cmd cli_role_cmds[];
extern const cli_cmd cli_audit_cmds[];
extern const cli_cmd cli_profile_cmds[];
extern const cli_cmd cli_demo_cmds[];
extern const cli_cmd cli_ops_cmds[];

/* Run one command line (argv[0] the program's name) and return its exit
 * code: what main() does (cli/dispatch.c). It never calls exit(); it
 * reads $BACKEND_DB, writes to stdout and stderr, and reads passwords from
 * stdin. */
int cli_main(int argc, char **argv);

/* ---- operations (cli/cmd_ops.c) ---- */

/* Run n read operations on app (user gets, list pages, permission
 * checks; nothing written), with progress on a terminal, so that the
 * library's in-memory figures describe this database now. */
int cli_ops_sample(be_app *app, int64_t n, be_error **err);
/* Print the app's status table (JSON with --json) on stdout. */
void cli_ops_print_status(cli_ctx *ctx, be_app *app);

/* ---- exit codes and errors ---- */

/* The exit code for a BE_* code (one table, by be_code_category()). */
int cli_exit_code(int32_t code);
/* 1 when code is an exit code the table documents (0 to 12). */
int cli_exit_code_documented(int code);
/* Print the exit-code table (for --help). */
void cli_print_exit_codes(FILE *f);
/* Report err (human line, or problem JSON with --json) on stderr, free it,
 * and return its exit code. The database's path is named for storage
 * errors. */
int cli_fail(cli_ctx *ctx, be_error *err);
/* Report a failure the CLI itself found, with a BE_E_* code. */
int cli_fail_code(cli_ctx *ctx, int32_t code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
/* A usage error: message, then the command's usage; returns CLI_EXIT_USAGE. */
int cli_usage_error(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The command's usage and help text on f. */
void cli_print_usage(const cli_ctx *ctx, FILE *f);

/* ---- arguments ---- */

/* A command's option: "-n"/"--count" style names, a value or a flag. */
typedef struct cli_opt {
  const char *short_name; /* "-n" or NULL */
  const char *long_name;  /* "--count" */
  int takes_value;
  const char **value; /* receives the value (or "1" for a flag) */
} cli_opt;

/* Split argv[1..] into options (opts, ended by a NULL long_name) and
 * positionals (written to pos, at most max_pos, count to *n_pos).
 * Returns CLI_EXIT_OK or a usage error's exit code. */
int cli_parse(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, const char **pos, int min_pos,
              int max_pos, int *n_pos);
/* Parse a whole number in [lo, hi] for option `what`; usage error otherwise. */
int cli_parse_int(cli_ctx *ctx, const char *what, const char *text, int64_t lo, int64_t hi, int64_t *out);

/* ---- the app ---- */

#define CLI_OPEN_EXISTING 0 /* the file must exist (any command that reads); never created */
#define CLI_OPEN_CREATE 1   /* create it when missing (init, demo) */

/* Open the app on ctx->db (migrating it); close it with cli_close_app().
 * While it is open, a command that waits over 1 s (a locked database)
 * says so on stderr when that is a terminal. opts may be NULL (defaults);
 * its database field is set here. On failure reports and returns the exit
 * code; *out is NULL. */
int cli_open_app(be_app **out, cli_ctx *ctx, be_app_options *opts, int mode);
/* Free an app cli_open_app() opened (and stop its busy-wait notice). */
void cli_close_app(be_app *app);
/* Open one raw connection to ctx->db to read it (no migrations): read-only,
 * never creating the file, leaving its journal mode as it is; reporting
 * like cli_open_app(). */
int cli_open_conn(be_conn **out, cli_ctx *ctx, int mode);
/* The file on disk a DSN names: db itself for a path, the path of a file:
 * URI (in buf, cap bytes); NULL for ":memory:", an in-memory URI, or a URI
 * whose path cannot be read off (%-escapes). */
const char *cli_db_file(const char *db, char *buf, size_t cap);
/* Find a user by numeric id or email; reports and returns the exit code on failure. */
int cli_find_user(int64_t *out_id, cli_ctx *ctx, be_app *app, const char *who);

/* What a command does once its arguments are parsed and the app is open:
 * pos are its positional arguments, user the id of the USER argument (0
 * when it has none). Reports its own failure; returns the exit code. */
typedef int (*cli_app_fn)(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data);

/* The usual command: parse argv (opts may be NULL; exactly n_pos
 * positionals, at most 2), open the existing database, resolve pos[user_pos]
 * as USER unless user_pos < 0, run fn, close the app. */
int cli_run(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, int n_pos, int user_pos, cli_app_fn fn,
            void *data);

/* ---- passwords ---- */

/* Read a password: from the terminal without echo (prompt on stderr) when
 * stdin is a tty, else one line of stdin. Never from argv. The caller
 * wipes and frees *out with cli_password_free(). */
int cli_read_password(char **out, cli_ctx *ctx, const char *prompt);
void cli_password_free(char *pw);

/* ---- progress (stderr, only when stderr is a terminal) ---- */

typedef struct cli_progress {
  const char *label;
  int64_t total;
  int enabled;
  int64_t last_drawn;
} cli_progress;

void cli_progress_begin(cli_progress *p, const char *label, int64_t total);
void cli_progress_update(cli_progress *p, int64_t done);
void cli_progress_end(cli_progress *p);

/* ---- JSON output (cli/json.c) ---- */

/* Write s as a JSON string literal (quotes included); NULL writes null. */
void cli_json_str(FILE *f, const char *s);
/* "key": with a leading comma unless first. */
void cli_json_key(FILE *f, int first, const char *key);

/* ---- UTF-8 (cli/json.c) ---- */

/* The length of the valid UTF-8 character at s (n bytes left), 0 when the
 * byte at s does not start one. */
size_t cli_utf8_seq(const unsigned char *s, size_t n);
/* A malloc'd copy of s with every byte that is not part of a valid UTF-8
 * character replaced by U+FFFD; NULL when out of memory. */
char *cli_utf8_clean(const char *s);
/* vsnprintf into a malloc'd string of any length, bytes as given; NULL
 * when out of memory. */
char *cli_vformat(const char *fmt, va_list ap);
/* printf into a malloc'd string of any length, then cli_utf8_clean() it:
 * text the library accepts as a message (which it cuts at a character
 * boundary). NULL when out of memory. */
char *cli_vformat_utf8(const char *fmt, va_list ap);
char *cli_format_utf8(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* BACKEND_CLI_H */
