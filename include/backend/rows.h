/* SPDX-License-Identifier: MIT */
/**
 * @file backend/rows.h
 * @brief A fully read result set with typed access by column index or name.
 *
 * A be_rows holds every row of a query after the statement has finished, so
 * the connection is free again while the caller reads. All text and blob
 * bytes of one result set live in one arena owned by the be_rows (one copy
 * from the driver's buffer, no per-value allocation); pointers returned by
 * the accessors are borrowed and stay valid until be_rows_free().
 *
 * Accessors never fail: an out-of-range row or column, or a name that is
 * not a column, reads as NULL (type BE_TYPE_NULL, 0, 0.0, NULL pointer).
 * Conversions: int64 of a float truncates, double of an int converts; text
 * returns NULL unless the value is text; blob returns the bytes of text and
 * blob values.
 *
 * Threads: a be_rows is read-only after it is made; any number of threads
 * may read it at once.
 */
#ifndef BACKEND_ROWS_H
#define BACKEND_ROWS_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/params.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** A fully read result set (opaque, read-only once made). */
typedef struct be_rows be_rows;

/**
 * Run one SELECT on conn with params bound to its placeholders in order
 * and read all its rows.
 * Thread-safety: the connection's thread only (see backend/storage.h).
 *
 * @param out     receives the result set, the caller's (be_rows_free());
 *                not NULL. Set to NULL on failure.
 * @param conn    the connection; not NULL.
 * @param sql     one statement, NUL-terminated; not NULL.
 * @param params  values for its placeholders, bound from 1 in order, read
 *                only; may be NULL (no values).
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL out, conn or sql; more params than
 *         placeholders per the driver); driver errors (BE_E_STORAGE,
 *         BE_E_CONN_LOST, ...); BE_E_NOMEM.
 */
BE_API int be_rows_query(be_rows **out, be_conn *conn, const char *sql,
                         const be_params *params, be_error **err);

/**
 * Release a result set and its arena; every pointer read from it becomes
 * invalid.
 *
 * @param rows  the result set, or NULL (a no-op).
 */
BE_API void be_rows_free(be_rows *rows);

/**
 * Number of rows.
 *
 * @param rows  the result set, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_rows_count(const be_rows *rows);

/**
 * Number of columns.
 *
 * @param rows  the result set, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int32_t be_rows_column_count(const be_rows *rows);

/**
 * Name of a column as the driver reported it.
 *
 * @param rows    the result set, or NULL.
 * @param column  the column, from 0.
 * @return the name, borrowed until be_rows_free(); NULL when out of range.
 */
BE_API const char *be_rows_column_name(const be_rows *rows, int32_t column);

/**
 * Index of the first column with this name (exact, case-sensitive match).
 *
 * @param rows  the result set, or NULL.
 * @param name  the column name, NUL-terminated; NULL gives -1.
 * @return the index, or -1 when no column has that name.
 */
BE_API int32_t be_rows_column_index(const be_rows *rows, const char *name);

/**
 * @name Values by column index
 * Rows and columns count from 0; out of range reads as NULL (see the file
 * description).
 */
/** @{ */
/**
 * The type of a value.
 * @param rows    the result set, or NULL.
 * @param row     the row, from 0.
 * @param column  the column, from 0.
 * @return a BE_TYPE_* value; BE_TYPE_NULL when out of range.
 */
BE_API int32_t be_rows_type(const be_rows *rows, size_t row, int32_t column);
/**
 * A value as an integer.
 * @param rows    the result set, or NULL.
 * @param row     the row, from 0.
 * @param column  the column, from 0.
 * @return an integer value; a float truncated (clamped to the int64
 *         range); 0 for text, blob, NULL or out of range.
 */
BE_API int64_t be_rows_int64(const be_rows *rows, size_t row, int32_t column);
/**
 * A value as a double.
 * @param rows    the result set, or NULL.
 * @param row     the row, from 0.
 * @param column  the column, from 0.
 * @return a float value, or an integer converted; 0.0 for text, blob, NULL
 *         or out of range.
 */
BE_API double be_rows_double(const be_rows *rows, size_t row, int32_t column);
/**
 * A text value.
 * @param rows    the result set, or NULL.
 * @param row     the row, from 0.
 * @param column  the column, from 0.
 * @param len     receives the byte length (0 when NULL is returned); may be
 *                NULL.
 * @return NUL-terminated text, borrowed until be_rows_free(); NULL unless
 *         the value is text.
 */
BE_API const char *be_rows_text(const be_rows *rows, size_t row, int32_t column, size_t *len);
/**
 * The bytes of a blob or text value.
 * @param rows    the result set, or NULL.
 * @param row     the row, from 0.
 * @param column  the column, from 0.
 * @param len     receives the number of bytes (0 when NULL is returned);
 *                may be NULL.
 * @return the bytes, borrowed until be_rows_free(); NULL unless the value
 *         is a blob or text.
 */
BE_API const void *be_rows_blob(const be_rows *rows, size_t row, int32_t column, size_t *len);
/** @} */

/**
 * @name Values by column name
 * As the functions by index, for the first column of that name
 * (be_rows_column_index()); a name that is not a column reads as NULL.
 */
/** @{ */
/**
 * be_rows_type() by column name.
 * @param rows  the result set, or NULL.
 * @param row   the row, from 0.
 * @param name  the column name, NUL-terminated.
 * @return as be_rows_type().
 */
BE_API int32_t be_rows_type_by_name(const be_rows *rows, size_t row, const char *name);
/**
 * be_rows_int64() by column name.
 * @param rows  the result set, or NULL.
 * @param row   the row, from 0.
 * @param name  the column name, NUL-terminated.
 * @return as be_rows_int64().
 */
BE_API int64_t be_rows_int64_by_name(const be_rows *rows, size_t row, const char *name);
/**
 * be_rows_double() by column name.
 * @param rows  the result set, or NULL.
 * @param row   the row, from 0.
 * @param name  the column name, NUL-terminated.
 * @return as be_rows_double().
 */
BE_API double be_rows_double_by_name(const be_rows *rows, size_t row, const char *name);
/**
 * be_rows_text() by column name.
 * @param rows  the result set, or NULL.
 * @param row   the row, from 0.
 * @param name  the column name, NUL-terminated.
 * @param len   receives the byte length; may be NULL.
 * @return as be_rows_text().
 */
BE_API const char *be_rows_text_by_name(const be_rows *rows, size_t row, const char *name,
                                        size_t *len);
/**
 * be_rows_blob() by column name.
 * @param rows  the result set, or NULL.
 * @param row   the row, from 0.
 * @param name  the column name, NUL-terminated.
 * @param len   receives the number of bytes; may be NULL.
 * @return as be_rows_blob().
 */
BE_API const void *be_rows_blob_by_name(const be_rows *rows, size_t row, const char *name,
                                        size_t *len);
/** @} */

BE_END_DECLS

#endif /* BACKEND_ROWS_H */
