/* SPDX-License-Identifier: MIT */
/**
 * @file backend/audit.h
 * @brief The audit log: writing host rows, querying it and verifying its
 *        hash chain (keyed with a host secret, checked against anchors).
 *
 * Every mutating service call (users, permissions, passwords and
 * sessions) writes one audit row in the same transaction as its change:
 * if either fails, neither is written. A row records the actor (a user
 * id, 0 = the system), the action ("user.update"), the target
 * ("user", 42), the time (wall-clock, from the app's clock; read back in
 * milliseconds since the Unix epoch) and details as JSON. Secrets
 * (passwords, tokens) never appear in it.
 *
 * The host writes rows for its own changes with be_audit_write(), inside
 * its own transaction, into the same chain.
 *
 * Tamper evidence: the rows form a hash chain. Editing, deleting or
 * reordering a row breaks the chain at that row or the next one, and
 * be_audit_verify() finds it. Unkeyed, the chain only catches careless
 * edits: anyone who can write the database file can recompute every hash
 * after an edit. Two things close that gap:
 * - a key (app options audit_key / audit_key_len): a secret of 32..64
 *   bytes the host keeps outside the database (a secrets manager, an
 *   environment variable, a file the database user cannot read). Keyed
 *   rows cannot be forged, edited or appended without it;
 * - anchors: be_audit_head() gives the newest row's id and hash; publish
 *   them outside the database now and then (a log shipper, another
 *   system, a signed message) and check later with
 *   be_audit_verify_anchor(), which also catches rows cut off the end
 *   and a log rewritten from the start (keyed or not).
 *
 * Row hash. The table is audit_log, with columns id, actor_id, action,
 * target_type, target_id, at, details, prev_hash, hash (SQLite types:
 * INTEGER, INTEGER, TEXT, TEXT, INTEGER, INTEGER, TEXT, BLOB, BLOB).
 * Row ids are 1, 2, 3, ... without gaps. A row's hash is BLAKE2b
 * (RFC 7693) with a 32-byte digest -- libsodium crypto_generichash,
 * Python hashlib.blake2b(digest_size=32) -- over these bytes, in order:
 *   1. the 19 ASCII bytes "libbackend.audit.v1" and a zero byte;
 *   2. id, as 8 bytes: the int64 as an unsigned 64-bit integer (two's
 *      complement), big-endian (most significant byte first);
 *   3. actor_id, 8 bytes as in 2;
 *   4. action: its length in bytes (8 bytes as in 2), then its UTF-8
 *      bytes exactly as stored (no terminator);
 *   5. target_type: length and bytes as in 4;
 *   6. target_id, 8 bytes as in 2;
 *   7. at, 8 bytes as in 2: the stored value, which is nanoseconds since
 *      the Unix epoch (be_audit_page_at_ms() divides it by 10^6);
 *   8. details: length and bytes as in 4 (the JSON text as stored);
 *   9. prev_hash: 32 bytes, the previous row's hash (32 zero bytes for
 *      row 1).
 * An unkeyed row uses BLAKE2b without a key; a keyed row uses BLAKE2b's
 * keyed mode with the key as given (crypto_generichash's key argument,
 * hashlib.blake2b(key=...)). The row is intact when its prev_hash equals
 * the previous row's hash and its hash equals the hash of the bytes above.
 *
 * Keyed chain. A keyed app records in table audit_key one row (id 1)
 * with keyed_from, the first row id hashed with the key, and key_check,
 * the keyed BLAKE2b-256 of the 23 ASCII bytes "libbackend.audit.key.v1", a
 * zero byte followed by keyed_from (8 bytes as in 2). Rows below
 * keyed_from are unkeyed, rows from it on are keyed. A new database
 * started with a key has keyed_from = 1. be_app_new() then refuses
 * (BE_E_VALIDATION, field "audit_key") a key that does not match
 * key_check, an app without a key on a keyed log, and a key for a log
 * that already holds unkeyed rows unless audit_key_adopt = 1, which keys
 * it from its next row on (set it for one start, not for good: a key
 * record deleted later must not be re-made silently). Every process
 * writing to one database must use the same key. When the audit_key row
 * does not check out during a verification, every row is judged as keyed.
 * tests/audit/recompute_chain.py recomputes a chain from these rules.
 *
 * Thread-safety: every function taking a be_app is safe from any number of
 * threads. A be_audit_page is immutable and may be read from any thread.
 */
#ifndef BACKEND_AUDIT_H
#define BACKEND_AUDIT_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/app.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** One page of audit rows, newest first. */
typedef struct be_audit_page be_audit_page;

/** Bytes of a row hash. */
#define BE_AUDIT_HASH_BYTES 32
/** Largest page of be_audit_query(). */
#define BE_AUDIT_PAGE_MAX 500

/** Longest action and target type of a row, in bytes. */
#define BE_AUDIT_NAME_MAX 64
/** Longest details JSON text of a row, in bytes. */
#define BE_AUDIT_DETAILS_MAX 65536

