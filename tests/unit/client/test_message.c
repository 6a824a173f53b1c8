/* Unit tests for message.c: parsing every server message (the new events,
 * "@<offset>" tags, HISTORY's head, the OFFSETS/HISTORY reply), rendering
 * them as escaped lines with and without a time stamp, sizes and times for
 * people, and composing a message from typed lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "message.h"

static void assert_span(const char *p, size_t len, const char *want)
{
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

/* ---- parsing ---- */

#define PARSE(lit, m) client_parse((lit), sizeof(lit) - 1, (m))

static void test_parse_replies(void **state)
{
	struct client_msg m;
	(void)state;

	PARSE("OK 2 Guest1 Guest2", &m);
	assert_int_equal(m.kind, CLIENT_OK);
	assert_int_equal(m.role, CLIENT_REPLY);
	assert_span(m.arg, m.arg_len, "2 Guest1 Guest2");
	PARSE("OK", &m);
	assert_int_equal(m.kind, CLIENT_OK);
	assert_int_equal(m.arg_len, 0);
	PARSE("ERR unknown command: FOO", &m);
	assert_int_equal(m.kind, CLIENT_ERR);
	assert_span(m.arg, m.arg_len, "unknown command: FOO");
	PARSE("OKAY then", &m); /* the word must match exactly */
	assert_int_equal(m.kind, CLIENT_UNKNOWN);
	assert_int_equal(m.role, CLIENT_EVENT);
}

static void test_parse_events(void **state)
{
	struct client_msg m;
	(void)state;

	PARSE("MSG bob hello\nworld ", &m);
	assert_int_equal(m.kind, CLIENT_MSG);
	assert_int_equal(m.role, CLIENT_EVENT);
	assert_span(m.nick, m.nick_len, "bob");
	assert_span(m.arg, m.arg_len, "hello\nworld ");
	PARSE("MSG bob", &m);
	assert_span(m.nick, m.nick_len, "bob");
	assert_int_equal(m.arg_len, 0);
	PARSE("JOIN Guest3", &m);
	assert_int_equal(m.kind, CLIENT_JOIN);
	assert_span(m.nick, m.nick_len, "Guest3");
	PARSE("LEAVE Guest3 connection reset", &m);
	assert_int_equal(m.kind, CLIENT_LEAVE);
	assert_span(m.arg, m.arg_len, "connection reset");
	PARSE("NICK Guest3 Bob", &m);
	assert_int_equal(m.kind, CLIENT_NICK);
	assert_span(m.nick, m.nick_len, "Guest3");
	assert_span(m.arg, m.arg_len, "Bob");
	PARSE("", &m);
	assert_int_equal(m.kind, CLIENT_UNKNOWN);
}

/* ---- display ---- */

static void assert_render_event(const char *payload, const char *want)
{
	struct client_msg m;
	client_parse(payload, strlen(payload), &m);
	char *got = client_render_event(&m);
	assert_string_equal(got, want);
	free(got);
}

static void test_render_events(void **state)
{
	(void)state;
	assert_render_event("MSG bob hi there", "bob: hi there");
	assert_render_event("MSG bob one\ntwo\nthree", "bob: one\n     two\n     three");
	assert_render_event("MSG bob \x1b[31mred", "bob: \\x1b[31mred");
	assert_render_event("MSG bob a\\b\r", "bob: a\\\\b\\r");
	assert_render_event("JOIN Guest3", "* Guest3 joined");
	assert_render_event("LEAVE Guest3 quit", "* Guest3 left (quit)");
	assert_render_event("NICK Guest3 Bob", "* Guest3 is now Bob");
	assert_render_event("NICK Guest3 B\x07ob", "* Guest3 is now B\\x07ob");
	assert_render_event("WHAT\x1b", "WHAT\\x1b");
}

static void test_render_lines(void **state)
{
	(void)state;
	char *s = client_render_lines("error: ", "x\ny", 3);
	assert_string_equal(s, "error: x\n       y");
	free(s);
	s = client_render_lines("", "", 0);
	assert_string_equal(s, "");
	free(s);
	s = client_render_lines("zoë: ", "a\nb", 3); /* columns, not bytes */
	assert_string_equal(s, "zoë: a\n     b");
	free(s);
}

