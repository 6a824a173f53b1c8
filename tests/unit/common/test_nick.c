/* Unit tests for nickname validation and folding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "nick.h"

/* String literal helpers; sizeof keeps embedded NULs in the length. */
#define CHECK(lit) nick_check((lit), sizeof(lit) - 1)
#define OK(lit) assert_int_equal(CHECK(lit), NICK_OK)
#define BAD(lit) assert_int_equal(CHECK(lit), NICK_INVALID)

static void repeat(char *out, const char *unit, size_t times)
{
	size_t ulen = strlen(unit), i;

	for (i = 0; i < times; i++)
		memcpy(out + i * ulen, unit, ulen);
	out[times * ulen] = '\0';
}

static void test_ascii(void **state)
{
	(void)state;
	OK("alice");
	OK("Bob");
	OK("x");
	OK("r2d2");
	OK("0123456789");
	OK("_-.[]");
	OK("[neo]_the-one.");
}

static void test_scripts(void **state)
{
	(void)state;
	OK("Вася");             /* Cyrillic */
	OK("Αλέξανδρος");       /* Greek with tonos */
	OK("中文名字");         /* CJK ideographs */
	OK("ひらがな");         /* Hiragana */
	OK("\xf0\xa0\x80\x80"); /* U+20000, CJK extension B, 4 bytes */
	OK("Петя_99");
}

static void test_length_limits(void **state)
{
	char buf[4 * 40 + 1];

	(void)state;
	repeat(buf, "a", 32);
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_OK);
	repeat(buf, "a", 33);
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_INVALID);
	repeat(buf, "Ж", 32); /* 64 bytes but 32 characters */
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_OK);
	repeat(buf, "Ж", 33);
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_INVALID);
	repeat(buf, "中", 32);
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_OK);
	repeat(buf, "中", 33);
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_INVALID);
	repeat(buf, "\xf0\xa0\x80\x80", 32); /* 128 bytes, the byte maximum */
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_OK);
	repeat(buf, "\xf0\xa0\x80\x80", 33);
	assert_int_equal(nick_check(buf, strlen(buf)), NICK_INVALID);
}

static void test_empty(void **state)
{
	(void)state;
	assert_int_equal(nick_check("", 0), NICK_EMPTY);
	assert_int_equal(nick_check(NULL, 0), NICK_EMPTY);
}

static void test_bad_chars(void **state)
{
	(void)state;
	BAD(" ");
	BAD("al ice");
	BAD("alice ");
	BAD("a/b");
	BAD("/nick");
	BAD("a@b");
	BAD("a:b");
	BAD("a\tb");
	BAD("a\nb");
	BAD("\x7f");
	BAD("\xf0\x9f\x98\x80"); /* U+1F600 emoji */
	BAD("bob\xf0\x9f\x98\x80");
	BAD("\xc2\xa0");     /* no-break space */
	BAD("\xe2\x80\x8b"); /* zero width space */
}

static void test_nul_inside(void **state)
{
	(void)state;
	BAD("ab\0cd");
	BAD("\0");
	BAD("abc\0");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	BAD("\xc0\x80");         /* overlong NUL */
	BAD("\xc1\xbf");         /* overlong ASCII */
	BAD("\xe0\x80\xaf");     /* overlong 3-byte */
	BAD("\xf0\x80\x80\xaf"); /* overlong 4-byte */
	BAD("\x80");             /* lone continuation */
	BAD("a\xbf"
	    "b");
	BAD("\xd0");         /* truncated 2-byte */
	BAD("ab\xe4\xb8");   /* truncated 3-byte */
	BAD("\xf0\xa0\x80"); /* truncated 4-byte */
	BAD("\xd0"
	    "a");                /* lead followed by non-continuation */
	BAD("\xed\xa0\x80");     /* surrogate U+D800 */
	BAD("\xed\xbf\xbf");     /* surrogate U+DFFF */
	BAD("\xf4\x90\x80\x80"); /* U+110000 */
	BAD("\xf5\x80\x80\x80");
	BAD("\xf8\x88\x80\x80\x80");
	BAD("\xfe");
	BAD("\xff");
}

static void assert_same_key(const char *a, const char *b)
{
	char ka[NICK_MAX_BYTES + 1], kb[NICK_MAX_BYTES + 1];
	size_t la = nick_fold(a, strlen(a), ka);
	size_t lb = nick_fold(b, strlen(b), kb);

	assert_true(la > 0);
	assert_int_equal(la, strlen(ka));
	assert_int_equal(la, lb);
	assert_string_equal(ka, kb);
}

static void test_fold(void **state)
{
	char key[NICK_MAX_BYTES + 1];
	char buf[4 * 32 + 1];

	(void)state;
	assert_same_key("Alice", "aLiCe");
	assert_same_key("Alice", "alice");
	assert_same_key("Вася", "ВАСЯ");
	assert_same_key("ΣΟΦΙΑ", "σοφια");
	assert_same_key("ΟΔΥΣΣΕΥΣ", "οδυσσευς"); /* final sigma folds like sigma */
	assert_same_key("x_[1]", "X_[1]");
	assert_int_equal(nick_fold("ALICE", 5, key), 5);
	assert_string_equal(key, "alice");
	assert_int_equal(nick_fold("ВАСЯ", strlen("ВАСЯ"), key), strlen("вася"));
	assert_string_equal(key, "вася");
	/* Different names keep different keys. */
	nick_fold("alice", 5, key);
	assert_string_not_equal(key, "alicf");
	/* Invalid input folds to the empty key. */
	assert_int_equal(nick_fold("a b", 3, key), 0);
	assert_string_equal(key, "");
	/* A maximal name fits the output buffer. */
	repeat(buf, "\xf0\xa0\x80\x80", 32);
	assert_int_equal(nick_fold(buf, strlen(buf), key), NICK_MAX_BYTES);
	assert_string_equal(key, buf);
}

int main(void)
{
	/* One test a line, as in the other test programs. */
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii),
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bad_chars),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_fold),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
