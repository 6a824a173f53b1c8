/* Unit tests for timefmt.c: RFC 3339 local time with milliseconds and offset.
 * Zone names need tzdata; each test falls back to an equivalent POSIX TZ
 * string (which needs no files) when /usr/share/zoneinfo lacks the zone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

/* 2025-11-26T12:42:05Z */
#define T_NOV 1764160925
/* 2025-01-04T14:13:20Z, winter in the northern hemisphere */
#define T_JAN 1736000000

static void set_tz(const char *zone, const char *posix)
{
	char path[256];

	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
	setenv("TZ", access(path, R_OK) == 0 ? zone : posix, 1);
	tzset();
}

static void set_tz_raw(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static void check(time_t sec, long nsec, const char *want)
{
	char out[TIMEFMT_RFC3339_LEN];
	struct timespec ts = { .tv_sec = sec, .tv_nsec = nsec };

	memset(out, 'Z', sizeof out);
	size_t n = timefmt_rfc3339(out, &ts);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_moscow(void **state)
{
	(void)state;
	set_tz("Europe/Moscow", "MSK-3");
	check(T_NOV, 123000000, "2025-11-26T15:42:05.123+03:00");
	check(T_NOV, 0, "2025-11-26T15:42:05.000+03:00");
	check(T_JAN, 7000000, "2025-01-04T17:13:20.007+03:00");
}

static void test_utc(void **state)
{
	(void)state;
	set_tz("UTC", "UTC0");
	check(T_NOV, 123000000, "2025-11-26T12:42:05.123+00:00");
	check(0, 0, "1970-01-01T00:00:00.000+00:00");
	/* Before the epoch: -1.5 s is tv_sec -2 plus half a second. */
	check(-2, 500000000, "1969-12-31T23:59:58.500+00:00");
	/* Leap day. */
	check(1709208000, 42000000, "2024-02-29T12:00:00.042+00:00");
}

static void test_negative_offset(void **state)
{
	(void)state;
	set_tz("America/New_York", "EST5EDT,M3.2.0,M11.1.0");
	check(T_JAN, 250000000, "2025-01-04T09:13:20.250-05:00");
	check(T_NOV, 123000000, "2025-11-26T07:42:05.123-05:00");
	/* Summer time: 2025-07-01T12:00:00Z. */
	check(1751371200, 0, "2025-07-01T08:00:00.000-04:00");
}

static void test_half_hour_offset(void **state)
{
	(void)state;
	set_tz("Asia/Kolkata", "IST-5:30");
	check(T_NOV, 123000000, "2025-11-26T18:12:05.123+05:30");
	/* The local date rolls over before UTC's does. */
	check(1764181800, 0, "2025-11-27T00:00:00.000+05:30");
}

static void test_negative_half_hour_offset(void **state)
{
	(void)state;
	/* Newfoundland standard time, -03:30: the minutes keep their sign out. */
	set_tz_raw("NST3:30");
	check(T_JAN, 0, "2025-01-04T10:43:20.000-03:30");
	/* An offset with a quarter hour, +05:45 (Nepal). */
	set_tz_raw("NPT-5:45");
	check(T_JAN, 0, "2025-01-04T19:58:20.000+05:45");
}

static void test_posix_strings(void **state)
{
	(void)state;
	set_tz_raw("MSK-3");
	check(T_NOV, 123000000, "2025-11-26T15:42:05.123+03:00");
	set_tz_raw("IST-5:30");
	check(T_NOV, 123000000, "2025-11-26T18:12:05.123+05:30");
	set_tz_raw("EST5");
	check(T_JAN, 250000000, "2025-01-04T09:13:20.250-05:00");
}

static void test_millis_truncated(void **state)
{
	(void)state;
	set_tz("UTC", "UTC0");
	check(T_NOV, 999999999, "2025-11-26T12:42:05.999+00:00");
	check(T_NOV, 999000000, "2025-11-26T12:42:05.999+00:00");
	check(T_NOV, 998999999, "2025-11-26T12:42:05.998+00:00");
	check(T_NOV, 1000000, "2025-11-26T12:42:05.001+00:00");
	check(T_NOV, 999999, "2025-11-26T12:42:05.000+00:00");
	check(T_NOV, 500000, "2025-11-26T12:42:05.000+00:00");
	check(T_NOV, 1, "2025-11-26T12:42:05.000+00:00");
}

static void test_now(void **state)
{
	char out[TIMEFMT_RFC3339_LEN];
	int y, mo, d, h, mi, s, ms, oh, om;
	char sign;

	(void)state;
	set_tz("Europe/Moscow", "MSK-3");
	size_t n = timefmt_now(out);
	assert_int_equal(n, strlen(out));
	assert_int_equal(n, 29);
	assert_int_equal(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c%2d:%2d", &y, &mo, &d, &h, &mi,
	                        &s, &ms, &sign, &oh, &om),
	                 10);
	assert_true(y >= 2024);
	assert_int_equal(sign, '+');
	assert_int_equal(oh, 3);
	assert_int_equal(om, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_moscow),
		cmocka_unit_test(test_utc),
		cmocka_unit_test(test_negative_offset),
		cmocka_unit_test(test_half_hour_offset),
		cmocka_unit_test(test_negative_half_hour_offset),
		cmocka_unit_test(test_posix_strings),
		cmocka_unit_test(test_millis_truncated),
		cmocka_unit_test(test_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
