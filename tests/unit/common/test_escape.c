/* Unit tests for escape.c: untrusted bytes made safe to print. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

#define CANARY 0xA5

/* Escapes text into a roomy buffer and compares with want. */
static void check_esc(const char *text, size_t len, const char *want)
{
	char out[1024];

	memset(out, 'Q', sizeof out);
	assert_ptr_equal(escape_text(out, sizeof out, text, len), out);
	assert_string_equal(out, want);
}

#define CHECK(text, want) check_esc(text, sizeof(text) - 1, want)

static void test_plain_ascii(void **state)
{
	(void)state;
	CHECK("hello, world!", "hello, world!");
	CHECK("", "");
	CHECK(" ~!@#$%^&*()_+{}|:\"<>?`-=[];',./", " ~!@#$%^&*()_+{}|:\"<>?`-=[];',./");

	/* Every printable ASCII byte but the backslash is kept. */
	char in[128], want[128];
	size_t n = 0;
	for (int c = 0x20; c < 0x7f; c++)
		if (c != '\\')
			in[n++] = (char)c;
	memcpy(want, in, n);
	want[n] = '\0';
	check_esc(in, n, want);
}

static void test_control_bytes(void **state)
{
	(void)state;
	CHECK("\x1b[31m", "\\x1b[31m");
	CHECK("red\x1b[0m", "red\\x1b[0m");
	CHECK("\n", "\\n");
	CHECK("\t", "\\t");
	CHECK("\r", "\\r");
	CHECK("\\", "\\\\");
	CHECK("a\\nb", "a\\\\nb"); /* a literal backslash-n stays distinguishable */
	CHECK("line1\r\nline2\tx", "line1\\r\\nline2\\tx");
	CHECK("\x07\x08\x0b\x0c", "\\x07\\x08\\x0b\\x0c");
	CHECK("\x01\x1f", "\\x01\\x1f");
	check_esc("a\0b", 3, "a\\x00b");
	CHECK("\x7f", "\\x7f"); /* DEL */
	CHECK("x\x7fy", "x\\x7fy");
}

static void test_utf8_kept(void **state)
{
	(void)state;
	/* "привет, мир" */
	CHECK("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80",
	      "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80");
	CHECK("\xc2\xa0", "\xc2\xa0");                   /* U+00A0, first after C1 */
	CHECK("\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"); /* "été" */
	CHECK("\xe2\x82\xac", "\xe2\x82\xac");           /* U+20AC euro sign */
	CHECK("\xe0\xa0\x80", "\xe0\xa0\x80");           /* U+0800, smallest 3-byte */
	CHECK("\xef\xbf\xbd", "\xef\xbf\xbd");           /* U+FFFD */
	CHECK("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");   /* U+1F600 */
	CHECK("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");   /* U+10FFFF */
}

