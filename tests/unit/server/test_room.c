/* Unit tests for room.c with fake members: join, leave, rename and say, nicks
 * unique ignoring case, Guest names, one shared encoding per framing, and a
 * member that fails during a broadcast and leaves after it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "room.h"

#define MAX_SEEN 16

/* A member whose deliver records what it got. */
struct fake {
	struct member m; /* first: deliver gets &fake->m */
	enum framing_kind kind;
	int fail_on; /* > 0: mark itself failed at this delivery */
	bool failed;
	int n;
	char text[MAX_SEEN][256];    /* head + body */
	struct blob *blob[MAX_SEEN]; /* the encoding it was handed (a reference kept) */
};

static void fake_deliver(struct member *m, struct room_msg *msg)
{
	struct fake *f = (struct fake *)m;
	assert_true(f->n < MAX_SEEN);
	snprintf(f->text[f->n], sizeof f->text[f->n], "%.*s%.*s", (int)msg->hlen, msg->head,
	         (int)msg->blen, msg->body);
	f->blob[f->n] = blob_ref(room_msg_encoded(msg, f->kind, f->m.offsets));
	f->n++;
	/* A member that can't take a message only marks itself (room.h). */
	if (f->fail_on && f->n == f->fail_on)
		f->failed = true;
}

static const struct member_ops fake_ops = { .deliver = fake_deliver };

static void fake_init(struct fake *f, enum framing_kind kind)
{
	memset(f, 0, sizeof *f);
	f->m.ops = &fake_ops;
	f->kind = kind;
}

static void fake_forget(struct fake *f)
{
	for (int i = 0; i < f->n; i++)
		blob_unref(f->blob[i]);
	f->n = 0;
}

static const char *last(const struct fake *f)
{
	assert_true(f->n > 0);
	return f->text[f->n - 1];
}

static int setup(void **state)
{
	log_set_level(LOG_ERROR); /* room.c logs every join at info */
	*state = room_new();
	return 0;
}

static int teardown(void **state)
{
	room_free(*state);
	return 0;
}

static void test_join_names_guests_and_tells_the_others(void **state)
{
	struct room *room = *state;
	struct fake a, b;
	fake_init(&a, FRAMING_LINE);
	fake_init(&b, FRAMING_TPKT);
	room_join(room, &a.m);
	assert_true(room_has(&a.m));
	assert_string_equal(a.m.nick, "Guest1");
	assert_int_equal(a.n, 0); /* not told of its own join */
	room_join(room, &b.m);
	assert_string_equal(b.m.nick, "Guest2");
	assert_int_equal(room_count(room), 2);
	assert_int_equal(a.n, 1);
	assert_string_equal(last(&a), "JOIN Guest2");
	assert_int_equal(b.n, 0);
	assert_ptr_equal(room_member(room, 0), &a.m);
	assert_ptr_equal(room_member(room, 1), &b.m);
	room_leave(room, &a.m, "quit");
	room_leave(room, &b.m, "quit");
	fake_forget(&a);
	fake_forget(&b);
}

static void test_guest_names_skip_taken_ones(void **state)
{
	struct room *room = *state;
	struct fake a, b, c;
	fake_init(&a, FRAMING_LINE);
	fake_init(&b, FRAMING_LINE);
	fake_init(&c, FRAMING_LINE);
	room_join(room, &a.m); /* Guest1 */
	assert_int_equal(room_rename(room, &a.m, "guest2", 6), NICK_OK);
	room_join(room, &b.m); /* Guest2 is taken (case folded): Guest3 */
	assert_string_equal(b.m.nick, "Guest3");
	room_leave(room, &b.m, "quit");
	room_join(room, &c.m); /* numbers are not reused */
	assert_string_equal(c.m.nick, "Guest4");
	room_leave(room, &a.m, "quit");
	room_leave(room, &c.m, "quit");
	fake_forget(&a);
	fake_forget(&b);
	fake_forget(&c);
}

