/* SPDX-License-Identifier: MIT */
/* crashvfs: a SQLite VFS shim that simulates a power cut.
 *
 * It wraps the default VFS and passes every call through, so the program
 * sees an ordinary file system. Alongside, it keeps for each database,
 * journal and WAL file what would be on the disk after a power cut: the
 * durable image (the content at its last xSync) and the operations since
 * (writes, truncations, deletion or creation of the file). A deletion is
 * durable only when SQLite asks for a directory sync (xDelete's dirSync)
 * or once a later sync of the file re-creating it makes it so. Real
 * fsync calls are skipped: durability is simulated, so a run costs no
 * disk flush.
 *
 * Every write, truncate, sync and delete of those files counts as one
 * operation. With a cut point N, operation N and everything after it
 * fail with SQLITE_IOERR: the machine is off. crashvfs_power_cut() then
 * rewrites the real files as the disk would hold them at power-up: the
 * durable image plus, depending on the variant, none, a torn prefix, or
 * a random subset of the operations that were not synced.
 *
 * One process, one simulated disk; not thread-safe (the tests drive the
 * library from one thread). */
#ifndef BE_REL_CRASHVFS_H
#define BE_REL_CRASHVFS_H

#include <stddef.h>
#include <stdint.h>

/* The name to put in a DSN: "file:PATH?vfs=crashsim". */
#define CRASHVFS_NAME "crashsim"

/* What survives of the operations not yet synced at the cut. */
enum {
  CRASHVFS_DROP,   /* none */
  CRASHVFS_TORN,   /* none, except a random 512-byte-sector prefix of the last
                      write (the rest of its range keeps the old bytes, or
                      holds garbage where the write grew the file) */
  CRASHVFS_RANDOM, /* each independently with probability 1/2, a kept write
                      possibly torn like above */
  CRASHVFS_VARIANTS
};

/* Register the shim (not as the default VFS). 0 or -1. */
int crashvfs_register(void);

/* Forget every file and start counting from 0: the files that exist now
 * are durable as they are. cut_at 0 = never cut. seed drives the variant's
 * random choices. */
void crashvfs_reset(int64_t cut_at, int variant, uint64_t seed);

/* Cut now if not yet cut (e.g. at the end of a workload, before closing
 * the database, which would write). */
void crashvfs_cut_now(void);

/* 1 once the power is off. */
int crashvfs_is_cut(void);

/* Operations counted since crashvfs_reset(). */
int64_t crashvfs_ops(void);

/* Called after every sync that made something durable (an xSync, an
 * xDelete with dirSync), e.g. to note which commits were acknowledged
 * by then. */
void crashvfs_on_durable(void (*fn)(void *), void *user_data);

/* After every file of the shim is closed: write the real files as the
 * disk holds them after the cut, and delete the -shm files (shared
 * memory, never durable). 0, or -1 with the reason in why (a file still
 * open, an I/O error). */
int crashvfs_power_cut(char *why, size_t n);

#endif
