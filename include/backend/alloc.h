/* SPDX-License-Identifier: MIT */
/**
 * @file backend/alloc.h
 * @brief Allocator hooks: route every allocation libbackend makes itself
 *        through the host's functions (and let tests fail the Nth one).
 *
 * SQLite and libsodium keep their own allocators; these hooks cover memory
 * that libbackend allocates.
 */
#ifndef BACKEND_ALLOC_H
#define BACKEND_ALLOC_H

#include <backend/common.h>

BE_BEGIN_DECLS

/** The be_allocator layout this header describes (its version field). */
#define BE_ALLOCATOR_VERSION 1

/** Allocator functions; every function receives user_data last. */
typedef struct be_allocator {
  uint32_t version; /**< BE_ALLOCATOR_VERSION */
  /** Like malloc(size); NULL on failure. size is never 0. */
  void *(*malloc_fn)(size_t size, void *user_data);
  /** Like realloc(ptr, size); NULL on failure leaves ptr intact. */
  void *(*realloc_fn)(void *ptr, size_t size, void *user_data);
  /** Like free(ptr); ptr is never NULL. */
  void (*free_fn)(void *ptr, void *user_data);
  void *user_data; /**< passed as is as the last argument of every function */
} be_allocator;

/** Static initializer: the current version, every function pointer NULL. */
#define BE_ALLOCATOR_INIT \
  { BE_ALLOCATOR_VERSION, NULL, NULL, NULL, NULL }

/**
 * Fill *a like BE_ALLOCATOR_INIT (then set the three functions).
 * Thread-safety: safe.
 *
 * @param a        the struct to fill; not NULL.
 * @param version  BE_ALLOCATOR_VERSION, the layout the caller was compiled
 *                 against.
 * @return BE_OK, or BE_E_MISUSE when a is NULL or version is unknown.
 */
BE_API int be_allocator_init(be_allocator *a, uint32_t version);

/**
 * Install allocator functions (copied), or restore the C library's with
 * NULL. Call it before any other libbackend call and while no object made
 * with the previous allocator is alive: memory is freed by the allocator in
 * force at the time of the free.
 *
 * Thread-safety: not safe against concurrent libbackend calls.
 *
 * @param a    the functions and user_data to use (copied: *a need not
 *             outlive the call), or NULL for malloc/realloc/free.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE when a->version is unknown or a function
 *         pointer is NULL (the allocator in force is then unchanged).
 */
BE_API int be_set_allocator(const be_allocator *a, be_error **err);

BE_END_DECLS

#endif /* BACKEND_ALLOC_H */
