/* Unit tests for loop.c with its epoll backend: the timer heap (order, stop,
 * restart, a 0 ms restart waiting a turn), loop_run_once's bounded wait, and
 * file events on socketpairs, changed from inside a batch of callbacks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

#define NTIMERS 200
#define SETSIZE 1024

/* ---- timers ---- */

struct fired {
	struct loop_timer *order[NTIMERS * 4];
	uint64_t when[NTIMERS * 4];
	size_t n;
};

static void on_timer(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	struct fired *f = data;
	assert_false(loop_timer_pending(t)); /* stopped before its call */
	assert_true(f->n < sizeof f->order / sizeof *f->order);
	f->order[f->n] = t;
	f->when[f->n++] = t->when;
}

/* Turns of the loop until `want` calls were recorded, bounded in time. */
static void run_until(struct loop *loop, const struct fired *f, size_t want)
{
	uint64_t deadline = loop_clock_ms() + 2000;
	while (f->n < want) {
		assert_true(loop_clock_ms() < deadline);
		assert_int_equal(loop_run_once(loop, 50), 0);
	}
}

/* A fixed shuffle of 0..n-1 (a linear congruential step, coprime with n). */
static size_t shuffled(size_t i, size_t n) { return (i * 73 + 11) % n; }

static void test_timers_fire_in_order_of_when(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	static struct loop_timer t[NTIMERS];
	static struct fired f;
	memset(t, 0, sizeof t);
	memset(&f, 0, sizeof f);
	for (size_t i = 0; i < NTIMERS; i++) {
		size_t k = shuffled(i, NTIMERS);
		loop_timer_start(loop, &t[k], k % 40, on_timer, &f);
		assert_true(loop_timer_pending(&t[k]));
	}
	run_until(loop, &f, NTIMERS);
	assert_int_equal(f.n, NTIMERS);
	for (size_t i = 1; i < f.n; i++)
		assert_true(f.when[i - 1] <= f.when[i]);
	for (size_t i = 0; i < NTIMERS; i++)
		assert_false(loop_timer_pending(&t[i]));
	loop_free(loop);
}

static void test_stop_in_the_middle_keeps_order(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	static struct loop_timer t[NTIMERS];
	static struct fired f;
	memset(t, 0, sizeof t);
	memset(&f, 0, sizeof f);
	for (size_t i = 0; i < NTIMERS; i++) {
		size_t k = shuffled(i, NTIMERS);
		loop_timer_start(loop, &t[k], 5 + k % 30, on_timer, &f);
	}
	/* Stop every third one, wherever it sits in the heap; stop twice is a no-op. */
	size_t stopped = 0;
	for (size_t i = 0; i < NTIMERS; i += 3) {
		loop_timer_stop(loop, &t[i]);
		loop_timer_stop(loop, &t[i]);
		assert_false(loop_timer_pending(&t[i]));
		stopped++;
	}
	run_until(loop, &f, NTIMERS - stopped);
	assert_int_equal(loop_run_once(loop, 40), 0); /* nothing else comes */
	assert_int_equal(f.n, NTIMERS - stopped);
	for (size_t i = 0; i < f.n; i++) {
		assert_true((f.order[i] - t) % 3 != 0);
		if (i)
			assert_true(f.when[i - 1] <= f.when[i]);
	}
	loop_free(loop);
}

static void test_restart_moves_a_timer(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	struct loop_timer a = { 0 }, b = { 0 }, c = { 0 };
	struct fired f = { 0 };
	loop_timer_start(loop, &a, 5, on_timer, &f);
	loop_timer_start(loop, &b, 20, on_timer, &f);
	loop_timer_start(loop, &c, 300, on_timer, &f);
	/* a moves behind b, c moves to the front. */
	loop_timer_start(loop, &a, 40, on_timer, &f);
	loop_timer_start(loop, &c, 0, on_timer, &f);
	run_until(loop, &f, 3);
	assert_int_equal(f.n, 3);
	assert_ptr_equal(f.order[0], &c);
	assert_ptr_equal(f.order[1], &b);
	assert_ptr_equal(f.order[2], &a);
	loop_free(loop);
}

struct again {
	int fired;
	int limit;
};

static void on_again(struct loop *loop, struct loop_timer *t, void *data)
{
	struct again *g = data;
	if (++g->fired < g->limit)
		loop_timer_start(loop, t, 0, on_again, g);
}

static void on_tick(struct loop *loop, struct loop_timer *t, void *data)
{
	struct again *g = data;
	if (++g->fired < g->limit)
		loop_timer_start(loop, t, 1, on_tick, g);
}

