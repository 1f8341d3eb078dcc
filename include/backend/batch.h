/* SPDX-License-Identifier: MIT */
/**
 * @file backend/batch.h
 * @brief Batch loading by key list: one statement per chunk instead of one
 *        per key (the N+1 fix), grouped by key in the caller's key order.
 *
 * be_batch_load_int64() / be_batch_load_text() run
 *
 *     SELECT <columns>, <key_column> FROM <table>
 *      WHERE (<where>) AND <key_column> IN (<keys>) [ORDER BY <order_by>]
 *
 * with every key and every where value bound, never spliced into the SQL.
 * Keys are deduplicated first. The key list travels either as placeholders
 * chunked at the driver's real bind limit (be_conn_bind_limit() minus the
 * where values; chunk sizes are rounded up to powers of two so the
 * connection's statement cache sees few distinct texts), or as one JSON
 * text parameter, `IN (SELECT value FROM json_each(?))`, when the driver
 * has BE_FEATURE_JSON_EACH, or as one array parameter, `= ANY($1)`, when
 * it has BE_FEATURE_ARRAY_PARAM (PostgreSQL: 100,000 keys are one
 * statement). BE_BATCH_AUTO picks the measured faster one (see
 * be_batch_default_strategy()).
 *
 * The result holds every row once, grouped by key: groups follow the order
 * in which the keys first appear in the caller's list, and rows inside a
 * group keep the statement's ORDER BY order. A key without rows has an
 * empty group. Table, column and ORDER BY names must be plain identifiers,
 * [A-Za-z_][A-Za-z0-9_]{0,63} (names are not quoted: SQLite would read an
 * unknown "quoted" name as a string), and a column, key or ORDER BY name
 * must not be NULL, TRUE, FALSE, CURRENT_DATE, CURRENT_TIME or
 * CURRENT_TIMESTAMP in any case (the database reads them as values),
 * otherwise BE_E_VALIDATION names the offending option field ("table",
 * "columns[2]", "key_column", "order_by[0]"). A column, key or ORDER BY
 * name that PostgreSQL reads as a value (USER, CURRENT_USER,
 * SESSION_USER, SYSTEM_USER, CURRENT_ROLE, CURRENT_CATALOG,
 * CURRENT_SCHEMA, LOCALTIME, LOCALTIMESTAMP) is written qualified by the
 * table (acct.user), which SQLite and PostgreSQL read as the column; from
 * a table named CAST or RAISE, which SQLite refuses before a dot, as
 * "cast".user (quoted, in lower case). Rows whose
 * key column does not equal a requested key byte for byte (possible with
 * a NOCASE collation) are left out. Keys should
 * have the key column's type: with BE_BATCH_IN_LIST SQLite gives each
 * bound key the column's affinity (key 5 finds '5' in a TEXT column), with
 * BE_BATCH_JSON_EACH it compares them as they are (key 5 does not).
 *
 * Threads: a load uses the connection, so the connection's thread only. A
 * be_batch_result is read-only once made and may be read from any thread.
 */
#ifndef BACKEND_BATCH_H
#define BACKEND_BATCH_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/params.h>
#include <backend/rows.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** @name be_batch_options.relation */
/** @{ */
#define BE_BATCH_MANY 0 /**< one-to-many: any number of rows per key */
#define BE_BATCH_ONE 1  /**< one-to-one: at most one row per key (BE_E_CONFLICT otherwise) */
/** @} */

/** @name be_batch_options.strategy: how the key list reaches the database */
/** @{ */
#define BE_BATCH_AUTO 0      /**< the measured default for the driver */
#define BE_BATCH_IN_LIST 1   /**< key IN (?, ?, ...), chunked at the bind limit */
#define BE_BATCH_JSON_EACH 2 /**< key IN (SELECT value FROM json_each(?)) */
#define BE_BATCH_ARRAY 3     /**< key = ANY(?): every key in one array parameter (BE_FEATURE_ARRAY_PARAM) */
/** @} */

/** The be_batch_options layout this header describes (its version field). */
#define BE_BATCH_OPTIONS_VERSION 1

