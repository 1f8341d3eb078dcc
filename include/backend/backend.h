/* SPDX-License-Identifier: MIT */
/**
 * @file backend/backend.h
 * @brief Umbrella header: include this one and get the whole public API.
 */
#ifndef BACKEND_BACKEND_H
#define BACKEND_BACKEND_H

#include <backend/common.h>
#include <backend/version.h>
#include <backend/error.h>
#include <backend/alloc.h>
#include <backend/clock.h>
#include <backend/log.h>
#include <backend/histogram.h>
#include <backend/incident.h>
#include <backend/cache.h>
#include <backend/storage.h>
#include <backend/postgres.h>
#include <backend/sqlite.h>
#include <backend/fault.h>
#include <backend/tx.h>
#include <backend/migrate.h>
#include <backend/stmt_stats.h>
#include <backend/pool.h>
/* query helpers */
#include <backend/params.h>
#include <backend/rows.h>
#include <backend/batch.h>
#include <backend/loader.h>
#include <backend/scope.h>
#include <backend/slowlog.h>
#include <backend/query_stats.h>
/* services */
#include <backend/app.h>
#include <backend/mailer.h>
#include <backend/user.h>
#include <backend/permission.h>
#include <backend/audit.h>
#include <backend/testkit.h>
#include <backend/auth.h>
/* operations: metrics, status, memory, export */
#include <backend/metrics.h>
#include <backend/status.h>
/* for bindings: struct sizes and constants of the loaded library */
#include <backend/abi.h>

#endif /* BACKEND_BACKEND_H */
