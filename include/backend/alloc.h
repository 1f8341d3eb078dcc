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
  void *user_data;
} be_allocator;

#define BE_ALLOCATOR_INIT { BE_ALLOCATOR_VERSION, NULL, NULL, NULL, NULL }

/** Fill *a like BE_ALLOCATOR_INIT. Errors: BE_E_MISUSE (NULL, bad version). */
BE_API int be_allocator_init(be_allocator *a, uint32_t version);

/**
 * Install allocator functions (copied), or restore the C library's with
 * NULL. Call it before any other libbackend call and while no object made
 * with the previous allocator is alive: memory is freed by the allocator in
 * force at the time of the free.
 *
 * Errors: BE_E_MISUSE (bad version, or a function pointer missing).
 * Thread-safety: not safe against concurrent libbackend calls.
 */
BE_API int be_set_allocator(const be_allocator *a, be_error **err);

BE_END_DECLS

#endif /* BACKEND_ALLOC_H */