/* ---- composing ---- */

static char *add_lines(struct client_draft *d, const char *const *lines, const bool *more, size_t n,
                       size_t *len)
{
	for (size_t i = 0; i < n; i++) {
		bool done = client_draft_add(d, lines[i], strlen(lines[i]), more ? more[i] : false);
		if (i + 1 < n)
			assert_false(done);
		else if (!done)
			return NULL;
	}
	return client_draft_take(d, len);
}

static void test_draft(void **state)
{
	struct client_draft d;
	size_t len;
	char *t;
	(void)state;

	client_draft_init(&d);
	t = add_lines(&d, (const char *[]){ "hello" }, NULL, 1, &len);
	assert_string_equal(t, "hello");
	free(t);
	t = add_lines(&d, (const char *[]){ "one \\", "two\\", "three" }, NULL, 3, &len);
	assert_string_equal(t, "one \ntwo\nthree");
	assert_int_equal(len, 14);
	free(t);
	/* A burst: lines that came with more input are joined as they are. */
	t = add_lines(&d, (const char *[]){ "a", "b", "c" }, (const bool[]){ true, true, false }, 3,
	              &len);
	assert_string_equal(t, "a\nb\nc");
	free(t);
	t = add_lines(&d, (const char *[]){ "pasted\nblock\n" }, NULL, 1, &len);
	assert_string_equal(t, "pasted\nblock"); /* a paste's final newline dropped */
	free(t);
	t = add_lines(&d, (const char *[]){ "a\\b" }, NULL, 1, &len);
	assert_string_equal(t, "a\\b"); /* only a final backslash counts */
	free(t);
	t = add_lines(&d, (const char *[]){ "" }, NULL, 1, &len);
	assert_int_equal(len, 0);
	free(t);
	assert_false(client_draft_add(&d, "left open\\", 10, false));
	assert_true(d.open);
	client_draft_free(&d); /* discarding a half message */
	assert_false(d.open);
}

/* ---- the new events ---- */

static void test_parse_new_events(void **state)
{
	struct client_msg m;
	(void)state;

	PARSE("ACTION bob waves hello", &m);
	assert_int_equal(m.kind, CLIENT_ACTION);
	assert_int_equal(m.role, CLIENT_EVENT);
	assert_span(m.nick, m.nick_len, "bob");
	assert_span(m.arg, m.arg_len, "waves hello");
	assert_int_equal(m.offset, 0);
	PARSE("PRIVATE amy psst\nmore", &m);
	assert_int_equal(m.kind, CLIENT_PRIVATE);
	assert_span(m.nick, m.nick_len, "amy");
	assert_span(m.arg, m.arg_len, "psst\nmore");
	PARSE("PRESENCE 5012 +380 -7", &m);
	assert_int_equal(m.kind, CLIENT_PRESENCE);
	assert_null(m.nick);
	assert_span(m.arg, m.arg_len, "5012 +380 -7");
	PARSE("FILE bob uploaded 12 \"my notes.txt\"", &m);
	assert_int_equal(m.kind, CLIENT_FILE);
	assert_span(m.nick, m.nick_len, "bob");
	assert_span(m.arg, m.arg_len, "uploaded 12 \"my notes.txt\"");
}

static void test_parse_tagged(void **state)
{
	struct client_msg m;
	(void)state;

	PARSE("@17 MSG bob hi there", &m);
	assert_int_equal(m.kind, CLIENT_MSG);
	assert_int_equal(m.offset, 17);
	assert_span(m.nick, m.nick_len, "bob");
	assert_span(m.arg, m.arg_len, "hi there");
	assert_int_equal(m.len, strlen("@17 MSG bob hi there")); /* text: the whole payload */
	PARSE("@18 ACTION bob waves", &m);
	assert_int_equal(m.kind, CLIENT_ACTION);
	assert_int_equal(m.offset, 18);
	PARSE("@19 JOIN bob", &m); /* only room messages carry a tag */
	assert_int_equal(m.kind, CLIENT_UNKNOWN);
	assert_int_equal(m.offset, 0);
	PARSE("@x MSG bob hi", &m);
	assert_int_equal(m.kind, CLIENT_UNKNOWN);
	PARSE("@", &m);
	assert_int_equal(m.kind, CLIENT_UNKNOWN);
}

