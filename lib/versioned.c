/* SPDX-License-Identifier: MIT */
/* Internal: the one body of every public be_<x>_init(struct, version). */
#include "versioned.h"

#include <backend/error.h>
#include <string.h>

int be__versioned_init(void *out, size_t size, const void *defaults, uint32_t version,
                       uint32_t expected) {
  if (out == NULL || version != expected) return BE_E_MISUSE;
  memcpy(out, defaults, size);
  return BE_OK;
}
