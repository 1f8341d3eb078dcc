/* SPDX-License-Identifier: MIT */
/* An insertion-ordered set of int64 or text keys (key_set.h): open
 * addressing over the key arrays. */
#include <backend/storage.h>

#include <string.h>

#include "alloc.h"
#include "key_set.h"

static uint64_t hash_int(int64_t k) { /* splitmix64 finaliser */
  uint64_t x = (uint64_t)k + 0x9E3779B97F4A7C15u;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
  return x ^ (x >> 31);
}

static uint64_t hash_text(const char *s, size_t len) { /* FNV-1a */
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
  return h ^ (h >> 29);
}

static uint64_t hash_of(const be__key_set *m, size_t i) {
  return m->type == BE_TYPE_INT ? hash_int(m->ints[i]) : hash_text(m->texts[i], m->lens[i]);
}

void be__key_set_init(be__key_set *m, int32_t type) {
  memset(m, 0, sizeof *m);
  m->type = type;
}

void be__key_set_clear(be__key_set *m) {
  if (m->texts)
    for (size_t i = 0; i < m->n; i++) be__free(m->texts[i]);
  m->n = 0;
  if (m->slots) memset(m->slots, 0, m->nslots * sizeof *m->slots);
}

void be__key_set_free(be__key_set *m) {
  be__key_set_clear(m);
  be__free(m->ints);
  be__free(m->texts);
  be__free(m->lens);
  be__free(m->slots);
  be__key_set_init(m, m->type);
}

/* Keep the table at most half full. */
static int rehash(be__key_set *m) {
  size_t nslots = m->nslots ? m->nslots * 2 : 16;
  uint32_t *slots = be__calloc(nslots, sizeof *slots);
  if (slots == NULL) return 0;
  for (size_t i = 0; i < m->n; i++) {
    size_t s = (size_t)hash_of(m, i) & (nslots - 1);
    while (slots[s]) s = (s + 1) & (nslots - 1);
    slots[s] = (uint32_t)(i + 1);
  }
  be__free(m->slots);
  m->slots = slots;
  m->nslots = nslots;
  return 1;
}

static int grow(be__key_set *m) {
  if (m->n >= UINT32_MAX - 1) return 0;
  if ((m->n + 1) * 2 > m->nslots && !rehash(m)) return 0;
  if (m->n < m->cap) return 1;
  size_t cap = m->cap ? m->cap * 2 : 16;
  if (m->type == BE_TYPE_INT) {
    int64_t *ints = be__realloc(m->ints, cap * sizeof *ints);
    if (ints == NULL) return 0;
    m->ints = ints;
  } else {
    char **texts = be__realloc(m->texts, cap * sizeof *texts);
    if (texts == NULL) return 0;
    m->texts = texts;
    size_t *lens = be__realloc(m->lens, cap * sizeof *lens);
    if (lens == NULL) return 0;
    m->lens = lens;
  }
  m->cap = cap;
  return 1;
}

int be__key_set_find_int(const be__key_set *m, int64_t key, size_t *index) {
  if (m->nslots == 0) return 0;
  for (size_t s = (size_t)hash_int(key) & (m->nslots - 1); m->slots[s];
       s = (s + 1) & (m->nslots - 1)) {
    size_t i = m->slots[s] - 1;
    if (m->ints[i] == key) {
      if (index) *index = i;
      return 1;
    }
  }
  return 0;
}

int be__key_set_find_text(const be__key_set *m, const char *key, size_t len, size_t *index) {
  if (m->nslots == 0) return 0;
  for (size_t s = (size_t)hash_text(key, len) & (m->nslots - 1); m->slots[s];
       s = (s + 1) & (m->nslots - 1)) {
    size_t i = m->slots[s] - 1;
    if (m->lens[i] == len && memcmp(m->texts[i], key, len) == 0) {
      if (index) *index = i;
      return 1;
    }
  }
  return 0;
}

static void insert_slot(be__key_set *m, size_t i) {
  size_t s = (size_t)hash_of(m, i) & (m->nslots - 1);
  while (m->slots[s]) s = (s + 1) & (m->nslots - 1);
  m->slots[s] = (uint32_t)(i + 1);
}

int be__key_set_add_int(be__key_set *m, int64_t key, size_t *index) {
  if (be__key_set_find_int(m, key, index)) return 0;
  if (!grow(m)) return -1;
  m->ints[m->n] = key;
  insert_slot(m, m->n);
  if (index) *index = m->n;
  m->n++;
  return 1;
}

int be__key_set_add_text(be__key_set *m, const char *key, size_t len, size_t *index) {
  if (be__key_set_find_text(m, key, len, index)) return 0;
  if (!grow(m)) return -1;
  char *copy = be__strndup(key, len);
  if (copy == NULL) return -1;
  m->texts[m->n] = copy;
  m->lens[m->n] = len;
  insert_slot(m, m->n);
  if (index) *index = m->n;
  m->n++;
  return 1;
}
