/* Unit tests for protect.c: which addresses are loopback (127.0.0.0/8, ::1,
 * ::ffff:127.x.y.z and nothing else), and which listen addresses protected
 * mode lets through without access control. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "protect.h"

static bool loopback(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		fail_msg("not an address: %s", text);
	return protect_is_loopback((const struct sockaddr *)&ss);
}

static void test_loopback_addresses(void **state)
{
	(void)state;
	assert_true(loopback("127.0.0.1"));
	assert_true(loopback("127.255.3.4"));
	assert_true(loopback("::1"));
	assert_true(loopback("::ffff:127.0.0.1"));
	assert_false(loopback("0.0.0.0"));
	assert_false(loopback("::"));
	assert_false(loopback("10.0.0.1"));
	assert_false(loopback("128.0.0.1"));
	assert_false(loopback("::ffff:10.0.0.1"));
	assert_false(loopback("::2"));
	assert_false(loopback("fe80::1"));
	struct sockaddr_storage unix_ss = { .ss_family = AF_UNIX };
	assert_false(protect_is_loopback((const struct sockaddr *)&unix_ss));
}

static void test_exposed_listeners(void **state)
{
	(void)state;
	const char *local[] = { "127.0.0.1:4000", "[::1]:4000", "localhost:0", "127.1.2.3" };
	assert_null(protect_exposed(local, 4, 4000));
	const char *wild[] = { "127.0.0.1:4000", "0.0.0.0:4000" };
	assert_string_equal(protect_exposed(wild, 2, 4000), "0.0.0.0:4000");
	const char *wild6[] = { "[::]:4000" };
	assert_string_equal(protect_exposed(wild6, 1, 4000), "[::]:4000");
	const char *other[] = { "10.1.2.3:4000" };
	assert_string_equal(protect_exposed(other, 1, 4000), "10.1.2.3:4000");
	assert_null(protect_exposed(NULL, 0, 4000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_addresses),
		cmocka_unit_test(test_exposed_listeners),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
