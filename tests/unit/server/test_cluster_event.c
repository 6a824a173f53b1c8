/* Unit tests for cluster_event.c: the events nodes publish through Redis. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cluster_event.h"
#include "wire.h"

#define NODE "n1:4000~0123456789abcdef"

static void span_eq(struct cluster_span s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static int decode(const char *s, struct cluster_event *ev)
{
	return cluster_event_decode(s, strlen(s), ev);
}

static void test_room_events(void **state)
{
	(void)state;
	struct cluster_event ev;

	assert_int_equal(decode(NODE " E MSG Bob hello there", &ev), 0);
	assert_int_equal(ev.type, CLUSTER_EV_ROOM);
	assert_int_equal(ev.verb, CLUSTER_MSG);
	span_eq(ev.node, "n1:4000~0123456789abcdef");
	span_eq(ev.nick, "Bob");
	span_eq(ev.text, "hello there");

	assert_int_equal(decode(NODE " E MSG Bob ", &ev), 0); /* an empty SAY */
	span_eq(ev.text, "");
	assert_int_equal(decode(NODE " E ACTION Zoë waves\nand again", &ev), 0);
	assert_int_equal(ev.verb, CLUSTER_ACTION);
	span_eq(ev.nick, "Zoë");
	span_eq(ev.text, "waves\nand again");

	assert_int_equal(decode(NODE " E JOIN Bob", &ev), 0);
	assert_int_equal(ev.verb, CLUSTER_JOIN);
	span_eq(ev.nick, "Bob");

	assert_int_equal(decode(NODE " E LEAVE Bob node lost", &ev), 0);
	assert_int_equal(ev.verb, CLUSTER_LEAVE);
	span_eq(ev.nick, "Bob");
	span_eq(ev.text, "node lost");

	assert_int_equal(decode(NODE " E NICK Bob Rob", &ev), 0);
	assert_int_equal(ev.verb, CLUSTER_NICK);
	span_eq(ev.nick, "Bob");
	span_eq(ev.to, "Rob");

	assert_int_equal(decode(NODE " E FILE Bob uploaded 12 \"a b\"", &ev), 0);
	assert_int_equal(ev.verb, CLUSTER_FILE);
	span_eq(ev.nick, "Bob");
	span_eq(ev.text, "FILE Bob uploaded 12 \"a b\"");
}

static void test_other_events(void **state)
{
	(void)state;
	struct cluster_event ev;

	assert_int_equal(decode(NODE " P Ann Bob psst, over here", &ev), 0);
	assert_int_equal(ev.type, CLUSTER_EV_PRIVATE);
	span_eq(ev.to, "Ann");
	span_eq(ev.nick, "Bob");
	span_eq(ev.text, "psst, over here");

	assert_int_equal(decode(NODE " H n1:4000", &ev), 0);
	assert_int_equal(ev.type, CLUSTER_EV_HEARTBEAT);
	span_eq(ev.text, "n1:4000");

	assert_int_equal(decode(NODE " S", &ev), 0);
	assert_int_equal(ev.type, CLUSTER_EV_SYNC);

	assert_int_equal(
		decode(NODE " M 00112233445566ff 42 1764600000123 7 MSG Bob hi there", &ev), 0);
	assert_int_equal(ev.type, CLUSTER_EV_POST);
	assert_int_equal(ev.verb, CLUSTER_MSG);
	assert_int_equal(ev.offset, 42);
	assert_int_equal(ev.when_ms, 1764600000123ull);
	assert_int_equal(ev.author, 7);
	span_eq(ev.to, "00112233445566ff");
	span_eq(ev.nick, "Bob");
	span_eq(ev.text, "hi there");
	assert_int_equal(decode(NODE " M 00112233445566ff 1 0 0 ACTION Bob ", &ev), 0);
	assert_int_equal(ev.verb, CLUSTER_ACTION);
	span_eq(ev.text, "");
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		" ",
		NODE,
		NODE " ",
		NODE " E",
		NODE " E ",
		NODE " X JOIN Bob",
		NODE " EE JOIN Bob",
		"n1 E JOIN Bob",                   /* no run id */
		"n1~0123456789ABCDEF E JOIN Bob",  /* hex is lower case */
		"n 1~0123456789abcdef E JOIN Bob", /* a space in the name */
		"~0123456789abcdef E JOIN Bob",    /* no name */
		NODE " E JOIN",
		NODE " E JOIN ",
		NODE " E JOIN Bob Rob",
		NODE " E JOIN B\xffob",
		NODE " E MSG Bob",
		NODE " E MSG  hi",
		NODE " E LEAVE Bob",
		NODE " E LEAVE Bob ",
		NODE " E LEAVE Bob bad\nreason",
		NODE " E NICK Bob",
		NODE " E NICK Bob ",
		NODE " E NICK Bob R ob",
		NODE " E FILE Bob",
		NODE " E FILE Bob uploaded\r\nMSG x",
		NODE " E PRESENCE 3 +1 -0",
		NODE " E msg Bob hi",
		NODE " P Ann",
		NODE " P Ann Bob",
		NODE " H",
		NODE " H bad name",
		NODE " S extra",
		NODE " M 1 1 1 MSG Bob hi",                  /* no epoch */
		NODE " M 00112233445566FF 1 1 1 MSG Bob hi", /* epochs are lower case */
		NODE " M 0011223344556 1 1 1 MSG Bob hi",
		NODE " M 00112233445566ff 0 1 1 MSG Bob hi",  /* offsets start at 1 */
		NODE " M 00112233445566ff 01 1 1 MSG Bob hi", /* no leading zero */
		NODE " M 00112233445566ff x 1 1 MSG Bob hi",
		NODE " M 00112233445566ff 1 1 MSG Bob hi", /* a number missing */
		NODE " M 00112233445566ff 1 1 1 JOIN Bob",
		NODE " M 00112233445566ff 1 1 1 MSG Bob",
		NODE " M 00112233445566ff 1 1 1 MSG",
		NODE " M 00112233445566ff 1234567890123456789 1 1 MSG Bob hi", /* past 2^63 */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct cluster_event ev;
		if (decode(bad[i], &ev) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* A NUL inside a name is refused too (the decoder takes lengths). */
	struct cluster_event ev;
	static const char nul[] = NODE " E JOIN B\0b";
	assert_int_equal(cluster_event_decode(nul, sizeof nul - 1, &ev), -1);
}

static void test_text_limit(void **state)
{
	(void)state;
	static char buf[WIRE_SAY_MAX + 64];
	int n = snprintf(buf, sizeof buf, "%s", NODE " E MSG Bob ");
	memset(buf + n, 'x', WIRE_SAY_MAX);
	struct cluster_event ev;
	assert_int_equal(cluster_event_decode(buf, (size_t)n + WIRE_SAY_MAX, &ev), 0);
	buf[n + WIRE_SAY_MAX] = 'x';
	assert_int_equal(cluster_event_decode(buf, (size_t)n + WIRE_SAY_MAX + 1, &ev), -1);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(cluster_name_valid("node-1.example:4000", 19));
	assert_false(cluster_name_valid("", 0));
	assert_false(cluster_name_valid("a b", 3));
	char longname[CLUSTER_NAME_MAX + 1];
	memset(longname, 'a', sizeof longname);
	assert_true(cluster_name_valid(longname, CLUSTER_NAME_MAX));
	assert_false(cluster_name_valid(longname, CLUSTER_NAME_MAX + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_room_events), cmocka_unit_test(test_other_events),
		cmocka_unit_test(test_refused),     cmocka_unit_test(test_text_limit),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