static void test_leave_tells_everyone_left(void **state)
{
	struct room *room = *state;
	struct fake f[3];
	for (int i = 0; i < 3; i++) {
		fake_init(&f[i], FRAMING_LINE);
		room_join(room, &f[i].m);
	}
	for (int i = 0; i < 3; i++)
		fake_forget(&f[i]);
	room_leave(room, &f[0].m, "peer closed");
	assert_false(room_has(&f[0].m));
	assert_int_equal(room_count(room), 2);
	assert_int_equal(f[0].n, 0);
	assert_string_equal(last(&f[1]), "LEAVE Guest1 peer closed");
	assert_string_equal(last(&f[2]), "LEAVE Guest1 peer closed");
	room_leave(room, &f[0].m, "again"); /* not a member: nothing */
	assert_int_equal(f[1].n, 1);
	/* Its nick is free again. */
	assert_int_equal(room_rename(room, &f[1].m, "GUEST1", 6), NICK_OK);
	room_leave(room, &f[1].m, "quit");
	room_leave(room, &f[2].m, "quit");
	for (int i = 0; i < 3; i++)
		fake_forget(&f[i]);
}

static void test_rename_unique_ignoring_case(void **state)
{
	struct room *room = *state;
	struct fake a, b;
	fake_init(&a, FRAMING_LINE);
	fake_init(&b, FRAMING_TPKT);
	room_join(room, &a.m);
	room_join(room, &b.m);
	fake_forget(&a);
	assert_int_equal(room_rename(room, &a.m, "Alice", 5), NICK_OK);
	assert_string_equal(a.m.nick, "Alice");
	assert_string_equal(last(&b), "NICK Guest1 Alice");
	assert_int_equal(a.n, 0); /* the renamed one is not told */
	assert_int_equal(room_rename(room, &b.m, "aLiCe", 5), ROOM_NICK_TAKEN);
	assert_string_equal(b.m.nick, "Guest2");
	/* Non-ASCII letters fold too. */
	assert_int_equal(room_rename(room, &a.m, "Жора", strlen("Жора")), NICK_OK);
	assert_int_equal(room_rename(room, &b.m, "жОРА", strlen("жОРА")), ROOM_NICK_TAKEN);
	/* A member may change the case of its own nick. */
	int before = b.n;
	assert_int_equal(room_rename(room, &a.m, "жора", strlen("жора")), NICK_OK);
	assert_string_equal(a.m.nick, "жора");
	assert_int_equal(b.n, before + 1);
	/* The same nick again: OK, and nobody is told. */
	assert_int_equal(room_rename(room, &a.m, "жора", strlen("жора")), NICK_OK);
	assert_int_equal(b.n, before + 1);
	/* The old nick is free. */
	assert_int_equal(room_rename(room, &b.m, "alice", 5), NICK_OK);
	room_leave(room, &a.m, "quit");
	room_leave(room, &b.m, "quit");
	fake_forget(&a);
	fake_forget(&b);
}

/* A reserved name is held but not a member: no JOIN until enter, and leave
 * gives the name back quietly when the member never entered. */
static void test_reserve_then_enter(void **state)
{
	struct room *room = *state;
	struct fake a, b, c;
	fake_init(&a, FRAMING_LINE);
	fake_init(&b, FRAMING_TPKT);
	fake_init(&c, FRAMING_TPKT);
	room_join(room, &a.m);
	room_reserve(room, &b.m);
	assert_false(room_has(&b.m));
	assert_string_equal(b.m.nick, "Guest2");
	assert_int_equal(room_count(room), 1);
	assert_int_equal(a.n, 0);
	assert_int_equal(room_rename(room, &a.m, "guest2", 6), ROOM_NICK_TAKEN);
	room_enter(room, &b.m, true);
	assert_string_equal(last(&a), "JOIN Guest2");
	room_enter(room, &b.m, true); /* twice: nothing */
	assert_int_equal(a.n, 1);
	room_reserve(room, &c.m);
	room_leave(room, &c.m, "quit"); /* never entered: nobody told */
	assert_int_equal(a.n, 1);
	assert_string_equal(c.m.nick, "");
	room_leave(room, &b.m, "quit");
	assert_string_equal(last(&a), "LEAVE Guest2 quit");
	room_leave(room, &a.m, "quit");
	fake_forget(&a);
	fake_forget(&b);
}

