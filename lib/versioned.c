/* SPDX-License-Identifier: MIT */
/* Internal: the one body of every public be_<x>_init(struct, version),
 * and of reading a caller's versioned options struct. */
#include "versioned.h"

#include <backend/error.h>
#include <string.h>

#include "error.h"

int be__versioned_init(void *out, size_t size, const void *defaults, uint32_t version,
                       uint32_t expected) {
  if (out == NULL || version != expected) return BE_E_MISUSE;
  memcpy(out, defaults, size);
  return BE_OK;
}

int be__versioned_read(void *out, size_t size, const void *opts, const void *defaults,
                       uint32_t expected, const char *name, be_error **err) {
  if (opts == NULL) {
    memcpy(out, defaults, size);
    return BE_OK;
  }
  uint32_t version;
  memcpy(&version, opts, sizeof version);
  if (version != expected)
    return be__error_set(err, BE_E_MISUSE, "unknown %s version %u", name, (unsigned)version);
  memcpy(out, opts, size);
  return BE_OK;
}
