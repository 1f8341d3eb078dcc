/* SPDX-License-Identifier: MIT */
/*
 * Internal: the services' SQL plumbing -- connections from the app's pool,
 * write transactions, statements prepared and bound from a type string,
 * and the "prepare, bind, step, read the row, finalize" every read does.
 *
 * Bind types, one character per parameter (?1, ?2, ... in order), each
 * taking these variadic arguments (exactly these types: pass an int64_t
 * for 'i', a size_t for the length of 's'):
 *   'i'  int64_t
 *   't'  const char *: NUL-terminated text
 *   's'  const char *, size_t: text of that many bytes
 *   'h'  const uint8_t *: a blob of BE__SVC_HASH_BYTES bytes
 */
#ifndef BE_LIB_SVC_SQL_H
#define BE_LIB_SVC_SQL_H

#include <backend/storage.h>
#include <backend/tx.h>

#include "app_resources.h"

/* Bytes of the hashes the services store (BLAKE2b-256: tokens, audit rows). */
#define BE__SVC_HASH_BYTES 32

/* Take a connection from the app's pool / give it back. */
int be__svc_acquire(const be__app_res *res, be_conn **out, be_error **err);
void be__svc_release(const be__app_res *res, be_conn *conn);

/* Run fn in a write transaction (BEGIN IMMEDIATE, retried on busy) on a
 * pooled connection, released before returning. fn may run more than
 * once: keep it free of side effects outside the database. */
int be__svc_write(const be__app_res *res, be_tx_fn fn, void *ud, be_error **err);

/* Prepare, bind, run to completion; *out_changes (may be NULL) gets the
 * rows changed. */
int be__svc_exec(be_conn *conn, int64_t *out_changes, be_error **err, const char *sql,
                 const char *types, ...);

/* Reads the row st stands on (st is finalized by the caller). Returns
 * BE_OK; for be__svc_each, BE_DONE stops the walk early; an error stops it
 * and is returned. */
typedef int (*be__svc_row_fn)(be_stmt *st, void *ud, be_error **err);

/* Prepare, bind and step once: BE_ROW after row(st, ud) (may be NULL) read
 * the first row, BE_DONE when there is none, or a negative error. */
int be__svc_first(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err, const char *sql,
                  const char *types, ...);

/* be__svc_first on a connection of the app's pool. */
int be__svc_first_pooled(const be__app_res *res, be__svc_row_fn row, void *ud, be_error **err,
                         const char *sql, const char *types, ...);

/* be__svc_first_pooled of a statement handle (the app's catalog,
 * be__sql_handle()) whose one parameter ?1 is the int64 id: found in the
 * connection's statement cache without hashing its text and bound without
 * a type string, for the hot reads by id. */
int be__svc_first_pooled_id(const be__app_res *res, be__svc_row_fn row, void *ud, be_error **err,
                            const be_sql *sql, int64_t id);

/* be__svc_first reading columns 0..n-1 of the row as int64 into out. */
int be__svc_ints(be_conn *conn, int64_t *out, int32_t n, be_error **err, const char *sql,
                 const char *types, ...);

/* Prepare, bind and call row(st, ud) for every row: BE_OK at the end or
 * when row returned BE_DONE, else the error. */
int be__svc_each(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err, const char *sql,
                 const char *types, ...);

/* be__svc_each on a connection of the app's pool. */
int be__svc_each_pooled(const be__app_res *res, be__svc_row_fn row, void *ud, be_error **err,
                        const char *sql, const char *types, ...);

/* Copy text column col into dst (cap bytes, always NUL-terminated; a
 * longer value is cut). *fits (may be NULL) is 1 when the column was
 * non-NULL and fitted whole. */
void be__svc_copy_text(be_stmt *st, int32_t col, char *dst, size_t cap, int *fits);

/* A heap copy of text column col ("" for NULL); NULL when out of memory. */
char *be__svc_dup_text(be_stmt *st, int32_t col);

#endif
