/* SPDX-License-Identifier: MIT */
/* An insertion-ordered set of int64 or text keys with O(1) lookup: the
 * deduplicated key list of a batch load and the loader's pending keys.
 * Index i is the i-th distinct key added. */
#ifndef BE_LIB_KEY_SET_H
#define BE_LIB_KEY_SET_H

#include <stddef.h>
#include <stdint.h>

typedef struct be__key_set {
  int32_t type;  /* BE_TYPE_INT or BE_TYPE_TEXT */
  size_t n, cap; /* distinct keys */
  int64_t *ints; /* type INT */
  char **texts;  /* type TEXT: owned copies, NUL-terminated */
  size_t *lens;
  uint32_t *slots; /* open addressing: 0 empty, else key index + 1 */
  size_t nslots;   /* power of two, or 0 */
} be__key_set;

void be__key_set_init(be__key_set *m, int32_t type);
void be__key_set_free(be__key_set *m);
/* Forget every key but keep the memory. */
void be__key_set_clear(be__key_set *m);
/* Add a key unless present; *index (may be NULL) gets its index.
 * Returns 1 when added, 0 when already there, -1 when out of memory. */
int be__key_set_add_int(be__key_set *m, int64_t key, size_t *index);
int be__key_set_add_text(be__key_set *m, const char *key, size_t len, size_t *index);
/* 1 and *index when present, else 0. */
int be__key_set_find_int(const be__key_set *m, int64_t key, size_t *index);
int be__key_set_find_text(const be__key_set *m, const char *key, size_t len, size_t *index);

#endif
