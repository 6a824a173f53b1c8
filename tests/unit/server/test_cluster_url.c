/* Unit tests for cluster_url.c: the --cluster address. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cluster_url.h"

static void test_full(void **state)
{
	(void)state;
	struct cluster_url u;
	char err[128];
	assert_int_equal(cluster_url_parse("redis://127.0.0.1:7000/chat", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 7000);
	assert_string_equal(u.prefix, "chat");
}

static void test_defaults(void **state)
{
	(void)state;
	struct cluster_url u;
	char err[128];
	assert_int_equal(cluster_url_parse("redis://redis.example", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "redis.example");
	assert_int_equal(u.port, 6379);
	assert_string_equal(u.prefix, CLUSTER_PREFIX_DEFAULT);
	assert_int_equal(cluster_url_parse("redis://h:1", &u, err, sizeof err), 0);
	assert_int_equal(u.port, 1);
	assert_string_equal(u.prefix, CLUSTER_PREFIX_DEFAULT);
	assert_int_equal(cluster_url_parse("redis://h/p-1_x.y:z", &u, err, sizeof err), 0);
	assert_int_equal(u.port, 6379);
	assert_string_equal(u.prefix, "p-1_x.y:z");
}

static void test_ipv6(void **state)
{
	(void)state;
	struct cluster_url u;
	char err[128];
	assert_int_equal(cluster_url_parse("redis://[::1]:6380/b", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6380);
	assert_string_equal(u.prefix, "b");
	assert_int_equal(cluster_url_parse("redis://[fe80::1]", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "fe80::1");
	assert_int_equal(u.port, 6379);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"127.0.0.1:6379",
		"http://h:1",
		"redis://",
		"redis://:6379",
		"redis://h:",
		"redis://h:0",
		"redis://h:65536",
		"redis://h:123456",
		"redis://h:12a",
		"redis://h:-1",
		"redis://h/",
		"redis://h/a b",
		"redis://h/a/b",
		"redis://h/a*",
		"redis://[::1",
		"redis://[]:1",
		"redis://[::g]",
		"redis://[::1]x",
		"redis://h x",
		"redis://user@h",
		"redis://h/0123456789012345678901234567890123456789012345678901234567890123",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct cluster_url u;
		char err[128] = "";
		if (cluster_url_parse(bad[i], &u, err, sizeof err) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(err[0] != '\0');
	}
	/* The longest prefix that fits. */
	struct cluster_url u;
	char err[128];
	assert_int_equal(
		cluster_url_parse("redis://h/"
	                          "012345678901234567890123456789012345678901234567890123456789012",
	                          &u, err, sizeof err),
		0);
	assert_int_equal(strlen(u.prefix), 63);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
