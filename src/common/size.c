/* size.c - byte counts with K, M, G and T suffixes. */
#include "size.h"

#include <stdbool.h>
#include <stddef.h>

#define SIZE_LIMIT (UINT64_C(1) << 63)

static int unit_shift(char c)
{
	switch (c) {
	case 'k':
	case 'K': return 10;
	case 'm':
	case 'M': return 20;
	case 'g':
	case 'G': return 30;
	case 't':
	case 'T': return 40;
	default: return -1;
	}
}

int size_parse(const char *s, uint64_t *out)
{
	uint64_t whole = 0, frac = 0, scale = 1;
	const char *p = s;
	bool digits = false;

	for (; *p >= '0' && *p <= '9'; p++, digits = true) {
		if (whole > (SIZE_LIMIT - 1 - (uint64_t)(*p - '0')) / 10)
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') { /* a fraction: up to 6 digits are exact enough for bytes */
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale < 1000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
	}
	if (!digits)
		return -1;
	int shift = *p ? unit_shift(*p++) : 0;
	if (shift < 0 || *p != '\0')
		return -1;
	if (shift && whole >= SIZE_LIMIT >> shift)
		return -1;
	uint64_t bytes = whole << shift, part = frac << shift;
	if (part % scale)
		return -1; /* not a whole number of bytes */
	bytes += part / scale;
	if (bytes >= SIZE_LIMIT)
		return -1;
	*out = bytes;
	return 0;
}
