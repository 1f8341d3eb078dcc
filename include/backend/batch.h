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
 * has BE_FEATURE_JSON_EACH. BE_BATCH_AUTO picks the measured faster one
 * (see be_batch_default_strategy()).
 *
 * The result holds every row once, grouped by key: groups follow the order
 * in which the keys first appear in the caller's list, and rows inside a
 * group keep the statement's ORDER BY order. A key without rows has an
 * empty group. Table, column and ORDER BY names must be plain identifiers,
 * [A-Za-z_][A-Za-z0-9_]{0,63} (names are not quoted: SQLite would read an
 * unknown "quoted" name as a string), otherwise BE_E_VALIDATION names the
 * offending option field ("table", "columns[2]", "key_column",
 * "order_by[0]"). Rows whose key column does not equal a requested key byte
 * for byte (possible with a NOCASE collation) are left out.
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

/** @name be_batch_options.relation @{ */
#define BE_BATCH_MANY 0 /**< one-to-many: any number of rows per key */
#define BE_BATCH_ONE 1  /**< one-to-one: at most one row per key (BE_E_CONFLICT otherwise) */
/** @} */

/** @name be_batch_options.strategy: how the key list reaches the database @{ */
#define BE_BATCH_AUTO 0      /**< the measured default for the driver */
#define BE_BATCH_IN_LIST 1   /**< key IN (?, ?, ...), chunked at the bind limit */
#define BE_BATCH_JSON_EACH 2 /**< key IN (SELECT value FROM json_each(?)) */
/** @} */

#define BE_BATCH_OPTIONS_VERSION 1

/**
 * What to load. All strings and arrays are borrowed for the call.
 * Only ever grows at the end.
 */
typedef struct be_batch_options {
  uint32_t version;            /**< BE_BATCH_OPTIONS_VERSION */
  const char *table;           /**< required identifier */
  const char *const *columns;  /**< required identifiers, column_count >= 1 */
  size_t column_count;
  const char *key_column;      /**< required identifier; the column keys match */
  /** Optional extra condition, trusted SQL text written by the programmer
   * (never user input), ANDed with the key match. Its placeholders come
   * first: ? (or $1..$m for BE_PLACEHOLDER_DOLLAR drivers). */
  const char *where;
  const be_params *where_params; /**< values for where's placeholders, or NULL */
  /** Optional ORDER BY within groups: each "column", "column ASC" or
   * "column DESC" (case-insensitive keyword). */
  const char *const *order_by;
  size_t order_by_count;
  int32_t relation;            /**< BE_BATCH_MANY (default) or BE_BATCH_ONE */
  int32_t strategy;            /**< BE_BATCH_AUTO (default), _IN_LIST, _JSON_EACH */
  /** Most keys per statement; 0 = no limit beyond the driver's. */
  int32_t max_chunk;
} be_batch_options;

#define BE_BATCH_OPTIONS_INIT \
  { BE_BATCH_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, BE_BATCH_MANY, BE_BATCH_AUTO, 0 }

/** Fill *opts like BE_BATCH_OPTIONS_INIT. Errors: BE_E_MISUSE (NULL, unknown version). */
BE_API int be_batch_options_init(be_batch_options *opts, uint32_t version);

/** The strategy BE_BATCH_AUTO uses for a driver (BE_BATCH_IN_LIST or
 * BE_BATCH_JSON_EACH); BE_BATCH_IN_LIST for NULL. Thread-safety: safe. */
BE_API int32_t be_batch_default_strategy(const be_driver *driver);

/** A loaded batch: rows grouped by key. */
typedef struct be_batch_result be_batch_result;

/**
 * Load the rows for n_keys int64 keys (duplicates allowed; n_keys may be 0,
 * then no statement runs). Caller owns *out (be_batch_result_free).
 * Errors: BE_E_MISUSE (NULL out/conn/opts, keys NULL with n_keys > 0, bad
 * opts version), BE_E_VALIDATION (bad identifier or ORDER BY term, bad
 * relation/strategy/max_chunk, more where values than the bind limit; the
 * field is named), BE_E_UNSUPPORTED (BE_BATCH_JSON_EACH on a driver
 * without it), BE_E_CONFLICT (BE_BATCH_ONE and a key has two rows), driver
 * errors (BE_E_STORAGE, BE_E_CONN_LOST, ...), BE_E_NOMEM. *out is NULL on
 * failure. Thread-safety: the connection's thread only.
 */
BE_API int be_batch_load_int64(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                               const int64_t *keys, size_t n_keys, be_error **err);

/**
 * Like be_batch_load_int64() with text keys: keys[i] has key_lens[i] bytes
 * (key_lens NULL: each key is NUL-terminated; a length may also be
 * BE_NUL_TERMINATED, and 0 is the empty key). Keys are compared byte for
 * byte and must be valid UTF-8 without NUL bytes (BE_E_VALIDATION, field
 * "keys[i]", otherwise); they are bound, so quotes are harmless.
 */
BE_API int be_batch_load_text(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                              const char *const *keys, const size_t *key_lens, size_t n_keys,
                              be_error **err);

/** Release a result. NULL is a no-op. */
BE_API void be_batch_result_free(be_batch_result *result);

/** Every loaded row, groups one after the other in key order; borrowed,
 * valid until be_batch_result_free(). Columns are opts.columns. */
BE_API const be_rows *be_batch_result_rows(const be_batch_result *result);

/** Number of distinct keys asked for (0 for NULL). */
BE_API size_t be_batch_result_key_count(const be_batch_result *result);

/** Key i (0 .. key_count-1) in the caller's order; 0 / NULL when out of
 * range or of the other key type. Text is borrowed from the result. */
BE_API int64_t be_batch_result_key_int64(const be_batch_result *result, size_t i);
BE_API const char *be_batch_result_key_text(const be_batch_result *result, size_t i, size_t *len);

/** Rows of key i: returns how many, and *first (may be NULL) gets the index
 * of the first in be_batch_result_rows(). 0 when out of range. */
BE_API size_t be_batch_result_group(const be_batch_result *result, size_t i, size_t *first);

/** Rows of a key by value: like be_batch_result_group(); 0 for a key with
 * no rows and for a key that was not asked for. len may be
 * BE_NUL_TERMINATED; 0 is the empty key. */
BE_API size_t be_batch_result_find_int64(const be_batch_result *result, int64_t key,
                                         size_t *first);
BE_API size_t be_batch_result_find_text(const be_batch_result *result, const char *key,
                                        size_t len, size_t *first);

BE_END_DECLS

#endif /* BACKEND_BATCH_H */
