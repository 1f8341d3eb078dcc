/* SPDX-License-Identifier: MIT */
/**
 * @file backend/abi.h
 * @brief For bindings: ask the loaded library the size and version of every
 *        public struct and the value of every constant macro.
 *
 * A binding (Python ctypes or cffi, Ruby FFI, Node ffi, JNA, C#, Go, Rust
 * without bindgen...) cannot read C headers: it copies each struct layout
 * and each macro value into its own language. A copy that drifts fails
 * silently: a ctypes be_app_options missing one field is shorter than the C
 * struct, and be_app_options_init() then writes past the end of the
 * binding's buffer. With the functions below a binding checks its copies
 * against the library it actually loaded, once when it loads it or in its
 * own test suite:
 *
 * - be_struct_info() gives the size and the version the library uses for
 *   a public struct named by its C name ("be_app_options");
 *   be_struct_count() and be_struct_name() list every public struct whose
 *   fields are visible (options, stats, inputs, callback tables), so a
 *   test can check that it has a layout for each one.
 * - be_constant() gives the value of a constant macro of the public
 *   headers named by its C name ("BE_AUTH_TOKEN_LEN"): limits and lengths,
 *   struct versions, modes, flags, log levels, error codes and categories,
 *   sentinels such as BE_CACHE_TTL_FOREVER. be_constant_count() and
 *   be_constant_name() list them all. Every object-like BE_* macro of the
 *   public headers is there except the `BE_<X>_INIT` initializers and the
 *   linkage macros (BE_API, BE_BEGIN_DECLS, BE_END_DECLS).
 * - be_nul_terminated() gives BE_NUL_TERMINATED with its own type, size_t.
 *
 * Why one lookup by name rather than one function per constant (as
 * libsodium's crypto_box_seedbytes()): the headers hold about 160
 * constants, and a function for each would add as many symbols that can
 * never be removed, plus one more with every new constant; a binding would
 * still have to bind each by hand. One lookup by name covers every
 * constant, present and future, with one signature a binding binds once,
 * and its enumeration lets a test or a generator check it has them all.
 * The one exception, be_nul_terminated(), is the value passed with almost
 * every text argument and is a size_t, which be_constant() can only return
 * as the int64_t -1.
 *
 * Default option values are not constants: each options struct has a
 * `be_<x>_options_init(opts, version)` function (and `BE_<X>_OPTIONS_INIT` for
 * C) that fills them in; a binding calls it on a buffer of the size
 * be_struct_info() reports.
 *
 * Lookups compare names byte for byte and take time linear in the number
 * of entries: call them when loading, not per request.
 *
 * Thread-safety: every function here is safe from any thread; the tables
 * are static and read-only.
 */
#ifndef BACKEND_ABI_H
#define BACKEND_ABI_H

#include <backend/common.h>

BE_BEGIN_DECLS

/**
 * The size and version the loaded library uses for a public struct.
 *
 * @param out_size receives sizeof the struct in this library (the number
 *        of bytes its _init() function and every call taking it read or
 *        write); may be NULL.
 * @param out_version receives the struct's `BE_<X>_VERSION` (the newest
 *        version this library knows; be_cache_options is at 2), or 0 for
 *        a struct without a version field (be_log_field); may be NULL.
 * @param name the struct's C name, e.g. "be_app_options", without
 *        "struct"; name_len bytes of it.
 * @param name_len length of name in bytes, or BE_NUL_TERMINATED; 0 is the
 *        empty name (no struct has it).
 * @param err receives the error on failure (may be NULL).
 * @return BE_OK; BE_E_NOT_FOUND when no public struct has this name
 *         (opaque handles such as be_app have none: their size is not
 *         part of the ABI); BE_E_MISUSE when name is NULL with a length;
 *         BE_E_VALIDATION (field "name") when name is not valid UTF-8 or
 *         holds a NUL byte.
 */
BE_API int be_struct_info(size_t *out_size, uint32_t *out_version, const char *name,
                          size_t name_len, be_error **err);

/**
 * The number of public structs be_struct_info() knows.
 * @return how many names be_struct_name() gives (indexes 0 .. count - 1).
 */
BE_API size_t be_struct_count(void);

/**
 * The C name of public struct i, to enumerate them all.
 * @param i index from 0 to be_struct_count() - 1.
 * @return the name ("be_allocator", ...), NUL-terminated, static; NULL when
 *         i is out of range. The order is stable within one library build
 *         only: look entries up by name.
 */
BE_API const char *be_struct_name(size_t i);

/**
 * The value of a constant macro of the public headers, as the loaded
 * library was built with it.
 *
 * Integer constants come back in *out_value, and *out_text is set to NULL.
 * A constant of type size_t comes back as the int64_t with the same bits:
 * BE_NUL_TERMINATED ((size_t)-1) is -1, which converts back to (size_t)-1
 * (or use be_nul_terminated()). Text constants (BE_VERSION_STRING,
 * BE_TESTKIT_PASSWORD) come back in *out_text, NUL-terminated and static,
 * with their length in bytes in *out_value.
 *
 * @param out_value receives the integer value, or a text constant's length
 *        in bytes; may be NULL.
 * @param out_text receives a text constant's text, or NULL for an integer
 *        constant; may be NULL for an integer constant only.
 * @param name the macro's name, e.g. "BE_AUTH_TOKEN_LEN"; name_len bytes.
 * @param name_len length of name in bytes, or BE_NUL_TERMINATED; 0 is the
 *        empty name (no constant has it).
 * @param err receives the error on failure (may be NULL).
 * @return BE_OK; BE_E_NOT_FOUND when no constant has this name (function
 *         macros and `BE_<X>_INIT` initializers are not constants);
 *         BE_E_MISUSE when name is NULL with a length, or when out_text is
 *         NULL and the constant is text (its length alone is not its
 *         value); BE_E_VALIDATION (field "name") when name is not valid
 *         UTF-8 or holds a NUL byte.
 */
BE_API int be_constant(int64_t *out_value, const char **out_text, const char *name,
                       size_t name_len, be_error **err);

/**
 * The number of constants be_constant() knows.
 * @return how many names be_constant_name() gives (indexes 0 .. count - 1).
 */
BE_API size_t be_constant_count(void);

/**
 * The name of constant i, to enumerate them all.
 * @param i index from 0 to be_constant_count() - 1.
 * @return the macro's name ("BE_OK", ...), NUL-terminated, static; NULL
 *         when i is out of range. The order is stable within one library
 *         build only: look constants up by name.
 */
BE_API const char *be_constant_name(size_t i);

/**
 * BE_NUL_TERMINATED, the text length that means "measure it with strlen",
 * with its C type. For bindings that pass NUL-terminated strings and
 * cannot use the macro.
 * @return (size_t)-1, the largest size_t.
 */
BE_API size_t be_nul_terminated(void);

BE_END_DECLS

#endif /* BACKEND_ABI_H */
