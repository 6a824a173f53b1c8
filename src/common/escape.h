/* escape.h - untrusted bytes made safe to print.
 *
 * The rule (docs/protocol.md, "Text safety"): printable ASCII and well-formed
 * UTF-8 are kept; C0 controls, DEL, C1 controls (U+0080..U+009F) and bytes
 * that are not well-formed UTF-8 become \n, \r, \t or \xNN; the bidirectional
 * embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069, the
 * "Trojan Source" characters) become \u202e and the like. Two flavours:
 *  - escape_text (the client's display, logs): a backslash becomes \\ and a
 *    tab \t, so the escaped text is unambiguous;
 *  - ESCAPE_LINE (what bottled sends to a line-mode client, framing.c): a
 *    backslash and a tab stay as they are, so printable text reaches nc and
 *    telnet users byte for byte.
 * escape_unit is inline so that every module using it (framing.c, linked into
 * small test and fuzz programs) needs no extra object. */
#ifndef BOTTLE_ESCAPE_H
#define BOTTLE_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

#define ESCAPE_UNIT_MAX 8 /* room for the longest form of one unit: "\u202e" or 4 bytes */
#define ESCAPE_LINE 1     /* escape_unit flag: line-mode rules (tab, backslash kept) */

/* Copies text into out (NUL-terminated) so that nothing in it can drive a terminal or
 * reorder it (the rule above, escape_text flavour). Truncates with "..." when out is too
 * small. At most 4 bytes of out per byte of text (plus the NUL). Returns out. */
char *escape_text(char *out, size_t outsz, const char *text, size_t len);

/* True for a code point that reorders text around it: the bidi embeddings, overrides
 * (U+202A..U+202E) and isolates (U+2066..U+2069). */
static inline bool escape_is_bidi(unsigned int cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The code point of the well-formed UTF-8 sequence of 2..4 bytes at s, its length in
 * *seq; 0 with *seq = 0 when s[0..len) does not start with one. */
static inline unsigned int escape_utf8(const unsigned char *s, size_t len, size_t *seq)
{
	size_t need;
	unsigned int cp;

	*seq = 0;
	/* clang-format off */
	if (s[0] >= 0xc2 && s[0] <= 0xdf) { need = 2; cp = s[0] & 0x1fu; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { need = 3; cp = s[0] & 0x0fu; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { need = 4; cp = s[0] & 0x07u; }
	else return 0;
	/* clang-format on */
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	*seq = need;
	return cp;
}

/* True when the byte needs a look before it is copied as is: anything but printable
 * ASCII (and, with ESCAPE_LINE, a tab). */
static inline bool escape_needs_look(unsigned char c, int flags)
{
	if (c >= 0x20 && c < 0x7f)
		return c == '\\' && !(flags & ESCAPE_LINE);
	return !(c == '\t' && (flags & ESCAPE_LINE));
}

/* Writes the display form of the unit of text at s[0..len) (len > 0) into out, not
 * NUL-terminated; returns its length (1..ESCAPE_UNIT_MAX) and sets *used to the bytes of
 * s it stands for. flags: 0 or ESCAPE_LINE. */
static inline size_t escape_unit(char out[ESCAPE_UNIT_MAX], const unsigned char *s, size_t len,
                                 size_t *used, int flags)
{
	static const char hex[] = "0123456789abcdef";
	size_t seq;
	unsigned int cp;

	*used = 1;
	if (!escape_needs_look(s[0], flags)) {
		out[0] = (char)s[0];
		return 1;
	}
	if (s[0] >= 0x80 && (cp = escape_utf8(s, len, &seq)) >= 0xa0) {
		*used = seq;
		if (!escape_is_bidi(cp)) {
			for (size_t i = 0; i < seq; i++)
				out[i] = (char)s[i];
			return seq;
		}
		/* Bidi controls are all U+2xxx: "\u" and four hex digits. */
		out[0] = '\\';
		out[1] = 'u';
		for (int i = 0; i < 4; i++)
			out[2 + i] = hex[(cp >> (12 - 4 * i)) & 0xf];
		return 6;
	}
	/* One byte: a C0 control, DEL, a backslash, a C1 control's first byte (U+0080..
	 * U+009F can start terminal sequences too) or a byte that is not UTF-8. */
	out[0] = '\\';
	switch (s[0]) {
	case '\n': out[1] = 'n'; return 2;
	case '\r': out[1] = 'r'; return 2;
	case '\t': out[1] = 't'; return 2;
	case '\\': out[1] = '\\'; return 2;
	default:
		out[1] = 'x';
		out[2] = hex[s[0] >> 4];
		out[3] = hex[s[0] & 0xf];
		return 4;
	}
}

#endif
