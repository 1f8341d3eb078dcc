/* SPDX-License-Identifier: MIT */
/* backend-cli: users and sessions — `user add|get|list|update|disable|
 * delete|set-password` and `login`. USER is an email or a numeric id.
 * Passwords come from a prompt without echo or from stdin, never argv. */
#include "cli.h"

#include <string.h>
#include <time.h>

/* A user on one line, or its JSON object (prefix: "" or a comma). */
static void print_user(cli_ctx *ctx, const be_user *u, const char *prefix) {
  if (ctx->json) {
    char *json = NULL;
    if (be_user_to_json(&json, NULL, u, NULL) == BE_OK) printf("%s%s", prefix, json);
    be_free(json);
    return;
  }
  time_t t = (time_t)(be_user_created_at_ms(u) / 1000);
  struct tm tm;
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M", gmtime_r(&t, &tm));
  printf("%6lld  %-32s %-24s %-8s created %s UTC\n", (long long)be_user_id(u), be_user_email(u), be_user_name(u),
         be_user_status(u) == BE_USER_ACTIVE ? "active" : "disabled", when);
}

/* Print one user and finish the command. */
static int show_user(cli_ctx *ctx, be_user *u) {
  print_user(ctx, u, "");
  if (ctx->json) printf("\n");
  be_user_free(u);
  return CLI_EXIT_OK;
}

/* The fields of `user add` and `user update` from their options. */
typedef struct user_fields {
  const char *email, *name, *bio, *extra, *enable;
} user_fields;

static int do_user_add(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)user;
  const user_fields *f = data;
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = pos[0], in.name = pos[1], in.bio = f->bio, in.extra = f->extra;
  be_user *u = NULL;
  be_error *err = NULL;
  if (be_user_create(&u, NULL, app, 0, &in, &err) != BE_OK) return cli_fail(ctx, err);
  return show_user(ctx, u);
}

static int cmd_user_add(cli_ctx *ctx, int argc, char **argv) {
  user_fields f = {0};
  const cli_opt opts[] = {{NULL, "--bio", 1, &f.bio}, {NULL, "--extra", 1, &f.extra}, {NULL, NULL, 0, NULL}};
  return cli_run(ctx, argc, argv, opts, 2, -1, do_user_add, &f);
}

static int do_user_get(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)pos, (void)data;
  be_user *u = NULL;
  be_error *err = NULL;
  if (be_user_get(&u, app, user, &err) != BE_OK) return cli_fail(ctx, err);
  return show_user(ctx, u);
}

static int cmd_user_get(cli_ctx *ctx, int argc, char **argv) {
  return cli_run(ctx, argc, argv, NULL, 1, 0, do_user_get, NULL);
}

/* Print every page (or one page with --limit) of users. */
static int list_pages(cli_ctx *ctx, be_app *app, const char *cursor, int32_t limit, int all) {
  char next[256] = "";
  int n = 0;
  if (ctx->json) printf("{\"users\":[");
  for (;;) {
    be_user_list *page = NULL;
    be_error *err = NULL;
    if (be_user_list_page(&page, app, cursor, BE_NUL_TERMINATED, limit, &err) != BE_OK) {
      if (ctx->json) printf("]}\n");
      return cli_fail(ctx, err);
    }
    for (size_t i = 0; i < be_user_list_count(page); i++, n++)
      print_user(ctx, be_user_list_get(page, i), n ? "," : "");
    const char *c = be_user_list_next_cursor(page);
    snprintf(next, sizeof next, "%s", c ? c : "");
    be_user_list_free(page);
    if (!all || next[0] == '\0') break;
    cursor = next;
  }
  if (ctx->json) {
    printf("],\"next_cursor\":");
    cli_json_str(stdout, next[0] ? next : NULL);
    printf("}\n");
  } else if (next[0]) {
    printf("more: backend-cli user list --cursor %s\n", next);
  }
  return CLI_EXIT_OK;
}

static int cmd_user_list(cli_ctx *ctx, int argc, char **argv) {
  const char *limit_s = NULL, *cursor = NULL;
  const cli_opt opts[] = {{NULL, "--limit", 1, &limit_s}, {NULL, "--cursor", 1, &cursor}, {NULL, NULL, 0, NULL}};
  int rc = cli_parse(ctx, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc) return rc;
  int64_t limit = BE_USER_PAGE_MAX;
  if (limit_s && (rc = cli_parse_int(ctx, "--limit", limit_s, 1, BE_USER_PAGE_MAX, &limit)) != 0) return rc;
  be_app *app = NULL;
  if ((rc = cli_open_app(&app, ctx, NULL, CLI_OPEN_EXISTING)) != 0) return rc;
  rc = list_pages(ctx, app, cursor, (int32_t)limit, limit_s == NULL);
  cli_close_app(app);
  return rc;
}

/* Apply the be_user_input in data to USER, print the result. */
static int do_user_update(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)pos;
  be_user *u = NULL;
  be_error *err = NULL;
  if (be_user_update(&u, app, 0, user, data, &err) != BE_OK) return cli_fail(ctx, err);
  return show_user(ctx, u);
}

