/* SPDX-License-Identifier: MIT */
/* What the fault sweep and the allocation-failure sweep share: the main
 * flows of the library, run one at a time on a SQLite file, and the checks
 * made after each run in which a failure was injected.
 *
 * One run of a flow (sw_run()):
 *  1. the database file is a fresh copy of a seeded template (users with
 *     passwords and sessions, roles and grants, a host table, audit rows);
 *     the app-open flow starts from no file at all;
 *  2. an app is opened on it (sw_env's driver, cheap hashing, a keyed
 *     audit chain, a pepper) and warmed up: some users are read into the
 *     cache and every permission decision is cached (reads only: the
 *     database still equals the template, whose logical dump, through
 *     raw sqlite3, is "before");
 *  3. the caller's hook arms its failure, the flow's one call runs, the
 *     hook disarms;
 *  4. checks: the call returned what a clean run returns (the failure was
 *     absorbed) or a typed error; in the first case the database equals a
 *     clean run's, in the second it equals "before" (the app-open flow:
 *     the state after one of the transactions a clean open commits);
 *     be_user_get() of every user equals its row read through raw SQL;
 *     be_perm_check() of every user and permission equals what the rows
 *     say; be_audit_verify() finds the chain intact; the pool has nothing
 *     in use or waiting; after a failure, the same call without failures
 *     succeeds and leaves the clean run's database;
 *  5. the app is freed and the library's live allocations (counted through
 *     the allocator hook) are back where they were.
 *
 * The first run of each flow, with a clean hook, records the reference
 * dump the others are compared with. */
#ifndef BE_REL_SWEEP_H
#define BE_REL_SWEEP_H

#include <backend/backend.h>
#include <stddef.h>
#include <stdint.h>

/* Arms a failure before the flow's call and disarms it after; disarm
 * returns 1 when a failure was actually injected. A clean hook injects
 * nothing (it may count what the call does): its run is the clean run,
 * which records the reference. */
typedef struct sw_hook {
  void (*arm)(void *user_data);
  int (*disarm)(void *user_data);
  void *user_data;
  int clean;
} sw_hook;

typedef struct sw_env sw_env;

/* The flows, in the order they are swept. */
#define SW_FLOWS 10
const char *sw_flow_name(int flow);

/* Index of the flow called name, or -1. */
int sw_flow_find(const char *name);

/* Make the environment in a new temporary directory under dir (NULL:
 * $TMPDIR, else /dev/shm, else /tmp): a SQLite driver (WAL, synchronous=OFF), the template
 * database, the host migrations, a fake clock. NULL with the reason on
 * stderr. */
sw_env *sw_env_new(const char *dir);

/* The environment's SQLite driver (to wrap), and the driver the runs use
 * (borrowed; by default the SQLite driver). */
const be_driver *sw_env_sqlite(sw_env *env);
void sw_env_use_driver(sw_env *env, const be_driver *driver);

/* Remove the directory and free everything (a driver wrapping
 * sw_env_sqlite() must be freed first). */
void sw_env_free(sw_env *env);

/* The result of one run. */
typedef struct sw_result {
  int rc;           /* what the flow's call returned under the failure */
  int clean_result; /* rc is what a clean run returns (a failure was absorbed) */
  int injected;     /* the hook injected a failure */
  char why[1024];   /* the first check that failed, "" when all held */
} sw_result;

/* One run of flow with hook. The clean run must come first for each
 * flow. Returns 0 when every check held, -1 otherwise (res->why says
 * which). */
int sw_run(sw_result *res, sw_env *env, int flow, const sw_hook *hook);

/* The counting allocator (installed with sw_alloc_install() before any
 * other libbackend call): live blocks, and an optional failure of the nth
 * allocation (malloc or realloc) after sw_alloc_fail_nth(). */
int sw_alloc_install(void);
int64_t sw_alloc_live(void);
/* Fail the nth allocation from now (n >= 1), or none with 0; with from,
 * every allocation after it too. */
void sw_alloc_fail_nth(int64_t n, int from);
/* Allocations since the last sw_alloc_fail_nth(), and whether its
 * failure was injected. */
int64_t sw_alloc_count(void);
int sw_alloc_failed(void);

/* Print the flow and position being run if the process crashes. */
void sw_crash_report_install(void);
void sw_crash_report_set(const char *what);

/* Monotonic seconds. */
double sw_now(void);

#endif
