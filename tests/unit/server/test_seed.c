/* Unit tests for seed.c's rendering: the room's real events (made by room.c
 * for fake members) as the sentences a seed member gets, file news, an event
 * it does not know, exact bytes in texts, and no history replay. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "room.h"
#include "seed.h"
#include "tpkt.h"

#define MAX_SEEN 8

/* A member that keeps the seed rendering of what it gets. */
struct fake {
	struct member m; /* first: deliver gets &fake->m */
	int n;
	char text[MAX_SEEN][512];
	size_t len[MAX_SEEN];
};

static void fake_deliver(struct member *m, struct room_msg *msg)
{
	struct fake *f = (struct fake *)m;
	struct blob *b = seed_encode(msg);
	if (!b)
		return;
	assert_true(f->n < MAX_SEEN);
	assert_true(b->len >= TPKT_HDR_LEN && b->len - TPKT_HDR_LEN < sizeof f->text[0]);
	assert_int_equal(b->data[0], 3);
	assert_int_equal(((size_t)b->data[2] << 8) | b->data[3], b->len);
	f->len[f->n] = b->len - TPKT_HDR_LEN;
	memcpy(f->text[f->n], b->data + TPKT_HDR_LEN, f->len[f->n]);
	f->text[f->n][f->len[f->n]] = '\0';
	f->n++;
	blob_unref(b);
}

static const struct member_ops fake_ops = { .deliver = fake_deliver };

struct fixture {
	struct room *room;
	struct fake a, b;
};

static int setup(void **state)
{
	static struct fixture fx;
	memset(&fx, 0, sizeof fx);
	log_set_level(LOG_WARN);
	fx.room = room_new();
	fx.a.m.ops = fx.b.m.ops = &fake_ops;
	room_join(fx.room, &fx.a.m); /* Guest1 */
	room_join(fx.room, &fx.b.m); /* Guest2 */
	fx.a.n = fx.b.n = 0;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	room_leave(fx->room, &fx->a.m, "quit");
	room_leave(fx->room, &fx->b.m, "quit");
	room_free(fx->room);
	return 0;
}

static void test_chat_events(void **state)
{
	struct fixture *fx = *state;
	room_say(fx->room, &fx->b.m, "hi\nthere", 8);
	room_action(fx->room, &fx->b.m, "waves", 5);
	assert_true(room_tell(fx->room, &fx->b.m, "guest1", 6, "psst", 4));
	assert_int_equal(room_rename(fx->room, &fx->b.m, "bob", 3), 0);
	assert_int_equal(fx->a.n, 4);
	assert_string_equal(fx->a.text[0], "Guest2: hi\nthere");
	assert_string_equal(fx->a.text[1], "* Guest2 waves");
	assert_string_equal(fx->a.text[2], "Guest2 (private): psst");
	assert_string_equal(fx->a.text[3], "Guest2 is now known as bob");
}

static void test_presence_events(void **state)
{
	struct fixture *fx = *state;
	struct fake c = { .m.ops = &fake_ops };
	room_join(fx->room, &c.m);
	room_leave(fx->room, &c.m, "too slow");
	assert_int_equal(fx->a.n, 2);
	assert_string_equal(fx->a.text[0], "Guest3 joined");
	assert_string_equal(fx->a.text[1], "Guest3 left (too slow)");
	/* A big room: a count once a second instead. */
	room_set_announce_max(fx->room, 1);
	room_join(fx->room, &c.m);
	room_presence_flush(fx->room);
	assert_string_equal(fx->a.text[2], "3 in the room (1 joined, 0 left)");
	room_leave(fx->room, &c.m, "quit");
}

static void test_text_is_exact(void **state)
{
	struct fixture *fx = *state;
	const char text[] = "\x1b[2J\0x\xff";
	room_say(fx->room, &fx->b.m, text, sizeof text - 1);
	assert_int_equal(fx->a.len[0], strlen("Guest2: ") + sizeof text - 1);
	assert_memory_equal(fx->a.text[0] + 8, text, sizeof text - 1);
}

static void test_file_news(void **state)
{
	struct fixture *fx = *state;
	const char *heads[] = {
		"FILE bob uploaded 10485760 \"q3 report.pdf\"",
		"FILE bob deleted notes.txt",
		"FILE bob renamed \"a b\" c",
	};
	for (size_t i = 0; i < 3; i++)
		room_broadcast(fx->room, NULL, heads[i], strlen(heads[i]), "", 0);
	assert_string_equal(fx->a.text[0], "bob uploaded \"q3 report.pdf\" (10485760 bytes)");
	assert_string_equal(fx->a.text[1], "bob deleted notes.txt");
	assert_string_equal(fx->a.text[2], "bob renamed \"a b\" to c");
}

static void test_unknown_event_as_is(void **state)
{
	(void)state;
	struct room_msg msg = { .head = "WEATHER fine ", .hlen = 13, .body = "today", .blen = 5 };
	struct blob *b = seed_encode(&msg);
	assert_non_null(b);
	assert_int_equal(b->len, TPKT_HDR_LEN + 18);
	assert_memory_equal(b->data + TPKT_HDR_LEN, "WEATHER fine today", 18);
	blob_unref(b);
}

static void test_no_history_replay(void **state)
{
	struct fixture *fx = *state;
	struct fake c = { .m.ops = &fake_ops };
	room_say(fx->room, &fx->b.m, "kept", 4);
	room_join(fx->room, &c.m); /* a newcomer's replay: not for seed members */
	assert_int_equal(c.n, 0);
	room_replay_last(fx->room, &fx->a.m, 10);
	assert_int_equal(fx->a.n, 2); /* "Guest2: kept", "Guest3 joined", no replay */
	room_leave(fx->room, &c.m, "quit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chat_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_is_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_news, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_event_as_is, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_history_replay, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
