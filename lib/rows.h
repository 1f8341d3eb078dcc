/* SPDX-License-Identifier: MIT */
/* Building result sets from a running statement (used by batch.c). */
#ifndef BE_LIB_ROWS_H
#define BE_LIB_ROWS_H

#include <backend/rows.h>

/* An empty result set with ncols columns named names[i], or (names NULL)
 * named like the first ncols columns of stmt. */
int be__rows_new(be_rows **out, int32_t ncols, const char *const *names, be_stmt *stmt,
                 be_error **err);

/* Append the current row of stmt (its first ncols columns). */
int be__rows_add(be_rows *rows, be_stmt *stmt, be_error **err);

/* Reorder rows: new row i is old row order[i] (order is a permutation). */
int be__rows_permute(be_rows *rows, const size_t *order, be_error **err);

#endif
