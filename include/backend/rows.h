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

typedef struct be_rows be_rows;

/**
 * Run one SELECT on conn with params bound to its placeholders in order
 * (params may be NULL) and read all its rows. Caller owns *out (be_rows_free).
 * Errors: BE_E_MISUSE (NULL out, conn or sql; more params than placeholders
 * per the driver), driver errors (BE_E_STORAGE, BE_E_CONN_LOST, ...),
 * BE_E_NOMEM. On failure *out is NULL.
 * Thread-safety: the connection's thread only (see backend/storage.h).
 */
BE_API int be_rows_query(be_rows **out, be_conn *conn, const char *sql,
                         const be_params *params, be_error **err);

/** Release a result set and its arena. NULL is a no-op. */
BE_API void be_rows_free(be_rows *rows);

/** Number of rows (0 for NULL). */
BE_API size_t be_rows_count(const be_rows *rows);

/** Number of columns (0 for NULL). */
BE_API int32_t be_rows_column_count(const be_rows *rows);

/** Name of a column as the driver reported it; borrowed; NULL when out of range. */
BE_API const char *be_rows_column_name(const be_rows *rows, int32_t column);

/** Index of the first column with this name (exact match), or -1. */
BE_API int32_t be_rows_column_index(const be_rows *rows, const char *name);

/** @name Values by column index (row from 0, column from 0) @{ */
/** BE_TYPE_* of a value. */
BE_API int32_t be_rows_type(const be_rows *rows, size_t row, int32_t column);
BE_API int64_t be_rows_int64(const be_rows *rows, size_t row, int32_t column);
BE_API double be_rows_double(const be_rows *rows, size_t row, int32_t column);
/** NUL-terminated text; *len (may be NULL) gets the byte length. */
BE_API const char *be_rows_text(const be_rows *rows, size_t row, int32_t column, size_t *len);
BE_API const void *be_rows_blob(const be_rows *rows, size_t row, int32_t column, size_t *len);
/** @} */

/** @name Values by column name (the first column of that name) @{ */
BE_API int32_t be_rows_type_by_name(const be_rows *rows, size_t row, const char *name);
BE_API int64_t be_rows_int64_by_name(const be_rows *rows, size_t row, const char *name);
BE_API double be_rows_double_by_name(const be_rows *rows, size_t row, const char *name);
BE_API const char *be_rows_text_by_name(const be_rows *rows, size_t row, const char *name,
                                        size_t *len);
BE_API const void *be_rows_blob_by_name(const be_rows *rows, size_t row, const char *name,
                                        size_t *len);
/** @} */

BE_END_DECLS

#endif /* BACKEND_ROWS_H */
