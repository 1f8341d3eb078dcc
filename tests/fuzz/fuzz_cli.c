/* SPDX-License-Identifier: MIT */
/* backend-cli's argument parsing and dispatch: the input's bytes, split on
 * NUL, are the command line (at most MAX_ARGS arguments after the
 * program's name) given to cli_main() (cli/dispatch.c) in-process, against
 * a database made once with `init` and put back byte for byte after every
 * input. stdout and stderr go to /dev/null during the call (sanitizer
 * reports still reach the real stderr), stdin is /dev/null, so `login` and
 * `user set-password` fail before any password hashing.
 *
 * Checked: the exit code is one the exit-code table documents (0..12,
 * `backend-cli codes`); a line that is a usage error by the documented
 * grammar — --db without a value, no command, an unknown command or
 * subcommand, an option the command's usage line does not list, an option
 * without its value — exits 2; `--help` on a known command exits 0. The
 * grammar is modelled here from the command tables' names and usage
 * strings, not from the dispatcher's code.
 *
 * Sandbox: every '/' of an argument becomes '_', and the call runs in a
 * scratch directory, so a path names a file there (the database cli.db,
 * notadb with junk bytes, the directory dir, or a file a command creates,
 * removed after the input). Skipped (return -1, not kept): lines naming
 * `demo` or `profile` without --help (they seed hundreds of rows and hash
 * passwords with argon2id), and --sample above SAMPLE_MAX. */
#include "cli.h"
#include "fuzz_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ARGS 24
#define SAMPLE_MAX 50

static int sandbox_fd = -1, devnull = -1, saved_out = -1, saved_err = -1;
static char sandbox[64];
static unsigned char *pristine;
static size_t pristine_len;

static const cli_cmd *const tables[] = {cli_basic_cmds, cli_db_cmds, cli_ops_cmds, cli_user_cmds,
                                        cli_role_cmds, cli_audit_cmds, cli_profile_cmds, cli_demo_cmds};

/* Run cli_main() in the sandbox with stdout/stderr to /dev/null. */
static int run_cli(int argc, char **argv) {
  int back = open(".", O_RDONLY | O_DIRECTORY);
  FZ_CHECK(back >= 0 && fchdir(sandbox_fd) == 0, "cannot enter the sandbox");
  fflush(stdout), fflush(stderr);
  dup2(devnull, STDOUT_FILENO), dup2(devnull, STDERR_FILENO);
  int rc = cli_main(argc, argv);
  fflush(stdout), fflush(stderr);
  dup2(saved_out, STDOUT_FILENO), dup2(saved_err, STDERR_FILENO);
  FZ_CHECK(fchdir(back) == 0, "cannot leave the sandbox");
  close(back);
  return rc;
}

static void write_file(const char *name, const void *p, size_t n) {
  int fd = openat(sandbox_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  FZ_CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n, "cannot write %s", name);
  close(fd);
}

/* Remove what the last input made, put cli.db back as `init` left it. */
static void restore_sandbox(void) {
  DIR *d = fdopendir(dup(sandbox_fd));
  FZ_CHECK(d != NULL, "cannot list the sandbox");
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "cli.db") || !strcmp(n, "notadb") || !strcmp(n, "dir"))
      continue;
    if (unlinkat(sandbox_fd, n, 0) != 0) unlinkat(sandbox_fd, n, AT_REMOVEDIR);
  }
  closedir(d);
  write_file("cli.db", pristine, pristine_len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(sandbox, sizeof sandbox, "%s", "/tmp/fuzz_cli.XXXXXX");
  FZ_CHECK(mkdtemp(sandbox) != NULL, "mkdtemp");
  sandbox_fd = open(sandbox, O_RDONLY | O_DIRECTORY);
  devnull = open("/dev/null", O_RDWR);
  saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
  FZ_CHECK(sandbox_fd >= 0 && devnull >= 0 && saved_out >= 0 && saved_err >= 0, "fds");
  __sanitizer_set_report_fd((void *)(intptr_t)saved_err);
  dup2(devnull, STDIN_FILENO);
  setenv("BACKEND_DB", "cli.db", 1);
  char *init[] = {"backend-cli", "init", NULL};
  FZ_CHECK(run_cli(2, init) == 0, "backend-cli init failed");
  write_file("notadb", "this is not an SQLite database, only some bytes\n", 48);
  FZ_CHECK(mkdirat(sandbox_fd, "dir", 0700) == 0, "mkdir dir");
  int fd = openat(sandbox_fd, "cli.db", O_RDONLY);
  struct stat st;
  FZ_CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0, "no cli.db after init");
  pristine_len = (size_t)st.st_size;
  pristine = malloc(pristine_len);
  FZ_CHECK(pristine && read(fd, pristine, pristine_len) == (ssize_t)pristine_len, "read cli.db");
  close(fd);
  return 0;
}

