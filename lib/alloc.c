/* SPDX-License-Identifier: MIT */
#include <backend/alloc.h>
#include <backend/error.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "versioned.h"

static void *std_malloc(size_t size, void *ud) {
  (void)ud;
  return malloc(size);
}
static void *std_realloc(void *p, size_t size, void *ud) {
  (void)ud;
  return realloc(p, size);
}
static void std_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

static be_allocator current = {BE_ALLOCATOR_VERSION, std_malloc, std_realloc,
                               std_free, NULL};

int be_allocator_init(be_allocator *a, uint32_t version) {
  static const be_allocator defaults = BE_ALLOCATOR_INIT;
  return be__versioned_init(a, sizeof *a, &defaults, version, BE_ALLOCATOR_VERSION);
}

/* ---- memory on lines of its own (alloc.h) ---- */

void *be__calloc_lines(size_t size) {
  if (size > SIZE_MAX - 2 * BE__LINE - sizeof(void *)) return NULL;
  size_t rounded = (size + BE__LINE - 1) & ~(size_t)(BE__LINE - 1);
  /* raw is kept just before p; a host's allocator may align raw to less
   * than a pointer, so room for both is added, not assumed */
  char *raw = be__malloc(sizeof raw + BE__LINE - 1 + rounded);
  if (raw == NULL) return NULL;
  uintptr_t after = (uintptr_t)raw + sizeof raw;
  char *p = raw + sizeof raw + (BE__LINE - after % BE__LINE) % BE__LINE;
  memcpy(p - sizeof raw, &raw, sizeof raw);
  memset(p, 0, rounded);
  return p;
}

void be__free_lines(void *p) {
  if (p == NULL) return;
  void *raw;
  memcpy(&raw, (char *)p - sizeof raw, sizeof raw);
  be__free(raw);
}

/* ---- blocks kept for the next result (alloc.h) ---- */

#define BLOCKS_KEPT 32 /* 2 MiB per process at most */

static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static void *kept[BLOCKS_KEPT];
static int nkept;

static int allocator_is_default(void) { return current.malloc_fn == std_malloc; }

void *be__block_alloc(void) {
  void *b = NULL;
  if (allocator_is_default()) {
    pthread_mutex_lock(&kept_mu);
    if (nkept > 0) b = kept[--nkept];
    pthread_mutex_unlock(&kept_mu);
  }
  return b ? b : be__malloc(BE__BLOCK_SIZE);
}

void be__block_free(void *block) {
  if (block == NULL) return;
  if (allocator_is_default()) {
    pthread_mutex_lock(&kept_mu);
    int keep = nkept < BLOCKS_KEPT;
    if (keep) kept[nkept++] = block;
    pthread_mutex_unlock(&kept_mu);
    if (keep) return;
  }
  be__free(block);
}

int be__blocks_kept(void) {
  pthread_mutex_lock(&kept_mu);
  int n = nkept;
  pthread_mutex_unlock(&kept_mu);
  return n;
}

/* The kept blocks came from the default allocator: freed before another
 * takes its place. */
static void drop_kept_blocks(void) {
  pthread_mutex_lock(&kept_mu);
  while (nkept > 0) free(kept[--nkept]);
  pthread_mutex_unlock(&kept_mu);
}

int be_set_allocator(const be_allocator *a, be_error **err) {
  if (a != NULL && (a->version != BE_ALLOCATOR_VERSION || a->malloc_fn == NULL ||
                    a->realloc_fn == NULL || a->free_fn == NULL))
    return be__error_set(err, BE_E_MISUSE, "be_set_allocator: %s",
                         a->version != BE_ALLOCATOR_VERSION ? "unknown allocator version"
                                                            : "a function pointer is NULL");
  drop_kept_blocks();
  if (a == NULL) {
    be_allocator std = {BE_ALLOCATOR_VERSION, std_malloc, std_realloc, std_free, NULL};
    current = std;
    return BE_OK;
  }
  current = *a;
  return BE_OK;
}

void *be__malloc(size_t size) {
  return current.malloc_fn(size ? size : 1, current.user_data);
}

void *be__calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  size_t total = count * size;
  void *p = be__malloc(total);
  if (p) memset(p, 0, total ? total : 1);
  return p;
}

void *be__realloc(void *ptr, size_t size) {
  if (ptr == NULL) return be__malloc(size);
  return current.realloc_fn(ptr, size ? size : 1, current.user_data);
}

void be__free(void *ptr) {
  if (ptr) current.free_fn(ptr, current.user_data);
}

void be_free(void *ptr) { be__free(ptr); }

void *be__memdup(const void *p, size_t n) {
  void *copy = be__malloc(n);
  if (copy && n) memcpy(copy, p, n);
  return copy;
}

char *be__strndup(const char *s, size_t n) {
  char *copy = be__malloc(n + 1);
  if (copy == NULL) return NULL;
  if (n) memcpy(copy, s, n);
  copy[n] = '\0';
  return copy;
}

char *be__strdup(const char *s) { return be__strndup(s, strlen(s)); }