static void test_zero_ms_restart_waits_a_turn(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	struct loop_timer t = { 0 };
	struct again g = { .limit = 1000 };
	loop_timer_start(loop, &t, 0, on_again, &g);
	/* One call per turn: the other clients are served between two steps. */
	for (int turn = 1; turn <= 5; turn++) {
		assert_int_equal(loop_run_once(loop, 100), 0);
		assert_int_equal(g.fired, turn);
		assert_true(loop_timer_pending(&t));
	}
	loop_timer_stop(loop, &t);
	loop_free(loop);
}

static void test_run_once_waits_at_most_max(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	struct loop_timer t = { 0 };
	struct fired f = { 0 };
	/* Nothing to wait for: 0 returns at once, 30 after about 30 ms. */
	uint64_t t0 = loop_clock_ms();
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_true(loop_clock_ms() - t0 < 20);
	t0 = loop_clock_ms();
	assert_int_equal(loop_run_once(loop, 30), 0);
	uint64_t took = loop_clock_ms() - t0;
	assert_true(took >= 29 && took < 1000);
	/* A timer later than the bound: the turn ends unfired at the bound. */
	loop_timer_start(loop, &t, 10000, on_timer, &f);
	t0 = loop_clock_ms();
	assert_int_equal(loop_run_once(loop, 20), 0);
	assert_true(loop_clock_ms() - t0 < 1000);
	assert_int_equal(f.n, 0);
	/* A timer sooner than the bound ends the wait early, and fires. */
	loop_timer_start(loop, &t, 10, on_timer, &f);
	t0 = loop_clock_ms();
	assert_int_equal(loop_run_once(loop, 5000), 0);
	assert_true(loop_clock_ms() - t0 < 1000);
	assert_int_equal(f.n, 1);
	assert_true(loop_now(loop) >= f.when[0]);
	loop_free(loop);
}

static int hook_calls;
static void before_sleep(struct loop *loop, void *data)
{
	(void)data;
	if (++hook_calls == 3)
		loop_stop(loop);
}

static void test_before_sleep_hook_and_stop(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	hook_calls = 0;
	loop_set_before_sleep(loop, before_sleep, NULL);
	struct loop_timer t = { 0 };
	struct again g = { .limit = 1000 };
	loop_timer_start(loop, &t, 1, on_tick, &g); /* each turn ends within 1 ms */
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(hook_calls, 3);
	loop_timer_stop(loop, &t);
	loop_free(loop);
}

/* ---- file events ---- */

struct pair {
	int fd[2];
};

static void pair_open(struct pair *p)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	assert_true(p->fd[0] < SETSIZE && p->fd[1] < SETSIZE);
}

static void pair_close(struct pair *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
}

/* What the fd handler saw, and what it does to the others in the batch. */
struct watcher {
	int calls;
	int mask;
	int unwatch_fd; /* >= 0: unwatch this fd when called */
	int quiet_fd;   /* >= 0: set this fd's mask to LOOP_NONE when called */
	int self_mask;  /* >= 0: set our own mask to this when called */
	char got[16];
};

static void on_fd(struct loop *loop, int fd, void *data, int mask)
{
	struct watcher *w = data;
	w->calls++;
	w->mask = mask;
	if (mask & LOOP_READABLE) {
		ssize_t n = read(fd, w->got, sizeof w->got - 1);
		w->got[n > 0 ? n : 0] = '\0';
	}
	if (w->unwatch_fd >= 0)
		loop_unwatch(loop, w->unwatch_fd);
	if (w->quiet_fd >= 0)
		assert_int_equal(loop_set_mask(loop, w->quiet_fd, LOOP_NONE), 0);
	if (w->self_mask >= 0)
		assert_int_equal(loop_set_mask(loop, fd, w->self_mask), 0);
}

