/* SPDX-License-Identifier: MIT */
/* An insertion-ordered set of int64 or text keys with O(1) lookup: the
 * deduplicated key list of a batch load and the loader's pending keys.
 * Index i is the i-th distinct key added. */
#ifndef BE_LIB_KEYMAP_H
#define BE_LIB_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct be__keymap {
  int32_t type;    /* BE_TYPE_INT or BE_TYPE_TEXT */
  size_t n, cap;   /* distinct keys */
  int64_t *ints;   /* type INT */
  char **texts;    /* type TEXT: owned copies, NUL-terminated */
  size_t *lens;
  uint32_t *slots; /* open addressing: 0 empty, else key index + 1 */
  size_t nslots;   /* power of two, or 0 */
} be__keymap;

void be__keymap_init(be__keymap *m, int32_t type);
void be__keymap_free(be__keymap *m);
/* Forget every key but keep the memory. */
void be__keymap_clear(be__keymap *m);
/* Add a key unless present; *index (may be NULL) gets its index.
 * Returns 1 when added, 0 when already there, -1 when out of memory. */
int be__keymap_add_int(be__keymap *m, int64_t key, size_t *index);
int be__keymap_add_text(be__keymap *m, const char *key, size_t len, size_t *index);
/* 1 and *index when present, else 0. */
int be__keymap_find_int(const be__keymap *m, int64_t key, size_t *index);
int be__keymap_find_text(const be__keymap *m, const char *key, size_t len, size_t *index);

#endif