static void test_parse_history(void **state)
{
	struct client_msg m;
	time_t t;
	(void)state;

	PARSE("HISTORY 3 2026-12-01T12:44:37.824+00:00 MSG Guest1 two\nlines", &m);
	assert_int_equal(m.kind, CLIENT_HISTORY);
	assert_int_equal(m.role, CLIENT_EVENT);
	assert_int_equal(m.of, CLIENT_MSG);
	assert_int_equal(m.offset, 3);
	assert_span(m.time, m.time_len, "2026-12-01T12:44:37.824+00:00");
	assert_span(m.nick, m.nick_len, "Guest1");
	assert_span(m.arg, m.arg_len, "two\nlines");
	assert_true(client_history_time(&m, &t));
	assert_int_equal(t, 1796129077); /* 2026-12-01 12:44:37 UTC */
	PARSE("HISTORY 4 2026-12-01T15:44:37.000+03:00 ACTION bob waves", &m);
	assert_int_equal(m.of, CLIENT_ACTION);
	assert_true(client_history_time(&m, &t));
	assert_int_equal(t, 1796129077);
	PARSE("HISTORY 5 2026-12-01T12:44:37Z MSG bob x", &m);
	assert_true(client_history_time(&m, &t));
	assert_int_equal(t, 1796129077);
	PARSE("HISTORY 6 yesterday MSG bob x", &m);
	assert_int_equal(m.of, CLIENT_MSG);
	assert_false(client_history_time(&m, &t));
	PARSE("HISTORY x 2026-12-01T12:44:37Z MSG bob x", &m);
	assert_int_equal(m.of, CLIENT_UNKNOWN);
	assert_int_equal(m.offset, 0);
	PARSE("HISTORY 7 2026-12-01T12:44:37Z JOIN bob", &m);
	assert_int_equal(m.of, CLIENT_UNKNOWN);
	PARSE("HISTORY", &m);
	assert_int_equal(m.kind, CLIENT_HISTORY);
	assert_int_equal(m.of, CLIENT_UNKNOWN);
}

static void test_offsets_reply(void **state)
{
	struct client_msg m;
	char epoch[CLIENT_EPOCH_MAX + 1];
	uint64_t last;
	int complete;
	(void)state;

	PARSE("OK a45aa00a3e706090 3", &m);
	assert_true(client_offsets_reply(&m, epoch, &last, &complete));
	assert_string_equal(epoch, "a45aa00a3e706090");
	assert_int_equal(last, 3);
	assert_int_equal(complete, -1);
	PARSE("OK a45aa00a3e706090 0 complete", &m);
	assert_true(client_offsets_reply(&m, epoch, &last, &complete));
	assert_int_equal(complete, 1);
	PARSE("OK a45aa00a3e706090 12 incomplete", &m);
	assert_true(client_offsets_reply(&m, epoch, &last, &complete));
	assert_int_equal(last, 12);
	assert_int_equal(complete, 0);
	PARSE("OK a45aa00a3e706090 12 maybe", &m);
	assert_false(client_offsets_reply(&m, epoch, &last, &complete));
	PARSE("OK a45aa00a3e706090", &m);
	assert_false(client_offsets_reply(&m, epoch, &last, &complete));
	PARSE("OK a4\x1b 3", &m);
	assert_false(client_offsets_reply(&m, epoch, &last, &complete));
	PARSE("ERR unknown command: OFFSETS", &m);
	assert_false(client_offsets_reply(&m, epoch, &last, &complete));
}

