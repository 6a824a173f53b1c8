/* Unit tests for reply.c: the words of an OK reply, numbers below 2^63 and
 * digests, read as spans (no NUL at their end, maybe one inside). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "reply.h"

#define SHA_HELLO "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"

static void words_split_at_spaces(void **state)
{
	const char *w[3];
	size_t wl[3];
	const char *s = "12 0 abc";
	(void)state;

	assert_int_equal(reply_words(s, strlen(s), w, wl, 3), 3);
	assert_int_equal(wl[0], 2);
	assert_memory_equal(w[2], "abc", 3);
	assert_int_equal(reply_words(s, strlen(s), w, wl, 2), -1); /* more follow */
	assert_int_equal(reply_words(s, 0, w, wl, 3), 0);
	assert_int_equal(reply_words("a ", 2, w, wl, 3), 1);
}

static void numbers_below_two_to_the_63(void **state)
{
	uint64_t v = 7;
	(void)state;

	assert_true(reply_u63("12 tail", 2, &v));
	assert_int_equal(v, 12);
	assert_true(reply_u63("9223372036854775807", 19, &v));
	assert_int_equal(v, INT64_MAX);
	assert_false(reply_u63("9223372036854775808", 19, &v));
	assert_false(reply_u63("", 0, &v));
	assert_false(reply_u63("-1", 2, &v));
	assert_false(reply_u63("1 ", 2, &v));
	assert_false(reply_u63("1\0002", 3, &v)); /* a NUL inside is no digit */
	assert_false(reply_u63("1234567890123456789012345", 25, &v));
}

static void digests_are_64_lowercase_hex(void **state)
{
	char upper[] = SHA_HELLO;
	(void)state;

	assert_true(reply_sha(SHA_HELLO " more", 64));
	assert_false(reply_sha(SHA_HELLO, 63));
	upper[0] = 'A';
	assert_false(reply_sha(upper, 64));
	upper[0] = '\0';
	assert_false(reply_sha(upper, 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(words_split_at_spaces),
		cmocka_unit_test(numbers_below_two_to_the_63),
		cmocka_unit_test(digests_are_64_lowercase_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
