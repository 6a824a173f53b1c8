/* loop.c - the event loop: an fd-indexed handler table, a min-heap of timers,
 * and a before-sleep hook. One thread runs it; nothing here blocks but the wait. */
#include "loop.h"
#include "loop_backend.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOOP_READY_MAX 1024 /* events taken from one wait */

struct loop_fd {
	int mask;
	loop_fd_fn *fn;
	void *data;
};

struct loop {
	struct loop_backend *backend;
	int setsize;
	struct loop_fd *fds; /* indexed by fd */
	struct loop_ready *ready;
	struct loop_timer **heap; /* min-heap on `when` */
	size_t ntimers, heap_cap;
	loop_hook_fn *before_sleep;
	void *before_sleep_data;
	uint64_t now;
	bool in_timers; /* run_timers is calling timers */
	int stopped;
};

uint64_t loop_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *loop_new(int setsize)
{
	struct loop *loop = xcalloc(1, sizeof *loop);

	loop->backend = loop_backend_new(setsize);
	if (!loop->backend) {
		free(loop);
		return NULL;
	}
	loop->setsize = setsize;
	loop->fds = xcalloc((size_t)setsize, sizeof *loop->fds);
	loop->ready = xcalloc(LOOP_READY_MAX, sizeof *loop->ready);
	loop->now = loop_clock_ms();
	return loop;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	loop_backend_free(loop->backend);
	free(loop->fds);
	free(loop->ready);
	free(loop->heap);
	free(loop);
}

void loop_stop(struct loop *loop) { loop->stopped = 1; }
uint64_t loop_now(struct loop *loop) { return loop->now; }

void loop_set_before_sleep(struct loop *loop, loop_hook_fn *fn, void *data)
{
	loop->before_sleep = fn;
	loop->before_sleep_data = data;
}

/* ---- file events ---- */

int loop_watch(struct loop *loop, int fd, int mask, loop_fd_fn *fn, void *data)
{
	if (fd < 0 || fd >= loop->setsize) {
		errno = ERANGE;
		return -1;
	}
	struct loop_fd *e = &loop->fds[fd];
	if (loop_backend_set(loop->backend, fd, e->mask, mask) < 0)
		return -1;
	e->mask = mask;
	e->fn = fn;
	e->data = data;
	return 0;
}

int loop_set_mask(struct loop *loop, int fd, int mask)
{
	struct loop_fd *e = &loop->fds[fd];
	if (e->mask == mask)
		return 0;
	if (loop_backend_set(loop->backend, fd, e->mask, mask) < 0)
		return -1;
	e->mask = mask;
	return 0;
}

int loop_get_mask(struct loop *loop, int fd)
{
	return fd >= 0 && fd < loop->setsize ? loop->fds[fd].mask : LOOP_NONE;
}

void loop_unwatch(struct loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->setsize)
		return;
	struct loop_fd *e = &loop->fds[fd];
	loop_backend_set(loop->backend, fd, e->mask, LOOP_NONE);
	memset(e, 0, sizeof *e);
}

/* ---- timers: a binary min-heap; each timer knows its slot for O(log n) stop ---- */

static void heap_place(struct loop *loop, size_t i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->when <= t->when)
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, t);
}

static void heap_down(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->ntimers)
			break;
		if (child + 1 < loop->ntimers &&
		    loop->heap[child + 1]->when < loop->heap[child]->when)
			child++;
		if (t->when <= loop->heap[child]->when)
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

void loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t ms, loop_timer_fn *fn,
                      void *data)
{
	loop_timer_stop(loop, t);
	if (loop->ntimers == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		loop->heap = xrealloc(loop->heap, loop->heap_cap * sizeof *loop->heap);
	}
	t->when = loop_clock_ms() + ms;
	/* Started by a timer of this turn and already due: it waits for the next
	 * turn, so a zero-delay timer that restarts itself (hashing in steps)
	 * lets the other events in between. */
	if (loop->in_timers && t->when <= loop->now)
		t->when = loop->now + 1;
	t->fn = fn;
	t->data = data;
	loop->heap[loop->ntimers++] = t;
	heap_up(loop, loop->ntimers - 1);
}

void loop_timer_stop(struct loop *loop, struct loop_timer *t)
{
	if (!t->slot)
		return;
	size_t i = t->slot - 1;
	struct loop_timer *last = loop->heap[--loop->ntimers];
	t->slot = 0;
	if (last == t)
		return;
	heap_place(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->slot - 1);
}

static int next_timeout(struct loop *loop)
{
	if (!loop->ntimers)
		return -1;
	uint64_t when = loop->heap[0]->when, now = loop_clock_ms();
	if (when <= now)
		return 0;
	return when - now > 60000 ? 60000 : (int)(when - now);
}

static void run_timers(struct loop *loop)
{
	/* Only timers due now: a timer that restarts itself with 0 ms waits a turn. */
	uint64_t now = loop->now;
	loop->in_timers = true;
	while (loop->ntimers && loop->heap[0]->when <= now) {
		struct loop_timer *t = loop->heap[0];
		loop_timer_stop(loop, t);
		t->fn(loop, t, t->data);
	}
	loop->in_timers = false;
}

/* ---- the loop ---- */

static void dispatch_ready(struct loop *loop, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = loop->ready[i].fd;
		struct loop_fd *e = &loop->fds[fd];
		/* An earlier handler in this batch may have closed or re-armed this fd. */
		int mask = loop->ready[i].mask & (e->mask | LOOP_ERROR);
		if (e->fn && (mask & (LOOP_READABLE | LOOP_WRITABLE)))
			e->fn(loop, fd, e->data, mask);
	}
}

int loop_run_once(struct loop *loop, int max_wait_ms)
{
	if (loop->before_sleep)
		loop->before_sleep(loop, loop->before_sleep_data);
	if (loop->stopped)
		return 0;
	int wait = next_timeout(loop);
	if (max_wait_ms >= 0 && (wait < 0 || wait > max_wait_ms))
		wait = max_wait_ms;
	int n = loop_backend_wait(loop->backend, loop->ready, LOOP_READY_MAX, wait);
	loop->now = loop_clock_ms();
	if (n < 0 && errno != EINTR)
		return -1;
	if (n > 0)
		dispatch_ready(loop, n);
	run_timers(loop);
	return 0;
}

int loop_run(struct loop *loop)
{
	loop->stopped = 0;
	while (!loop->stopped)
		if (loop_run_once(loop, -1) < 0)
			return -1;
	return 0;
}
