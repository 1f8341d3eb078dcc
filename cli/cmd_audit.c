/* SPDX-License-Identifier: MIT */
/* backend-cli: the audit log — `audit list` (newest first, by user or
 * time) and `audit verify` (recompute the hash chain; exit 1 if broken). */
#include "cli.h"

#include <time.h>

static void print_row(cli_ctx *ctx, const be_audit_page *p, size_t i) {
  if (ctx->json) {
    printf("%s{\"id\":%lld,\"at_ms\":%lld,\"actor_id\":%lld,\"action\":", i ? "," : "",
           (long long)be_audit_page_id(p, i), (long long)be_audit_page_at_ms(p, i),
           (long long)be_audit_page_actor_id(p, i));
    cli_json_str(stdout, be_audit_page_action(p, i));
    printf(",\"target_type\":");
    cli_json_str(stdout, be_audit_page_target_type(p, i));
    printf(",\"target_id\":%lld,\"details\":%s}", (long long)be_audit_page_target_id(p, i),
           be_audit_page_details(p, i) ? be_audit_page_details(p, i) : "null");
    return;
  }
  time_t t = (time_t)(be_audit_page_at_ms(p, i) / 1000);
  struct tm tm;
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
  printf("%6lld  %s  actor %-4lld %-22s %s %lld  %s\n", (long long)be_audit_page_id(p, i), when,
         (long long)be_audit_page_actor_id(p, i), be_audit_page_action(p, i), be_audit_page_target_type(p, i),
         (long long)be_audit_page_target_id(p, i), be_audit_page_details(p, i));
}

static int cmd_audit_list(cli_ctx *ctx, int argc, char **argv) {
  const char *user = NULL, *limit_s = NULL, *cursor = NULL;
  const cli_opt opts[] = {
    {NULL, "--user", 1, &user}, {NULL, "--limit", 1, &limit_s}, {NULL, "--cursor", 1, &cursor}, {NULL, NULL, 0, NULL}};
  int rc = cli_parse(ctx, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc) return rc;
  int64_t limit = 20;
  if (limit_s && (rc = cli_parse_int(ctx, "--limit", limit_s, 1, 500, &limit)) != 0) return rc;
  be_app *app = NULL;
  if ((rc = cli_open_app(&app, ctx, NULL, CLI_OPEN_EXISTING)) != 0) return rc;
  be_audit_query_options q = BE_AUDIT_QUERY_OPTIONS_INIT;
  q.limit = (int32_t)limit;
  q.cursor = cursor;
  be_audit_page *page = NULL;
  be_error *err = NULL;
  if (user && (rc = cli_find_user(&q.user_id, ctx, app, user)) == 0) q.match_user = 1;
  if (rc == 0 && be_audit_query(&page, app, &q, &err) != BE_OK) rc = cli_fail(ctx, err);
  cli_close_app(app);
  if (rc) return rc;
  if (ctx->json) printf("{\"rows\":[");
  for (size_t i = 0; i < be_audit_page_count(page); i++) print_row(ctx, page, i);
  const char *next = be_audit_page_next_cursor(page);
  if (ctx->json) {
    printf("],\"next_cursor\":");
    cli_json_str(stdout, next);
    printf("}\n");
  } else if (next) {
    printf("more: backend-cli audit list --limit %lld --cursor %s\n", (long long)limit, next);
  }
  be_audit_page_free(page);
  return CLI_EXIT_OK;
}

static int cmd_audit_verify(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  if (rc) return rc;
  be_app *app = NULL;
  if ((rc = cli_open_app(&app, ctx, NULL, CLI_OPEN_EXISTING)) != 0) return rc;
  int64_t bad = 0, rows = 0;
  be_error *err = NULL;
  if (be_audit_verify(&bad, &rows, app, &err) != BE_OK) rc = cli_fail(ctx, err);
  cli_close_app(app);
  if (rc) return rc;
  if (ctx->json)
    printf("{\"rows\":%lld,\"intact\":%s,\"first_bad_id\":%lld}\n", (long long)rows, bad == 0 ? "true" : "false",
           (long long)bad);
  else if (bad == 0)
    printf("audit chain intact: %lld rows\n", (long long)rows);
  else
    printf("audit chain BROKEN at row %lld (%lld rows checked)\n", (long long)bad, (long long)rows);
  return bad == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static const cli_cmd audit_cmds[] = {
  {"list", "[--user USER] [--limit N] [--cursor C]", "audit rows, newest first", NULL, cmd_audit_list, NULL},
  {"verify", "", "recompute the hash chain; exit 1 when broken", NULL, cmd_audit_verify, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};

const cli_cmd cli_audit_cmds[] = {
  {"audit", "list|verify", "the hash-chained audit log", NULL, NULL, audit_cmds},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
