/* SPDX-License-Identifier: MIT */
/* backend-cli: `demo` — the services at work on a database file: seeds
 * users and posts (demo_seed.c), then users, auth, permissions, cache and
 * audit, the N+1 detector firing on a naive loop and batch loading fixing
 * it, and the pool and query numbers. Idempotent: run it again on the
 * same file and it reuses what is there. */
#include "demo_seed.h"

#include <stdlib.h>
#include <string.h>

/* What the demo found, for the JSON summary. */
typedef struct demo_report {
  demo_seed_result seed;
  int64_t ada;
  int login_ok, allowed_before, allowed_after;
  uint64_t cache_hits, cache_misses;
  int64_t audit_rows, audit_bad;
  int64_t naive_queries, naive_worst, naive_reports, batch_queries, batch_reports, batch_posts;
  char nplus1_message[160], nplus1_sql[160];
} demo_report;

/* Print a step's line (human output only). */
#define SAY(ctx, ...)                      \
  do {                                     \
    if (!(ctx)->json) printf(__VA_ARGS__); \
  } while (0)

static void say_problem(cli_ctx *ctx, const char *what, const be_error *err) {
  char *json = NULL;
  if (!ctx->json && err && be_error_to_json(&json, NULL, err) == BE_OK) printf("%-28s %s\n", what, json);
  be_free(json);
}

/* A call whose "already done" answer (conflict) is fine on a rerun. */
static int tolerate_conflict(int rc, be_error **err) {
  if (rc != BE_E_CONFLICT) return rc;
  be_error_free(*err);
  *err = NULL;
  return BE_OK;
}

static int demo_user_and_login(cli_ctx *ctx, be_app *app, demo_report *r, be_error **err) {
  static const char pw[] = "a long correct passphrase";
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "Ada@Example.com";
  in.name = "Ada Lovelace";
  int rc = be_user_create(NULL, &r->ada, app, 0, &in, err);
  if (rc == BE_E_CONFLICT) { /* a rerun: she exists */
    say_problem(ctx, "Ada exists (409 on create):", *err);
    be_error_free(*err), *err = NULL;
    be_user *u = NULL;
    if ((rc = be_user_get_by_email(&u, app, in.email, BE_NUL_TERMINATED, err)) == BE_OK) r->ada = be_user_id(u);
    be_user_free(u);
  } else if (rc == BE_OK) {
    SAY(ctx, "%-28s id %lld\n", "created user Ada:", (long long)r->ada);
    if (be_user_create(NULL, NULL, app, 0, &in, err) == BE_E_CONFLICT) say_problem(ctx, "same email again:", *err);
    be_error_free(*err), *err = NULL;
  }
  if (rc != BE_OK || (rc = be_auth_set_password(app, 0, r->ada, pw, BE_NUL_TERMINATED, err)) != BE_OK) return rc;
  char *token = NULL;
  int64_t who = 0;
  rc = be_auth_login(&token, &who, app, "ada@example.com", BE_NUL_TERMINATED, pw, BE_NUL_TERMINATED, err);
  if (rc == BE_OK) rc = be_auth_verify(&who, app, token, BE_NUL_TERMINATED, err);
  if (rc != BE_OK) return rc;
  r->login_ok = 1;
  SAY(ctx, "%-28s user %lld (token of %zu chars, stored only as a hash)\n", "logged in, token verified:",
      (long long)who, strlen(token));
  be_auth_logout(app, token, BE_NUL_TERMINATED, NULL);
  be_auth_token_free(token);
  if (be_auth_login(&token, NULL, app, "ada@example.com", BE_NUL_TERMINATED, "not the password!!",
                    BE_NUL_TERMINATED, err) != BE_OK)
    say_problem(ctx, "wrong password:", *err);
  be_auth_token_free(token);
  be_error_free(*err), *err = NULL;
  return BE_OK;
}

static int demo_permissions(cli_ctx *ctx, be_app *app, demo_report *r, be_error **err) {
  int rc = tolerate_conflict(be_perm_role_create(NULL, app, r->ada, "editor", BE_NUL_TERMINATED, err), err);
  if (rc == BE_OK)
    rc = tolerate_conflict(
      be_perm_role_grant(app, r->ada, "editor", BE_NUL_TERMINATED, "posts:*", BE_NUL_TERMINATED, err), err);
  if (rc == BE_OK)
    rc = tolerate_conflict(be_perm_user_assign(app, r->ada, r->ada, "editor", BE_NUL_TERMINATED, err), err);
  if (rc != BE_OK) return rc;
  r->allowed_before = be_perm_check(app, r->ada, "posts:write", BE_NUL_TERMINATED, NULL) == BE_OK;
  SAY(ctx, "%-28s %s\n", "check posts:write:", r->allowed_before ? "allowed" : "denied");
  rc = be_perm_role_revoke(app, r->ada, "editor", BE_NUL_TERMINATED, "posts:*", BE_NUL_TERMINATED, err);
  if (rc != BE_OK) return rc;
  if (be_perm_check(app, r->ada, "posts:write", BE_NUL_TERMINATED, err) == BE_E_FORBIDDEN)
    say_problem(ctx, "after revoke:", *err);
  else r->allowed_after = 1;
  be_error_free(*err), *err = NULL;
  for (int i = 0; i < 3; i++) {
    be_user *u = NULL;
    if ((rc = be_user_get(&u, app, r->ada, err)) != BE_OK) return rc;
    be_user_free(u);
  }
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  be_cache_stats_get(&cs, be_app_cache(app), NULL);
  r->cache_hits = cs.hits, r->cache_misses = cs.misses;
  SAY(ctx, "%-28s %llu hits, %llu misses (user:{id}, 5 min TTL)\n", "profile cache after 3 gets:",
      (unsigned long long)cs.hits, (unsigned long long)cs.misses);
  return BE_OK;
}

