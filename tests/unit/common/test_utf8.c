/* Unit tests for utf8.c: code points of text, and prefixes by code points. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "utf8.h"

static void test_columns(void **state)
{
	(void)state;
	assert_int_equal(utf8_columns(""), 0);
	assert_int_equal(utf8_columns("abc"), 3);
	assert_int_equal(utf8_columns("zoë: "), 5);
	assert_int_equal(utf8_columns("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* two CJK letters */
	assert_int_equal(utf8_columns("\xf0\x9f\x98\x80!"), 2);        /* an emoji and '!' */
	assert_int_equal(utf8_columns("\x80\x80"), 0); /* stray continuation bytes */
}

static void test_prefix(void **state)
{
	(void)state;
	assert_int_equal(utf8_prefix("abc", 0), 0);
	assert_int_equal(utf8_prefix("abc", 2), 2);
	assert_int_equal(utf8_prefix("abc", 9), 3);
	assert_int_equal(utf8_prefix("zoë!", 3), 4); /* ë is two bytes, kept whole */
	assert_int_equal(utf8_prefix("zoë!", 2), 2);
	assert_int_equal(utf8_prefix("\xf0\x9f\x98\x80!", 1), 4);
	assert_int_equal(utf8_prefix("", 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