/** The most columns, and the most ORDER BY terms, a load may name: with
 * the key column the statement reads one more column, and 2000 is
 * SQLite's default limit of both. PostgreSQL's is 1664 result entries,
 * and it adds one for each ORDER BY column not among the columns: there
 * 1663 columns fit with an ORDER BY of loaded columns only (more is
 * BE_E_STORAGE from PostgreSQL). */
#define BE_BATCH_MAX_COLUMNS 1999

/**
 * What to load. All strings and arrays are borrowed for the call.
 * Only ever grows at the end.
 */
typedef struct be_batch_options {
  uint32_t version;           /**< BE_BATCH_OPTIONS_VERSION */
  const char *table;          /**< required identifier */
  const char *const *columns; /**< required identifiers, column_count >= 1 */
  size_t column_count;        /**< number of entries in columns, 1..BE_BATCH_MAX_COLUMNS */
  const char *key_column;     /**< required identifier; the column keys match */
  /** Optional extra condition, trusted SQL text written by the programmer
   * (never user input), ANDed with the key match. Its placeholders come
   * first: ? (or $1..$m for BE_PLACEHOLDER_DOLLAR drivers). */
  const char *where;
  const be_params *where_params; /**< values for where's placeholders, or NULL */
  /** Optional ORDER BY within groups: each "column", "column ASC" or
   * "column DESC" (case-insensitive keyword). */
  const char *const *order_by;
  size_t order_by_count; /**< entries in order_by, 0 (no ORDER BY)..BE_BATCH_MAX_COLUMNS */
  int32_t relation;      /**< BE_BATCH_MANY (default) or BE_BATCH_ONE */
  int32_t strategy;      /**< BE_BATCH_AUTO (default), _IN_LIST, _JSON_EACH, _ARRAY */
  /** Most keys per statement; 0 = no limit beyond the driver's. */
  int32_t max_chunk;
} be_batch_options;

/** Static initializer: the current version, no table or columns yet,
 * BE_BATCH_MANY, BE_BATCH_AUTO, no chunk limit. */
#define BE_BATCH_OPTIONS_INIT \
  { BE_BATCH_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, BE_BATCH_MANY, BE_BATCH_AUTO, 0 }

/**
 * Fill *opts like BE_BATCH_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_BATCH_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_batch_options_init(be_batch_options *opts, uint32_t version);

/**
 * The strategy BE_BATCH_AUTO uses for a driver. Thread-safety: safe.
 *
 * @param driver  the driver table, or NULL.
 * @return BE_BATCH_ARRAY for a driver with BE_FEATURE_ARRAY_PARAM,
 *         else BE_BATCH_IN_LIST (also for NULL).
 */
BE_API int32_t be_batch_default_strategy(const be_driver *driver);

/** A loaded batch: rows grouped by key. */
typedef struct be_batch_result be_batch_result;

/**
 * Load the rows for a list of int64 keys.
 * Thread-safety: the connection's thread only.
 *
 * @param out     receives the result, the caller's
 *                (be_batch_result_free()); not NULL. Set to NULL on
 *                failure.
 * @param conn    the connection; not NULL.
 * @param opts    what to load, version set; not NULL. Borrowed for the
 *                call.
 * @param keys    the keys, n_keys of them (duplicates allowed); may be
 *                NULL when n_keys is 0.
 * @param n_keys  number of keys; 0 runs no statement.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL out/conn/opts, keys NULL with
 *         n_keys > 0, bad opts version); BE_E_VALIDATION (bad identifier or
 *         ORDER BY term, bad relation/strategy/max_chunk, more where values
 *         than the bind limit; the field is named); BE_E_UNSUPPORTED
 *         (BE_BATCH_JSON_EACH or BE_BATCH_ARRAY on a driver without
 *         the feature); BE_E_CONFLICT
 *         (BE_BATCH_ONE and a key has two rows); driver errors
 *         (BE_E_STORAGE, BE_E_CONN_LOST, ...); BE_E_NOMEM.
 */
BE_API int be_batch_load_int64(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                               const int64_t *keys, size_t n_keys, be_error **err);

