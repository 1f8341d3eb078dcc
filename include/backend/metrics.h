/* SPDX-License-Identifier: MIT */
/**
 * @file backend/metrics.h
 * @brief Per-operation metrics of an app: for each public service call
 *        (user.get, auth.login, perm.check, ...), the pool acquires the
 *        services make and the cache's loads: calls, errors, server
 *        errors and a latency histogram (p50 / p95 / p99).
 *
 * Every service function of an app counts its calls, errors and server
 * errors exactly, and records durations (on the app's clock,
 * be_app_options.clock) under a fixed operation (BE_OP_*). Durations are
 * sampled so that recording stays within a few percent of the cheapest
 * call (a cached user get, ~40 ns): by what the thread's previous timed
 * call of the operation took, every call is timed from 20 us on, one in
 * 16 from 1 us, one in 1024 below (the first call always). Each sample
 * counts as many calls as its interval, so the quantiles describe all
 * calls, not only the timed ones; be_op_stats.timed says how many were
 * measured, and total_ns scales the weighted sum to the exact call count.
 *
 * Recording takes no lock and never allocates: each thread counts in a
 * slot of its own (up to 127 threads; more share one slot, with atomic
 * additions), and timed calls go to one of BE_METRICS_STRIPES histograms
 * per operation (threads take stripes round-robin), so two threads
 * calling the same operation do not write the same cache lines on every
 * call. The histograms are compact: quantiles within 1/32 (3.1 %) of the
 * exact ones. Memory is fixed when the app is made: about 690 KiB (37
 * operations x 2 stripes x 7.6 KiB of histogram, 128 slots of 1 KiB).
 * Reading merges the slots and stripes.
 *
 * be_app_options.disable_metrics = 1 turns recording off (the service
 * calls then read no clock and write nothing; reads return zeros).
 *
 * Status, memory and the JSON / Prometheus export of these figures are in
 * backend/status.h.
 */
#ifndef BACKEND_METRICS_H
#define BACKEND_METRICS_H

#include <backend/app.h>
#include <backend/common.h>
#include <backend/error.h>

BE_BEGIN_DECLS

/** Recording stripes per operation. */
#define BE_METRICS_STRIPES 2

/** @name Operations (be_op_name() gives each one's name) */
/** @{ */
#define BE_OP_USER_CREATE 0                /**< be_user_create: "user.create" */
#define BE_OP_USER_GET 1                   /**< be_user_get: "user.get" */
#define BE_OP_USER_GET_BY_EMAIL 2          /**< be_user_get_by_email: "user.get_by_email" */
#define BE_OP_USER_GET_MANY 3              /**< be_user_get_many: "user.get_many" */
#define BE_OP_USER_UPDATE 4                /**< be_user_update: "user.update" */
#define BE_OP_USER_DELETE 5                /**< be_user_delete: "user.delete" */
#define BE_OP_USER_LIST 6                  /**< be_user_list_page: "user.list" */
#define BE_OP_AUTH_SET_PASSWORD 7          /**< be_auth_set_password: "auth.set_password" */
#define BE_OP_AUTH_LOGIN 8                 /**< be_auth_login: "auth.login" */
#define BE_OP_AUTH_VERIFY 9                /**< be_auth_verify: "auth.verify" */
#define BE_OP_AUTH_VERIFY_SESSION 10       /**< be_auth_verify_session: "auth.verify_session" */
#define BE_OP_AUTH_LIST_SESSIONS 11        /**< be_auth_list_sessions: "auth.list_sessions" */
#define BE_OP_AUTH_END_SESSION 12          /**< be_auth_end_session: "auth.end_session" */
#define BE_OP_AUTH_LOGOUT 13               /**< be_auth_logout: "auth.logout" */
#define BE_OP_AUTH_REVOKE_ALL 14           /**< be_auth_revoke_all: "auth.revoke_all" */
#define BE_OP_AUTH_CHANGE_PASSWORD 15      /**< be_auth_change_password: "auth.change_password" */
#define BE_OP_AUTH_REQUEST_RESET 16        /**< be_auth_request_reset: "auth.request_reset" */
#define BE_OP_AUTH_RESET_PASSWORD 17       /**< be_auth_reset_password: "auth.reset_password" */
#define BE_OP_AUTH_PURGE_EXPIRED 18        /**< be_auth_purge_expired: "auth.purge_expired" */
#define BE_OP_PERM_CHECK 19                /**< be_perm_check: "perm.check" */
#define BE_OP_PERM_ROLE_CREATE 20          /**< be_perm_role_create: "perm.role_create" */
#define BE_OP_PERM_ROLE_DELETE 21          /**< be_perm_role_delete: "perm.role_delete" */
#define BE_OP_PERM_ROLE_GRANT 22           /**< be_perm_role_grant: "perm.role_grant" */
#define BE_OP_PERM_ROLE_REVOKE 23          /**< be_perm_role_revoke: "perm.role_revoke" */
#define BE_OP_PERM_USER_ASSIGN 24          /**< be_perm_user_assign: "perm.user_assign" */
#define BE_OP_PERM_USER_UNASSIGN 25        /**< be_perm_user_unassign: "perm.user_unassign" */
#define BE_OP_PERM_USER_PERMISSIONS 26     /**< be_perm_user_permissions: "perm.user_permissions" */
#define BE_OP_PERM_USER_ROLES 27           /**< be_perm_user_roles: "perm.user_roles" */
#define BE_OP_PERM_ROLE_PERMISSIONS 28     /**< be_perm_role_permissions: "perm.role_permissions" */
#define BE_OP_AUDIT_WRITE 29               /**< be_audit_write: "audit.write" */
#define BE_OP_AUDIT_QUERY 30               /**< be_audit_query: "audit.query" */
#define BE_OP_AUDIT_VERIFY 31              /**< be_audit_verify: "audit.verify" */
#define BE_OP_AUDIT_HEAD 32                /**< be_audit_head: "audit.head" */
#define BE_OP_USER_GET_FRESH 33            /**< be_user_get_fresh: "user.get_fresh" */
#define BE_OP_AUTH_IMPORT_PASSWORD_HASH 34 /**< be_auth_import_password_hash: "auth.import_password_hash" */
#define BE_OP_POOL_ACQUIRE 35              /**< a service taking a pooled connection: "pool.acquire" */
#define BE_OP_CACHE_LOAD 36                /**< a cache miss loading from the database: "cache.load" */
#define BE_OP_COUNT 37                     /**< one more than the largest operation */
/** Operations below this are public service calls: the API figures of
 * the status (backend/status.h) cover them; pool.acquire and cache.load
 * are parts of them. */
