/* Unit tests for args.c: words, quoted words, malformed and too-long words,
 * args_done, and args_quote read back by args_next. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "args.h"

/* The next word of a; its length (or -1 / -2) in *rc. */
static const char *next(struct args *a, int *rc)
{
	static char out[64];
	*rc = args_next(a, out, sizeof out);
	return out;
}

static void init_str(struct args *a, const char *s) { args_init(a, s, strlen(s)); }

static void test_plain_words(void **state)
{
	(void)state;
	struct args a;
	int rc;
	init_str(&a, "  one two   three ");
	assert_string_equal(next(&a, &rc), "one");
	assert_int_equal(rc, 3);
	assert_false(args_done(&a));
	assert_string_equal(next(&a, &rc), "two");
	assert_string_equal(next(&a, &rc), "three");
	assert_int_equal(rc, 5);
	assert_true(args_done(&a)); /* trailing spaces only */
	next(&a, &rc);
	assert_int_equal(rc, -1);
	next(&a, &rc); /* stays at the end */
	assert_int_equal(rc, -1);
}

static void test_empty_text(void **state)
{
	(void)state;
	struct args a;
	int rc;
	init_str(&a, "");
	assert_true(args_done(&a));
	next(&a, &rc);
	assert_int_equal(rc, -1);
	init_str(&a, "    ");
	assert_true(args_done(&a));
	next(&a, &rc);
	assert_int_equal(rc, -1);
}

static void test_length_bounds_the_text(void **state)
{
	(void)state;
	struct args a;
	int rc;
	args_init(&a, "abc def", 5); /* "abc d" */
	assert_string_equal(next(&a, &rc), "abc");
	assert_string_equal(next(&a, &rc), "d");
	assert_int_equal(rc, 1);
	assert_true(args_done(&a));
}

static void test_quoted_words(void **state)
{
	(void)state;
	struct args a;
	int rc;
	init_str(&a, "\"my notes.txt\" 12 \"\"");
	assert_string_equal(next(&a, &rc), "my notes.txt");
	assert_int_equal(rc, 12);
	assert_string_equal(next(&a, &rc), "12");
	assert_string_equal(next(&a, &rc), ""); /* an empty quoted word */
	assert_int_equal(rc, 0);
	assert_true(args_done(&a));
}

static void test_escapes_in_quotes(void **state)
{
	(void)state;
	struct args a;
	int rc;
	init_str(&a, "\"q\\\"x\\\\y\" next");
	assert_string_equal(next(&a, &rc), "q\"x\\y");
	assert_int_equal(rc, 5);
	assert_string_equal(next(&a, &rc), "next");
	/* Outside quotes a backslash is an ordinary byte. */
	init_str(&a, "a\\b");
	assert_string_equal(next(&a, &rc), "a\\b");
	assert_int_equal(rc, 3);
}

static void test_malformed_quotes(void **state)
{
	(void)state;
	static const char *bad[] = {
		"\"no end",     /* no closing quote */
		"\"x\"y",       /* junk right after the closing quote */
		"\"a\\n\"",     /* an escape other than \" and \\ */
		"\"ends in \\", /* a backslash at the very end */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct args a;
		int rc;
		init_str(&a, bad[i]);
		next(&a, &rc);
		assert_int_equal(rc, -2);
	}
}

static void test_too_long_words(void **state)
{
	(void)state;
	struct args a;
	char out[4];
	/* 3 bytes fit a 4-byte buffer, 4 do not: plain and quoted alike. */
	init_str(&a, "abc abcd");
	assert_int_equal(args_next(&a, out, sizeof out), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(args_next(&a, out, sizeof out), -2);
	init_str(&a, "\"a c\" \"abcd\"");
	assert_int_equal(args_next(&a, out, sizeof out), 3);
	assert_string_equal(out, "a c");
	assert_int_equal(args_next(&a, out, sizeof out), -2);
	/* An escape counts as the one byte it stands for. */
	init_str(&a, "\"\\\\\\\\\\\\\"");
	assert_int_equal(args_next(&a, out, sizeof out), 3);
	assert_string_equal(out, "\\\\\\");
}

static void test_nul_is_refused(void **state)
{
	(void)state;
	struct args a;
	int rc;
	static const char plain[] = "ab\0c d";
	args_init(&a, plain, sizeof plain - 1);
	next(&a, &rc);
	assert_int_equal(rc, -2);
	static const char quoted[] = "\"ab\0c\"";
	args_init(&a, quoted, sizeof quoted - 1);
	next(&a, &rc);
	assert_int_equal(rc, -2);
}

static void test_quote_plain_words_unchanged(void **state)
{
	(void)state;
	char out[32];
	assert_int_equal(args_quote("notes.txt", out, sizeof out), 9);
	assert_string_equal(out, "notes.txt");
	assert_int_equal(args_quote("", out, sizeof out), 2);
	assert_string_equal(out, "\"\"");
	assert_int_equal(args_quote("a b", out, sizeof out), 5);
	assert_string_equal(out, "\"a b\"");
	assert_int_equal(args_quote("q\"x\\y", out, sizeof out), 9);
	assert_string_equal(out, "\"q\\\"x\\\\y\"");
}

static void test_quote_that_does_not_fit(void **state)
{
	(void)state;
	char out[8];
	assert_int_equal(args_quote("1234567", out, sizeof out), 7);
	assert_int_equal(args_quote("12345678", out, sizeof out), -1);
	assert_int_equal(args_quote("a b c d e", out, sizeof out), -1);
	assert_int_equal(args_quote("", out, 2), -1);
}

static void test_quote_round_trip(void **state)
{
	(void)state;
	static const char *words[] = {
		"plain", "with space", "\"", "\\", "a\"b\\c d", " lead", "trail ", "", "\"\"\\\\",
	};
	char quoted[128], back[64], line[512] = "";
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		int n = args_quote(words[i], quoted, sizeof quoted);
		assert_true(n >= 0);
		strcat(line, quoted);
		strcat(line, " ");
	}
	struct args a;
	init_str(&a, line);
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		int n = args_next(&a, back, sizeof back);
		assert_int_equal(n, (int)strlen(words[i]));
		assert_string_equal(back, words[i]);
	}
	assert_true(args_done(&a));
	assert_int_equal(args_next(&a, back, sizeof back), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_words),
		cmocka_unit_test(test_empty_text),
		cmocka_unit_test(test_length_bounds_the_text),
		cmocka_unit_test(test_quoted_words),
		cmocka_unit_test(test_escapes_in_quotes),
		cmocka_unit_test(test_malformed_quotes),
		cmocka_unit_test(test_too_long_words),
		cmocka_unit_test(test_nul_is_refused),
		cmocka_unit_test(test_quote_plain_words_unchanged),
		cmocka_unit_test(test_quote_that_does_not_fit),
		cmocka_unit_test(test_quote_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
