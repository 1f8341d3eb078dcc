/* SPDX-License-Identifier: MIT */
/* Internal: the auth service's database plumbing (connections from the
 * app's pool, bound statements, write transactions). */
#ifndef BE_LIB_AUTH_SQL_H
#define BE_LIB_AUTH_SQL_H

#include <backend/storage.h>
#include <backend/tx.h>

#include "auth.h"

/* A connection from the app's pool, and giving it back. */
int be__auth_acquire(be__auth *auth, be_conn **out, be_error **err);
void be__auth_release(be__auth *auth, be_conn *conn);

/* Run fn in a BEGIN IMMEDIATE transaction (retried on busy) on a pooled
 * connection. fn may run more than once: keep it free of side effects
 * outside the database. */
int be__auth_tx(be__auth *auth, be_tx_fn fn, void *ud, be_error **err);

/* Prepare sql and bind one value per character of types, in order:
 * 'i' int64_t, 't' NUL-terminated text, 'h' a BE__TOKEN_HASH_BYTES blob.
 * On success the caller owns *out (be_stmt_finalize). */
int be__sql(be_conn *conn, be_stmt **out, be_error **err, const char *sql, const char *types, ...);

/* Prepare, bind (as be__sql), run to completion; *out_changes (may be
 * NULL) gets the rows changed. */
int be__sql_exec(be_conn *conn, int64_t *out_changes, be_error **err, const char *sql,
                 const char *types, ...);

/* Copy text column col into dst (cap bytes, always NUL-terminated; a
 * longer value is cut). *fits (may be NULL) is 1 when the column was
 * non-NULL and fitted whole. */
void be__sql_copy_text(be_stmt *st, int32_t col, char *dst, size_t cap, int *fits);

/* Revoke a user's sessions, except the one hashed as keep (may be NULL);
 * *out_n (may be NULL) gets how many. Inside the caller's transaction. */
int be__auth_revoke(be_conn *conn, int64_t user_id, const uint8_t *keep, int64_t *out_n,
                    be_error **err);

#endif