static void test_utf8_invalid(void **state)
{
	(void)state;
	CHECK("\x80", "\\x80"); /* lone continuation */
	CHECK("a\xbf"
	      "b",
	      "a\\xbfb");
	CHECK("\xd0", "\\xd0");   /* cut short at the end */
	CHECK("\xd0x", "\\xd0x"); /* cut short by ASCII */
	CHECK("\xe2\x82", "\\xe2\\x82");
	CHECK("\xf0\x9f\x98", "\\xf0\\x9f\\x98");
	CHECK("\xc0\xaf", "\\xc0\\xaf"); /* overlong '/' */
	CHECK("\xc1\xbf", "\\xc1\\xbf");
	CHECK("\xe0\x80\xaf", "\\xe0\\x80\\xaf");          /* overlong, 3 bytes */
	CHECK("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"); /* overlong, 4 bytes */
	CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");          /* surrogate U+D800 */
	CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
	CHECK("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
	CHECK("\xfe\xff", "\\xfe\\xff");
	/* A bad byte does not swallow the valid sequence after it. */
	CHECK("\xd0\xd0\xbf", "\\xd0\xd0\xbf");
}

static void test_c1_controls(void **state)
{
	(void)state;
	CHECK("\xc2\x9b", "\\xc2\\x9b"); /* U+009B CSI */
	CHECK("\xc2\x9b"
	      "31m",
	      "\\xc2\\x9b31m");
	CHECK("\xc2\x80", "\\xc2\\x80"); /* U+0080 */
	CHECK("\xc2\x85", "\\xc2\\x85"); /* U+0085 NEL */
	CHECK("\xc2\x9f", "\\xc2\\x9f"); /* U+009F */
	CHECK("\x9b", "\\x9b");          /* raw 8-bit CSI */
}

/* Length of the escape of one unit starting at `full` (an escaped string):
 * "\\x.." is 4, "\\u...." 6, "\\n" 2, a UTF-8 sequence its length, anything else 1. */
static size_t unit_len(const char *full)
{
	unsigned char c = (unsigned char)full[0];
	if (c == '\\')
		return full[1] == 'x' ? 4 : full[1] == 'u' ? 6 : 2;
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* For every buffer size from 0 to well past the need, escape_text must stay
 * inside the buffer, NUL-terminate, and give either the whole escape or a
 * whole-unit prefix of it followed by "...". */
static void check_truncation(const char *text, size_t len)
{
	char full[1024];
	size_t flen;

	escape_text(full, sizeof full, text, len);
	flen = strlen(full);
	assert_true(flen + 8 < sizeof full);

	for (size_t outsz = 0; outsz <= flen + 6; outsz++) {
		/* Exactly outsz bytes on the heap (ASan) plus a canary check. */
		char *out = malloc(outsz + 1);
		assert_non_null(out);
		memset(out, 0xCC, outsz);
		out[outsz] = (char)CANARY;
		escape_text(out, outsz, text, len);
		if ((unsigned char)out[outsz] != CANARY)
			fail_msg("outsz %zu: wrote past the end", outsz);
		if (outsz == 0) {
			free(out);
			continue;
		}
		size_t olen = strnlen(out, outsz);
		if (olen == outsz)
			fail_msg("outsz %zu: no NUL inside the buffer", outsz);
		if (olen == flen && memcmp(out, full, flen) == 0) {
			free(out);
			continue; /* the whole thing */
		}
		if (outsz < 4) { /* no room for "...": empty */
			assert_int_equal(olen, 0);
			free(out);
			continue;
		}
		if (olen < 3 || memcmp(out + olen - 3, "...", 3) != 0)
			fail_msg("outsz %zu: cut without \"...\": \"%s\"", outsz, out);
		size_t plen = olen - 3;
		if (memcmp(out, full, plen) != 0)
			fail_msg("outsz %zu: \"%s\" is not a prefix of \"%s\"", outsz, out, full);
		/* The cut falls between units, never inside an escape or a character. */
		size_t at = 0;
		while (at < plen)
			at += unit_len(full + at);
		if (at != plen)
			fail_msg("outsz %zu: cut inside a unit: \"%s\"", outsz, out);
		/* And it uses the room it has: the next unit did not fit. */
		assert_true(plen + unit_len(full + plen) + 4 > outsz);
		free(out);
	}
}

static void test_truncation_never_overflows(void **state)
{
	(void)state;
	check_truncation("hello, world", 12);
	check_truncation("\x1b[31mred\x1b[0m", 12);
	check_truncation("a\nb\tc\\d\re", 9);
	check_truncation("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 12);
	check_truncation("\xf0\x9f\x98\x80x\xf0\x9f\x98\x80y\xe2\x82\xac", 13);
	check_truncation("\xc2\x9b\x80\xff\xd0", 5);
	check_truncation("", 0);
	check_truncation("a", 1);

	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	check_truncation(all, 64);
	check_truncation(all + 100, 156);
}

static void test_truncation_examples(void **state)
{
	char out[16];

	(void)state;
	memset(out, 'Q', sizeof out);
	escape_text(out, 8, "abcdefghijkl", 12);
	assert_string_equal(out, "abcd...");
	escape_text(out, 10, "\x1b\x1b\x1b\x1b", 4);
	assert_string_equal(out, "\\x1b...");
	/* A character is never split: 7 bytes leave room for one Cyrillic letter. */
	escape_text(out, 7, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 12);
	assert_string_equal(out, "\xd0\xbf...");
	escape_text(out, 4, "abcdef", 6);
	assert_string_equal(out, "...");
	/* Too small even for "...": an empty string. */
	memset(out, 'Q', sizeof out);
	escape_text(out, 3, "abcdef", 6);
	assert_string_equal(out, "");
	escape_text(out, 1, "abcdef", 6);
	assert_string_equal(out, "");
	/* outsz 0 writes nothing at all. */
	memset(out, 'Q', sizeof out);
	escape_text(out, 0, "abcdef", 6);
	assert_int_equal(out[0], 'Q');
}

/* A text whose escape fits the buffer exactly must come out whole: the header
 * promises "..." only "when out is too small". */
static void test_exact_fit_not_truncated(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "abcde", "abcde" },
		{ "a", "a" },
		{ "hello, world", "hello, world" },
		{ "x\n", "x\\n" },
		{ "\x1b", "\\x1b" },
		{ "\xd0\xbf\xd1\x80", "\xd0\xbf\xd1\x80" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t need = strlen(cases[i].want) + 1;
		for (size_t outsz = need; outsz < need + 4; outsz++) {
			char out[64];
			memset(out, 'Q', sizeof out);
			escape_text(out, outsz, cases[i].text, strlen(cases[i].text));
			if (strcmp(out, cases[i].want) != 0)
				fail_msg(
					"escape_text(\"%s\") into %zu bytes gave \"%s\", want \"%s\"",
					cases[i].want, outsz, out, cases[i].want);
		}
	}
}

/* ---- bidirectional controls (Trojan Source) ---- */

static void test_bidi_controls(void **state)
{
	(void)state;
	CHECK("\xe2\x80\xaa", "\\u202a"); /* LRE */
	CHECK("\xe2\x80\xab", "\\u202b"); /* RLE */
	CHECK("\xe2\x80\xac", "\\u202c"); /* PDF */
	CHECK("\xe2\x80\xad", "\\u202d"); /* LRO */
	CHECK("\xe2\x80\xae", "\\u202e"); /* RLO */
	CHECK("\xe2\x81\xa6", "\\u2066"); /* LRI */
	CHECK("\xe2\x81\xa7", "\\u2067"); /* RLI */
	CHECK("\xe2\x81\xa8", "\\u2068"); /* FSI */
	CHECK("\xe2\x81\xa9", "\\u2069"); /* PDI */
	/* The classic: "access level: user" shown reversed as something else. */
	CHECK("if \xe2\x80\xae"
	      "resu\xe2\x81\xa6 x",
	      "if \\u202eresu\\u2066 x");
	/* Neighbours are ordinary characters and stay. */
	CHECK("\xe2\x80\xa9", "\xe2\x80\xa9"); /* U+2029 */
	CHECK("\xe2\x80\xaf", "\xe2\x80\xaf"); /* U+202F narrow no-break space */
	CHECK("\xe2\x81\xa5", "\xe2\x81\xa5"); /* U+2065 */
	CHECK("\xe2\x81\xaa", "\xe2\x81\xaa"); /* U+206A */
	/* Cut short, it is no character at all: bytes. */
	CHECK("\xe2\x80", "\\xe2\\x80");
	check_truncation("ab\xe2\x80\xae"
	                 "cd\xe2\x81\xa9",
	                 10);
}

static void test_bidi_predicate(void **state)
{
	(void)state;
	for (unsigned int cp = 0; cp < 0x110000; cp++) {
		bool want = (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
		if (escape_is_bidi(cp) != want)
			fail_msg("escape_is_bidi(U+%04X) is %d", cp, !want);
	}
}

/* ---- escape_unit with ESCAPE_LINE: what line-mode clients get ---- */

/* The whole of text through escape_unit with flags, NUL-terminated in out. */
static const char *line_esc(char *out, const char *text, size_t len, int flags)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		size_t used, n = escape_unit(out + o, (const unsigned char *)text + i, len - i,
		                             &used, flags);
		assert_true(n >= 1 && n <= ESCAPE_UNIT_MAX);
		assert_true(used >= 1 && used <= len - i);
		o += n;
		i += used;
	}
	out[o] = '\0';
	return out;
}

#define LINE(text, want)                                                                           \
	assert_string_equal(line_esc(buf, text, sizeof(text) - 1, ESCAPE_LINE), want)

static void test_line_flavour(void **state)
{
	char buf[1024];

	(void)state;
	/* A tab and a backslash stay as they are: printable text is byte for byte. */
	LINE("a\tb", "a\tb");
	LINE("C:\\dir\\x1b", "C:\\dir\\x1b");
	LINE("q\"x\\y", "q\"x\\y");
	/* Everything else as escape_text. */
	LINE("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07");
	LINE("a\rb", "a\\rb");
	LINE("a\nb", "a\\nb"); /* only a head can hold one: the encoder splits bodies */
	LINE("\x7f\x00", "\\x7f\\x00");
	LINE("\xc2\x9b"
	     "31m",
	     "\\xc2\\x9b31m");
	LINE("\xff\xfe", "\\xff\\xfe");
	LINE("\xe2\x80\xae"
	     "abc",
	     "\\u202eabc");
	LINE("\xd0\xbf\xe2\x82\xac\xf0\x9f\x98\x80", "\xd0\xbf\xe2\x82\xac\xf0\x9f\x98\x80");
	/* Without the flag, escape_unit is escape_text's rule. */
	assert_string_equal(line_esc(buf, "a\tb\\", 4, 0), "a\\tb\\\\");
}

/* Every single byte and every pair: escape_unit never writes a control byte,
 * DEL or an invalid sequence, and escape_needs_look is exact about the bytes
 * it lets through unseen. */
static void test_unit_output_is_safe(void **state)
{
	(void)state;
	for (int flags = 0; flags <= ESCAPE_LINE; flags++)
		for (int a = 0; a < 256; a++)
			for (int b = 0; b < 256; b += 17) {
				unsigned char in[2] = { (unsigned char)a, (unsigned char)b };
				char out[ESCAPE_UNIT_MAX];
				size_t used, n = escape_unit(out, in, 2, &used, flags);
				for (size_t i = 0; i < n; i++) {
					unsigned char c = (unsigned char)out[i];
					if (c < 0x20 && !(c == '\t' && flags))
						fail_msg("byte %02x: control %02x out", a, c);
					if (c == 0x7f)
						fail_msg("byte %02x: DEL out", a);
				}
				if (!escape_needs_look((unsigned char)a, flags))
					assert_true(n == 1 && used == 1 && out[0] == (char)a);
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ascii),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_utf8_kept),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_c1_controls),
		cmocka_unit_test(test_truncation_never_overflows),
		cmocka_unit_test(test_truncation_examples),
		cmocka_unit_test(test_exact_fit_not_truncated),
		cmocka_unit_test(test_bidi_controls),
		cmocka_unit_test(test_bidi_predicate),
		cmocka_unit_test(test_line_flavour),
		cmocka_unit_test(test_unit_output_is_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
