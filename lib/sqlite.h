/* SPDX-License-Identifier: MIT */
/* Internal access to the built-in SQLite driver's native handles, for the
 * library's own SQLite-specific code and for tests (e.g. registering a SQL
 * function on a connection). Not exported. */
#ifndef BE_LIB_SQLITE_H
#define BE_LIB_SQLITE_H

#include <sqlite3.h>

#include <backend/storage.h>

/* The sqlite3 handle of a connection opened through a SQLite driver table
 * (be_sqlite_driver() or be_sqlite_driver_new()); NULL for NULL or for a
 * connection of any other driver (including a fault driver wrapping
 * SQLite). Borrowed: valid until be_conn_close(); use it only from the
 * thread using the connection, and never to finalize or close anything the
 * driver owns. */
sqlite3 *be__sqlite_db(be_conn *conn);

/* For the app's setup connection: when base is a SQLite driver table, set
 * *out to a copy of it (free with be_sqlite_driver_free()) whose opens
 * leave the file's journal mode as it is, so nothing is written into a
 * database before its setup succeeded; else *out = NULL (use base).
 * BE_OK or BE_E_NOMEM. */
int be__sqlite_driver_keep_journal(be_driver **out, const be_driver *base, be_error **err);

/* 1 when d is a SQLite driver whose open flags let it create the file
 * (the default flags do; READWRITE without CREATE, or READONLY, do not). */
int be__sqlite_driver_creates(const be_driver *d);

#endif
