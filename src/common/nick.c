/* Nickname validation and case folding. */
#include "nick.h"

#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <wctype.h>

/* Lazily created C.UTF-8 ctype locale. A locale_t (not setlocale) keeps the process-wide
 * locale untouched; it is created once and never freed because it is needed for the whole
 * process lifetime, and the server is single-threaded so the lazy init needs no lock.
 * Returns (locale_t)0 if unavailable, in which case only ASCII letters are accepted. */
static locale_t nick_locale(void)
{
	static locale_t loc;
	static bool tried;

	if (!tried) {
		tried = true;
		loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	return loc;
}

/* Decodes one strictly valid UTF-8 sequence at s[*pos]: no overlongs, no surrogates,
 * nothing above U+10FFFF, no truncation. */
static bool nick_utf8_next(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp)
{
	static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
	unsigned char b = s[*pos];
	size_t n, i;
	uint32_t c;

	if (b < 0x80) {
		n = 1;
		c = b;
	} else if ((b & 0xe0) == 0xc0) {
		n = 2;
		c = b & 0x1f;
	} else if ((b & 0xf0) == 0xe0) {
		n = 3;
		c = b & 0x0f;
	} else if ((b & 0xf8) == 0xf0) {
		n = 4;
		c = b & 0x07;
	} else {
		return false; /* continuation byte or 0xf8..0xff as a lead */
	}
	if (len - *pos < n)
		return false;
	for (i = 1; i < n; i++) {
		if ((s[*pos + i] & 0xc0) != 0x80)
			return false;
		c = c << 6 | (s[*pos + i] & 0x3f);
	}
	if (c < min_cp[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return false;
	*pos += n;
	*cp = c;
	return true;
}

static size_t nick_utf8_put(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static bool nick_is_ascii_letter(uint32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* glibc's wchar_t is UCS-4, so a code point can be passed to the wide ctype calls as is. */
static bool nick_char_ok(uint32_t c)
{
	locale_t loc;

	if (c < 0x80)
		return nick_is_ascii_letter(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		       c == '.' || c == '[' || c == ']';
	loc = nick_locale();
	return loc != (locale_t)0 && iswalpha_l((wint_t)c, loc);
}

/* Lowercasing the uppercase form also merges variants such as final sigma and sigma,
 * or long s and s, which a plain towlower keeps apart. */
static uint32_t nick_fold_char(uint32_t c)
{
	locale_t loc = nick_locale();

	if (loc == (locale_t)0)
		return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
	return (uint32_t)towlower_l(towupper_l((wint_t)c, loc), loc);
}

enum nick_status nick_check(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t pos = 0, chars = 0;
	uint32_t c;

	if (len == 0)
		return NICK_EMPTY;
	if (len > NICK_MAX_BYTES)
		return NICK_INVALID;
	while (pos < len) {
		if (++chars > NICK_MAX_CHARS || !nick_utf8_next(p, len, &pos, &c) ||
		    !nick_char_ok(c))
			return NICK_INVALID;
	}
	return NICK_OK;
}

size_t nick_fold(const char *s, size_t len, char out[NICK_MAX_BYTES + 1])
{
	const unsigned char *p = (const unsigned char *)s;
	size_t pos = 0, olen = 0;
	uint32_t c;

	/* Validating first bounds the output: at most 32 code points of 4 bytes each. */
	if (nick_check(s, len) != NICK_OK) {
		out[0] = '\0';
		return 0;
	}
	while (pos < len && nick_utf8_next(p, len, &pos, &c))
		olen += nick_utf8_put(out + olen, nick_fold_char(c));
	out[olen] = '\0';
	return olen;
}
