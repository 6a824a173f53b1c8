/* escape.c - untrusted bytes made safe for a log line or a terminal. */
#include "escape.h"

#include <stdio.h>
#include <string.h>

/* Length of a valid UTF-8 sequence of at least two bytes at s that is safe to show, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t need;
	unsigned int cp;

	/* Lead bytes: one range a line reads best as a table. */
	/* clang-format off */
	if (s[0] >= 0xc2 && s[0] <= 0xdf) { need = 2; cp = s[0] & 0x1f; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { need = 3; cp = s[0] & 0x0f; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { need = 4; cp = s[0] & 0x07; }
	else return 0;
	/* clang-format on */
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* C1 controls (U+0080..U+009F) can start terminal sequences: escape them too. */
	if ((need == 2 && cp < 0xa0) ||
	    (need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

/* A backslash and a letter, such as \n: two bytes, no terminating NUL. */
static size_t escape_pair(char tmp[8], char letter)
{
	tmp[0] = '\\';
	tmp[1] = letter;
	return 2;
}

/* Writes the printable form of the byte sequence at s into tmp; returns its
 * length and sets *used to the bytes of s it stands for. */
static size_t escape_one(char tmp[8], const unsigned char *s, size_t len, size_t *used)
{
	size_t seq;

	*used = 1;
	if (s[0] >= 0x20 && s[0] < 0x7f && s[0] != '\\') {
		tmp[0] = (char)s[0];
		return 1;
	}
	if (s[0] >= 0x80 && (seq = utf8_seq(s, len)) > 0) {
		memcpy(tmp, s, seq);
		*used = seq;
		return seq;
	}
	switch (s[0]) {
	case '\n': return escape_pair(tmp, 'n');
	case '\r': return escape_pair(tmp, 'r');
	case '\t': return escape_pair(tmp, 't');
	case '\\': return escape_pair(tmp, '\\');
	default: return (size_t)snprintf(tmp, 8, "\\x%02x", s[0]);
	}
}

char *escape_text(char *out, size_t outsz, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0, i = 0, mark = 0; /* mark: the last cut point with room for "..." */

	if (outsz == 0)
		return out;
	while (i < len) {
		char tmp[8];
		size_t used, n = escape_one(tmp, s + i, len - i, &used);

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
