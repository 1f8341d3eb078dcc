/* SPDX-License-Identifier: MIT */
/* backend-cli: permissions — `role create|grant|revoke|assign|unassign`
 * and `can USER PERMISSION` (exit 0 allowed, 5 denied). */
#include "cli.h"

#include <string.h>

/* What one role subcommand does once the app is open. */
typedef int (*role_op)(be_app *app, const char **pos, int64_t user, be_error **err);

static int op_create(be_app *app, const char **pos, int64_t user, be_error **err) {
  (void)user;
  return be_perm_role_create(NULL, app, 0, pos[0], BE_NUL_TERMINATED, err);
}
static int op_grant(be_app *app, const char **pos, int64_t user, be_error **err) {
  (void)user;
  return be_perm_role_grant(app, 0, pos[0], BE_NUL_TERMINATED, pos[1], BE_NUL_TERMINATED, err);
}
static int op_revoke(be_app *app, const char **pos, int64_t user, be_error **err) {
  (void)user;
  return be_perm_role_revoke(app, 0, pos[0], BE_NUL_TERMINATED, pos[1], BE_NUL_TERMINATED, err);
}
static int op_assign(be_app *app, const char **pos, int64_t user, be_error **err) {
  return be_perm_user_assign(app, 0, user, pos[0], BE_NUL_TERMINATED, err);
}
static int op_unassign(be_app *app, const char **pos, int64_t user, be_error **err) {
  return be_perm_user_unassign(app, 0, user, pos[0], BE_NUL_TERMINATED, err);
}

/* One role subcommand: its operation and what it says when done. */
typedef struct role_job {
  role_op op;
  const char *done;
  int n_pos, user_arg;
} role_job;

static int do_role(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  const role_job *job = data;
  be_error *err = NULL;
  if (job->op(app, pos, user, &err) != BE_OK) return cli_fail(ctx, err);
  if (ctx->json) {
    printf("{\"role\":");
    cli_json_str(stdout, pos[0]);
    if (job->user_arg) printf(",\"user_id\":%lld", (long long)user);
    else if (job->n_pos > 1) printf(",\"permission\":"), cli_json_str(stdout, pos[1]);
    printf(",\"done\":");
    cli_json_str(stdout, job->done);
    printf("}\n");
  } else {
    printf("role %s: %s%s%s\n", pos[0], job->done, job->n_pos > 1 ? " " : "", job->n_pos > 1 ? pos[1] : "");
  }
  return CLI_EXIT_OK;
}

/* n_pos arguments: ROLE [PERMISSION | USER (user_arg)]. */
static int run_role(cli_ctx *ctx, int argc, char **argv, int n_pos, int user_arg, role_op op, const char *done) {
  role_job job = {op, done, n_pos, user_arg};
  return cli_run(ctx, argc, argv, NULL, n_pos, user_arg ? 1 : -1, do_role, &job);
}

static int cmd_role_create(cli_ctx *ctx, int argc, char **argv) {
  return run_role(ctx, argc, argv, 1, 0, op_create, "created");
}
static int cmd_role_grant(cli_ctx *ctx, int argc, char **argv) {
  return run_role(ctx, argc, argv, 2, 0, op_grant, "granted");
}
static int cmd_role_revoke(cli_ctx *ctx, int argc, char **argv) {
  return run_role(ctx, argc, argv, 2, 0, op_revoke, "revoked");
}
static int cmd_role_assign(cli_ctx *ctx, int argc, char **argv) {
  return run_role(ctx, argc, argv, 2, 1, op_assign, "assigned to");
}
static int cmd_role_unassign(cli_ctx *ctx, int argc, char **argv) {
  return run_role(ctx, argc, argv, 2, 1, op_unassign, "taken from");
}

static int do_can(cli_ctx *ctx, be_app *app, const char **pos, int64_t user, void *data) {
  (void)data;
  be_error *err = NULL;
  int code = be_perm_check(app, user, pos[1], BE_NUL_TERMINATED, &err);
  if (code != BE_OK && code != BE_E_FORBIDDEN) return cli_fail(ctx, err);
  be_error_free(err);
  if (ctx->json) {
    printf("{\"user_id\":%lld,\"permission\":", (long long)user);
    cli_json_str(stdout, pos[1]);
    printf(",\"allowed\":%s}\n", code == BE_OK ? "true" : "false");
  } else {
    printf("%s\n", code == BE_OK ? "allowed" : "denied");
  }
  return cli_exit_code(code);
}

static int cmd_can(cli_ctx *ctx, int argc, char **argv) {
  return cli_run(ctx, argc, argv, NULL, 2, 0, do_can, NULL);
}

static const cli_cmd role_cmds[] = {
  {"create", "ROLE", "create a role", NULL, cmd_role_create, NULL},
  {"grant", "ROLE PERMISSION", "let a role do PERMISSION (resource:action, * wildcards)", NULL, cmd_role_grant,
   NULL},
  {"revoke", "ROLE PERMISSION", "take a permission from a role", NULL, cmd_role_revoke, NULL},
  {"assign", "ROLE USER", "give a user a role", NULL, cmd_role_assign, NULL},
  {"unassign", "ROLE USER", "take a role from a user", NULL, cmd_role_unassign, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};

const cli_cmd cli_role_cmds[] = {
  {"role", "create|grant|revoke|assign|unassign", "manage roles and their permissions", NULL, NULL, role_cmds},
  {"can", "USER PERMISSION", "may USER do PERMISSION? exit 0 allowed, 5 denied",
   "Prints allowed or denied; exit 0 when allowed, 5 (permission denied) when not.\n", cmd_can, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
