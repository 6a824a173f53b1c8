/* utf8.c - code points of UTF-8 text. */
#include "utf8.h"

#include <stdbool.h>

static bool starts_code_point(char c) { return ((unsigned char)c & 0xc0) != 0x80; }

size_t utf8_columns(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += starts_code_point(*s);
	return n;
}

size_t utf8_prefix(const char *s, size_t cols)
{
	size_t n = 0, seen = 0;
	for (; s[n]; n++)
		if (starts_code_point(s[n]) && ++seen > cols)
			break;
	return n;
}
