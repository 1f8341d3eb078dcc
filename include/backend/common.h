/* SPDX-License-Identifier: MIT */
/**
 * @file backend/common.h
 * @brief Linkage macros and the few types every libbackend header shares.
 */
#ifndef BACKEND_COMMON_H
#define BACKEND_COMMON_H

#include <stddef.h>
#include <stdint.h>

/*
 * BE_API marks every exported function. The library is built with hidden
 * visibility, so a function without BE_API never leaves the shared object.
 * The linker version script lib/libbackend.map lists the same set; a test in
 * tests/abi checks that the two agree with `nm -D`.
 */
#if defined(_WIN32) && !defined(BE_STATIC)
#  if defined(BE_BUILDING)
#    define BE_API __declspec(dllexport)
#  else
#    define BE_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define BE_API __attribute__((visibility("default")))
#else
#  define BE_API
#endif

#ifdef __cplusplus
#  define BE_BEGIN_DECLS extern "C" {
#  define BE_END_DECLS }
#else
#  define BE_BEGIN_DECLS
#  define BE_END_DECLS
#endif

BE_BEGIN_DECLS

/**
 * The length that says "this text is NUL-terminated: measure it". Every
 * function taking text as a pointer and a length accepts it; any other
 * length is exact, and 0 always means the empty string (the pointer is
 * then not read, so it may be any non-NULL value). The same rules hold in
 * every module.
 */
#define BE_NUL_TERMINATED ((size_t)-1)

/** The typed error object; see backend/error.h. */
typedef struct be_error be_error;

/**
 * Release memory that libbackend handed to the caller as a plain buffer
 * (for example the text from be_error_to_json()). Uses the allocator the
 * library was configured with, so never call free() on it yourself.
 * Thread-safety: safe.
 *
 * @param ptr  a buffer libbackend returned to the caller to free, or NULL
 *             (a harmless no-op).
 */
BE_API void be_free(void *ptr);

BE_END_DECLS

#endif /* BACKEND_COMMON_H */