/* ---- the documented grammar ---- */

static const cli_cmd *find_in(const cli_cmd *t, const char *name) {
  for (; t && t->name; t++)
    if (strcmp(t->name, name) == 0) return t;
  return NULL;
}

static const cli_cmd *find_top(const char *name) {
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    const cli_cmd *c = find_in(tables[i], name);
    if (c) return c;
  }
  return NULL;
}

/* Whether the usage line lists option `name` (n bytes); *value: whether a
 * VALUE word follows it in its bracket ("[--limit N]", "[-n|--count N]"). */
static int usage_option(const char *usage, const char *name, size_t n, int *value) {
  for (const char *p = usage ? strstr(usage, name) : NULL; p; p = strstr(p + 1, name)) {
    int starts = p == usage || strchr(" [|", p[-1]) != NULL;
    if (!starts || (p[n] != ' ' && p[n] != ']' && p[n] != '|')) continue;
    const char *q = p + n;
    while (*q == '|') /* skip the other spellings */
      for (q++; *q && *q != ' ' && *q != ']' && *q != '|'; q++) {
      }
    *value = *q == ' ' && q[1] >= 'A' && q[1] <= 'Z';
    return 1;
  }
  return 0;
}

/* 1 when the command's arguments (after its name) break its usage line:
 * an option it does not list, or an option without its value. */
static int bad_options(const cli_cmd *c, int n, char **args) {
  for (int i = 0; i < n; i++) {
    const char *a = args[i];
    if (strcmp(a, "--") == 0) return 0;
    if (a[0] != '-' || a[1] == '\0') continue;
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    int value = 0;
    if (!usage_option(c->usage, a, len, &value)) return eq == NULL; /* "--x=v" may be a listed --x's value */
    if (value && eq == NULL && ++i >= n) return 1;
  }
  return 0;
}

/* What the grammar says the exit code must be: 0, 2, or -1 (not decided
 * by the grammar: the command runs). */
static int expected_exit(int argc, char **argv) {
  char *rest[MAX_ARGS + 1];
  int n = 0, help = 0, bad = 0, i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (!strcmp(argv[i], "--json")) continue;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) help = 1;
    else if (!strncmp(argv[i], "--db=", 5)) continue;
    else if (!strcmp(argv[i], "--db")) bad |= ++i >= argc;
    else rest[n++] = argv[i];
  }
  for (; i < argc; i++) rest[n++] = argv[i];
  if (bad) return 2;
  if (n == 0) return help ? 0 : 2;
  const cli_cmd *c = find_top(rest[0]);
  if (c == NULL) return 2;
  if (c->subs) {
    const cli_cmd *s = n > 1 ? find_in(c->subs, rest[1]) : NULL;
    if (s == NULL) return help && n == 1 ? 0 : 2;
    c = s, n--;
    memmove(rest, rest + 1, (size_t)n * sizeof rest[0]);
  }
  if (help) return 0;
  return bad_options(c, n - 1, rest + 1) ? 2 : -1;
}

/* ---- the input ---- */

/* Lines too slow to fuzz: demo or profile (without --help), a big --sample. */
static int too_slow(int argc, char **argv) {
  int help = 0, slow = 0;
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = !strncmp(a, "--sample=", 9) ? a + 9 : NULL;
    slow |= !strcmp(a, "demo") || !strcmp(a, "profile");
    if (!strcmp(a, "--sample") && i + 1 < argc) v = argv[i + 1];
    if (v && strtoll(v, NULL, 10) > SAMPLE_MAX) return 1;
  }
  return slow && !help;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  FZ_CHECK(buf != NULL, "malloc");
  memcpy(buf, data, size);
  buf[size] = '\0';
  for (size_t i = 0; i < size; i++)
    if (buf[i] == '/') buf[i] = '_';
  char *argv[MAX_ARGS + 2], *copy[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "backend-cli";
  for (char *p = buf; p < buf + size && argc <= MAX_ARGS; p += strlen(p) + 1) argv[argc++] = p;
  argv[argc] = NULL;
  if (too_slow(argc, argv)) {
    free(buf);
    return -1;
  }
  int want = expected_exit(argc, argv);
  memcpy(copy, argv, sizeof argv); /* cli_main reorders its argv */
  int rc = run_cli(argc, copy);
  restore_sandbox();
  FZ_CHECK(cli_exit_code_documented(rc), "exit code %d is not in the exit-code table", rc);
  if (want >= 0) {
    for (int i = 1; want != rc && i < argc; i++) fprintf(stderr, "arg %d: '%s'\n", i, argv[i]);
    FZ_CHECK(want == rc, "the usage grammar says exit %d, backend-cli gave %d", want, rc);
  }
  free(buf);
  return 0;
}
