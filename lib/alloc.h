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
char *be__strndup(const char *s, size_t n);
void *be__memdup(const void *p, size_t n);

#endif
