/* SPDX-License-Identifier: MIT */
/*
 * The app object: options, database, pool, cache, migrations and the
 * services' private state, made in one call and torn down in one call.
 *
 * ":memory:" with the SQLite driver. Every SQLite connection to ":memory:"
 * is its own empty database, so a pool of them would scatter the tables.
 * The app rewrites it to a private named database of SQLite's memdb VFS,
 * "file:/libbackend-mem-<random>?vfs=memdb", which all connections of
 * this process share, with ordinary file locking (busy timeouts work,
 * readers and a writer run at once; unlike cache=shared, whose table
 * locks fail at once with SQLITE_LOCKED and ignore the busy timeout).
 * SQLite drops such a database when its last connection closes, and the
 * pool may close all of them (idle reaping, max lifetime), so the app
 * holds one extra "keeper" connection for its whole life.
 */
#include <backend/app.h>
#include <backend/cache.h>
#include <backend/mailer.h>
#include <backend/migrate.h>
#include <backend/pool.h>
#include <backend/sqlite.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "app.h"
#include "error.h"
#include "migrate.h"
#include "schema.h"
#include "svc.h"

#define MIB (INT64_C(1024) * 1024)
/* Longest time option: about 100 years in ms (times 1e6 still fits int64 ns). */
#define MS_MAX INT64_C(3153600000000)

struct be_app {
  be_app_options opts; /* every default resolved; database points at dsn_given */
  char *dsn_given;     /* the caller's database string (copied) */
  char *dsn;           /* what the driver opens (the memdb URI for ":memory:") */
  be_conn *keeper;     /* holds a memdb database open; NULL otherwise */
  be_pool *pool;
  be_cache *cache;
  be__auth *auth;
  be__perm *perm;
  _Atomic uint64_t user_gen;
};

int be_app_options_init(be_app_options *opts, uint32_t version) {
  if (opts == NULL || version != BE_APP_OPTIONS_VERSION) return BE_E_MISUSE;
  be_app_options init = BE_APP_OPTIONS_INIT;
  *opts = init;
  return BE_OK;
}

/* Collects field errors: the first makes the error, later ones append. */
typedef struct checker {
  be_error *e;
  int oom;
} checker;

static void bad(checker *c, const char *field, const char *msg) {
  if (c->oom) return;
  if (c->e == NULL) {
    if (be__error_field(&c->e, field, "%s", msg) == BE_E_NOMEM) { c->oom = 1; c->e = NULL; }
    return;
  }
  if (be_error_add_field(c->e, field, msg) != BE_OK) {
    be_error_free(c->e);
    c->e = NULL;
    c->oom = 1;
  }
}

static void ms_opt(checker *c, int64_t *v, int64_t def, const char *field) {
  if (*v < 0 || *v > MS_MAX) bad(c, field, "must be 0 (the default) or a positive number of ms");
  else if (*v == 0) *v = def;
}

static void i32_opt(checker *c, int32_t *v, int32_t def, int32_t min, int32_t max,
                    const char *field, const char *msg) {
  if (*v == 0) *v = def;
  if (*v < min || *v > max) bad(c, field, msg);
}

