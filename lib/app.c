/* SPDX-License-Identifier: MIT */
/*
 * The app object: the wiring. be_app_new() checks the options, makes the
 * resources, sets the database up (migrations and the audit key check in
 * one transaction on a connection of its own, so a failed open changes
 * nothing), opens the pool, then makes each service's state from the
 * resources; be_app_free() undoes it in reverse. This is the only file
 * that knows every service.
 *
 * The services' layers; each uses only the layers below it (and user.c
 * two of its neighbours: permission.c to bump the authorisation epoch,
 * auth.c to end a disabled account's sessions):
 *
 *   test kit    testkit.c: a seeded app, through the public API
 *                 |
 *   wiring      app.c: be_app_new / be_app_free
 *                 |
 *   services    user.c --> permission.c, auth.c
 *               permission.c
 *               auth.c auth_reset.c auth_session.c (auth_password.c auth_token.c)
 *                 |
 *   audit       audit.c: the hash-chained rows every service writes
 *                 |
 *   plumbing    svc_sql.c     connections, statements, write transactions
 *               svc_input.c   client strings, emails, ids, cursors
 *               svc_time.c    wall-clock time, ms <-> ns
 *               svc_schema.c  the services' tables (applied by the wiring)
 *               svc_catalog.c the services' SQL, expanded with the table prefix
 *                 |
 *   resources   app_resources.c: options, database, pool, cache, clock,
 *                 |              mailer; struct be_app's layout
 *   lower       pool, cache, storage, tx, batch, clock, log, error, migrate
 *
 * Each service's private state hangs in its slot of struct be_app
 * (app_resources.h), made here from the resources; a service reads the
 * resources and its own slot, never this file.
 */
#include <backend/app.h>
#include <backend/migrate.h>
#include <backend/tx.h>

#include <sodium.h>

#include "alloc.h"
#include "app_resources.h"
#include "audit.h"
#include "auth.h"
#include "error.h"
#include "listener.h"
#include "migrate.h"
#include "permission.h"
#include "svc_catalog.h"
#include "svc_input.h"
#include "svc_schema.h"
#include "svc_sql.h"
#include "user.h"

int be_app_options_init(be_app_options *opts, uint32_t version) {
  if (opts == NULL || version != BE_APP_OPTIONS_VERSION) return BE_E_MISUSE;
  be_app_options init = BE_APP_OPTIONS_INIT;
  *opts = init;
  return BE_OK;
}

/* The setup transaction: libbackend's migrations, then the host's (each
 * migrator records in its own table), then the audit key check -- all or
 * nothing. */
static int setup_tx(be_conn *conn, void *ud, be_error **err) {
  const be__app_res *res = ud;
  const char *lock = be__sql(res, BE__SQL_SETUP_LOCK);
  int64_t one = 0;
  int rc = lock[0] ? be__svc_ints(conn, &one, 1, err, lock, "") : BE_ROW;
  if (rc != BE_ROW) return rc;
  be_migrator *m = NULL;
  rc = be_migrator_new(&m, err);
  if (rc == BE_OK) rc = be__svc_schema_register(m, res->opts.table_prefix,
                                                be__svc_dialect(res->opts.driver), err);
  if (rc == BE_OK) rc = be__migrator_apply_in_tx(m, conn, err);
  if (rc == BE_OK && res->opts.host_migrations)
    rc = be__migrator_apply_in_tx(res->opts.host_migrations, conn, err);
  if (rc == BE_OK) rc = be__audit_open(res, conn, err);
  be_migrator_free(m);
  return rc;
}

/* Set the database up on one connection, in one transaction, before the
 * pool opens: an open that fails leaves the file as it was (the journal
 * mode too: the pool's connections set it afterwards). No retry: the
 * driver's busy timeout already waited for a lock. */
static int setup(be__app_res *res, be_error **err) {
  be_conn *conn = NULL;
  int rc = be__app_res_setup_conn(res, &conn, err);
  if (rc == BE_OK) {
    be_tx_options to = BE_TX_OPTIONS_INIT;
    to.mode = BE_TX_IMMEDIATE;
    to.max_retries = 0;
    rc = be_tx_run_ex(conn, &to, setup_tx, res, err);
  }
  be__app_res_setup_close(res, conn, rc != BE_OK);
  return rc;
}

/* The auth service copied the peppers: keep no pointer to the host's
 * secrets (the host may wipe them once be_app_new() returns). */
static void forget_peppers(be_app_options *o) {
  o->pepper = NULL;
  o->previous_peppers = NULL;
  o->previous_pepper_lens = NULL;
}

/* On a driver with notifications, cached profiles follow the other apps
 * on the database: a dedicated connection listens on the user channel. */
static int start_listener(be_app *app, be_error **err) {
  if (!app->res.notifies) return BE_OK;
  be__listener_config lc = {
    .driver = app->res.opts.driver,
    .dsn = app->res.dsn,
    .channel = be__sql(&app->res, BE__SQL_USER_CHANNEL),
    .clock = app->res.opts.clock,
    .on_message = be__user_changed_elsewhere,
    .on_resync = be__user_resync,
    .ud = app,
  };
  return be__listener_start(&app->res.listener, &lc, err);
}

int be_app_new(be_app **out, const be_app_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_app_new: out is NULL");
  *out = NULL;
  if (opts != NULL) {
    int rc = be__svc_check_version(opts->version, BE_APP_OPTIONS_VERSION, "be_app_options", err);
    if (rc != BE_OK) return rc;
  }
  if (sodium_init() < 0) return be__error_set(err, BE_E_INTERNAL, "libsodium failed to start");
  be_app *app = be__calloc(1, sizeof *app);
  if (app == NULL) return be__error_oom(err);
  int rc = be__app_res_open(&app->res, opts, err);
  if (rc == BE_OK) rc = be__auth_check_options(&app->res.opts, err);
  if (rc == BE_OK) rc = be__svc_catalog_new(&app->res.sql, app->res.opts.table_prefix,
                                            be__svc_dialect(app->res.opts.driver), err);
  if (rc == BE_OK) rc = setup(&app->res, err);
  if (rc == BE_OK) rc = be__app_res_open_pool(&app->res, err);
  if (rc == BE_OK) rc = be__perm_new(&app->perm, &app->res, err);
  if (rc == BE_OK) rc = be__auth_new(&app->auth, &app->res, err);
  if (rc == BE_OK) rc = start_listener(app, err);
  forget_peppers(&app->res.opts);
  if (rc == BE_OK) *out = app;
  else be_app_free(app);
  return rc;
}

void be_app_free(be_app *app) {
  if (app == NULL) return;
  be__listener_stop(app->res.listener); /* its callbacks use the cache */
  app->res.listener = NULL;
  be__auth_free(app->auth);
  be__perm_free(app->perm);
  be__svc_catalog_free(app->res.sql);
  be__app_res_close(&app->res);
  be__free(app);
}

struct be_pool *be_app_pool(be_app *app) {
  return app ? app->res.pool : NULL;
}
struct be_cache *be_app_cache(be_app *app) {
  return app ? app->res.cache : NULL;
}
be_clock *be_app_clock(be_app *app) { return app ? app->res.opts.clock : NULL; }
