/* SPDX-License-Identifier: MIT */
/* Internal: the lists behind backend/abi.h, one line per public struct and
 * one entry per constant macro, as X-macros so that lib/abi.c builds its
 * tables and tests/test_abi.c checks each entry from the same lists.
 *
 * When a public header gains a struct with visible fields or an
 * object-like BE_* macro, add it here (tests/ffi/ctypes_layouts.py fails
 * until the lists match the headers). */
#ifndef BE_LIB_ABI_H
#define BE_LIB_ABI_H

#include <backend/backend.h>

/* S(type, version macro or 0 when the struct has no version field), in
 * the order of backend/backend.h. */
#define BE__ABI_STRUCTS(S)                                  \
  S(be_allocator, BE_ALLOCATOR_VERSION)                     \
  S(be_log_field, 0)                                        \
  S(be_incident, BE_INCIDENT_VERSION)                       \
  S(be_cache_options, BE_CACHE_OPTIONS_VERSION)             \
  S(be_cache_stats, BE_CACHE_STATS_VERSION)                 \
  S(be_driver, BE_DRIVER_VERSION)                           \
  S(be_stmt_cache_stats, BE_STMT_CACHE_STATS_VERSION)       \
  S(be_sqlite_options, BE_SQLITE_OPTIONS_VERSION)           \
  S(be_tx_options, BE_TX_OPTIONS_VERSION)                   \
  S(be_stmt_stats_options, BE_STMT_STATS_OPTIONS_VERSION)   \
  S(be_stmt_stat, BE_STMT_STAT_VERSION)                     \
  S(be_pool_options, BE_POOL_OPTIONS_VERSION)               \
  S(be_pool_stats, BE_POOL_STATS_VERSION)                   \
  S(be_batch_options, BE_BATCH_OPTIONS_VERSION)             \
  S(be_scope_options, BE_SCOPE_OPTIONS_VERSION)             \
  S(be_slowlog_options, BE_SLOWLOG_OPTIONS_VERSION)         \
  S(be_app_options, BE_APP_OPTIONS_VERSION)                 \
  S(be_mailer, BE_MAILER_VERSION)                           \
  S(be_user_input, BE_USER_INPUT_VERSION)                   \
  S(be_audit_query_options, BE_AUDIT_QUERY_OPTIONS_VERSION) \
  S(be_testkit_options, BE_TESTKIT_OPTIONS_VERSION)         \
  S(be_auth_session_info, BE_AUTH_SESSION_INFO_VERSION)     \
  S(be_op_stats, BE_OP_STATS_VERSION)                       \
  S(be_app_status, BE_APP_STATUS_VERSION)                   \
  S(be_app_memory, BE_APP_MEMORY_VERSION)

/* I(name) for an integer constant, T(name) for a text constant (a string
 * literal), by header in the order of backend/backend.h: every object-like
 * BE_* macro of the public headers except the BE_<X>_INIT initializers and
 * BE_API, BE_BEGIN_DECLS, BE_END_DECLS. */
