/* SPDX-License-Identifier: MIT */
/* backend-cli: operating the database — `db status`, `db slow-queries`,
 * `memory`, `stats [--prometheus]` and `incidents` (backend/status.h,
 * backend/stmt_stats.h, backend/incident.h).
 *
 * The library measures in memory, per process. A command here opens the
 * database, runs a sample of read operations on it (--sample N, default
 * 1000: cached and uncached user gets, list pages, permission checks; it
 * writes nothing), then reports what that process measured, so the
 * "Current" column is this database's figures now. `demo` ends with the
 * status of its own run (cli_ops_print_status()). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define SAMPLE_DEFAULT 1000

/* Up to max user ids of the database, from its first list page. */
static int64_t some_users(be_app *app, int64_t *ids, int32_t max) {
  be_user_list *l = NULL;
  if (be_user_list_page(&l, app, NULL, 0, max, NULL) != BE_OK) return 0;
  int64_t n = (int64_t)be_user_list_count(l);
  for (int64_t i = 0; i < n; i++) ids[i] = be_user_id(be_user_list_get(l, (size_t)i));
  be_user_list_free(l);
  return n;
}

int cli_ops_sample(be_app *app, int64_t n, be_error **err) {
  int64_t ids[100];
  int64_t users = some_users(app, ids, 100);
  cli_progress p;
  cli_progress_begin(&p, "sampling", n);
  for (int64_t i = 0; i < n; i++) {
    be_user *u = NULL;
    if (users > 0) {
      int64_t id = ids[i % users];
      int rc = be_user_get(&u, app, id, err);
      be_user_free(u);
      if (rc != BE_OK && rc != BE_E_NOT_FOUND) return rc;
      if (i % 10 == 0) be_perm_check(app, id, "users:read", BE_NUL_TERMINATED, NULL);
    }
    if (i % 50 == 0) {
      be_user_list *l = NULL;
      be_user_list_page(&l, app, NULL, 0, 20, NULL);
      be_user_list_free(l);
    }
    cli_progress_update(&p, i + 1);
  }
  cli_progress_end(&p);
  return BE_OK;
}

void cli_ops_print_status(cli_ctx *ctx, be_app *app) {
  char *text = NULL;
  be_error *err = NULL;
  int rc = ctx->json ? be_app_status_json(&text, NULL, app, &err) : be_app_status_text(&text, NULL, app, &err);
  if (rc != BE_OK) {
    cli_fail(ctx, err);
    return;
  }
  fputs(text, stdout);
  if (ctx->json) fputs("\n", stdout);
  be_free(text);
}

/* The check of a command's own option values, run after parsing and
 * before the open, so that a bad argument is a usage error (exit 2)
 * whatever the database; returns CLI_EXIT_OK or the exit code. */
typedef int (*sampled_check)(cli_ctx *ctx, void *data);

/* Parse --sample N (and the given extra options), run check (may be
 * NULL), open the database, run the sample. *out_app is the caller's to
 * close. */
static int open_sampled(be_app **out_app, cli_ctx *ctx, int argc, char **argv, cli_opt *extra, int n_extra,
                        sampled_check check, void *data) {
  const char *sample_s = NULL;
  cli_opt opts[6];
  int k = 0;
  for (; k < n_extra && k < 4; k++) opts[k] = extra[k];
  opts[k++] = (cli_opt){NULL, "--sample", 1, &sample_s};
  opts[k] = (cli_opt){NULL, NULL, 0, NULL};
  int rc = cli_parse(ctx, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc) return rc;
  int64_t n = SAMPLE_DEFAULT;
  if (sample_s && (rc = cli_parse_int(ctx, "--sample", sample_s, 0, 100000000, &n)) != 0) return rc;
  if (check && (rc = check(ctx, data)) != 0) return rc;
  if ((rc = cli_open_app(out_app, ctx, NULL, CLI_OPEN_EXISTING)) != 0) return rc;
  be_error *err = NULL;
  if (cli_ops_sample(*out_app, n, &err) != BE_OK) {
    cli_close_app(*out_app);
    *out_app = NULL;
    return cli_fail(ctx, err);
  }
  return CLI_EXIT_OK;
}

