/* SPDX-License-Identifier: MIT */
/* Change notifications between apps on one database (svc_notify.h). */
#include "svc_notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "storage.h"

int be__svc_notify_id(const be__app_res *res, be_conn *conn, be__sql_id channel, int64_t id,
                      be_error **err) {
  if (!res->notifies) return BE_OK;
  char payload[48];
  int n = snprintf(payload, sizeof payload, "%" PRId64 ":%016" PRIx64, id, res->instance);
  return be__conn_notify(conn, be__sql(res, channel), payload, (size_t)n, err);
}

int64_t be__svc_notified_id(const be__app_res *res, const char *payload, size_t len) {
  uint64_t id = 0; /* at most 19 digits: no overflow of 64 bits */
  size_t i = 0;
  for (; i < len && i < 19 && payload[i] >= '0' && payload[i] <= '9'; i++)
    id = id * 10 + (uint64_t)(payload[i] - '0');
  if (i == 0 || i >= len || payload[i] != ':' || len - i - 1 != 16 || id > INT64_MAX) return 0;
  char mine[17];
  snprintf(mine, sizeof mine, "%016" PRIx64, res->instance);
  return memcmp(payload + i + 1, mine, 16) == 0 ? 0 : (int64_t)id;
}
