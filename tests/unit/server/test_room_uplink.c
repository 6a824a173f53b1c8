/* Unit tests for the room's side of the cluster (room.h, "Cluster"): the
 * uplink hears once of every event about a local member and never of one
 * about a remote member; it may take a local message to number it (or keep it
 * local and unnumbered); numbered messages come back through room_post_at in
 * one offset space, without duplicates; a new epoch forgets the history. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "room.h"

#define MAX_SEEN 32

struct fake {
	struct member m; /* first: deliver gets &fake->m */
	int n;
	char text[MAX_SEEN][256];
	uint64_t offset[MAX_SEEN];
	struct member *about[MAX_SEEN];
};

static int post_answer = ROOM_POST_HERE;
static int posts;

static void fake_deliver(struct member *m, struct room_msg *msg)
{
	struct fake *f = (struct fake *)m;
	assert_true(f->n < MAX_SEEN);
	if (msg->history) /* a replayed one: its entry says what it is */
		snprintf(f->text[f->n], sizeof f->text[f->n], "HISTORY %llu %s %s %s",
		         (unsigned long long)msg->history->offset, msg->history->word,
		         msg->history->nick, msg->history->text);
	else
		snprintf(f->text[f->n], sizeof f->text[f->n], "%.*s%.*s", (int)msg->hlen, msg->head,
		         (int)msg->blen, msg->body);
	f->offset[f->n] = msg->offset;
	f->about[f->n] = msg->about;
	f->n++;
}

static int fake_post(struct member *uplink, struct member *from, const char *word, const char *text,
                     size_t len)
{
	(void)uplink;
	(void)from;
	(void)word;
	(void)text;
	(void)len;
	posts++;
	return post_answer;
}

static const struct member_ops member_ops = { .deliver = fake_deliver };
static const struct member_ops uplink_ops = { .deliver = fake_deliver, .post = fake_post };

static void fake_init(struct fake *f, bool remote)
{
	memset(f, 0, sizeof *f);
	f->m.ops = &member_ops;
	f->m.remote = remote;
}

static int setup(void **state)
{
	log_set_level(LOG_ERROR);
	*state = room_new();
	post_answer = ROOM_POST_HERE;
	posts = 0;
	return 0;
}

static int teardown(void **state)
{
	room_free(*state);
	return 0;
}

static void test_uplink_hears_local_events_once(void **state)
{
	struct room *room = *state;
	struct fake up, a, b;
	fake_init(&up, false);
	up.m.ops = &uplink_ops;
	fake_init(&a, false);
	fake_init(&b, false);
	room_set_uplink(room, &up.m);
	room_set_announce_max(room, 1); /* JOIN/LEAVE go quiet here, not for the uplink */

	room_join(room, &a.m);
	assert_int_equal(up.n, 1);
	assert_string_equal(up.text[0], "JOIN Guest1");
	assert_ptr_equal(up.about[0], &a.m);
	room_join(room, &b.m);
	assert_int_equal(up.n, 2);
	assert_string_equal(up.text[1], "JOIN Guest2");
	assert_int_equal(a.n, 0); /* above --announce-max: counted, not told */
	assert_int_equal(room_rename(room, &a.m, "ann", 3), NICK_OK);
	assert_string_equal(up.text[2], "NICK Guest1 ann");
	room_broadcast(room, NULL, "FILE ann deleted x", 18, "", 0);
	assert_string_equal(up.text[3], "FILE ann deleted x");
	room_presence_flush(room); /* each node counts its own */
	assert_int_equal(up.n, 4);
	room_leave(room, &b.m, "quit");
	assert_string_equal(up.text[4], "LEAVE Guest2 quit");
	assert_int_equal(up.n, 5);
	room_leave(room, &a.m, "quit");
	room_set_uplink(room, NULL);
}

static void test_remote_members_events_stay_here(void **state)
{
	struct room *room = *state;
	struct fake up, a, r;
	fake_init(&up, false);
	up.m.ops = &uplink_ops;
	fake_init(&a, false);
	fake_init(&r, true);
	room_set_uplink(room, &up.m);
	room_join(room, &a.m);
	up.n = 0;

	assert_int_equal(room_rename(room, &r.m, "rob", 3), NICK_OK);
	room_enter(room, &r.m, false);
	assert_string_equal(a.text[a.n - 1], "JOIN rob");
	assert_int_equal(room_rename(room, &r.m, "robert", 6), NICK_OK);
	assert_string_equal(a.text[a.n - 1], "NICK rob robert");
	room_broadcast(room, &r.m, "FILE robert deleted y", 21, "", 0);
	assert_string_equal(a.text[a.n - 1], "FILE robert deleted y");
	room_leave(room, &r.m, "node lost");
	assert_string_equal(a.text[a.n - 1], "LEAVE robert node lost");
	assert_int_equal(up.n, 0);
	/* A remote member's name is taken here too. */
	assert_int_equal(room_rename(room, &r.m, "rob", 3), NICK_OK);
	assert_int_equal(room_rename(room, &a.m, "ROB", 3), ROOM_NICK_TAKEN);
	room_leave(room, &r.m, "node lost");
	room_leave(room, &a.m, "quit");
	room_set_uplink(room, NULL);
}

