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

/** @name Operations (the driver functions that can fail, plus two that are only counted) */
/** @{ */
#define BE_FAULT_OP_ALL -1         /**< for be_fault_set/_set_random/_clear: every operation that can fail */
#define BE_FAULT_OP_OPEN 0         /**< be_driver.open */
#define BE_FAULT_OP_PREPARE 1      /**< be_driver.prepare */
#define BE_FAULT_OP_BIND 2         /**< any bind_* call */
#define BE_FAULT_OP_STEP 3         /**< be_driver.step */
#define BE_FAULT_OP_RESET 4        /**< be_driver.reset */
#define BE_FAULT_OP_EXEC 5         /**< be_driver.exec */
#define BE_FAULT_OP_BEGIN 6        /**< be_driver.begin */
#define BE_FAULT_OP_COMMIT 7       /**< be_driver.commit */
#define BE_FAULT_OP_ROLLBACK 8     /**< be_driver.rollback */
#define BE_FAULT_OP_SAVEPOINT 9    /**< be_driver.savepoint */
#define BE_FAULT_OP_RELEASE 10     /**< be_driver.release */
#define BE_FAULT_OP_ROLLBACK_TO 11 /**< be_driver.rollback_to */
#define BE_FAULT_OP_PING 12        /**< be_driver.ping */
#define BE_FAULT_OP_CLOSE 13       /**< counted only; never fails */
#define BE_FAULT_OP_FINALIZE 14    /**< counted only; never fails */
#define BE_FAULT_OP_COUNT 15       /**< number of operations (valid ops are 0 to this - 1) */
/** @} */

/** @name Rule modes */
/** @{ */
#define BE_FAULT_OFF 0    /**< no failures */
#define BE_FAULT_NTH 1    /**< fail only the nth call after the rule was set (n >= 1) */
#define BE_FAULT_FROM 2   /**< fail the nth call after the rule was set and every one after it */
#define BE_FAULT_RANDOM 3 /**< fail at random; set with be_fault_set_random() */
/** @} */

/**
 * Make a fault-injecting driver around inner. Thread-safety: safe.
 *
 * @param out_driver  receives the driver table to open connections with;
 *                    owned by *out_fault and valid until be_fault_free().
 *                    It copies inner's name, placeholder style and
 *                    features. Not NULL.
 * @param out_fault   receives the controller, the caller's
 *                    (be_fault_free()); not NULL.
 * @param inner       the driver that does the work, borrowed: it must
 *                    outlive the fault driver; not NULL.
 * @param err         receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (a NULL argument, inner's version unknown),
 *         BE_E_NOMEM or BE_E_INTERNAL (a mutex could not be made).
 */
BE_API int be_fault_driver_new(be_driver **out_driver, be_fault **out_fault,
                               const be_driver *inner, be_error **err);

/**
 * Set the rule for an operation, replacing its previous rule.
 * Thread-safety: safe.
 *
 * @param fault  the controller; not NULL.
 * @param op     a BE_FAULT_OP_* operation that can fail, or BE_FAULT_OP_ALL.
 * @param mode   BE_FAULT_NTH, BE_FAULT_FROM or BE_FAULT_OFF.
 * @param n      for NTH and FROM: which call fails first, >= 1, counted
 *               from this call; ignored for OFF.
 * @param code   for NTH and FROM: the negative BE_E_* code to fail with;
 *               ignored for OFF.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (fault NULL, unknown op or mode, n < 1,
 *         code not negative, a counted-only op).
 */
BE_API int be_fault_set(be_fault *fault, int32_t op, int32_t mode, int64_t n, int32_t code,
                        be_error **err);

/**
 * Fail calls of an operation at random (mode BE_FAULT_RANDOM), replacing
 * its previous rule. Thread-safety: safe.
 *
 * @param fault        the controller; not NULL.
 * @param op           a BE_FAULT_OP_* operation that can fail, or
 *                     BE_FAULT_OP_ALL (each operation then draws its own
 *                     sequence from the seed).
 * @param probability  chance that one call fails, 0 to 1.
 * @param seed         seeds the generator: same seed, same sequence of
 *                     calls, same failures.
 * @param code         the negative BE_E_* code to fail with.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (fault NULL, unknown or counted-only op,
 *         probability outside 0..1, code not negative).
 */
BE_API int be_fault_set_random(be_fault *fault, int32_t op, double probability, uint64_t seed,
                               int32_t code, be_error **err);

/**
 * Remove the rule of an operation. Connections already lost stay lost.
 * Thread-safety: safe.
 *
 * @param fault  the controller; NULL is a no-op.
 * @param op     a BE_FAULT_OP_* operation, or BE_FAULT_OP_ALL for all;
 *               an unknown or counted-only op is ignored.
 */
BE_API void be_fault_clear(be_fault *fault, int32_t op);

/**
 * Calls of an operation that reached the fault driver since creation or
 * the last be_fault_reset_counts(), failed ones included.
 * Thread-safety: safe.
 *
 * @param fault  the controller, or NULL.
 * @param op     a BE_FAULT_OP_* operation, 0 to BE_FAULT_OP_COUNT - 1
 *               (counted-only ops too; not BE_FAULT_OP_ALL).
 * @return the count; 0 for NULL or an unknown op.
 */
BE_API int64_t be_fault_calls(const be_fault *fault, int32_t op);

/**
 * Failures injected into an operation (by a rule or a lost connection)
 * since creation or the last be_fault_reset_counts(). Thread-safety: safe.
 *
 * @param fault  the controller, or NULL.
 * @param op     a BE_FAULT_OP_* operation, 0 to BE_FAULT_OP_COUNT - 1.
 * @return the count; 0 for NULL or an unknown op.
 */
BE_API int64_t be_fault_injected(const be_fault *fault, int32_t op);

/**
 * Zero the call and injection counters. Thread-safety: safe.
 *
 * @param fault  the controller; NULL is a no-op.
 */
BE_API void be_fault_reset_counts(be_fault *fault);

/**
 * Kill every connection open now, as a database restart would: their
 * later operations fail with BE_E_CONN_LOST. New connections work.
 * Thread-safety: safe.
 *
 * @param fault  the controller; not NULL.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (fault NULL).
 */
BE_API int be_fault_lose_connections(be_fault *fault, be_error **err);

/**
 * Name of an operation. Thread-safety: safe.
 *
 * @param op  a BE_FAULT_OP_* operation.
 * @return its name ("prepare"), or "unknown" (also for BE_FAULT_OP_ALL);
 *         static storage.
 */
BE_API const char *be_fault_op_name(int32_t op);

/**
 * Free the controller and its driver table.
 *
 * @param fault  the controller, or NULL (a no-op). Close every connection
 *               opened through its driver first.
 */
BE_API void be_fault_free(be_fault *fault);

BE_END_DECLS

#endif /* BACKEND_FAULT_H */
