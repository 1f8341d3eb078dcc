/* SPDX-License-Identifier: MIT */
/*
 * The app's resources: options checked and resolved, the database (and
 * its keeper), the setup connection, the pool and the shared cache.
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
#include "app_resources.h"

#include <backend/audit.h>
#include <backend/auth.h>
#include <backend/cache.h>
#include <backend/mailer.h>
#include <backend/migrate.h>
#include <backend/pool.h>
#include <backend/sqlite.h>
#include <backend/incident.h>
#include <backend/stmt_stats.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "metrics.h"
#include "migrate.h"
#include "postgres.h"
#include "sqlite.h"
#include "storage.h"

#define MIB (INT64_C(1024) * 1024)
/* Longest time option: about 100 years in ms (times 1e6 still fits int64 ns). */
#define MS_MAX INT64_C(3153600000000)
/* Longest session, lockout and reset time: ten years in ms. */
#define AUTH_MS_MAX (INT64_C(10) * 366 * 24 * 3600 * 1000)

/* Collects field errors: the first makes the error, later ones append. */
typedef struct checker {
  be_error *e;
  int oom;
} checker;

static void bad(checker *c, const char *field, const char *msg) {
  if (c->oom) return;
  if (c->e == NULL) {
    if (be__error_field(&c->e, field, "%s", msg) == BE_E_NOMEM) {
      c->oom = 1;
      c->e = NULL;
    }
    return;
  }
  if (be_error_add_field(c->e, field, msg) != BE_OK) {
    be_error_free(c->e);
    c->e = NULL;
    c->oom = 1;
  }
}

static void ms_opt(checker *c, int64_t *v, int64_t def, int64_t max, const char *field) {
  char msg[64];
  if (*v < 0) bad(c, field, "must be 0 (the default) or a positive number of ms");
  else if (*v == 0) *v = def;
  else if (*v > max) {
    snprintf(msg, sizeof msg, "must be at most %lld ms", (long long)max);
    bad(c, field, msg);
  }
}

static void i32_opt(checker *c, int32_t *v, int32_t def, int32_t min, int32_t max,
                    const char *field, const char *msg) {
  if (*v == 0) *v = def;
  if (*v < min || *v > max) bad(c, field, msg);
}

/* The database, pool and cache options. */
static void resolve_storage(checker *c, be_app_options *o) {
  if (o->database == NULL) o->database = "backend.db";
  else if (o->database[0] == '\0') bad(c, "database", "must not be empty");
  if (o->driver == NULL) {
    o->driver = be__driver_for_dsn(o->database);
    if (o->driver == NULL) {
      bad(c, "database", "names a PostgreSQL database, but this libbackend was built without libpq");
      o->driver = be_sqlite_driver();
    }
  } else if (o->driver->version < 1 || o->driver->open == NULL) {
    bad(c, "driver", "is not a filled be_driver");
  }
  int min_given = o->pool_min != 0;
  if (o->pool_min < 0) bad(c, "pool_min", "must not be negative");
  if (o->pool_max < 0) bad(c, "pool_max", "must not be negative");
  if (o->pool_max == 0) o->pool_max = 10;
  if (o->pool_min == 0) o->pool_min = o->pool_max < 2 ? o->pool_max : 2;
  if (o->pool_max > 10000) bad(c, "pool_max", "must be at most 10000");
  if (min_given && o->pool_min > o->pool_max) bad(c, "pool_min", "must not exceed pool_max");
  ms_opt(c, &o->acquire_timeout_ms, 30000, MS_MAX, "acquire_timeout_ms");
  if (o->cache_max_entries < 0) bad(c, "cache_max_entries", "must not be negative");
  else if (o->cache_max_entries == 0) o->cache_max_entries = 100000;
  if (o->cache_max_bytes < 0) bad(c, "cache_max_bytes", "must not be negative");
  else if (o->cache_max_bytes == 0) o->cache_max_bytes = 64 * MIB;
  ms_opt(c, &o->user_cache_ttl_ms, 300000, MS_MAX, "user_cache_ttl_ms");
  if (o->cache_lru_mode < BE_CACHE_LRU_DEFAULT || o->cache_lru_mode > BE_CACHE_LRU_APPROX)
    bad(c, "cache_lru_mode", "must be BE_CACHE_LRU_DEFAULT (0), _EXACT (1) or _APPROX (2)");
  i32_opt(c, &o->cache_shard_count, 16, 1, 1024, "cache_shard_count", "must be 1..1024");
  if (o->clock == NULL) o->clock = be_clock_system();
  if (o->table_prefix == NULL) o->table_prefix = "be_";
  else if (strnlen(o->table_prefix, BE_APP_TABLE_PREFIX_MAX + 1) > BE_APP_TABLE_PREFIX_MAX ||
           !be__ident_valid(o->table_prefix))
    bad(c, "table_prefix",
        "must be 1..32 bytes: an ASCII letter or '_', then ASCII letters, digits or '_'");
  else if (strncasecmp(o->table_prefix, "sqlite_", 7) == 0) /* SQLite reserves those names */
    bad(c, "table_prefix", "must not start with sqlite_");
  /* A host version below the minimum that libbackend already applied would
   * be skipped silently as "applied" (and later ones would collide with
   * libbackend's future migrations). */
  if (o->host_migrations != NULL && be_migrator_count(o->host_migrations) > 0 &&
      be__migrator_first_version(o->host_migrations) < BE_APP_HOST_MIGRATION_MIN)
    bad(c, "host_migrations", "versions must be at least BE_APP_HOST_MIGRATION_MIN (1000)");
}

