/* SPDX-License-Identifier: MIT */
/* backend-cli demo: the demo's own table (posts, a host migration) and
 * the idempotent seeding of users and their posts. */
#ifndef BACKEND_CLI_DEMO_SEED_H
#define BACKEND_CLI_DEMO_SEED_H

#include "cli.h"

/* The demo's host migrations (table demo_posts, version 1000); the
 * caller frees them with be_migrator_free() after the app. */
int demo_migrations(be_migrator **out, be_error **err);

typedef struct demo_seed_result {
  int64_t users;         /* users of the seed now in the database */
  int64_t users_created; /* of which this run created */
  int64_t posts;         /* rows in demo_posts */
  int64_t *ids;          /* the seeded users' ids (users of them), the caller's (free()) */
} demo_seed_result;

/* Make sure n seeded users (no passwords) and their posts exist; progress
 * on stderr when it is a terminal. Running it again adds nothing. */
int demo_seed(demo_seed_result *out, be_app *app, int64_t n, be_error **err);

#endif /* BACKEND_CLI_DEMO_SEED_H */