/** Shortest app option audit_key (a BLAKE2b key), in bytes. */
#define BE_AUDIT_KEY_MIN_BYTES 32
/** Longest app option audit_key, in bytes. */
#define BE_AUDIT_KEY_MAX_BYTES 64

/**
 * Append one row to the audit log, for a change the host makes to its own
 * tables: call it inside the host's write transaction on conn (e.g. from a
 * be_pool_tx_run() callback on be_app_pool(app)), so the row commits or
 * rolls back with the change it records, chained like every other row.
 * Every string is a pointer and a byte length (BE_NUL_TERMINATED: up to
 * the first NUL; 0: empty). Never put secrets in details. Nothing is
 * written on failure.
 * Thread-safety: safe (conn belongs to the calling thread).
 *
 * @param out_id            receives the row's id; may be NULL.
 * @param app               the app; not NULL.
 * @param conn              a connection of the app's pool that the caller
 *                          holds, inside a transaction; not NULL.
 * @param actor_id          the user doing it, or 0 for the system.
 * @param action            e.g. "post.publish": 1..BE_AUDIT_NAME_MAX bytes
 *                          of [a-z0-9_.], not starting with "user.",
 *                          "auth." or "perm." (libbackend's own).
 * @param action_len        its length in bytes, or BE_NUL_TERMINATED.
 * @param target_type       e.g. "post": 1..BE_AUDIT_NAME_MAX bytes of
 *                          [a-z0-9_.].
 * @param target_type_len   its length in bytes, or BE_NUL_TERMINATED.
 * @param target_id         the target's id (any value).
 * @param details_json      a JSON object of at most BE_AUDIT_DETAILS_MAX
 *                          bytes; NULL means "{}".
 * @param details_json_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err               receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app or conn NULL, conn not a connection of
 *         the app's pool checked out by the caller, or not inside a
 *         transaction); BE_E_VALIDATION (field "actor_id", "action",
 *         "target_type" or "details"); storage errors.
 */
BE_API int be_audit_write(int64_t *out_id, be_app *app, be_conn *conn, int64_t actor_id,
                          const char *action, size_t action_len, const char *target_type,
                          size_t target_type_len, int64_t target_id, const char *details_json,
                          size_t details_json_len, be_error **err);

/** The be_audit_query_options layout this header describes (its version field). */
#define BE_AUDIT_QUERY_OPTIONS_VERSION 1

/** What be_audit_query() returns. Times are wall-clock milliseconds since
 * the Unix epoch, like be_audit_page_at_ms(). Only ever grows at the end. */
typedef struct be_audit_query_options {
  uint32_t version;   /**< BE_AUDIT_QUERY_OPTIONS_VERSION */
  int32_t match_user; /**< 1: only rows whose actor is user_id or whose target is user user_id */
  int64_t user_id;    /**< with match_user (0 = the system as actor) */
  int64_t from_ms;    /**< at >= from_ms; 0 = no lower bound */
  int64_t to_ms;      /**< at < to_ms; 0 = no upper bound */
  const char *cursor; /**< NULL for the first page, else be_audit_page_next_cursor() */
  size_t cursor_len;  /**< bytes of cursor, or BE_NUL_TERMINATED [BE_NUL_TERMINATED] */
  int32_t limit;      /**< 1..BE_AUDIT_PAGE_MAX; 0 = 50 */
} be_audit_query_options;

/** Static initializer: every row, first page, 50 rows. */
#define BE_AUDIT_QUERY_OPTIONS_INIT \
  { BE_AUDIT_QUERY_OPTIONS_VERSION, 0, 0, 0, 0, NULL, BE_NUL_TERMINATED, 0 }

/**
 * Fill *opts like BE_AUDIT_QUERY_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_AUDIT_QUERY_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_audit_query_options_init(be_audit_query_options *opts, uint32_t version);

/**
 * One page of matching rows, newest (highest id) first; keyset-paginated,
 * so rows written between pages never make a page repeat or skip a row.
 * Thread-safety: safe.
 *
 * @param out   receives the page, the caller's (be_audit_page_free()); not
 *              NULL.
 * @param app   the app; not NULL.
 * @param opts  the filter, version set, read during the call; NULL means
 *              every row, first page of 50.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL, unknown version);
 *         BE_E_VALIDATION (field "cursor", "limit", "match_user",
 *         "user_id", "to_ms"); pool and storage errors; BE_E_NOMEM.
 */
BE_API int be_audit_query(be_audit_page **out, be_app *app, const be_audit_query_options *opts,
                          be_error **err);

/**
 * @name Reading a page
 * Rows are 0 to count - 1, newest first; out of range gives 0 or NULL, as
 * does a NULL page. Strings are NUL-terminated and borrowed until
 * be_audit_page_free().
 */