/* The options of the auth service (argon2id parameters are checked
 * against OWASP's minimum by the service itself). */
static void resolve_auth(checker *c, be_app_options *o) {
  if (o->pwhash_opslimit == 0) o->pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  if (o->pwhash_memlimit == 0) o->pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  if (o->insecure_test_hashing != 0 && o->insecure_test_hashing != 1)
    bad(c, "insecure_test_hashing", "must be 0 or 1");
  i32_opt(c, &o->password_min_length, BE_AUTH_PASSWORD_MIN_CHARS, BE_AUTH_PASSWORD_MIN_CHARS,
          BE_AUTH_PASSWORD_MAX_CHARS, "password_min_length", "must be 12..256 characters");
  i32_opt(c, &o->max_concurrent_hashes, 4, 1, 1024, "max_concurrent_hashes", "must be 1..1024");
  ms_opt(c, &o->session_idle_ms, 30 * 60000, AUTH_MS_MAX, "session_idle_ms");
  ms_opt(c, &o->session_absolute_ms, 12 * 3600000, AUTH_MS_MAX, "session_absolute_ms");
  i32_opt(c, &o->throttle_after, 5, 1, 1000000, "throttle_after", "must be positive");
  i32_opt(c, &o->lockout_after, 10, 1, 1000000, "lockout_after", "must be positive");
  ms_opt(c, &o->lockout_ms, 15 * 60000, AUTH_MS_MAX, "lockout_ms");
  ms_opt(c, &o->reset_token_ttl_ms, 3600000, AUTH_MS_MAX, "reset_token_ttl_ms");
  if (o->mailer != NULL && (o->mailer->version < 1 || o->mailer->send == NULL))
    bad(c, "mailer", "must have a version and a send function");
}

/* The audit chain's key: none, or 32..64 bytes (a BLAKE2b key). */
static void resolve_audit(checker *c, be_app_options *o) {
  if (o->audit_key == NULL && o->audit_key_len != 0)
    bad(c, "audit_key", "is NULL but audit_key_len is not 0");
  else if (o->audit_key != NULL &&
           (o->audit_key_len < BE_AUDIT_KEY_MIN_BYTES || o->audit_key_len > BE_AUDIT_KEY_MAX_BYTES))
    bad(c, "audit_key_len", "must be 32..64 bytes");
  if (o->audit_key_adopt != 0 && o->audit_key_adopt != 1)
    bad(c, "audit_key_adopt", "must be 0 or 1");
  else if (o->audit_key_adopt == 1 && o->audit_key == NULL)
    bad(c, "audit_key_adopt", "needs an audit_key");
}

/* Password hashing: the queue for hash slots, the pepper and the
 * previous peppers. Messages never quote a pepper's bytes. */
static int pepper_opt(checker *c, size_t len, int32_t id, const char *len_field,
                      const char *id_field) {
  int ok = len >= BE_AUTH_PEPPER_MIN_BYTES && len <= BE_AUTH_PEPPER_MAX_BYTES;
  if (!ok) bad(c, len_field, "must be 16..64 bytes");
  if (id < 1) bad(c, id_field, "must be 1 or more with a pepper (it is stored with each hash)");
  return ok && id >= 1;
}

static void resolve_previous_peppers(checker *c, const be_app_options *o) {
  int32_t n = o->previous_pepper_count;
  if (n < 0 || n > BE_AUTH_PREVIOUS_PEPPERS_MAX) {
    bad(c, "previous_pepper_count", "must be 0..8");
    return;
  }
  if (n > 0 && (o->previous_peppers == NULL || o->previous_pepper_lens == NULL ||
                o->previous_pepper_ids == NULL)) {
    bad(c, "previous_peppers", "needs previous_pepper_lens and previous_pepper_ids, all non-NULL");
    return;
  }
  for (int32_t i = 0; i < n; i++) {
    const int32_t id = o->previous_pepper_ids[i];
    if (o->previous_peppers[i] == NULL) bad(c, "previous_peppers", "must not hold NULL");
    if (!pepper_opt(c, o->previous_pepper_lens[i], id, "previous_pepper_lens",
                    "previous_pepper_ids"))
      return;
    int dup = id == o->pepper_id;
    for (int32_t j = 0; j < i; j++) dup |= o->previous_pepper_ids[j] == id;
    if (dup) {
      bad(c, "previous_pepper_ids", "must be distinct, and differ from pepper_id");
      return;
    }
  }
}

