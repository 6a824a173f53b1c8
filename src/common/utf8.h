/* utf8.h - measuring UTF-8 text for the terminal, one column per code point
 * (good enough for lining text up; wide characters are rare in names). Pure. */
#ifndef BOTTLE_UTF8_H
#define BOTTLE_UTF8_H

#include <stddef.h>

/* The code points of a NUL-terminated string: bytes that are not continuation
 * bytes (10xxxxxx), so malformed input still gets a count. */
size_t utf8_columns(const char *s);
/* The bytes of s that hold its first `cols` code points (all of s if fewer). */
size_t utf8_prefix(const char *s, size_t cols);

#endif