/** @{ */
/**
 * Number of rows on the page.
 * @param page  the page, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_audit_page_count(const be_audit_page *page);
/**
 * Cursor for the next page (be_audit_query_options.cursor).
 * @param page  the page, or NULL.
 * @return the cursor, borrowed; NULL on the last page.
 */
BE_API const char *be_audit_page_next_cursor(const be_audit_page *page);
/**
 * A row's id (its place in the chain).
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return the id; 0 when out of range.
 */
BE_API int64_t be_audit_page_id(const be_audit_page *page, size_t i);
/**
 * Who made the change.
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return the actor's user id, 0 for the system (and when out of range).
 */
BE_API int64_t be_audit_page_actor_id(const be_audit_page *page, size_t i);
/**
 * What was done ("user.update").
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return the action; NULL when out of range.
 */
BE_API const char *be_audit_page_action(const be_audit_page *page, size_t i);
/**
 * The kind of object changed ("user").
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return the target type; NULL when out of range.
 */
BE_API const char *be_audit_page_target_type(const be_audit_page *page, size_t i);
/**
 * The id of the object changed.
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return the target id; 0 when out of range.
 */
BE_API int64_t be_audit_page_target_id(const be_audit_page *page, size_t i);
/**
 * When the row was written.
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return wall-clock milliseconds since the Unix epoch; 0 when out of
 *         range.
 */
BE_API int64_t be_audit_page_at_ms(const be_audit_page *page, size_t i);
/**
 * The row's details.
 * @param page  the page, or NULL.
 * @param i     the row, 0 to count - 1.
 * @return the details JSON object text; NULL when out of range.
 */
BE_API const char *be_audit_page_details(const be_audit_page *page, size_t i);
/** @} */

/**
 * Release a page.
 *
 * @param page  the page, or NULL (a no-op).
 */
BE_API void be_audit_page_free(be_audit_page *page);

/**
 * Walk the whole chain in id order, recomputing every hash. Reads one
 * snapshot; writers are not blocked (WAL). A broken chain is not an error:
 * check *out_first_bad_id. Thread-safety: safe.
 *
 * @param out_first_bad_id  receives 0 when the chain is intact, else the id
 *                          of the first row whose stored hash or link to
 *                          the previous row is wrong, or whose columns
 *                          hold other types than written (SQLite keeps any
 *                          type a write gives); where a row's id does not
 *                          follow the previous one, the id that should
 *                          have (previous + 1: a row put before the first
 *                          gives 1, never 0 or a negative id); not NULL.
 * @param out_rows          receives the number of rows checked; may be
 *                          NULL.
 * @param app               the app; not NULL.
 * @param err               receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out_first_bad_id or app NULL); pool and
 *         storage errors.
 */
BE_API int be_audit_verify(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app,
                           be_error **err);

/**
 * Verify the whole chain like be_audit_verify(), and also that it still
 * holds an anchor taken earlier with be_audit_head(): row anchor_id must
 * be there with hash anchor_hash. This catches what the chain alone
 * cannot: rows cut off the end, and rows rewritten up to the anchor with
 * their hashes recomputed (with the key, or without one on an unkeyed
 * log). Reads one snapshot; writers are not blocked (WAL). A broken chain
 * is not an error: check *out_first_bad_id. Thread-safety: safe.
 *
 * @param out_first_bad_id  receives 0 when the chain is intact and holds
 *                          the anchor; else the first row that is wrong as
 *                          for be_audit_verify(), or anchor_id when the
 *                          chain is consistent but row anchor_id has
 *                          another hash (it or a row before it was
 *                          rewritten), or the newest id + 1 when the chain
 *                          ends before anchor_id (rows were cut off); not
 *                          NULL.
 * @param out_rows          receives the number of rows checked; may be
 *                          NULL.
 * @param app               the app; not NULL.
 * @param anchor_id         the anchor's row id; 0 is the empty log's
 *                          anchor.
 * @param anchor_hash       the anchor's hash: BE_AUDIT_HASH_BYTES bytes (32
 *                          zero bytes with anchor_id 0); not NULL.
 * @param err               receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out_first_bad_id, app or anchor_hash NULL);
 *         BE_E_VALIDATION (field "anchor_id": negative; "anchor_hash": not
 *         zero with anchor_id 0); pool and storage errors.
 */
BE_API int be_audit_verify_anchor(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app,
                                  int64_t anchor_id, const uint8_t *anchor_hash, be_error **err);

/**
 * The newest row's id and hash, to keep outside the database as an
 * anchor for be_audit_verify_anchor(). Thread-safety: safe.
 *
 * @param out_id    receives the row's id (0 when the log is empty); not
 *                  NULL.
 * @param out_hash  receives the row's hash (32 zero bytes when the log is
 *                  empty): a buffer of BE_AUDIT_HASH_BYTES bytes; not NULL.
 * @param app       the app; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL), or pool and storage errors.
 */
BE_API int be_audit_head(int64_t *out_id, uint8_t *out_hash, be_app *app, be_error **err);

BE_END_DECLS

#endif /* BACKEND_AUDIT_H */