/* Above announce_max, joins and leaves are counted and summarised. */
static void test_presence_summary_above_the_limit(void **state)
{
	struct room *room = *state;
	struct fake f[5];
	room_set_announce_max(room, 2);
	for (int i = 0; i < 5; i++) {
		fake_init(&f[i], FRAMING_LINE);
		room_join(room, &f[i].m);
	}
	assert_int_equal(f[0].n, 1); /* JOIN Guest2; the 3rd to 5th only counted */
	assert_string_equal(last(&f[0]), "JOIN Guest2");
	room_leave(room, &f[4].m, "quit");
	room_presence_flush(room);
	assert_string_equal(last(&f[0]), "PRESENCE 4 +3 -1");
	assert_string_equal(last(&f[3]), "PRESENCE 4 +3 -1");
	int n = f[0].n;
	room_presence_flush(room); /* nothing new: nothing sent */
	assert_int_equal(f[0].n, n);
	room_leave(room, &f[3].m, "quit"); /* 4 -> 3: still counted */
	room_leave(room, &f[2].m, "quit"); /* 3 -> 2: still counted */
	room_leave(room, &f[1].m, "quit"); /* 2 -> 1: told */
	assert_string_equal(last(&f[0]), "LEAVE Guest2 quit");
	room_presence_flush(room);
	assert_string_equal(last(&f[0]), "PRESENCE 1 +0 -2");
	room_leave(room, &f[0].m, "quit");
	for (int i = 0; i < 5; i++)
		fake_forget(&f[i]);
}

static void test_rename_refuses_bad_nicks(void **state)
{
	struct room *room = *state;
	struct fake a, b;
	fake_init(&a, FRAMING_LINE);
	fake_init(&b, FRAMING_LINE);
	room_join(room, &a.m);
	room_join(room, &b.m);
	fake_forget(&a);
	assert_int_equal(room_rename(room, &b.m, "", 0), NICK_EMPTY);
	assert_int_equal(room_rename(room, &b.m, "a\0b", 3), NICK_INVALID);
	assert_int_equal(room_rename(room, &b.m, "\xff", 1), NICK_INVALID);
	char longer[NICK_MAX_CHARS + 2];
	memset(longer, 'x', sizeof longer);
	assert_int_equal(room_rename(room, &b.m, longer, NICK_MAX_CHARS + 1), NICK_INVALID);
	assert_int_equal(room_rename(room, &b.m, longer, NICK_MAX_CHARS), NICK_OK);
	assert_int_equal(a.n, 1); /* one NICK event: the good one */
	room_leave(room, &a.m, "quit");
	room_leave(room, &b.m, "quit");
	fake_forget(&a);
	fake_forget(&b);
}

static void test_say_reaches_all_but_the_sender(void **state)
{
	struct room *room = *state;
	struct fake f[3];
	for (int i = 0; i < 3; i++) {
		fake_init(&f[i], FRAMING_LINE);
		room_join(room, &f[i].m);
	}
	for (int i = 0; i < 3; i++)
		fake_forget(&f[i]);
	room_say(room, &f[1].m, "hello\nworld", 11);
	assert_int_equal(f[1].n, 0);
	assert_string_equal(last(&f[0]), "MSG Guest2 hello\nworld");
	assert_string_equal(last(&f[2]), "MSG Guest2 hello\nworld");
	/* A broadcast with no exception reaches everyone. */
	room_broadcast(room, NULL, "NOTE", 4, "", 0);
	for (int i = 0; i < 3; i++)
		assert_string_equal(last(&f[i]), "NOTE");
	for (int i = 0; i < 3; i++) {
		room_leave(room, &f[i].m, "quit");
		fake_forget(&f[i]);
	}
}

/* Encoded once per framing: every receiver of one framing holds the same blob. */
static void test_one_encoding_per_framing_shared(void **state)
{
	struct room *room = *state;
	enum { N = 6 };
	struct fake f[N], from;
	fake_init(&from, FRAMING_LINE);
	room_join(room, &from.m);
	for (int i = 0; i < N; i++) {
		fake_init(&f[i], i % 2 ? FRAMING_TPKT : FRAMING_LINE);
		room_join(room, &f[i].m);
	}
	for (int i = 0; i < N; i++)
		fake_forget(&f[i]);
	fake_forget(&from);
	room_say(room, &from.m, "two\nlines", 9);
	struct blob *line = f[0].blob[0], *tpkt = f[1].blob[0];
	assert_ptr_not_equal(line, tpkt);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(f[i].blob[0], i % 2 ? tpkt : line);
	/* Each receiver's reference outlives the message. */
	assert_int_equal(line->refs, N / 2);
	assert_int_equal(tpkt->refs, N / 2);
	static const char want_line[] = "MSG Guest1 two\nMSG Guest1 lines\n";
	assert_int_equal(line->len, sizeof want_line - 1);
	assert_memory_equal(line->data, want_line, line->len);
	static const char payload[] = "MSG Guest1 two\nlines";
	assert_int_equal(tpkt->len, 4 + sizeof payload - 1);
	assert_int_equal(tpkt->data[0], 3);
	assert_int_equal((tpkt->data[2] << 8) | tpkt->data[3], (int)tpkt->len);
	assert_memory_equal(tpkt->data + 4, payload, sizeof payload - 1);
	/* A second message gets encodings of its own. */
	room_say(room, &from.m, "again", 5);
	assert_ptr_not_equal(f[0].blob[1], line);
	assert_ptr_equal(f[0].blob[1], f[2].blob[1]);
	for (int i = 0; i < N; i++) {
		room_leave(room, &f[i].m, "quit");
		fake_forget(&f[i]);
	}
	room_leave(room, &from.m, "quit");
	fake_forget(&from);
}

