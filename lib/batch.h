/* SPDX-License-Identifier: MIT */
#ifndef BE_LIB_BATCH_H
#define BE_LIB_BATCH_H

#include <backend/batch.h>

#include "key_set.h"

/* Load the rows for the distinct keys in *keys (int or text key set). The
 * key set moves into the result on success and is emptied in every case. */
int be__batch_run(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                  be__key_set *keys, be_error **err);

/* Validate opts (identifiers, enums) without touching a connection. */
int be__batch_check_opts(const be_batch_options *opts, be_error **err);

/* Index of key in the result, for the loader's memo. */
int be__batch_result_find(const be_batch_result *r, int32_t type, int64_t ikey,
                          const char *tkey, size_t len, size_t *index);

#endif
