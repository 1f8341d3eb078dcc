/* SPDX-License-Identifier: MIT */
/* Internal: the one body of every public be_<x>_init(struct, version),
 * and of reading a caller's versioned options struct. */
#ifndef BE_LIB_VERSIONED_H
#define BE_LIB_VERSIONED_H

#include <backend/error.h>

#include <stddef.h>
#include <stdint.h>

/* Copy defaults (size bytes) over out when version is the one this
 * library knows (expected); BE_E_MISUSE otherwise or for NULL. Pass a
 * `static const` defaults object made from the _INIT macro: static
 * storage has zeroed padding, so the result equals the macro byte for
 * byte (callers may memcmp or hash option structs). */
int be__versioned_init(void *out, size_t size, const void *defaults, uint32_t version,
                       uint32_t expected);

/* The options a constructor works with: a copy (size bytes) of the
 * caller's opts, or of defaults when opts is NULL. Every versioned struct
 * starts with its uint32_t version; one other than expected is
 * BE_E_MISUSE "unknown <name> version N". */
int be__versioned_read(void *out, size_t size, const void *opts, const void *defaults,
                       uint32_t expected, const char *name, be_error **err);

#endif