static void test_posts_taken_local_or_here(void **state)
{
	struct room *room = *state;
	struct fake up, a, b;
	fake_init(&up, false);
	up.m.ops = &uplink_ops;
	fake_init(&a, false);
	fake_init(&b, false);
	b.m.offsets = true;
	room_set_uplink(room, &up.m);
	room_join(room, &a.m);
	room_join(room, &b.m);
	int up_before = up.n, b_before = b.n;

	post_answer = ROOM_POST_TAKEN; /* numbered by the cluster: nothing here yet */
	room_say(room, &a.m, "one", 3);
	assert_int_equal(posts, 1);
	assert_int_equal(b.n, b_before);
	assert_int_equal(room_last_offset(room), 0);

	post_answer = ROOM_POST_LOCAL; /* Redis away: this room only, unnumbered */
	room_say(room, &a.m, "two", 3);
	assert_int_equal(b.n, b_before + 1);
	assert_string_equal(b.text[b.n - 1], "MSG Guest1 two");
	assert_int_equal(b.offset[b.n - 1], 0);
	assert_int_equal(room_last_offset(room), 0);
	assert_int_equal(up.n, up_before); /* not told: it said no */

	post_answer = ROOM_POST_HERE; /* as alone: numbered here, told to the uplink */
	room_action(room, &a.m, "waves", 5);
	assert_string_equal(b.text[b.n - 1], "ACTION Guest1 waves");
	assert_int_equal(b.offset[b.n - 1], 1);
	assert_string_equal(up.text[up.n - 1], "ACTION Guest1 waves");
	room_leave(room, &a.m, "quit");
	room_leave(room, &b.m, "quit");
	room_set_uplink(room, NULL);
}

static void test_numbered_messages_come_back_once(void **state)
{
	struct room *room = *state;
	struct fake up, a, b;
	struct timespec when = { .tv_sec = 1764600000 };
	fake_init(&up, false);
	up.m.ops = &uplink_ops;
	fake_init(&a, false);
	fake_init(&b, false);
	room_set_uplink(room, &up.m);
	room_join(room, &a.m);
	room_join(room, &b.m);
	int a0 = a.n, b0 = b.n, up0 = up.n;

	/* Its author (a, by id) does not get it back; the others do, with the offset. */
	room_post_at(room, a.m.id, "MSG", "Guest1", "hi", 2, 41, &when);
	assert_int_equal(a.n, a0);
	assert_int_equal(b.n, b0 + 1);
	assert_string_equal(b.text[b.n - 1], "MSG Guest1 hi");
	assert_int_equal(b.offset[b.n - 1], 41);
	assert_int_equal(room_last_offset(room), 41);
	/* From another node: everyone gets it. A duplicate is dropped. */
	room_post_at(room, 0, "ACTION", "rob", "waves", 5, 42, &when);
	room_post_at(room, 0, "ACTION", "rob", "waves", 5, 42, &when);
	room_post_at(room, 0, "MSG", "rob", "late", 4, 40, &when);
	assert_int_equal(a.n, a0 + 1);
	assert_int_equal(b.n, b0 + 2);
	assert_int_equal(up.n, up0); /* never back to the uplink */
	/* Kept where HISTORY SINCE finds them. */
	struct fake c;
	fake_init(&c, false);
	room_join(room, &c.m);
	assert_true(room_replay_since(room, &c.m, room_epoch(room), 41));
	assert_string_equal(c.text[c.n - 1], "HISTORY 42 ACTION rob waves");
	/* A message read back is kept, not delivered. */
	int c0 = c.n;
	room_keep_at(room, 43, "MSG", "rob", "missed", 6, &when);
	assert_int_equal(c.n, c0);
	assert_int_equal(room_last_offset(room), 43);
	/* A new epoch: a new offset space, the old history gone. */
	room_set_epoch(room, "00112233445566ff");
	assert_string_equal(room_epoch(room), "00112233445566ff");
	assert_int_equal(room_last_offset(room), 0);
	room_post_at(room, 0, "MSG", "rob", "fresh", 5, 1, &when);
	assert_int_equal(room_last_offset(room), 1);
	room_leave(room, &a.m, "quit");
	room_leave(room, &b.m, "quit");
	room_leave(room, &c.m, "quit");
	room_set_uplink(room, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_uplink_hears_local_events_once, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_remote_members_events_stay_here, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_posts_taken_local_or_here, setup, teardown),
		cmocka_unit_test_setup_teardown(test_numbered_messages_come_back_once, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
