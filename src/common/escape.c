/* escape.c - untrusted bytes made safe for a log line or a terminal. */
#include "escape.h"

#include <string.h>

char *escape_text(char *out, size_t outsz, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0, i = 0, mark = 0; /* mark: the last cut point with room for "..." */

	if (outsz == 0)
		return out;
	while (i < len) {
		char tmp[ESCAPE_UNIT_MAX];
		size_t used, n = escape_unit(tmp, s + i, len - i, &used, 0);

		if (o + n + 1 > outsz) { /* this one doesn't fit: cut at the mark */
			if (outsz < 4)
				out[0] = '\0';
			else
				memcpy(out + mark, "...", 4);
			return out;
		}
		memcpy(out + o, tmp, n);
		o += n;
		i += used;
		if (o + 4 <= outsz)
			mark = o;
	}
	out[o] = '\0';
	return out;
}