static void resolve_hashing(checker *c, be_app_options *o) {
  ms_opt(c, &o->hash_wait_ms, 1000, 60000, "hash_wait_ms");
  if (o->pepper != NULL) pepper_opt(c, o->pepper_len, o->pepper_id, "pepper_len", "pepper_id");
  else if (o->pepper_len != 0) bad(c, "pepper_len", "must be 0 without a pepper");
  else if (o->pepper_id != 0) bad(c, "pepper_id", "must be 0 without a pepper");
  resolve_previous_peppers(c, o);
}

/* Metrics, statement statistics, incidents and the status targets. */
static void resolve_operations(checker *c, be_app_options *o) {
  if (o->disable_metrics != 0 && o->disable_metrics != 1) bad(c, "disable_metrics", "must be 0 or 1");
  i32_opt(c, &o->statement_stats_max, 200, 1, 100000, "statement_stats_max", "must be 1..100000");
  i32_opt(c, &o->incident_capacity, 256, 1, 65536, "incident_capacity", "must be 1..65536");
  ms_opt(c, &o->target_api_p95_ms, 200, MS_MAX, "target_api_p95_ms");
  ms_opt(c, &o->target_db_p95_ms, 100, MS_MAX, "target_db_p95_ms");
  if (o->target_error_rate == 0.0) o->target_error_rate = 0.001;
  if (!(o->target_error_rate > 0.0 && o->target_error_rate <= 1.0))
    bad(c, "target_error_rate", "must be more than 0 and at most 1");
}

/* Fill defaults into o and check ranges; every bad field is named. */
static int resolve(be_app_options *o, be_error **err) {
  checker c = {NULL, 0};
  resolve_storage(&c, o);
  resolve_auth(&c, o);
  resolve_audit(&c, o);
  resolve_hashing(&c, o);
  resolve_operations(&c, o);
  if (c.oom) return be__error_oom(err);
  if (c.e) return be__error_give(err, c.e);
  return BE_OK;
}

static int is_sqlite(const be_driver *d) { return d->name != NULL && strcmp(d->name, "sqlite") == 0; }

/* The DSN the driver opens: ":memory:" becomes a private shared memdb. */
static int make_dsn(be__app_res *res, be_error **err) {
  if (strcmp(res->database, ":memory:") == 0 && is_sqlite(res->opts.driver)) {
    unsigned char rnd[8];
    char hex[sizeof rnd * 2 + 1];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    const char *fmt = "file:/libbackend-mem-%s?vfs=memdb";
    size_t n = strlen(fmt) + strlen(hex);
    res->dsn = be__malloc(n);
    if (res->dsn == NULL) return be__error_oom(err);
    snprintf(res->dsn, n, fmt, hex);
    return be_conn_open(&res->keeper, res->opts.driver, res->dsn, err);
  }
  res->dsn = be__strdup(res->database);
  return res->dsn ? BE_OK : be__error_oom(err);
}

static int open_pool(be__app_res *res, be_error **err) {
  be_pool_options po = BE_POOL_OPTIONS_INIT;
  po.driver = res->opts.driver;
  po.dsn = res->dsn;
  po.name = "app";
  po.min_conns = res->opts.pool_min;
  po.max_conns = res->opts.pool_max;
  po.acquire_timeout_ms = res->opts.acquire_timeout_ms;
  po.clock = res->opts.clock;
  po.connection_init_sql = res->opts.connection_init_sql;
  po.connection_init = res->opts.connection_init;
  po.connection_init_user_data = res->opts.connection_init_user_data;
  po.stmt_stats = res->stmt_stats;
  po.incidents = res->incidents;
  return be_pool_new(&res->pool, &po, err);
}

static int open_cache(be__app_res *res, be_error **err) {
  be_cache_options co = BE_CACHE_OPTIONS_INIT;
  co.max_entries = res->opts.cache_max_entries;
  co.max_bytes = res->opts.cache_max_bytes;
  co.default_ttl_ms = res->opts.user_cache_ttl_ms;
  co.clock = res->opts.clock;
  co.lru_mode = res->opts.cache_lru_mode;
  co.shard_count = (uint32_t)res->opts.cache_shard_count;
  int rc = be_cache_new(&res->cache, &co, err);
  if (rc == BE_OK) rc = be_cache_register_prefix(res->cache, "user:", 5, err);
  return rc;
}

