/* SPDX-License-Identifier: MIT */
#ifndef BE_LIB_PARAMS_H
#define BE_LIB_PARAMS_H

#include <backend/params.h>
#include <backend/storage.h>

/* Bind every value of params (may be NULL: nothing to bind) to stmt,
 * starting at placeholder index first. */
int be__params_bind(const be_params *params, be_stmt *stmt, int32_t first, be_error **err);

#endif