/* Keep the scope's N+1 report (a WARN log event) for the output. */
static void capture_log(int32_t level, const char *message, const be_log_field *fields, size_t n, void *user_data) {
  demo_report *r = user_data;
  if (level < BE_LOG_WARN || strncmp(message, "N+1", 3) != 0) return;
  snprintf(r->nplus1_message, sizeof r->nplus1_message, "%s", message);
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].key, "sql") == 0) snprintf(r->nplus1_sql, sizeof r->nplus1_sql, "%s", fields[i].value);
}

/* The naive loop: one query per user. */
static int naive_loop(be_conn *conn, const demo_report *r, int64_t n, be_error **err) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, "SELECT id, title FROM demo_posts WHERE user_id = ? ORDER BY created_at DESC",
                           err);
  for (int64_t i = 0; i < n && rc == BE_OK; i++) {
    if ((rc = be_stmt_reset(st, err)) == BE_OK && (rc = be_stmt_bind_int64(st, 1, r->seed.ids[i], err)) == BE_OK)
      while ((rc = be_stmt_step(st, err)) == BE_ROW) {
      }
    if (rc == BE_DONE) rc = BE_OK;
  }
  be_stmt_finalize(st);
  return rc;
}

/* The same posts in one statement. */
static int batch_load(be_conn *conn, demo_report *r, int64_t n, be_error **err) {
  const char *cols[] = {"id", "title"};
  const char *order[] = {"created_at DESC"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "demo_posts", o.columns = cols, o.column_count = 2, o.key_column = "user_id";
  o.order_by = order, o.order_by_count = 1;
  be_batch_result *res = NULL;
  int rc = be_batch_load_int64(&res, conn, &o, r->seed.ids, (size_t)n, err);
  if (rc == BE_OK) r->batch_posts = (int64_t)be_rows_count(be_batch_result_rows(res));
  be_batch_result_free(res);
  return rc;
}

/* Run fn in a scope on one connection; counts into queries/worst/reports. */
static int in_scope(be_app *app, int (*fn)(be_conn *, demo_report *, int64_t, be_error **), demo_report *r,
                    int64_t n, int64_t *queries, int64_t *worst, int64_t *reports, be_error **err) {
  be_conn *conn = NULL;
  be_scope *scope = NULL;
  int rc = be_pool_acquire(&conn, be_app_pool(app), err);
  if (rc == BE_OK) rc = be_scope_begin(&scope, conn, NULL, err);
  if (rc == BE_OK) rc = fn(conn, r, n, err);
  be_scope_end(scope);
  *queries = be_scope_query_count(scope), *worst = be_scope_worst_count(scope);
  *reports = be_scope_report_count(scope);
  be_scope_free(scope);
  if (conn) be_pool_release(be_app_pool(app), conn);
  return rc;
}

static int naive_fn(be_conn *c, demo_report *r, int64_t n, be_error **err) {
  return naive_loop(c, r, n, err);
}

static int demo_nplus1(cli_ctx *ctx, be_app *app, demo_report *r, be_error **err) {
  int64_t n = r->seed.users < 50 ? r->seed.users : 50;
  be_log_set_handler(capture_log, r, BE_LOG_WARN, NULL);
  int rc = in_scope(app, naive_fn, r, n, &r->naive_queries, &r->naive_worst, &r->naive_reports, err);
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
  if (rc != BE_OK) return rc;
  SAY(ctx, "%-28s %lld queries for %lld users; the detector fired %lld time(s):\n", "naive loop (N+1):",
      (long long)r->naive_queries, (long long)n, (long long)r->naive_reports);
  SAY(ctx, "%-28s %s\n%-28s %s\n", "", r->nplus1_message, "", r->nplus1_sql);
  int64_t worst = 0;
  rc = in_scope(app, batch_load, r, n, &r->batch_queries, &worst, &r->batch_reports, err);
  if (rc != BE_OK) return rc;
  SAY(ctx, "%-28s %lld query for the same %lld posts, %lld reports\n", "batch load:", (long long)r->batch_queries,
      (long long)r->batch_posts, (long long)r->batch_reports);
  return BE_OK;
}

static void demo_numbers(cli_ctx *ctx, be_app *app, demo_report *r) {
  be_audit_verify(&r->audit_bad, &r->audit_rows, app, NULL);
  SAY(ctx, "%-28s %lld rows, %s\n", "audit chain:", (long long)r->audit_rows, r->audit_bad == 0 ? "intact" : "BROKEN");
  be_pool_stats ps = BE_POOL_STATS_INIT;
  if (be_pool_stats_get(&ps, be_app_pool(app), NULL) == BE_OK)
    SAY(ctx, "%-28s total %d, in use %d, idle %d, acquires %llu, timeouts %llu\n", "pool:", (int)ps.total,
        (int)ps.in_use, (int)ps.idle, (unsigned long long)ps.acquires, (unsigned long long)ps.timeouts);
}

static void print_json(const cli_ctx *ctx, const demo_report *r) {
  printf("{\"database\":");
  cli_json_str(stdout, ctx->db);
  printf(",\"seed\":{\"users\":%lld,\"users_created\":%lld,\"posts\":%lld},\"ada_id\":%lld,\"login\":%s,"
         "\"allowed_before_revoke\":%s,\"allowed_after_revoke\":%s,\"cache\":{\"hits\":%llu,\"misses\":%llu},",
         (long long)r->seed.users, (long long)r->seed.users_created, (long long)r->seed.posts, (long long)r->ada,
         r->login_ok ? "true" : "false", r->allowed_before ? "true" : "false", r->allowed_after ? "true" : "false",
         (unsigned long long)r->cache_hits, (unsigned long long)r->cache_misses);
  printf("\"n_plus_one\":{\"naive_queries\":%lld,\"naive_worst\":%lld,\"reports\":%lld,\"sql\":",
         (long long)r->naive_queries, (long long)r->naive_worst, (long long)r->naive_reports);
  cli_json_str(stdout, r->nplus1_sql);
  printf(",\"batch_queries\":%lld,\"batch_reports\":%lld,\"batch_posts\":%lld},", (long long)r->batch_queries,
         (long long)r->batch_reports, (long long)r->batch_posts);
  printf("\"audit\":{\"rows\":%lld,\"intact\":%s}}\n", (long long)r->audit_rows, r->audit_bad == 0 ? "true" : "false");
}

/* The demo's steps on an open app. */
static int demo_run(cli_ctx *ctx, be_app *app, int64_t users, demo_report *r) {
  be_error *err = NULL;
  SAY(ctx, "libbackend %s on %s\n", be_version_string(), ctx->db);
  int rc = demo_seed(&r->seed, app, users, &err);
  if (rc == BE_OK)
    SAY(ctx, "%-28s %lld users (%lld new, no passwords), %lld posts\n", "seeded:", (long long)r->seed.users,
        (long long)r->seed.users_created, (long long)r->seed.posts);
  if (rc == BE_OK) rc = demo_user_and_login(ctx, app, r, &err);
  if (rc == BE_OK) rc = demo_permissions(ctx, app, r, &err);
  if (rc == BE_OK) rc = demo_nplus1(ctx, app, r, &err);
  if (rc != BE_OK) return cli_fail(ctx, err);
  demo_numbers(ctx, app, r);
  if (ctx->json) print_json(ctx, r);
  return CLI_EXIT_OK;
}

static int cmd_demo(cli_ctx *ctx, int argc, char **argv) {
  const char *pos[1] = {NULL}, *users_s = NULL;
  const cli_opt opts[] = {{NULL, "--users", 1, &users_s}, {NULL, NULL, 0, NULL}};
  int n_pos = 0, rc = cli_parse(ctx, argc, argv, opts, pos, 0, 1, &n_pos);
  if (rc) return rc;
  if (n_pos == 1) ctx->db = pos[0];
  int64_t users = 200;
  if (users_s && (rc = cli_parse_int(ctx, "--users", users_s, 1, 100000, &users)) != 0) return rc;
  be_migrator *m = NULL;
  be_error *err = NULL;
  if (demo_migrations(&m, &err) != BE_OK) return cli_fail(ctx, err);
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.host_migrations = m;
  be_app *app = NULL;
  demo_report *r = calloc(1, sizeof *r);
  if (r == NULL) rc = cli_fail_code(ctx, BE_E_NOMEM, "out of memory");
  else if ((rc = cli_open_app(&app, ctx, &o, CLI_OPEN_CREATE)) == 0) rc = demo_run(ctx, app, users, r);
  cli_close_app(app);
  be_migrator_free(m);
  if (r) free(r->seed.ids);
  free(r);
  return rc;
}

const cli_cmd cli_demo_cmds[] = {
  {"demo", "[DB] [--users N]", "seed a data set and show the services at work (safe to rerun)",
   "Seeds N users (default 200; no passwords, so no hashing) with a few posts each in\n"
   "the demo's table demo_posts, then: a user with a real argon2id password logs in,\n"
   "roles and permissions, the profile cache, the N+1 detector firing on a naive loop\n"
   "and a batch load doing the same work in one query, the audit chain and the pool.\n"
   "DB (or --db) is the database file, created when missing; a rerun adds nothing.\n",
   cmd_demo, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