/* The metrics recorder, the statement statistics and the incident log;
 * made before the pool, which records into the last two. */
static int open_operations(be__app_res *res, be_error **err) {
  int rc = be_incident_log_new(&res->incidents, res->opts.incident_capacity, res->opts.clock, err);
  be_stmt_stats_options so = BE_STMT_STATS_OPTIONS_INIT;
  so.max_statements = res->opts.statement_stats_max;
  so.incidents = res->incidents;
  so.clock = res->opts.clock;
  if (rc == BE_OK) rc = be_stmt_stats_new(&res->stmt_stats, &so, err);
  if (rc == BE_OK && !res->opts.disable_metrics) rc = be__metrics_new(&res->metrics, res->opts.clock, err);
  return rc;
}

int be__app_res_open(be__app_res *res, const be_app_options *opts, be_error **err) {
  memset(res, 0, sizeof *res);
  be_app_options o = BE_APP_OPTIONS_INIT;
  if (opts != NULL) o = *opts;
  int rc = resolve(&o, err);
  if (rc != BE_OK) return rc;
  res->opts = o;
  res->database = be__strdup(o.database);
  if (res->database == NULL) return be__error_oom(err);
  res->opts.database = res->database;
  memcpy(res->table_prefix, o.table_prefix, strlen(o.table_prefix) + 1);
  res->opts.table_prefix = res->table_prefix;
  if (o.audit_key != NULL) {
    memcpy(res->audit_key, o.audit_key, o.audit_key_len);
    res->audit_key_len = o.audit_key_len;
    res->opts.audit_key = res->audit_key;
  }
  res->notifies = be__driver_notifies(o.driver);
  randombytes_buf(&res->instance, sizeof res->instance);
  rc = open_operations(res, err);
  if (rc == BE_OK) rc = make_dsn(res, err);
  if (rc == BE_OK) rc = open_cache(res, err);
  return rc;
}

/* 1 when the SQLite DSN is a plain file path (not a URI, not memory). */
static int plain_path(const char *dsn) {
  return dsn[0] != '\0' && strcmp(dsn, ":memory:") != 0 && strncmp(dsn, "file:", 5) != 0;
}

/* Make the database file when there is none, atomically (O_EXCL): a file
 * another process makes at the same moment is never taken for ours. Any
 * failure here is left to the driver's open to report. */
static void create_file(be__app_res *res) {
  res->setup_creates = 0;
  int fd = open(res->dsn, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0) {
    res->setup_creates = 1;
    res->setup_dev = (uint64_t)st.st_dev;
    res->setup_ino = (uint64_t)st.st_ino;
  }
  close(fd);
}

int be__app_res_setup_conn(be__app_res *res, be_conn **out, be_error **err) {
  *out = NULL;
  int rc = be__sqlite_driver_keep_journal(&res->setup_driver, res->opts.driver, err);
  if (rc != BE_OK) return rc;
  res->setup_creates = 0;
  /* only where the driver itself may create the file (its open flags) */
  if (be__sqlite_driver_creates(res->setup_driver) && plain_path(res->dsn)) create_file(res);
  const be_driver *d = res->setup_driver ? res->setup_driver : res->opts.driver;
  return be_conn_open(out, d, res->dsn, err);
}

void be__app_res_setup_close(be__app_res *res, be_conn *conn, int failed) {
  be_conn_close(conn);
  be_sqlite_driver_free(res->setup_driver);
  res->setup_driver = NULL;
  /* a failed open leaves no file it made (still empty: its setup
   * transaction rolled back); a file at the path that is not that one
   * (another process's, made after an unlink) stays */
  struct stat st;
  if (failed && res->setup_creates && stat(res->dsn, &st) == 0 && S_ISREG(st.st_mode) &&
      st.st_size == 0 && (uint64_t)st.st_dev == res->setup_dev &&
      (uint64_t)st.st_ino == res->setup_ino)
    unlink(res->dsn);
  res->setup_creates = 0;
}

int be__app_res_open_pool(be__app_res *res, be_error **err) {
  int rc = open_pool(res, err);
  res->opts.connection_init_sql = NULL; /* the pool keeps its own copy */
  return rc;
}

void be__app_res_close(be__app_res *res) {
  be_cache_free(res->cache);
  be_pool_free(res->pool);
  be_sqlite_driver_free(res->setup_driver);
  be_conn_close(res->keeper);
  be_stmt_stats_free(res->stmt_stats);
  be_incident_log_free(res->incidents);
  be__metrics_free(res->metrics);
  be__free(res->dsn);
  be__free(res->database);
  sodium_memzero(res->audit_key, sizeof res->audit_key);
  memset(res, 0, sizeof *res);
}
