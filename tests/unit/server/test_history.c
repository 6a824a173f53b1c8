/* Unit tests for history.c: offsets for every message, the count and byte
 * bounds, "since" with and without a gap, and the HISTORY event's bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "history.h"

static const struct timespec when = { .tv_sec = 1764590400, .tv_nsec = 123000000 };

static uint64_t add(struct history *h, const char *text)
{
	return history_add(h, "MSG", "alice", text, strlen(text), &when);
}

static void test_offsets_count_every_message(void **state)
{
	(void)state;
	struct history *h = history_new(3, 1 << 20);
	assert_int_equal(history_last(h), 0);
	for (int i = 1; i <= 5; i++) {
		char text[16];
		snprintf(text, sizeof text, "m%d", i);
		assert_int_equal(add(h, text), i);
	}
	/* Three kept, the oldest first. */
	assert_int_equal(history_count(h), 3);
	assert_int_equal(history_at(h, 0)->offset, 3);
	assert_string_equal(history_at(h, 0)->text, "m3");
	assert_int_equal(history_at(h, 2)->offset, 5);
	assert_string_equal(history_at(h, 2)->nick, "alice");
	history_free(h);
}

static void test_since(void **state)
{
	(void)state;
	struct history *h = history_new(3, 1 << 20);
	size_t first;
	for (int i = 0; i < 5; i++)
		add(h, "x"); /* offsets 1..5, 3..5 kept */
	assert_true(history_since(h, 4, &first));
	assert_int_equal(first, 2); /* offset 5 */
	assert_true(history_since(h, 5, &first));
	assert_int_equal(first, 3); /* nothing after */
	assert_true(history_since(h, 2, &first));
	assert_int_equal(first, 0);
	assert_false(history_since(h, 1, &first)); /* offset 2 is gone */
	assert_int_equal(first, 0);
	assert_false(history_since(h, 9, &first)); /* never given */
	history_free(h);
}

static void test_byte_bound_and_oversized(void **state)
{
	(void)state;
	struct history *h = history_new(100, 2048);
	size_t first;
	char big[1900];
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	add(h, "small");
	add(h, big);
	/* Both do not fit in 2 KiB: the older one went. */
	assert_int_equal(history_count(h), 1);
	assert_int_equal(history_at(h, 0)->offset, 2);
	/* A message bigger than the whole bound is numbered, not kept, and what
	 * came before can no longer look complete. */
	char huge[3000];
	memset(huge, 'h', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	assert_int_equal(add(h, huge), 3);
	assert_int_equal(history_count(h), 0);
	assert_false(history_since(h, 1, &first));
	assert_true(history_since(h, 3, &first));
	add(h, "after");
	assert_false(history_since(h, 2, &first)); /* offset 3 was never kept */
	assert_true(history_since(h, 3, &first));
	assert_int_equal(first, 0);
	history_free(h);
}

static void test_line_mode_cost_counts_every_line(void **state)
{
	(void)state;
	/* 200 short lines: a few hundred bytes of text, but each replayed line
	 * carries the ~60-byte head: over 10 KiB, so not kept in 8 KiB. */
	char text[400];
	for (int i = 0; i < 200; i++) {
		text[2 * i] = 'a';
		text[2 * i + 1] = '\n';
	}
	struct history *h = history_new(10, 8192);
	history_add(h, "MSG", "alice", text, sizeof text, &when);
	assert_int_equal(history_count(h), 0);
	history_free(h);
}

static void test_none_kept_still_numbers(void **state)
{
	(void)state;
	struct history *h = history_new(0, 0);
	size_t first;
	assert_int_equal(add(h, "a"), 1);
	assert_int_equal(add(h, "b"), 2);
	assert_int_equal(history_count(h), 0);
	assert_true(history_since(h, 2, &first));
	assert_false(history_since(h, 1, &first));
	history_free(h);
}

static void test_encoded_event(void **state)
{
	(void)state;
	struct history *h = history_new(4, 1 << 20);
	history_add(h, "ACTION", "bob", "waves\nand smiles", 16, &when);
	struct history_entry *e = history_at(h, 0);
	struct blob *line = history_encoded(e, FRAMING_LINE);
	assert_ptr_equal(history_encoded(e, FRAMING_LINE), line); /* made once */
	char text[256];
	snprintf(text, sizeof text, "%.*s", (int)line->len, (const char *)line->data);
	/* "HISTORY 1 <RFC 3339 local time> ACTION bob waves" on each line. */
	assert_int_equal(strncmp(text, "HISTORY 1 20", 12), 0);
	assert_non_null(strstr(text, " ACTION bob waves\nHISTORY 1 "));
	assert_non_null(strstr(text, " ACTION bob and smiles\n"));
	struct blob *tpkt = history_encoded(e, FRAMING_TPKT);
	assert_int_equal(tpkt->data[0], 3);
	assert_memory_equal(tpkt->data + tpkt->len - 16, "waves\nand smiles", 16);
	history_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets_count_every_message),
		cmocka_unit_test(test_since),
		cmocka_unit_test(test_byte_bound_and_oversized),
		cmocka_unit_test(test_line_mode_cost_counts_every_line),
		cmocka_unit_test(test_none_kept_still_numbers),
		cmocka_unit_test(test_encoded_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
