/* SPDX-License-Identifier: MIT */
/* backend-cli demo: seeds a realistic, repeatable data set — users with
 * names, bios and plans, each with a few posts in the demo's own table
 * (added as a host migration) — and does nothing the second time. */
#include "demo_seed.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const first_names[] = {"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret",
                                          "Dennis", "Ken", "Frances", "John", "Radia", "Niklaus", "Hedy",
                                          "Tim", "Sophie", "Leslie", "Karen", "Linus", "Annie"};
static const char *const last_names[] = {"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton",
                                         "Ritchie", "Thompson", "Allen", "Backus", "Perlman", "Wirth", "Lamarr",
                                         "Berners", "Wilson", "Lamport", "Jones", "Torvalds", "Easley"};
#define N_NAMES 20

static const char posts_sql[] = "CREATE TABLE demo_posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
                                "title TEXT NOT NULL, created_at INTEGER NOT NULL);"
                                "CREATE INDEX demo_posts_user ON demo_posts(user_id, created_at)";

int demo_migrations(be_migrator **out, be_error **err) {
  int rc = be_migrator_new(out, err);
  if (rc == BE_OK) rc = be_migrator_add(*out, BE_APP_HOST_MIGRATION_MIN, "demo_posts", posts_sql, err);
  return rc;
}

/* Create seeded user i, or find it when an earlier run did. */
static int seed_user(int64_t *id, int *created, be_app *app, int64_t i, be_error **err) {
  const char *first = first_names[i % N_NAMES], *last = last_names[(i / N_NAMES + i * 7) % N_NAMES];
  char email[96], name[96];
  snprintf(email, sizeof email, "%s.%s.%lld@example.com", first, last, (long long)i);
  for (char *c = email; *c; c++) *c = (char)tolower((unsigned char)*c);
  snprintf(name, sizeof name, "%s %s", first, last);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = email;
  in.name = name;
  in.bio = i % 3 == 0 ? "Writes about programming languages and their history." : NULL;
  in.extra = i % 4 == 0 ? "{\"plan\":\"pro\"}" : "{\"plan\":\"free\"}";
  *created = 0;
  be_user *u = NULL;
  if (be_user_get_by_email(&u, app, email, BE_NUL_TERMINATED, NULL) == BE_OK) {
    *id = be_user_id(u);
    be_user_free(u);
    return BE_OK;
  }
  int rc = be_user_create(NULL, id, app, 0, &in, err);
  *created = rc == BE_OK;
  return rc;
}

typedef struct {
  const int64_t *ids;
  int64_t n;
} posts_job;

/* In one transaction: posts 0..4 of each user, with fixed ids (a rerun inserts nothing). */
static int insert_posts(be_conn *conn, void *user_data, be_error **err) {
  const posts_job *job = user_data;
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn,
                           "INSERT OR IGNORE INTO demo_posts (id, user_id, title, created_at) VALUES (?, ?, ?, ?)",
                           err);
  static const char *const titles[] = {"Hello, world", "Notes on structured programming", "Why tests matter",
                                       "A tour of the pool", "Caching without tears"};
  for (int64_t i = 0; i < job->n && rc == BE_OK; i++) {
    for (int64_t j = 0; j < i % 5 + 1 && rc == BE_OK; j++) {
      if ((rc = be_stmt_reset(st, err)) == BE_OK && (rc = be_stmt_bind_int64(st, 1, i * 8 + j + 1, err)) == BE_OK &&
          (rc = be_stmt_bind_int64(st, 2, job->ids[i], err)) == BE_OK &&
          (rc = be_stmt_bind_text(st, 3, titles[j], BE_NUL_TERMINATED, err)) == BE_OK &&
          (rc = be_stmt_bind_int64(st, 4, 1767225600000 + i * 3600000 + j * 60000, err)) == BE_OK)
        rc = (rc = be_stmt_step(st, err)) == BE_DONE ? BE_OK : rc;
    }
  }
  be_stmt_finalize(st);
  return rc;
}

static int count_posts(int64_t *out, be_app *app, be_error **err) {
  be_conn *conn = NULL;
  int rc = be_pool_acquire(&conn, be_app_pool(app), err);
  if (rc != BE_OK) return rc;
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, conn, "SELECT count(*) FROM demo_posts", err);
  if (rc == BE_OK && (rc = be_stmt_step(st, err)) == BE_ROW) {
    *out = be_stmt_column_int64(st, 0);
    rc = BE_OK;
  }
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), conn);
  return rc;
}

int demo_seed(demo_seed_result *out, be_app *app, int64_t n, be_error **err) {
  memset(out, 0, sizeof *out);
  out->ids = calloc((size_t)n, sizeof *out->ids);
  if (out->ids == NULL) {
    if (err) be_error_new(err, BE_E_NOMEM, NULL);
    return BE_E_NOMEM;
  }
  cli_progress bar;
  cli_progress_begin(&bar, "seeding users", n);
  int rc = BE_OK;
  for (int64_t i = 0; i < n && rc == BE_OK; i++) {
    int created = 0;
    rc = seed_user(&out->ids[i], &created, app, i, err);
    out->users += rc == BE_OK;
    out->users_created += created;
    cli_progress_update(&bar, i + 1);
  }
  cli_progress_end(&bar);
  posts_job job = {out->ids, out->users};
  if (rc == BE_OK) rc = be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, insert_posts, &job, err);
  if (rc == BE_OK) rc = count_posts(&out->posts, app, err);
  return rc;
}