/* Fill defaults into o and check ranges. */
static int resolve(be_app_options *o, be_error **err) {
  checker c = {NULL, 0};
  if (o->database == NULL) o->database = "backend.db";
  else if (o->database[0] == '\0') bad(&c, "database", "must not be empty");
  if (o->driver == NULL) o->driver = be_sqlite_driver();
  else if (o->driver->version < 1 || o->driver->open == NULL)
    bad(&c, "driver", "is not a filled be_driver");
  int min_given = o->pool_min != 0;
  if (o->pool_min < 0) bad(&c, "pool_min", "must not be negative");
  if (o->pool_max < 0) bad(&c, "pool_max", "must not be negative");
  if (o->pool_max == 0) o->pool_max = 10;
  if (o->pool_min == 0) o->pool_min = o->pool_max < 2 ? o->pool_max : 2;
  if (o->pool_max > 10000) bad(&c, "pool_max", "must be at most 10000");
  if (min_given && o->pool_min > o->pool_max) bad(&c, "pool_min", "must not exceed pool_max");
  ms_opt(&c, &o->acquire_timeout_ms, 30000, "acquire_timeout_ms");
  if (o->cache_max_entries < 0) bad(&c, "cache_max_entries", "must not be negative");
  else if (o->cache_max_entries == 0) o->cache_max_entries = 100000;
  if (o->cache_max_bytes < 0) bad(&c, "cache_max_bytes", "must not be negative");
  else if (o->cache_max_bytes == 0) o->cache_max_bytes = 64 * MIB;
  ms_opt(&c, &o->user_cache_ttl_ms, 300000, "user_cache_ttl_ms");
  if (o->pwhash_opslimit == 0) o->pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  if (o->pwhash_memlimit == 0) o->pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  if (o->insecure_test_hashing != 0 && o->insecure_test_hashing != 1)
    bad(&c, "insecure_test_hashing", "must be 0 or 1");
  i32_opt(&c, &o->password_min_length, 12, 12, 256, "password_min_length",
          "must be 12..256 characters");
  i32_opt(&c, &o->max_concurrent_hashes, 4, 1, 1024, "max_concurrent_hashes", "must be 1..1024");
  ms_opt(&c, &o->session_idle_ms, 30 * 60000, "session_idle_ms");
  ms_opt(&c, &o->session_absolute_ms, 12 * 3600000, "session_absolute_ms");
  i32_opt(&c, &o->throttle_after, 5, 1, 1000000, "throttle_after", "must be positive");
  i32_opt(&c, &o->lockout_after, 10, 1, 1000000, "lockout_after", "must be positive");
  ms_opt(&c, &o->lockout_ms, 15 * 60000, "lockout_ms");
  ms_opt(&c, &o->reset_token_ttl_ms, 3600000, "reset_token_ttl_ms");
  if (o->clock == NULL) o->clock = be_clock_system();
  if (o->mailer != NULL && (o->mailer->version < 1 || o->mailer->send == NULL))
    bad(&c, "mailer", "must have a version and a send function");
  /* A host version below the minimum that libbackend already applied would
   * be skipped silently as "applied" (and later ones would collide with
   * libbackend's future migrations). */
  if (o->host_migrations != NULL && be_migrator_count(o->host_migrations) > 0 &&
      be__migrator_first_version(o->host_migrations) < BE_APP_HOST_MIGRATION_MIN)
    bad(&c, "host_migrations", "versions must be at least BE_APP_HOST_MIGRATION_MIN (1000)");
  if (c.oom) return be__error_oom(err);
  if (c.e) return be__error_give(err, c.e);
  return BE_OK;
}

static int is_sqlite(const be_driver *d) { return d->name != NULL && strcmp(d->name, "sqlite") == 0; }

/* The DSN the driver opens: ":memory:" becomes a private shared memdb. */
static int make_dsn(be_app *app, be_error **err) {
  if (strcmp(app->dsn_given, ":memory:") == 0 && is_sqlite(app->opts.driver)) {
    unsigned char rnd[8];
    char hex[sizeof rnd * 2 + 1];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    const char *fmt = "file:/libbackend-mem-%s?vfs=memdb";
    size_t n = strlen(fmt) + strlen(hex);
    app->dsn = be__malloc(n);
    if (app->dsn == NULL) return be__error_oom(err);
    snprintf(app->dsn, n, fmt, hex);
    return be_conn_open(&app->keeper, app->opts.driver, app->dsn, err);
  }
  app->dsn = be__strdup(app->dsn_given);
  return app->dsn ? BE_OK : be__error_oom(err);
}

