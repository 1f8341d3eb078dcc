/* SPDX-License-Identifier: MIT */
/* Building result sets from a running statement (used by batch.c). */
#ifndef BE_LIB_ROWS_H
#define BE_LIB_ROWS_H

#include <backend/rows.h>

#include "storage.h"

/* An empty result set with ncols columns named names[i], or (names NULL)
 * named like the first ncols columns of stmt. */
int be__rows_new(be_rows **out, int32_t ncols, const char *const *names, be_stmt *stmt,
                 be_error **err);

/* Append the current row of stmt (its first ncols columns) with its
 * group (0 when the rows are not grouped). rd is the statement's reader
 * (be__stmt_row_reader after the run's first BE_ROW). The rows cannot be
 * read before be__rows_finish. */
int be__rows_add(be_rows *rows, const be__row_reader *rd, be_stmt *stmt, uint32_t group,
                 be_error **err);

/* Done adding: lay the rows out for reading. ngroups 0: in the order they
 * came. Else every group is below ngroups, and the rows of group g come
 * at [first[g], first[g] + count[g]), in the order they came (first and
 * count have ngroups entries, filled here). */
int be__rows_finish(be_rows *rows, size_t ngroups, size_t *first, size_t *count, be_error **err);

#endif
