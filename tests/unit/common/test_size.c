/* Unit tests for size.c: plain numbers, K/M/G/T in either case, fractions
 * that make whole bytes, and everything else refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "size.h"

static uint64_t parsed(const char *s)
{
	uint64_t v = 0;
	assert_int_equal(size_parse(s, &v), 0);
	return v;
}

static void test_accepted(void **state)
{
	(void)state;
	assert_int_equal(parsed("0"), 0);
	assert_int_equal(parsed("512"), 512);
	assert_int_equal(parsed("64K"), 65536);
	assert_int_equal(parsed("64k"), 65536);
	assert_int_equal(parsed("1.5M"), 1572864);
	assert_int_equal(parsed("2G"), UINT64_C(2) << 30);
	assert_int_equal(parsed("1t"), UINT64_C(1) << 40);
	assert_int_equal(parsed("0.5K"), 512);
	assert_int_equal(parsed("9223372036854775807"), INT64_MAX);
	assert_int_equal(parsed("8388607T"), UINT64_C(8388607) << 40);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",         "K",
		"-1",       "+1",
		" 1",       "1 ",
		"1KB",      "1KK",
		"1x",       "0.3",
		"1.",       ".",
		"1e3",      "9223372036854775808",
		"8388608T", "99999999999999999999",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t v = 42;
		if (size_parse(bad[i], &v) == 0)
			fail_msg("accepted '%s' as %llu", bad[i], (unsigned long long)v);
		assert_int_equal(v, 42);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