static int cmd_user_update(cli_ctx *ctx, int argc, char **argv) {
  user_fields f = {0};
  const cli_opt opts[] = {{NULL, "--email", 1, &f.email}, {NULL, "--name", 1, &f.name}, {NULL, "--bio", 1, &f.bio}, {NULL, "--extra", 1, &f.extra}, {NULL, "--enable", 0, &f.enable}, {NULL, NULL, 0, NULL}};
  const char *pos[1];
  int rc = cli_parse(ctx, argc, argv, opts, pos, 1, 1, NULL); /* to check for "nothing to change" first */
  if (rc) return rc;
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = f.email, in.name = f.name, in.bio = f.bio, in.extra = f.extra;
  in.fields = (f.email ? BE_USER_FIELD_EMAIL : 0) | (f.name ? BE_USER_FIELD_NAME : 0) |
              (f.bio ? BE_USER_FIELD_BIO : 0) | (f.extra ? BE_USER_FIELD_EXTRA : 0) |
              (f.enable ? BE_USER_FIELD_STATUS : 0);
  if (in.fields == 0)
    return cli_usage_error(ctx, "nothing to change: give --email, --name, --bio, --extra or --enable");
  return cli_run(ctx, argc, argv, opts, 1, 0, do_user_update, &in);
}

static int cmd_user_disable(cli_ctx *ctx, int argc, char **argv) {
  be_user_input in = BE_USER_INPUT_INIT;
  in.fields = BE_USER_FIELD_STATUS;
  in.status = BE_USER_DISABLED;
  return cli_run(ctx, argc, argv, NULL, 1, 0, do_user_update, &in);
}

static int do_user_delete(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)pos, (void)data;
  be_error *err = NULL;
  if (be_user_delete(app, 0, user, &err) != BE_OK) return cli_fail(ctx, err);
  if (ctx->json) printf("{\"deleted\":%lld}\n", (long long)user);
  else printf("deleted user %lld\n", (long long)user);
  return CLI_EXIT_OK;
}

static int cmd_user_delete(cli_ctx *ctx, int argc, char **argv) {
  return cli_run(ctx, argc, argv, NULL, 1, 0, do_user_delete, NULL);
}

static int do_set_password(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)pos, (void)data;
  char *pw = NULL;
  be_error *err = NULL;
  int rc = cli_read_password(&pw, ctx, "New password: ");
  if (rc == 0 && be_auth_set_password(app, 0, user, pw, BE_NUL_TERMINATED, &err) != BE_OK) rc = cli_fail(ctx, err);
  cli_password_free(pw);
  if (rc) return rc;
  if (ctx->json) printf("{\"user_id\":%lld,\"password_set\":true}\n", (long long)user);
  else printf("password set for user %lld (argon2id)\n", (long long)user);
  return CLI_EXIT_OK;
}

static int cmd_user_set_password(cli_ctx *ctx, int argc, char **argv) {
  return cli_run(ctx, argc, argv, NULL, 1, 0, do_set_password, NULL);
}

static int do_login(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)user, (void)data;
  char *pw = NULL, *token = NULL;
  int64_t id = 0;
  be_error *err = NULL;
  int rc = cli_read_password(&pw, ctx, "Password: ");
  if (rc == 0 && be_auth_login(&token, &id, app, pos[0], BE_NUL_TERMINATED, pw, BE_NUL_TERMINATED, &err) != BE_OK)
    rc = cli_fail(ctx, err);
  cli_password_free(pw);
  if (rc == 0 && ctx->json) {
    printf("{\"user_id\":%lld,\"token\":", (long long)id);
    cli_json_str(stdout, token);
    printf("}\n");
  } else if (rc == 0) {
    printf("logged in as user %lld\ntoken %s\n", (long long)id, token);
  }
  be_auth_token_free(token);
  return rc;
}

static int cmd_login(cli_ctx *ctx, int argc, char **argv) {
  return cli_run(ctx, argc, argv, NULL, 1, -1, do_login, NULL);
}

static const cli_cmd user_cmds[] = {
  {"add", "EMAIL NAME [--bio TEXT] [--extra JSON]", "create a user", NULL, cmd_user_add, NULL},
  {"get", "USER", "show a user (USER: email or id)", NULL, cmd_user_get, NULL},
  {"list", "[--limit N] [--cursor C]", "list users by id (every page, or one page with --limit)", NULL,
   cmd_user_list, NULL},
  {"update", "USER [--email E] [--name N] [--bio B] [--extra JSON] [--enable]", "change a user's fields", NULL,
   cmd_user_update, NULL},
  {"disable", "USER", "disable a user: no login, sessions ended, no permissions", NULL, cmd_user_disable, NULL},
  {"delete", "USER", "delete a user (the audit log keeps the record)", NULL, cmd_user_delete, NULL},
  {"set-password", "USER", "set a password, read without echo (or from stdin)",
   "The password is read from the terminal without echo, or as one line of stdin when\n"
   "stdin is not a terminal (e.g. `printf '%s\\n' \"$PW\" | backend-cli user set-password ada@example.com`).\n",
   cmd_user_set_password, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};

const cli_cmd cli_user_cmds[] = {
  {"user", "add|get|list|update|disable|delete|set-password", "manage users", NULL, NULL, user_cmds},
  {"login", "EMAIL", "log in (password without echo, or from stdin); prints a session token",
   "The password is read from the terminal without echo, or as one line of stdin when\n"
   "stdin is not a terminal. It is never taken from the command line.\n",
   cmd_login, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
