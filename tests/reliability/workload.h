/* SPDX-License-Identifier: MIT */
/* The workload both reliability tests run through the library, and the
 * checks run on a database after a crash.
 *
 * Operation k (from 0) is, for even k, a be_user_update() setting the name
 * of user ((j-1) % RW_USERS) + 1 to "v<j>" (j = k/2 + 1, the update's
 * number; the service writes an audit row in the same transaction), and
 * for odd k, a be_pool_tx_run() transaction writing batch b = (k+1)/2:
 * rw_parts(b) rows into crash_part, one row into crash_batch holding
 * their count and the sum of their values, and an audit row "crash.batch"
 * (be_audit_write()). So a database holds a state (updates, batches) with
 * updates - batches in {0, 1} if transactions commit in order, every
 * batch is complete with its audit row or absent, and each user's name
 * follows from how many of its updates are in the audit log. */
#ifndef BE_REL_WORKLOAD_H
#define BE_REL_WORKLOAD_H

#include <backend/backend.h>
#include <stddef.h>
#include <stdint.h>

/* Users the workload updates in turn (ids 1..RW_USERS, created once). */
#define RW_USERS 4

/* What a database holds (or what was acknowledged): operations of each kind. */
typedef struct rw_state {
  int64_t updates;
  int64_t batches;
} rw_state;

/* Rows of batch b. */
int64_t rw_parts(int64_t b);

/* An app on dsn through driver (NULL: the default SQLite driver), with
 * cheap password hashing and a pool of one or two connections. 0 or -1
 * with the reason in why. */
int rw_app_open(be_app **out, const char *dsn, const be_driver *driver, char *why, size_t n);

/* Create the host tables and the users if missing (idempotent; a
 * setup interrupted by a crash is finished by the next call). */
int rw_setup(be_app *app, char *why, size_t n);

/* Run the next operation after *next and count it in *next when it
 * returned BE_OK (acknowledged). Returns the library's code. */
int rw_step(be_app *app, rw_state *next, be_error **err);

/* Run "PRAGMA wal_checkpoint(<mode>)" on a pooled connection. */
int rw_checkpoint(be_app *app, const char *mode, be_error **err);

/* Open the database file at path (default VFS, synchronous=OFF) and
 * check it: integrity and foreign keys, the invariants above, then
 * (through an app on driver) be_audit_verify(). *found receives the
 * state it holds.
 * 0 when every check holds, else -1 with the first failure in why. */
int rw_check(rw_state *found, const char *path, const be_driver *driver, char *why, size_t n);

/* Format the reason for a failure into why; returns -1. */
int rw_fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Read the state the database at path holds, without checking it (the
 * writer resumes from it). 0 or -1 with why. */
int rw_read_state(rw_state *out, const char *path, char *why, size_t n);

#endif
