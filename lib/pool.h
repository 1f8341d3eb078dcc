/* SPDX-License-Identifier: MIT */
/* Internal: what other modules may ask the pool about its connections. */
#ifndef BE_LIB_POOL_H
#define BE_LIB_POOL_H

#include <backend/pool.h>

/* 1 when conn is a connection of pool checked out by the calling thread,
 * else 0 (NULL arguments included). Reads only the caller's own slot. */
int be__pool_holds(const be_pool *pool, const be_conn *conn);

/* The usage alert threshold, in percent of max_conns (0 = off). */
int32_t be__pool_alert_percent(const be_pool *pool);

#endif