/**
 * Like be_batch_load_int64() with text keys. Keys are compared byte for
 * byte; they are bound, so quotes are harmless.
 * Thread-safety: the connection's thread only.
 *
 * @param out       as for be_batch_load_int64().
 * @param conn      as for be_batch_load_int64().
 * @param opts      as for be_batch_load_int64().
 * @param keys      the keys, n_keys of them, each valid UTF-8 without NUL
 *                  bytes and not NULL; the array may be NULL when n_keys
 *                  is 0. Borrowed for the call.
 * @param key_lens  keys[i] has key_lens[i] bytes (a length may be
 *                  BE_NUL_TERMINATED, and 0 is the empty key); NULL means
 *                  every key is NUL-terminated.
 * @param n_keys    number of keys; 0 runs no statement.
 * @param err       receives the error on failure; may be NULL.
 * @return as be_batch_load_int64(); BE_E_VALIDATION also for a NULL key or
 *         one that is not valid UTF-8 or holds a NUL byte (field
 *         "keys[i]").
 */
BE_API int be_batch_load_text(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                              const char *const *keys, const size_t *key_lens, size_t n_keys,
                              be_error **err);

/**
 * Release a result and its rows.
 *
 * @param result  the result, or NULL (a no-op).
 */
BE_API void be_batch_result_free(be_batch_result *result);

/**
 * Every loaded row, groups one after the other in key order. Columns are
 * opts.columns.
 *
 * @param result  the result, or NULL.
 * @return the rows, borrowed, valid until be_batch_result_free(); NULL for
 *         NULL.
 */
BE_API const be_rows *be_batch_result_rows(const be_batch_result *result);

/**
 * Number of distinct keys asked for.
 *
 * @param result  the result, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_batch_result_key_count(const be_batch_result *result);

/**
 * An int64 key, in the caller's order (first appearance).
 *
 * @param result  the result, or NULL.
 * @param i       the key's index, 0 to be_batch_result_key_count() - 1.
 * @return the key; 0 when out of range or the keys are text.
 */
BE_API int64_t be_batch_result_key_int64(const be_batch_result *result, size_t i);
/**
 * A text key, in the caller's order (first appearance).
 *
 * @param result  the result, or NULL.
 * @param i       the key's index, 0 to be_batch_result_key_count() - 1.
 * @param len     receives its length in bytes (0 when NULL is returned);
 *                may be NULL.
 * @return the key, NUL-terminated, borrowed from the result; NULL when out
 *         of range or the keys are int64.
 */
BE_API const char *be_batch_result_key_text(const be_batch_result *result, size_t i, size_t *len);

/**
 * The rows of key i.
 *
 * @param result  the result, or NULL.
 * @param i       the key's index, 0 to be_batch_result_key_count() - 1.
 * @param first   receives the index in be_batch_result_rows() of the
 *                group's first row (0 when out of range); may be NULL.
 * @return how many rows the key has; 0 when out of range.
 */
BE_API size_t be_batch_result_group(const be_batch_result *result, size_t i, size_t *first);

/**
 * The rows of an int64 key, by value: like be_batch_result_group().
 *
 * @param result  the result, or NULL.
 * @param key     the key.
 * @param first   receives the index of the group's first row; may be NULL.
 * @return how many rows the key has; 0 for a key with no rows and for a
 *         key that was not asked for.
 */
BE_API size_t be_batch_result_find_int64(const be_batch_result *result, int64_t key,
                                         size_t *first);
/**
 * The rows of a text key, by value: like be_batch_result_group().
 *
 * @param result  the result, or NULL.
 * @param key     the key; NULL finds nothing.
 * @param len     its length in bytes, or BE_NUL_TERMINATED; 0 is the empty
 *                key.
 * @param first   receives the index of the group's first row; may be NULL.
 * @return how many rows the key has; 0 for a key with no rows and for a
 *         key that was not asked for.
 */
BE_API size_t be_batch_result_find_text(const be_batch_result *result, const char *key,
                                        size_t len, size_t *first);

BE_END_DECLS

#endif /* BACKEND_BATCH_H */
