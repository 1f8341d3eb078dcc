/* SPDX-License-Identifier: MIT */
/*
 * Internal: the app's resources -- what every service runs on: the
 * options with every default filled in, the database's pool and the
 * shared cache -- and the app object's layout.
 *
 * The resources sit below the services: they know none of them. A
 * service takes the resources (the app's `res`) and its own slot of
 * struct be_app, nothing else of the app; the wiring (app.c) makes the
 * resources first, then each service's state from them, and frees in the
 * reverse order. See app.c for the layers.
 */
#ifndef BE_LIB_APP_RESOURCES_H
#define BE_LIB_APP_RESOURCES_H

#include <backend/app.h>
#include <backend/storage.h>

typedef struct be__app_res {
  /* Every default resolved; opts.database is `database` below, opts.clock
   * the app's clock, opts.mailer the host's mailer (NULL: none). */
  be_app_options opts;
  char *database;  /* the caller's database string (copied) */
  char *dsn;       /* what the driver opens (the memdb URI for ":memory:") */
  be_conn *keeper; /* holds a memdb database open; NULL otherwise */
  struct be_pool *pool;
  struct be_cache *cache;        /* shared; user profiles live under "user:" */
  be_driver *setup_driver;       /* the setup connection's driver, while it is open */
  int32_t setup_creates;         /* the setup made the database file (setup_file) */
  uint64_t setup_dev, setup_ino; /* that file, as it made it */
  /* operations: NULL metrics when disabled; the pool records into the
   * statement stats and the incident log */
  struct be__metrics *metrics;
  struct be_stmt_stats *stmt_stats;
  struct be_incident_log *incidents;
  /* The audit chain's key, copied from the options (opts.audit_key points
   * here; NULL when unkeyed); wiped on close. */
  uint8_t audit_key[64];
  size_t audit_key_len;
  /* The table prefix, copied (opts.table_prefix points here). */
  char table_prefix[BE_APP_TABLE_PREFIX_MAX + 1];
  /* The services' SQL with the prefix in it, made and freed by the wiring
   * (svc_catalog.h; read with be__sql(), or be__sql_handle() to prepare
   * by handle without hashing the text). */
  struct be_sql **sql;
  /* Change notifications between apps on one database (svc_notify.h):
   * notifies is 1 when the driver has them (PostgreSQL); instance tells
   * this app's own notifications from the others'; the listener (started
   * by the wiring, NULL without notifications) hears the others'. */
  int32_t notifies;
  uint64_t instance;
  struct be__listener *listener;
} be__app_res;

/* Check opts (NULL: all defaults; the version is the caller's to check)
 * and fill res: resolved options, the DSN (and a memdb's keeper) and the
 * cache; the pool comes later (be__app_res_open_pool). Field errors name
 * the option. On failure res holds only what be__app_res_close() frees. */
int be__app_res_open(be__app_res *res, const be_app_options *opts, be_error **err);

/* A connection to set the database up on, before the pool exists: with
 * the SQLite driver it leaves the file's journal mode alone (the pool's
 * connections set it once the setup committed), so an open that fails
 * writes nothing. Close it with be__app_res_setup_close(), saying whether
 * the setup failed: then a database file this connection created (a
 * plain path that did not exist, still empty) is removed again. */
int be__app_res_setup_conn(be__app_res *res, be_conn **out, be_error **err);
void be__app_res_setup_close(be__app_res *res, be_conn *conn, int failed);

/* Create the pool (after the setup committed). */
int be__app_res_open_pool(be__app_res *res, be_error **err);

/* Free what be__app_res_open() made (also after a failed open). */
void be__app_res_close(be__app_res *res);

/* Each service's private state, opaque here; defined by its service. */
struct be__auth;
struct be__perm;

/* The app object: the resources, then one slot per service. */
struct be_app {
  be__app_res res;
  struct be__auth *auth; /* auth.c: policy, hash slots, the blocklist hook */
  struct be__perm *perm; /* permission.c: the decision cache */
};

#endif