#define BE_OP_SERVICE_COUNT 35
/** @} */

/**
 * The operation's name, e.g. "user.get". Thread-safety: safe.
 *
 * @param op  a BE_OP_* operation.
 * @return a static string; "unknown" for any other value.
 */
BE_API const char *be_op_name(int32_t op);

/**
 * The operation with this name. Thread-safety: safe.
 *
 * @param out_op  receives the BE_OP_* value; not NULL.
 * @param name    the name, as be_op_name() gives it.
 * @param len     its length in bytes, or BE_NUL_TERMINATED.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL); BE_E_NOT_FOUND (no such operation).
 */
BE_API int be_op_find(int32_t *out_op, const char *name, size_t len, be_error **err);

/** The be_op_stats layout this header describes (its version field). */
#define BE_OP_STATS_VERSION 1

/** One operation's figures. Only ever grows at the end. */
typedef struct be_op_stats {
  uint32_t version;      /**< in: BE_OP_STATS_VERSION */
  int32_t op;            /**< the BE_OP_* operation */
  int64_t calls;         /**< calls finished */
  int64_t errors;        /**< calls that returned an error (any BE_E_*) */
  int64_t server_errors; /**< errors whose HTTP status is 500 or more (be_code_http_status) */
  int64_t timed;         /**< calls whose duration was measured (the samples) */
  int64_t total_ns;      /**< time spent: the timed calls' sum scaled to all calls */
  int64_t p50_ns;        /**< median duration (compact histogram: within 1/32) */
  int64_t p95_ns;        /**< 95th percentile */
  int64_t p99_ns;        /**< 99th percentile */
  int64_t max_ns;        /**< the longest call */
} be_op_stats;

/** Static initializer: the current version, every field 0. */
#define BE_OP_STATS_INIT \
  { BE_OP_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Set *out to BE_OP_STATS_INIT. Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_OP_STATS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, unknown version).
 */
BE_API int be_op_stats_init(be_op_stats *out, uint32_t version);

/**
 * One operation's figures since the app was made or
 * be_app_metrics_reset(). Thread-safety: safe, lock-free; calls recorded
 * meanwhile may or may not be counted.
 *
 * @param out  receives the figures; its version set by the caller
 *             (BE_OP_STATS_INIT); not NULL.
 * @param app  the app; not NULL.
 * @param op   a BE_OP_* operation.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL, unknown version); BE_E_VALIDATION
 *         (unknown op, field "op"); BE_E_NOMEM.
 */
BE_API int be_app_op_stats_get(be_op_stats *out, be_app *app, int32_t op, be_error **err);

/**
 * Forget every operation's figures, the pool's query statistics and the
 * statement statistics (not atomic against concurrent recorders).
 * Thread-safety: safe.
 *
 * @param app  the app; NULL is a no-op.
 */
BE_API void be_app_metrics_reset(be_app *app);

BE_END_DECLS

#endif /* BACKEND_METRICS_H */