static void test_readable_and_writable(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	struct pair p;
	pair_open(&p);
	struct watcher w = { .unwatch_fd = -1, .quiet_fd = -1, .self_mask = -1 };
	assert_int_equal(loop_watch(loop, p.fd[0], LOOP_READABLE, on_fd, &w), 0);
	assert_int_equal(loop_get_mask(loop, p.fd[0]), LOOP_READABLE);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(w.calls, 0); /* nothing to read yet */
	assert_int_equal(write(p.fd[1], "hi", 2), 2);
	assert_int_equal(loop_run_once(loop, 1000), 0);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.mask & LOOP_READABLE, LOOP_READABLE);
	assert_string_equal(w.got, "hi");
	/* Writable: an empty socket buffer is ready at once; then back to none. */
	w.self_mask = LOOP_NONE;
	assert_int_equal(loop_set_mask(loop, p.fd[0], LOOP_WRITABLE), 0);
	assert_int_equal(loop_run_once(loop, 1000), 0);
	assert_int_equal(w.calls, 2);
	assert_int_equal(w.mask & LOOP_WRITABLE, LOOP_WRITABLE);
	assert_int_equal(loop_get_mask(loop, p.fd[0]), LOOP_NONE);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(w.calls, 2);
	loop_unwatch(loop, p.fd[0]);
	assert_int_equal(loop_get_mask(loop, p.fd[0]), LOOP_NONE);
	pair_close(&p);
	loop_free(loop);
}

static void test_watch_refuses_fds_beyond_setsize(void **state)
{
	(void)state;
	struct loop *loop = loop_new(8);
	struct watcher w = { .unwatch_fd = -1, .quiet_fd = -1, .self_mask = -1 };
	assert_int_equal(loop_watch(loop, 8, LOOP_READABLE, on_fd, &w), -1);
	assert_int_equal(loop_watch(loop, -1, LOOP_READABLE, on_fd, &w), -1);
	assert_int_equal(loop_get_mask(loop, 100), LOOP_NONE);
	loop_unwatch(loop, 100); /* a no-op */
	loop_free(loop);
}

/* Two fds ready in one batch; whichever handler runs first silences the other
 * (unwatch in one run, set_mask LOOP_NONE in the next): the other is not called. */
static void test_changes_inside_a_batch(void **state)
{
	(void)state;
	for (int how = 0; how < 2; how++) {
		struct loop *loop = loop_new(SETSIZE);
		struct pair a, b;
		pair_open(&a);
		pair_open(&b);
		struct watcher wa = { .unwatch_fd = -1, .quiet_fd = -1, .self_mask = -1 };
		struct watcher wb = wa;
		if (how == 0) {
			wa.unwatch_fd = b.fd[0];
			wb.unwatch_fd = a.fd[0];
		} else {
			wa.quiet_fd = b.fd[0];
			wb.quiet_fd = a.fd[0];
		}
		assert_int_equal(loop_watch(loop, a.fd[0], LOOP_READABLE, on_fd, &wa), 0);
		assert_int_equal(loop_watch(loop, b.fd[0], LOOP_READABLE, on_fd, &wb), 0);
		assert_int_equal(write(a.fd[1], "a", 1), 1);
		assert_int_equal(write(b.fd[1], "b", 1), 1);
		/* Both are ready before the wait: one batch. */
		assert_int_equal(loop_run_once(loop, 1000), 0);
		assert_int_equal(wa.calls + wb.calls, 1);
		/* The silenced one stays silent although its byte is still unread. */
		assert_int_equal(loop_run_once(loop, 20), 0);
		assert_int_equal(wa.calls + wb.calls, 1);
		loop_unwatch(loop, a.fd[0]);
		loop_unwatch(loop, b.fd[0]);
		pair_close(&a);
		pair_close(&b);
		loop_free(loop);
	}
}

static void test_hang_up_is_reported(void **state)
{
	(void)state;
	struct loop *loop = loop_new(SETSIZE);
	struct pair p;
	pair_open(&p);
	struct watcher w = { .unwatch_fd = -1, .quiet_fd = -1, .self_mask = -1 };
	assert_int_equal(loop_watch(loop, p.fd[0], LOOP_READABLE, on_fd, &w), 0);
	close(p.fd[1]);
	assert_int_equal(loop_run_once(loop, 1000), 0);
	assert_int_equal(w.calls, 1);
	assert_true(w.mask & LOOP_READABLE); /* reads EOF */
	assert_string_equal(w.got, "");
	loop_unwatch(loop, p.fd[0]);
	close(p.fd[0]);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_order_of_when),
		cmocka_unit_test(test_stop_in_the_middle_keeps_order),
		cmocka_unit_test(test_restart_moves_a_timer),
		cmocka_unit_test(test_zero_ms_restart_waits_a_turn),
		cmocka_unit_test(test_run_once_waits_at_most_max),
		cmocka_unit_test(test_before_sleep_hook_and_stop),
		cmocka_unit_test(test_readable_and_writable),
		cmocka_unit_test(test_watch_refuses_fds_beyond_setsize),
		cmocka_unit_test(test_changes_inside_a_batch),
		cmocka_unit_test(test_hang_up_is_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