static int cmd_db_status(cli_ctx *ctx, int argc, char **argv) {
  be_app *app = NULL;
  int rc = open_sampled(&app, ctx, argc, argv, NULL, 0, NULL, NULL);
  if (rc) return rc;
  be_app_status st = BE_APP_STATUS_INIT;
  be_app_status_get(&st, app, NULL);
  cli_ops_print_status(ctx, app);
  cli_close_app(app);
  return st.ok ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static void print_slow_table(be_stmt_stat *top, size_t n) {
  printf("%8s %10s %10s %10s %10s %8s  %s\n", "calls", "total ms", "mean ms", "p95 ms", "max ms", "rows", "statement");
  for (size_t i = 0; i < n; i++)
    printf("%8lld %10.3f %10.3f %10.3f %10.3f %8lld  %s%s\n", (long long)top[i].calls, (double)top[i].total_ns / 1e6,
           (double)top[i].mean_ns / 1e6, (double)top[i].p95_ns / 1e6, (double)top[i].max_ns / 1e6,
           (long long)top[i].rows, top[i].sql, top[i].errors ? "  [errors]" : "");
}

/* --top N of db slow-queries (default 10). */
struct top_arg {
  const char *text;
  int64_t n;
};

static int check_top(cli_ctx *ctx, void *data) {
  struct top_arg *t = data;
  return t->text ? cli_parse_int(ctx, "--top", t->text, 1, 1000, &t->n) : CLI_EXIT_OK;
}

static int cmd_db_slow_queries(cli_ctx *ctx, int argc, char **argv) {
  struct top_arg top_arg = {NULL, 10};
  cli_opt extra[1] = {{NULL, "--top", 1, &top_arg.text}};
  be_app *app = NULL;
  int rc = open_sampled(&app, ctx, argc, argv, extra, 1, check_top, &top_arg);
  if (rc) return rc;
  int64_t top_n = top_arg.n;
  be_error *err = NULL;
  be_stmt_stats *ss = be_app_stmt_stats(app);
  if (ctx->json) {
    char *a = NULL, *b = NULL;
    rc = be_stmt_stats_to_json(&a, NULL, ss, (size_t)top_n, &err);
    if (rc == BE_OK) rc = be_slowlog_to_json(&b, NULL, be_pool_slowlog(be_app_pool(app)), &err);
    if (rc == BE_OK) printf("{\"statements\":%s,\"slow_log\":%s}\n", a, b);
    be_free(a);
    be_free(b);
  } else {
    be_stmt_stat *top = calloc((size_t)top_n, sizeof *top);
    size_t n = 0;
    for (int64_t i = 0; top && i < top_n; i++) be_stmt_stat_init(&top[i], BE_STMT_STAT_VERSION);
    rc = top ? be_stmt_stats_top(top, (size_t)top_n, &n, ss, &err) : BE_E_NOMEM;
    if (rc == BE_OK) {
      printf("top %zu statements by total time (%zu distinct; literals shown as ?):\n", n, be_stmt_stats_count(ss));
      print_slow_table(top, n);
      printf("\nslow-query log (over 100 ms): %lld statements\n",
             (long long)be_slowlog_total(be_pool_slowlog(be_app_pool(app))));
    }
    free(top);
  }
  cli_close_app(app);
  return rc == BE_OK ? CLI_EXIT_OK : cli_fail(ctx, err);
}

static int cmd_memory(cli_ctx *ctx, int argc, char **argv) {
  be_app *app = NULL;
  int rc = open_sampled(&app, ctx, argc, argv, NULL, 0, NULL, NULL);
  if (rc) return rc;
  be_app_memory m = BE_APP_MEMORY_INIT;
  be_error *err = NULL;
  char *json = NULL;
  if (ctx->json) rc = be_app_memory_json(&json, NULL, app, &err);
  else rc = be_app_memory_get(&m, app, &err);
  if (rc == BE_OK && json) printf("%s\n", json);
  else if (rc == BE_OK) {
    const struct {
      const char *what;
      int64_t bytes;
    } rows[] = {{"cache (allocated)", m.cache_bytes},
                {"cache (entries' charge)", m.cache_charge_bytes},
                {"operation metrics", m.metrics_bytes},
                {"pool histograms", m.pool_histogram_bytes},
                {"statement statistics", m.stmt_stats_bytes},
                {"incident log", m.incidents_bytes},
                {"libbackend total", m.library_bytes},
                {"SQLite (process, all connections)", m.db_memory_used},
                {"SQLite peak", m.db_memory_highwater},
                {"one connection: page cache", m.conn_cache_bytes},
                {"one connection: statements", m.conn_stmt_bytes},
                {"one connection: schema", m.conn_schema_bytes}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
      if (rows[i].bytes < 0) printf("%-36s %12s\n", rows[i].what, "unknown");
      else printf("%-36s %12lld bytes\n", rows[i].what, (long long)rows[i].bytes);
    printf("%-36s %12d\n", "pool connections", (int)m.pool_connections);
  }
  be_free(json);
  cli_close_app(app);
  return rc == BE_OK ? CLI_EXIT_OK : cli_fail(ctx, err);
}

/* errors include answers such as "permission denied"; 5xx are failures */
static void print_ops_table(be_app *app) {
  printf("%-22s %9s %7s %5s %10s %10s %10s\n", "operation", "calls", "errors", "5xx", "p50 us", "p95 us", "p99 us");
  for (int32_t op = 0; op < BE_OP_COUNT; op++) {
    be_op_stats s = BE_OP_STATS_INIT;
    if (be_app_op_stats_get(&s, app, op, NULL) != BE_OK || s.calls == 0) continue;
    printf("%-22s %9lld %7lld %5lld %10.2f %10.2f %10.2f\n", be_op_name(op), (long long)s.calls,
           (long long)s.errors, (long long)s.server_errors, (double)s.p50_ns / 1e3, (double)s.p95_ns / 1e3,
           (double)s.p99_ns / 1e3);
  }
}

static int cmd_stats(cli_ctx *ctx, int argc, char **argv) {
  const char *prom = NULL;
  cli_opt extra[1] = {{NULL, "--prometheus", 0, &prom}};
  be_app *app = NULL;
  int rc = open_sampled(&app, ctx, argc, argv, extra, 1, NULL, NULL);
  if (rc) return rc;
  be_error *err = NULL;
  char *out = NULL;
  if (prom) rc = be_app_metrics_prometheus(&out, NULL, app, &err);
  else if (ctx->json) rc = be_app_metrics_json(&out, NULL, app, &err);
  else print_ops_table(app);
  if (rc == BE_OK && out) printf("%s%s", out, prom ? "" : "\n");
  be_free(out);
  cli_close_app(app);
  return rc == BE_OK ? CLI_EXIT_OK : cli_fail(ctx, err);
}

static int cmd_incidents(cli_ctx *ctx, int argc, char **argv) {
  be_app *app = NULL;
  int rc = open_sampled(&app, ctx, argc, argv, NULL, 0, NULL, NULL);
  if (rc) return rc;
  be_incident_log *log = be_app_incidents(app);
  be_error *err = NULL;
  if (ctx->json) {
    char *json = NULL;
    rc = be_incident_log_to_json(&json, NULL, log, &err);
    if (rc == BE_OK) printf("%s\n", json);
    be_free(json);
  } else {
    size_t n = be_incident_log_count(log);
    printf("%zu incidents in this run (the log is in memory, per process)\n", n);
    for (size_t i = 0; i < n; i++) {
      be_incident in = BE_INCIDENT_INIT;
      if (be_incident_log_get(&in, log, i, NULL) != BE_OK) continue;
      printf("%lld  %-15s in_use %d/%d waiting %d  %s\n", (long long)(in.wall_ns / 1000000),
             be_incident_kind_name(in.kind), (int)in.in_use, (int)in.max_conns, (int)in.waiting, in.message);
    }
  }
  cli_close_app(app);
  return rc == BE_OK ? CLI_EXIT_OK : cli_fail(ctx, err);
}

#define SAMPLE_HELP                                                                  \
  "Runs --sample N read operations first (default 1000; cached and uncached user\n"  \
  "gets, list pages, permission checks; nothing is written): the library measures\n" \
  "in memory, per process, so the figures are this database's, now.\n"

static const cli_cmd db_cmds[] = {
  {"status", "[--sample N]", "the database, pool, cache and the performance targets (PASS/FAIL)",
   SAMPLE_HELP "Exit status 1 when a target fails.\n", cmd_db_status, NULL},
  {"slow-queries", "[--top N] [--sample N]", "statements by total time, like pg_stat_statements",
   SAMPLE_HELP "--top N: how many statements (default 10).\n", cmd_db_slow_queries, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};

const cli_cmd cli_ops_cmds[] = {
  {"db", "status|slow-queries", "the database's health and its statements", NULL, NULL, db_cmds},
  {"memory", "[--sample N]", "bytes in use by component, SQLite's own included", SAMPLE_HELP, cmd_memory, NULL},
  {"stats", "[--prometheus] [--sample N]", "every operation's calls, errors and latency",
   SAMPLE_HELP "--prometheus: Prometheus text exposition (node_exporter's textfile collector).\n", cmd_stats, NULL},
  {"incidents", "[--sample N]", "pool exhaustion, deadlocks, unreachable database, alerts, slow bursts",
   SAMPLE_HELP, cmd_incidents, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