/* A member that fails in the middle of a broadcast marks itself; everyone
 * else still gets the message exactly once, and its leave afterwards (as the
 * reaper does it) is safe and told to the rest. */
static void test_member_failing_during_broadcast_leaves_after(void **state)
{
	struct room *room = *state;
	enum { N = 5 };
	struct fake f[N];
	for (int i = 0; i < N; i++) {
		fake_init(&f[i], FRAMING_TPKT);
		room_join(room, &f[i].m);
	}
	for (int i = 0; i < N; i++)
		fake_forget(&f[i]);
	f[2].fail_on = 1;
	room_broadcast(room, NULL, "MSG x ", 6, "burst", 5);
	for (int i = 0; i < N; i++) {
		assert_int_equal(f[i].n, 1);
		assert_string_equal(last(&f[i]), "MSG x burst");
	}
	for (int i = 0; i < N; i++)
		if (f[i].failed)
			room_leave(room, &f[i].m, "too slow");
	assert_int_equal(room_count(room), N - 1);
	assert_int_equal(f[2].n, 1); /* told nothing more */
	for (int i = 0; i < N; i++)
		if (i != 2) {
			assert_int_equal(f[i].n, 2);
			assert_string_equal(last(&f[i]), "LEAVE Guest3 too slow");
		}
	/* The members left are all reachable through the member table. */
	for (size_t i = 0; i < room_count(room); i++) {
		struct member *m = room_member(room, i);
		assert_ptr_not_equal(m, &f[2].m);
		assert_int_equal(m->slot, i + 1);
	}
	for (int i = 0; i < N; i++) {
		room_leave(room, &f[i].m, "quit");
		fake_forget(&f[i]);
	}
	assert_int_equal(room_count(room), 0);
}

static unsigned long deliveries;
static void count_deliver(struct member *m, struct room_msg *msg)
{
	(void)m;
	(void)msg;
	deliveries++;
}

/* Many members: the nick table grows and every nick stays unique. */
static void test_many_members(void **state)
{
	struct room *room = *state;
	enum { N = 3000 };
	static const struct member_ops counting = { .deliver = count_deliver };
	static struct member m[N];
	memset(m, 0, sizeof m);
	deliveries = 0;
	for (int i = 0; i < N; i++) {
		m[i].ops = &counting;
		room_join(room, &m[i]);
	}
	assert_int_equal(room_count(room), N);
	/* Told one by one up to ROOM_ANNOUNCE_MAX members, then only counted. */
	enum { A = ROOM_ANNOUNCE_MAX };
	assert_int_equal(deliveries, (unsigned long)A * (A - 1) / 2);
	room_presence_flush(room);
	assert_int_equal(deliveries, (unsigned long)A * (A - 1) / 2 + N);
	assert_string_equal(m[N - 1].nick, "Guest3000");
	char nick[16];
	snprintf(nick, sizeof nick, "guest%d", N / 2);
	assert_int_equal(room_rename(room, &m[0], nick, strlen(nick)), ROOM_NICK_TAKEN);
	assert_int_equal(room_rename(room, &m[0], "Guest3001", 9), NICK_OK);
	for (int i = 0; i < N; i++)
		room_leave(room, &m[i], "quit");
	assert_int_equal(room_count(room), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_join_names_guests_and_tells_the_others, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_guest_names_skip_taken_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leave_tells_everyone_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_unique_ignoring_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_then_enter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence_summary_above_the_limit, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_rename_refuses_bad_nicks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_say_reaches_all_but_the_sender, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_one_encoding_per_framing_shared, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_member_failing_during_broadcast_leaves_after,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_members, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
