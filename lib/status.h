/* SPDX-License-Identifier: MIT */
/* Internal: the status and memory JSON writers, shared with the export
 * (status_export.c). */
#ifndef BE_LIB_STATUS_H
#define BE_LIB_STATUS_H

#include <backend/status.h>

#include "strbuf.h"

void be__status_json(be__buf *b, const be_app_status *s);
void be__memory_json(be__buf *b, const be_app_memory *m);
/* "listening", "down" or "not_applicable" for a BE_APP_INVALIDATION_*. */
const char *be__invalidation_name(int32_t state);

#endif
