/* SPDX-License-Identifier: MIT */
/* backend-cli: the database's schema — `init` (create and migrate a
 * database file) and `migrate status|up` (which migrations the file has,
 * which the library would add; apply them). */
#include "cli.h"

#include <unistd.h>

/* Where the library records its migrations (the default table prefix
 * "be_"), and where the host's (the demo's) go: a record of their own. */
static const char *const records[] = {"be_schema_migrations", "schema_migrations"};

/* The version a record table holds; 0 when it is missing or empty. */
static int record_version(int64_t *out, be_conn *conn, const char *table, be_error **err) {
  be_migrator *m = NULL;
  int rc = be_migrator_new(&m, err);
  if (rc == BE_OK) rc = be_migrator_set_table(m, table, err);
  if (rc == BE_OK) rc = be_migrator_version(out, m, conn, err);
  be_migrator_free(m);
  return rc;
}

/* The library's newest schema version: what an empty in-memory app
 * migrates to. */
static int library_schema_version(int64_t *out, be_error **err) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = ":memory:";
  o.pool_min = 1;
  be_app *app = NULL;
  int rc = be_app_new(&app, &o, err);
  be_conn *conn = NULL;
  if (rc == BE_OK) rc = be_pool_acquire(&conn, be_app_pool(app), err);
  if (rc == BE_OK) {
    rc = record_version(out, conn, records[0], err);
    be_pool_release(be_app_pool(app), conn);
  }
  cli_close_app(app);
  return rc;
}

/* Print the rows of one record table and set *version to its version;
 * *n counts rows printed so far. */
static int print_record(int64_t *version, cli_ctx *ctx, be_conn *conn, const char *table, int host, int *n,
                        be_error **err) {
  int rc = record_version(version, conn, table, err);
  if (rc != BE_OK || *version == 0) return rc;
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT version, name, applied_at FROM %s ORDER BY version", table);
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, conn, sql, err);
  while (rc == BE_OK && (rc = be_stmt_step(st, err)) == BE_ROW) {
    int64_t v = be_stmt_column_int64(st, 0), at = be_stmt_column_int64(st, 2);
    const char *name = be_stmt_column_text(st, 1, NULL);
    if (ctx->json) {
      printf("%s{\"version\":%lld,\"name\":", (*n)++ ? "," : "", (long long)v);
      cli_json_str(stdout, name);
      printf(",\"applied_at\":%lld,\"host\":%s}", (long long)at, host ? "true" : "false");
    } else {
      printf("  %5lld  %-24s applied at %lld (Unix seconds)%s\n", (long long)v, name ? name : "", (long long)at,
             host ? "  [host]" : "");
    }
    rc = BE_OK;
  }
  if (rc == BE_DONE) rc = BE_OK;
  be_stmt_finalize(st);
  return rc;
}

/* Print the applied migrations, the library's then the host's (JSON array
 * or lines); *lib_version gets the library's record version. */
static int print_applied(int64_t *lib_version, cli_ctx *ctx, be_conn *conn, be_error **err) {
  if (ctx->json) printf("\"applied\":[");
  int n = 0;
  int64_t host_version = 0;
  int rc = print_record(lib_version, ctx, conn, records[0], 0, &n, err);
  if (rc == BE_OK) rc = print_record(&host_version, ctx, conn, records[1], 1, &n, err);
  if (ctx->json) printf("]");
  return rc;
}

static int cmd_migrate_status(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  if (rc) return rc;
  be_error *err = NULL;
  int64_t latest = 0, have = 0;
  if (library_schema_version(&latest, &err) != BE_OK) return cli_fail(ctx, err);
  be_conn *conn = NULL;
  if ((rc = cli_open_conn(&conn, ctx, CLI_OPEN_EXISTING)) != 0) return rc;
  if (ctx->json) {
    printf("{\"database\":");
    cli_json_str(stdout, ctx->db);
    printf(",");
  } else {
    printf("database %s\nmigrations applied:\n", ctx->db);
  }
  rc = print_applied(&have, ctx, conn, &err);
  be_conn_close(conn);
  if (rc != BE_OK) {
    if (ctx->json) printf("}\n");
    return cli_fail(ctx, err);
  }
  if (ctx->json)
    printf(",\"version\":%lld,\"library_version\":%lld,\"up_to_date\":%s}\n", (long long)have, (long long)latest,
           have >= latest ? "true" : "false");
  else if (have >= latest)
    printf("schema version %lld: up to date (library %lld)\n", (long long)have, (long long)latest);
  else
    printf("schema version %lld: %lld behind the library's %lld (run `backend-cli migrate up`)\n",
           (long long)have, (long long)(latest - have), (long long)latest);
  return CLI_EXIT_OK;
}

/* Open (which migrates) and report the version before and after. */
static int migrate_up(cli_ctx *ctx, int mode, const char *verb) {
  char buf[4096];
  const char *file = cli_db_file(ctx->db, buf, sizeof buf);
  int existed = file == NULL || access(file, F_OK) == 0;
  int64_t before = 0, after = 0;
  be_error *err = NULL;
  if (existed && file) {
    be_conn *conn = NULL;
    int rc = cli_open_conn(&conn, ctx, mode);
    if (rc != 0) return rc;
    rc = record_version(&before, conn, records[0], &err);
    be_conn_close(conn);
    if (rc != BE_OK) return cli_fail(ctx, err);
  }
  be_app *app = NULL;
  int rc = cli_open_app(&app, ctx, NULL, mode);
  if (rc != 0) return rc;
  be_conn *conn = NULL;
  if ((rc = be_pool_acquire(&conn, be_app_pool(app), &err)) == BE_OK) {
    rc = record_version(&after, conn, records[0], &err);
    be_pool_release(be_app_pool(app), conn);
  }
  cli_close_app(app);
  if (rc != BE_OK) return cli_fail(ctx, err);
  if (ctx->json) {
    printf("{\"database\":");
    cli_json_str(stdout, ctx->db);
    printf(",\"created\":%s,\"version_before\":%lld,\"version\":%lld}\n", existed ? "false" : "true",
           (long long)before, (long long)after);
  } else {
    printf("%s %s: schema version %lld -> %lld%s\n", verb, ctx->db, (long long)before, (long long)after,
           existed ? (before == after ? " (already up to date)" : "") : " (new file)");
  }
  return CLI_EXIT_OK;
}

static int cmd_init(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  return rc ? rc : migrate_up(ctx, CLI_OPEN_CREATE, "initialised");
}

static int cmd_migrate_up(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  return rc ? rc : migrate_up(ctx, CLI_OPEN_EXISTING, "migrated");
}

static const cli_cmd migrate_cmds[] = {
  {"status", "", "applied migrations, and whether the library has newer ones", NULL, cmd_migrate_status, NULL},
  {"up", "", "apply the library's pending migrations", NULL, cmd_migrate_up, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};

const cli_cmd cli_db_cmds[] = {
  {"init", "", "create the database file (if missing) and apply every migration",
   "The file is --db PATH ($BACKEND_DB, ./backend.db). Running it again is harmless.\n", cmd_init, NULL},
  {"migrate", "status|up", "the database's schema migrations", NULL, NULL, migrate_cmds},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
