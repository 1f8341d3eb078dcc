/* SPDX-License-Identifier: MIT */
/* Internal allocation helpers: every allocation libbackend makes goes
 * through these, so be_set_allocator() (and the tests' failing allocator)
 * sees all of them. */
#ifndef BE_LIB_ALLOC_H
#define BE_LIB_ALLOC_H

#include <stddef.h>

void *be__malloc(size_t size);
void *be__calloc(size_t count, size_t size);
void *be__realloc(void *ptr, size_t size);
void be__free(void *ptr);
char *be__strdup(const char *s);

/* Zeroed memory on lines of its own: it starts on a BE__LINE boundary and
 * no other allocation shares its last line. For an object its thread
 * writes on every call (a connection, a statement): next to another
 * thread's memory, or to SQLite's that another thread reads under a lock,
 * each of those writes would take the line from the other core. BE__LINE
 * is two 64-byte lines, which adjacent-line prefetchers fetch together.
 * Through be__malloc (the host's allocator); free with be__free_lines. */
#define BE__LINE 128
void *be__calloc_lines(size_t size);
void be__free_lines(void *p);

/* Memory of results of many rows (be_rows) comes in blocks of
 * BE__BLOCK_SIZE bytes. Freed, up to a few of them are kept for the next
 * result while the allocator is the default one: given back to malloc,
 * memory at the top of the heap goes back to the kernel and the next
 * result faults it in again (about 110 page faults per 10,000 rows).
 * be_set_allocator() frees the kept blocks first. */
#define BE__BLOCK_SIZE 65536
void *be__block_alloc(void);
void be__block_free(void *block);
int be__blocks_kept(void); /* how many are kept now (tests) */
char *be__strndup(const char *s, size_t n);
void *be__memdup(const void *p, size_t n);

#endif