static void test_render_new_events(void **state)
{
	(void)state;
	assert_render_event("ACTION bob waves", "* bob waves");
	assert_render_event("ACTION bob waves\nagain", "* bob waves\n      again");
	assert_render_event("PRIVATE amy psst", "[private] amy: psst");
	assert_render_event("PRIVATE amy \x1b[2Jx", "[private] amy: \\x1b[2Jx");
	assert_render_event("@17 MSG bob hi", "bob: hi");
	assert_render_event("@18 ACTION bob waves", "* bob waves");
	assert_render_event("HISTORY 3 2026-12-01T12:44:37Z MSG bob old news", "bob: old news");
	assert_render_event("HISTORY 4 2026-12-01T12:44:37Z ACTION bob waved", "* bob waved");
	assert_render_event("HISTORY x\x07", "HISTORY x\\x07"); /* malformed: raw, escaped */
	assert_render_event("PRESENCE 5012 +380 -7", "* 380 joined, 7 left (5012 here)");
	assert_render_event("PRESENCE 5012 380 7", "PRESENCE 5012 380 7");
	assert_render_event("FILE alice uploaded 10485760 report.pdf",
	                    "* alice uploaded report.pdf (10 MiB)");
	assert_render_event("FILE alice uploaded 12 \"my notes.txt\"",
	                    "* alice uploaded my notes.txt (12 bytes)");
	assert_render_event("FILE alice uploaded 1 \"a\\\"b\\\\c\"",
	                    "* alice uploaded a\"b\\\\c (1 byte)");
	assert_render_event("FILE alice deleted x", "* alice deleted x");
	assert_render_event("FILE alice renamed a \"b c\"", "* alice renamed a to b c");
	assert_render_event("FILE alice uploaded 1 \x1b[2J", "* alice uploaded \\x1b[2J (1 byte)");
	assert_render_event("FILE alice exploded x", "FILE alice exploded x");
	assert_render_event("FILE alice deleted", "FILE alice deleted");
	assert_render_event("FILE alice renamed a", "FILE alice renamed a");
	assert_render_event("FILE alice uploaded many x", "FILE alice uploaded many x");
}

static void assert_stamped(const char *payload, const char *stamp, const char *want)
{
	struct client_msg m;
	client_parse(payload, strlen(payload), &m);
	char *got = client_render_stamped(&m, stamp);
	assert_string_equal(got, want);
	free(got);
}

static void test_render_stamped(void **state)
{
	(void)state;
	assert_stamped("MSG bob one\ntwo", "12:45 ", "12:45 bob: one\n           two");
	assert_stamped("JOIN bob", "12:45 ", "12:45 * bob joined");
	assert_stamped("PRESENCE 3 +1 -0", "09:00 ", "09:00 * 1 joined, 0 left (3 here)");
	assert_stamped("FILE bob deleted x", "09:00 ", "09:00 * bob deleted x");
	assert_stamped("WHAT", "09:00 ", "09:00 WHAT");
}

static void test_human_size(void **state)
{
	char b[32];
	(void)state;
	assert_string_equal(client_human_size(b, sizeof b, 0), "0 bytes");
	assert_string_equal(client_human_size(b, sizeof b, 1), "1 byte");
	assert_string_equal(client_human_size(b, sizeof b, 1023), "1023 bytes");
	assert_string_equal(client_human_size(b, sizeof b, 1536), "1.5 KiB");
	assert_string_equal(client_human_size(b, sizeof b, 10485760), "10 MiB");
	assert_string_equal(client_human_size(b, sizeof b, 3ULL << 30), "3 GiB");
}

static void test_stamp(void **state)
{
	char s[CLIENT_STAMP_LEN];
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	client_stamp(s, 1796129077, 1796129077 + 60);
	assert_string_equal(s, "12:44 ");
	client_stamp(s, 1796129077, 1796129077 + 86400);
	assert_string_equal(s, "2026-12-01 12:44 ");
	setenv("TZ", "Europe/Helsinki", 1); /* UTC+2 in December */
	tzset();
	client_stamp(s, 1796129077, 1796129077);
	assert_string_equal(s, "14:44 ");
}

int main(void)
{
	/* One test a line, as in the other test programs. */
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_replies),
		cmocka_unit_test(test_parse_events),
		cmocka_unit_test(test_parse_new_events),
		cmocka_unit_test(test_parse_tagged),
		cmocka_unit_test(test_parse_history),
		cmocka_unit_test(test_offsets_reply),
		cmocka_unit_test(test_render_events),
		cmocka_unit_test(test_render_new_events),
		cmocka_unit_test(test_render_stamped),
		cmocka_unit_test(test_render_lines),
		cmocka_unit_test(test_human_size),
		cmocka_unit_test(test_stamp),
		cmocka_unit_test(test_draft),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
