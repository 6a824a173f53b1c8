/* xmalloc.h - allocators that never return NULL: running out of memory aborts. */
#ifndef BOTTLE_XMALLOC_H
#define BOTTLE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