static int open_pool(be_app *app, be_error **err) {
  be_pool_options po = BE_POOL_OPTIONS_INIT;
  po.driver = app->opts.driver;
  po.dsn = app->dsn;
  po.name = "app";
  po.min_conns = app->opts.pool_min;
  po.max_conns = app->opts.pool_max;
  po.acquire_timeout_ms = app->opts.acquire_timeout_ms;
  po.clock = app->opts.clock;
  return be_pool_new(&app->pool, &po, err);
}

static int open_cache(be_app *app, be_error **err) {
  be_cache_options co = BE_CACHE_OPTIONS_INIT;
  co.max_entries = (uint64_t)app->opts.cache_max_entries;
  co.max_bytes = (uint64_t)app->opts.cache_max_bytes;
  co.default_ttl_ms = app->opts.user_cache_ttl_ms;
  co.clock = app->opts.clock;
  int rc = be_cache_new(&app->cache, &co, err);
  if (rc == BE_OK) rc = be_cache_register_prefix(app->cache, "user:", 5, err);
  return rc;
}

static int migrate(be_app *app, be_error **err) {
  be_migrator *m = NULL;
  be_conn *conn = NULL;
  int rc = be_migrator_new(&m, err);
  if (rc == BE_OK) rc = be__schema_register(m, err);
  if (rc == BE_OK) rc = be__svc_acquire(app, &conn, err);
  if (rc == BE_OK) rc = be_migrator_apply(NULL, m, conn, err);
  if (rc == BE_OK && app->opts.host_migrations)
    rc = be_migrator_apply(NULL, app->opts.host_migrations, conn, err);
  if (conn) be__svc_release(app, conn);
  be_migrator_free(m);
  return rc;
}

int be_app_new(be_app **out, const be_app_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_app_new: out is NULL");
  *out = NULL;
  be_app_options o = BE_APP_OPTIONS_INIT;
  if (opts != NULL) {
    if (opts->version != BE_APP_OPTIONS_VERSION)
      return be__error_set(err, BE_E_MISUSE, "be_app_options: unknown version %u",
                           (unsigned)opts->version);
    o = *opts;
  }
  int rc = resolve(&o, err);
  if (rc != BE_OK) return rc;
  if (sodium_init() < 0) return be__error_set(err, BE_E_INTERNAL, "libsodium failed to start");

  be_app *app = be__calloc(1, sizeof *app);
  if (app == NULL) return be__error_oom(err);
  app->opts = o;
  atomic_init(&app->user_gen, 0);
  app->dsn_given = be__strdup(o.database);
  if (app->dsn_given == NULL) { be_app_free(app); return be__error_oom(err); }
  app->opts.database = app->dsn_given;

  rc = make_dsn(app, err);
  if (rc == BE_OK) rc = open_pool(app, err);
  if (rc == BE_OK) rc = migrate(app, err);
  if (rc == BE_OK) rc = open_cache(app, err);
  if (rc == BE_OK) rc = be__perm_new(&app->perm, app, err);
  if (rc == BE_OK) rc = be__auth_new(&app->auth, app, err);
  if (rc != BE_OK) {
    be_app_free(app);
    return rc;
  }
  *out = app;
  return BE_OK;
}

void be_app_free(be_app *app) {
  if (app == NULL) return;
  if (app->auth) be__auth_free(app->auth);
  be__perm_free(app->perm);
  be_cache_free(app->cache);
  be_pool_free(app->pool);
  be_conn_close(app->keeper);
  be__free(app->dsn);
  be__free(app->dsn_given);
  be__free(app);
}

struct be_pool *be_app_pool(be_app *app) { return app ? app->pool : NULL; }
struct be_cache *be_app_cache(be_app *app) { return app ? app->cache : NULL; }
be_clock *be_app_clock(be_app *app) { return app ? app->opts.clock : NULL; }

const be_app_options *be__app_options(const be_app *app) { return &app->opts; }
be__auth *be__app_auth(be_app *app) { return app->auth; }
be__perm *be__app_perm(be_app *app) { return app->perm; }
_Atomic uint64_t *be__app_user_gen(be_app *app) { return &app->user_gen; }
