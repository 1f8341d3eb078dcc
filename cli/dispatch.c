/* SPDX-License-Identifier: MIT */
/* backend-cli: the dispatch — the global options (--db, --json, --help),
 * the list of command tables, finding the command (and the subcommand of
 * a group) and the help texts: cli_main(). main() (cli/main.c) only calls
 * it, so a test or fuzz harness can run a whole command line in-process.
 * The commands live in cli/cmd_*.c; the shared helpers in cli/cli.c. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Every command table, in the order `--help` lists them. A new file of
 * commands adds its table here (and its declaration in cli.h). */
static const struct {
  const char *title;
  const cli_cmd *cmds;
} cli_groups[] = {
  {"library", cli_basic_cmds},
  {"database", cli_db_cmds},
  {"operations", cli_ops_cmds},
  {"users and sessions", cli_user_cmds},
  {"permissions", cli_role_cmds},
  {"audit log", cli_audit_cmds},
  {"performance", cli_profile_cmds},
  {"demo", cli_demo_cmds},
};
#define N_GROUPS (sizeof cli_groups / sizeof cli_groups[0])

static void print_cmd_line(FILE *f, const char *prefix, const cli_cmd *c) {
  char left[96];
  snprintf(left, sizeof left, "%s%s %s", prefix, c->name, c->usage ? c->usage : "");
  if (strlen(left) > 40) fprintf(f, "  %s\n  %-40s %s\n", left, "", c->summary);
  else fprintf(f, "  %-40s %s\n", left, c->summary);
}

static void print_overview(FILE *f) {
  fputs("usage: backend-cli [--db PATH] [--json] COMMAND [ARGS...]\n"
        "       backend-cli COMMAND --help\n\n"
        "The libbackend services on an SQLite database, from the shell.\n\n"
        "global options (anywhere on the line):\n"
        "  --db PATH   the database file (default: $BACKEND_DB, else ./backend.db)\n"
        "  --json      results as JSON on stdout; errors as RFC 9457 problem JSON on stderr\n"
        "  --help, -h  this text, or a command's usage\n",
        f);
  for (size_t g = 0; g < N_GROUPS; g++) {
    fprintf(f, "\n%s:\n", cli_groups[g].title);
    for (const cli_cmd *c = cli_groups[g].cmds; c->name; c++) {
      if (c->subs == NULL) print_cmd_line(f, "", c);
      for (const cli_cmd *s = c->subs; s && s->name; s++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s ", c->name);
        print_cmd_line(f, prefix, s);
      }
    }
  }
  fputs("\nErrors go to stderr. Passwords are read from the terminal without echo, or from\n"
        "stdin when it is not a terminal; never from the command line.\n\n",
        f);
  cli_print_exit_codes(f);
}

static const cli_cmd *find_cmd(const cli_cmd *table, const char *name) {
  for (const cli_cmd *c = table; c && c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

static const cli_cmd *find_top(const char *name) {
  for (size_t g = 0; g < N_GROUPS; g++) {
    const cli_cmd *c = find_cmd(cli_groups[g].cmds, name);
    if (c) return c;
  }
  return NULL;
}

/* Take --db, --json and --help out of argv (up to a "--"); returns the new argc. */
static int take_globals(cli_ctx *ctx, int *help, int argc, char **argv, const char **bad) {
  int n = 0, i = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) break;
    if (strcmp(a, "--json") == 0) ctx->json = 1;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) *help = 1;
    else if (strncmp(a, "--db=", 5) == 0) ctx->db = a + 5;
    else if (strcmp(a, "--db") == 0) {
      if (i + 1 >= argc) *bad = "option --db needs a value";
      else ctx->db = argv[++i];
    } else argv[n++] = argv[i];
  }
  for (; i < argc; i++) argv[n++] = argv[i];
  return n;
}

static void print_group_help(FILE *f, const cli_cmd *group) {
  fprintf(f, "usage: backend-cli [--db PATH] [--json] %s SUBCOMMAND [ARGS...]\n\n%s\n\n", group->name,
          group->summary);
  for (const cli_cmd *s = group->subs; s->name; s++) print_cmd_line(f, "", s);
  fputs("\n", f);
  cli_print_exit_codes(f);
}

/* Run a group's subcommand (argv[0] is the group's name). */
static int run_group(cli_ctx *ctx, const cli_cmd *group, int help, int argc, char **argv) {
  char name[96];
  const cli_cmd *sub = argc > 1 ? find_cmd(group->subs, argv[1]) : NULL;
  if (sub == NULL) {
    if (help && argc == 1) {
      print_group_help(stdout, group);
      return CLI_EXIT_OK;
    }
    ctx->cmd_name = group->name;
    ctx->usage = "SUBCOMMAND [ARGS...]";
    ctx->help = NULL;
    if (!ctx->json) print_group_help(stderr, group);
    return cli_usage_error(ctx, argc > 1 ? "unknown subcommand '%s'" : "missing subcommand%s",
                           argc > 1 ? argv[1] : "");
  }
  snprintf(name, sizeof name, "%s %s", group->name, sub->name);
  ctx->cmd_name = name;
  ctx->usage = sub->usage;
  ctx->help = sub->help;
  if (help) {
    cli_print_usage(ctx, stdout);
    return CLI_EXIT_OK;
  }
  return sub->run(ctx, argc - 1, argv + 1);
}

int cli_main(int argc, char **argv) {
  cli_ctx ctx = {0};
  const char *env = getenv("BACKEND_DB");
  ctx.db = env && *env ? env : "backend.db";
  ctx.cmd_name = "";
  int help = 0;
  const char *bad = NULL;
  argc = take_globals(&ctx, &help, argc - 1, argv + 1, &bad);
  argv = argv + 1;
  if (bad) return cli_usage_error(&ctx, "%s", bad);
  if (argc == 0) {
    print_overview(help ? stdout : stderr);
    return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
  }
  const cli_cmd *c = find_top(argv[0]);
  if (c == NULL) return cli_usage_error(&ctx, "unknown command '%s'", argv[0]);
  if (c->subs) return run_group(&ctx, c, help, argc, argv);
  ctx.cmd_name = c->name;
  ctx.usage = c->usage;
  ctx.help = c->help;
  if (help) {
    cli_print_usage(&ctx, stdout);
    return CLI_EXIT_OK;
  }
  return c->run(&ctx, argc, argv);
}
