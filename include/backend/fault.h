/* SPDX-License-Identifier: MIT */
/**
 * @file backend/fault.h
 * @brief A fault-injecting storage driver: wraps any be_driver and makes
 *        chosen operations fail, for tests of the code above storage.
 *
 * be_fault_driver_new() gives a driver that forwards every call to the
 * inner driver, counts calls per operation, and fails an operation when a
 * rule says so: the Nth call, every call from the Nth on, or calls at
 * random (seeded, so runs repeat). A failure carries the chosen BE_E_*
 * code (retryable as that code is by default) and the message
 * "injected fault: <op> call <k>"; the inner driver is not called.
 * The optional operations of a version-2 driver table (next_statement,
 * table_exists) are passed through when the inner driver has them, and
 * left out when it does not; they are not counted and no rule fails them.
 *
 * "Connection lost" behaves like a dead socket: once a call on a
 * connection failed with BE_E_CONN_LOST, every later operation on that
 * connection and its statements (except close and finalize) fails with
 * BE_E_CONN_LOST too. be_fault_lose_connections() kills every connection
 * open at that moment (a database restart).
 *
 * Rules can be changed at any time from any thread while connections are
 * in use; counters are atomic. Host programs can use it in their own
 * tests.
 */
#ifndef BACKEND_FAULT_H
#define BACKEND_FAULT_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** A fault controller (owns its driver table). */
typedef struct be_fault be_fault;

/** @name Operations (the driver functions that can fail, plus two that are only counted) @{ */
#define BE_FAULT_OP_ALL -1 /**< for be_fault_set/_set_random/_clear: every operation */
#define BE_FAULT_OP_OPEN 0
#define BE_FAULT_OP_PREPARE 1
#define BE_FAULT_OP_BIND 2 /**< any bind_* call */
#define BE_FAULT_OP_STEP 3
#define BE_FAULT_OP_RESET 4
#define BE_FAULT_OP_EXEC 5
#define BE_FAULT_OP_BEGIN 6
#define BE_FAULT_OP_COMMIT 7
#define BE_FAULT_OP_ROLLBACK 8
#define BE_FAULT_OP_SAVEPOINT 9
#define BE_FAULT_OP_RELEASE 10
#define BE_FAULT_OP_ROLLBACK_TO 11
#define BE_FAULT_OP_PING 12
#define BE_FAULT_OP_CLOSE 13    /**< counted only; never fails */
#define BE_FAULT_OP_FINALIZE 14 /**< counted only; never fails */
#define BE_FAULT_OP_COUNT 15
/** @} */

/** @name Rule modes @{ */
#define BE_FAULT_OFF 0    /**< no failures */
#define BE_FAULT_NTH 1    /**< fail only the nth call after the rule was set (n >= 1) */
#define BE_FAULT_FROM 2   /**< fail the nth call after the rule was set and every one after it */
#define BE_FAULT_RANDOM 3 /**< fail at random; set with be_fault_set_random() */
/** @} */

/**
 * Make a fault-injecting driver around inner (borrowed: it must outlive
 * the fault driver). *out_driver is owned by *out_fault and stays valid
 * until be_fault_free(); it copies inner's name, placeholder style and
 * features. Caller owns *out_fault.
 * Errors: BE_E_MISUSE (NULL arguments, inner's version unknown),
 * BE_E_NOMEM. Thread-safety: safe.
 */
BE_API int be_fault_driver_new(be_driver **out_driver, be_fault **out_fault,
                               const be_driver *inner, be_error **err);

/**
 * Set the rule for op (or BE_FAULT_OP_ALL): mode BE_FAULT_NTH or
 * BE_FAULT_FROM with n >= 1 counted from this call, or BE_FAULT_OFF; code
 * is the negative BE_E_* code to fail with. Replaces the previous rule.
 * Errors: BE_E_MISUSE (NULL, unknown op or mode, n < 1, code not
 * negative, a counted-only op). Thread-safety: safe.
 */
BE_API int be_fault_set(be_fault *fault, int32_t op, int32_t mode, int64_t n, int32_t code,
                        be_error **err);

/**
 * Fail calls of op (or BE_FAULT_OP_ALL) at random with the given
 * probability (0..1), from a generator seeded with seed (same seed, same
 * sequence of calls: same failures). Errors: BE_E_MISUSE.
 * Thread-safety: safe.
 */
BE_API int be_fault_set_random(be_fault *fault, int32_t op, double probability, uint64_t seed,
                               int32_t code, be_error **err);

/** Remove the rule of op (or of all with BE_FAULT_OP_ALL). Connections
 * already lost stay lost. NULL is a no-op. Thread-safety: safe. */
BE_API void be_fault_clear(be_fault *fault, int32_t op);

/** Calls of op that reached the fault driver since creation or the last
 * be_fault_reset_counts() (including failed ones); 0 for NULL or an
 * unknown op. Thread-safety: safe. */
BE_API int64_t be_fault_calls(const be_fault *fault, int32_t op);

/** Failures injected into op (by a rule or a lost connection). */
BE_API int64_t be_fault_injected(const be_fault *fault, int32_t op);

/** Zero the call and injection counters. Thread-safety: safe. */
BE_API void be_fault_reset_counts(be_fault *fault);

/**
 * Kill every connection open now, as a database restart would: their
 * later operations fail with BE_E_CONN_LOST. New connections work.
 * Errors: BE_E_MISUSE (NULL). Thread-safety: safe.
 */
BE_API int be_fault_lose_connections(be_fault *fault, be_error **err);

/** Static name of an operation ("prepare"), "unknown" otherwise. */
BE_API const char *be_fault_op_name(int32_t op);

/** Free the controller and its driver table. Close every connection
 * opened through the driver first. NULL is a no-op. */
BE_API void be_fault_free(be_fault *fault);

BE_END_DECLS

#endif /* BACKEND_FAULT_H */
