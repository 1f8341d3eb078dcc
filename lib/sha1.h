/* SPDX-License-Identifier: MIT */
/* Internal: SHA-1 (FIPS 180-4), only to match published breached-password
 * corpora, which are keyed by it. Never use it to protect anything. */
#ifndef BE_LIB_SHA1_H
#define BE_LIB_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define BE__SHA1_BYTES 20

/* The SHA-1 digest of data[0..len) into out. */
void be__sha1(const void *data, size_t len, uint8_t out[BE__SHA1_BYTES]);

#endif