/* clang-format off */
#define BE__ABI_CONSTANTS(I, T)                                                             \
  /* backend/common.h */                                                                    \
  I(BE_NUL_TERMINATED)                                                                      \
  /* backend/version.h */                                                                   \
  I(BE_VERSION_MAJOR) I(BE_VERSION_MINOR) I(BE_VERSION_PATCH) T(BE_VERSION_STRING)          \
  I(BE_VERSION_NUMBER)                                                                      \
  /* backend/error.h */                                                                     \
  I(BE_OK) I(BE_E_INTERNAL) I(BE_E_NOMEM) I(BE_E_MISUSE) I(BE_E_VALIDATION)                 \
  I(BE_E_UNAUTHORIZED) I(BE_E_FORBIDDEN) I(BE_E_NOT_FOUND) I(BE_E_CONFLICT)                 \
  I(BE_E_RATE_LIMITED) I(BE_E_UNAVAILABLE) I(BE_E_TIMEOUT) I(BE_E_STORAGE)                  \
  I(BE_E_POOL_EXHAUSTED) I(BE_E_POOL_CLOSED) I(BE_E_POOL_DEADLOCK) I(BE_E_DB_UNREACHABLE)   \
  I(BE_E_BUSY) I(BE_E_CONN_LOST) I(BE_E_SERIALIZATION) I(BE_E_UNSUPPORTED) I(BE_CAT_NONE)   \
  I(BE_CAT_VALIDATION) I(BE_CAT_UNAUTHENTICATED) I(BE_CAT_PERMISSION_DENIED)                \
  I(BE_CAT_NOT_FOUND) I(BE_CAT_CONFLICT) I(BE_CAT_RATE_LIMITED) I(BE_CAT_UNAVAILABLE)       \
  I(BE_CAT_TIMEOUT) I(BE_CAT_INTERNAL) I(BE_CAT_UNSUPPORTED)                                \
  /* backend/alloc.h */                                                                     \
  I(BE_ALLOCATOR_VERSION)                                                                   \
  /* backend/clock.h */                                                                     \
  I(BE_NS_PER_US) I(BE_NS_PER_MS) I(BE_NS_PER_SEC)                                          \
  /* backend/log.h */                                                                       \
  I(BE_LOG_DEBUG) I(BE_LOG_INFO) I(BE_LOG_WARN) I(BE_LOG_ERROR) I(BE_LOG_OFF)               \
  /* backend/incident.h */                                                                  \
  I(BE_INCIDENT_POOL_EXHAUSTED) I(BE_INCIDENT_POOL_DEADLOCK) I(BE_INCIDENT_DB_UNREACHABLE)  \
  I(BE_INCIDENT_POOL_USAGE) I(BE_INCIDENT_SLOW_QUERIES) I(BE_INCIDENT_KIND_COUNT)           \
  I(BE_INCIDENT_MESSAGE_MAX) I(BE_INCIDENT_VERSION)                                         \
  /* backend/cache.h */                                                                     \
  I(BE_CACHE_TTL_DEFAULT) I(BE_CACHE_TTL_FOREVER) I(BE_CACHE_HIT) I(BE_CACHE_LOADED)        \
  I(BE_CACHE_SHARED) I(BE_CACHE_NEGATIVE) I(BE_CACHE_EVICT_SIZE) I(BE_CACHE_EVICT_COUNT)    \
  I(BE_CACHE_EVICT_EXPIRED) I(BE_CACHE_EVICT_INVALIDATED) I(BE_CACHE_EVICT_REPLACED)        \
  I(BE_CACHE_MAX_PREFIXES) I(BE_CACHE_MAX_KEY) I(BE_CACHE_LRU_DEFAULT)                      \
  I(BE_CACHE_LRU_EXACT) I(BE_CACHE_LRU_APPROX) I(BE_CACHE_OPTIONS_VERSION)                  \
  I(BE_CACHE_STATS_VERSION)                                                                 \
  /* backend/storage.h */                                                                   \
  I(BE_TYPE_NULL) I(BE_TYPE_INT) I(BE_TYPE_FLOAT) I(BE_TYPE_TEXT) I(BE_TYPE_BLOB) I(BE_ROW) \
  I(BE_DONE) I(BE_TX_DEFERRED) I(BE_TX_IMMEDIATE) I(BE_TX_EXCLUSIVE)                        \
  I(BE_PLACEHOLDER_QMARK) I(BE_PLACEHOLDER_DOLLAR) I(BE_FEATURE_RETURNING)                  \
  I(BE_FEATURE_JSON_EACH) I(BE_FEATURE_ARRAY_PARAM) I(BE_FEATURE_SAVEPOINTS)                \
  I(BE_DRIVER_STATUS_FILE) I(BE_DRIVER_STATUS_SIZE_BYTES) I(BE_DRIVER_STATUS_JOURNAL_MODE)  \
  I(BE_DRIVER_STATUS_MEMORY_USED) I(BE_DRIVER_STATUS_CONN_CACHE) I(BE_DRIVER_STATUS_CONN_STMT) \
  I(BE_DRIVER_STATUS_CONN_SCHEMA)                                                           \
  I(BE_DRIVER_VERSION) I(BE_STMT_CACHE_STATS_VERSION)                                       \
  /* backend/sqlite.h */                                                                    \
  I(BE_SQLITE_JOURNAL_DEFAULT) I(BE_SQLITE_JOURNAL_WAL) I(BE_SQLITE_JOURNAL_DELETE)         \
  I(BE_SQLITE_JOURNAL_TRUNCATE) I(BE_SQLITE_JOURNAL_PERSIST) I(BE_SQLITE_JOURNAL_MEMORY)    \
  I(BE_SQLITE_JOURNAL_OFF) I(BE_SQLITE_SYNC_DEFAULT) I(BE_SQLITE_SYNC_OFF)                  \
  I(BE_SQLITE_SYNC_NORMAL) I(BE_SQLITE_SYNC_FULL) I(BE_SQLITE_SYNC_EXTRA)                   \
  I(BE_SQLITE_OPTIONS_VERSION)                                                              \
  /* backend/fault.h */                                                                     \
  I(BE_FAULT_OP_ALL) I(BE_FAULT_OP_OPEN) I(BE_FAULT_OP_PREPARE) I(BE_FAULT_OP_BIND)         \
  I(BE_FAULT_OP_STEP) I(BE_FAULT_OP_RESET) I(BE_FAULT_OP_EXEC) I(BE_FAULT_OP_BEGIN)         \
  I(BE_FAULT_OP_COMMIT) I(BE_FAULT_OP_ROLLBACK) I(BE_FAULT_OP_SAVEPOINT)                    \
  I(BE_FAULT_OP_RELEASE) I(BE_FAULT_OP_ROLLBACK_TO) I(BE_FAULT_OP_PING)                     \
  I(BE_FAULT_OP_CLOSE) I(BE_FAULT_OP_FINALIZE) I(BE_FAULT_OP_COUNT) I(BE_FAULT_OFF)         \
  I(BE_FAULT_NTH) I(BE_FAULT_FROM) I(BE_FAULT_RANDOM)                                       \
  /* backend/tx.h */                                                                        \
  I(BE_TX_OPTIONS_VERSION)                                                                  \
  /* backend/stmt_stats.h */                                                                \
  I(BE_STMT_STATS_OPTIONS_VERSION) I(BE_STMT_STAT_VERSION)                                  \
  /* backend/pool.h */                                                                      \
  I(BE_POOL_OPTIONS_VERSION) I(BE_POOL_STATS_VERSION)                                       \
  /* backend/batch.h */                                                                     \
  I(BE_BATCH_MANY) I(BE_BATCH_ONE) I(BE_BATCH_AUTO) I(BE_BATCH_IN_LIST)                     \
  I(BE_BATCH_JSON_EACH) I(BE_BATCH_ARRAY) I(BE_BATCH_OPTIONS_VERSION)                       \
  I(BE_BATCH_MAX_COLUMNS)                                                                   \
  /* backend/scope.h */                                                                     \
  I(BE_SCOPE_OPTIONS_VERSION)                                                               \
  /* backend/slowlog.h */                                                                   \
  I(BE_SLOWLOG_OPTIONS_VERSION)                                                             \
  /* backend/app.h */                                                                       \
  I(BE_APP_HOST_MIGRATION_MIN) I(BE_APP_OPTIONS_VERSION) I(BE_APP_TABLE_PREFIX_MAX)                                    \
  /* backend/mailer.h */                                                                    \
  I(BE_MAILER_VERSION)                                                                      \
  /* backend/user.h */                                                                      \
  I(BE_USER_ACTIVE) I(BE_USER_DISABLED) I(BE_USER_EMAIL_MAX) I(BE_USER_NAME_MAX)            \
  I(BE_USER_BIO_MAX) I(BE_USER_EXTRA_MAX) I(BE_USER_EXTRA_DEPTH_MAX) I(BE_USER_PAGE_MAX)    \
  I(BE_USER_MANY_MAX) I(BE_USER_FIELD_EMAIL) I(BE_USER_FIELD_NAME) I(BE_USER_FIELD_BIO)     \
  I(BE_USER_FIELD_EXTRA) I(BE_USER_FIELD_STATUS) I(BE_USER_FIELD_ALL)                       \
  I(BE_USER_INPUT_VERSION)                                                                  \
  /* backend/permission.h */                                                                \
  I(BE_PERM_NAME_MAX)                                                                       \
  /* backend/audit.h */                                                                     \
  I(BE_AUDIT_HASH_BYTES) I(BE_AUDIT_PAGE_MAX) I(BE_AUDIT_NAME_MAX) I(BE_AUDIT_DETAILS_MAX)  \
  I(BE_AUDIT_KEY_MIN_BYTES) I(BE_AUDIT_KEY_MAX_BYTES) I(BE_AUDIT_QUERY_OPTIONS_VERSION)     \
  /* backend/testkit.h */                                                                   \
  T(BE_TESTKIT_PASSWORD) I(BE_TESTKIT_START_WALL_MS) I(BE_TESTKIT_OPTIONS_VERSION)          \
  /* backend/auth.h */                                                                      \
  I(BE_AUTH_TOKEN_LEN) I(BE_AUTH_PASSWORD_MAX_BYTES) I(BE_AUTH_PASSWORD_MAX_CHARS)          \
  I(BE_AUTH_PASSWORD_MIN_CHARS) I(BE_AUTH_RESET_MAX_PENDING) I(BE_AUTH_SESSION_INFO_VERSION) \
  I(BE_AUTH_SESSIONS_MAX) I(BE_AUTH_PASSWORD_MIN_DISTINCT) I(BE_AUTH_BREACHED_MAX_DEFAULT)    \
  I(BE_AUTH_PEPPER_MIN_BYTES) I(BE_AUTH_PEPPER_MAX_BYTES) I(BE_AUTH_PREVIOUS_PEPPERS_MAX) \
  /* backend/metrics.h */ \
  I(BE_OP_USER_CREATE) I(BE_OP_USER_GET) I(BE_OP_USER_GET_BY_EMAIL) \
  I(BE_OP_USER_GET_MANY) I(BE_OP_USER_UPDATE) I(BE_OP_USER_DELETE) I(BE_OP_USER_LIST) \
  I(BE_OP_AUTH_SET_PASSWORD) I(BE_OP_AUTH_LOGIN) I(BE_OP_AUTH_VERIFY) \
  I(BE_OP_AUTH_VERIFY_SESSION) I(BE_OP_AUTH_LIST_SESSIONS) I(BE_OP_AUTH_END_SESSION) \
  I(BE_OP_AUTH_LOGOUT) I(BE_OP_AUTH_REVOKE_ALL) I(BE_OP_AUTH_CHANGE_PASSWORD) \
  I(BE_OP_AUTH_REQUEST_RESET) I(BE_OP_AUTH_RESET_PASSWORD) I(BE_OP_AUTH_PURGE_EXPIRED) \
  I(BE_OP_PERM_CHECK) I(BE_OP_PERM_ROLE_CREATE) I(BE_OP_PERM_ROLE_DELETE) \
  I(BE_OP_PERM_ROLE_GRANT) I(BE_OP_PERM_ROLE_REVOKE) I(BE_OP_PERM_USER_ASSIGN) \
  I(BE_OP_PERM_USER_UNASSIGN) I(BE_OP_PERM_USER_PERMISSIONS) I(BE_OP_PERM_USER_ROLES) \
  I(BE_OP_PERM_ROLE_PERMISSIONS) I(BE_OP_AUDIT_WRITE) I(BE_OP_AUDIT_QUERY) \
  I(BE_OP_AUDIT_VERIFY) I(BE_OP_AUDIT_HEAD) I(BE_OP_USER_GET_FRESH) \
  I(BE_OP_AUTH_IMPORT_PASSWORD_HASH) I(BE_OP_POOL_ACQUIRE) I(BE_OP_CACHE_LOAD) \
  I(BE_OP_COUNT) I(BE_OP_SERVICE_COUNT) \
  I(BE_METRICS_STRIPES) I(BE_OP_STATS_VERSION) \
  /* backend/status.h */ \
  I(BE_STATUS_TEXT_MAX) I(BE_APP_STATUS_VERSION) I(BE_APP_MEMORY_VERSION) \
  I(BE_APP_INVALIDATION_NONE) I(BE_APP_INVALIDATION_LISTENING) I(BE_APP_INVALIDATION_DOWN)
/* clang-format on */

#endif
