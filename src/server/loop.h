/* loop.h - a small event loop: file events, timers, and a before-sleep hook.
 * The readiness backend (epoll) lives in loop_epoll.c behind four functions. */
#ifndef BOTTLE_LOOP_H
#define BOTTLE_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;

/* Interest and readiness masks. */
#define LOOP_NONE 0
#define LOOP_READABLE 1
#define LOOP_WRITABLE 2
#define LOOP_ERROR 4 /* hang-up or error (reported with the others) */

struct loop_timer;
typedef void loop_fd_fn(struct loop *loop, int fd, void *data, int mask);
typedef void loop_timer_fn(struct loop *loop, struct loop_timer *timer, void *data);
typedef void loop_hook_fn(struct loop *loop, void *data);

/* Lifecycle. setsize bounds the fds the loop can watch (fd < setsize). */
struct loop *loop_new(int setsize);
void loop_free(struct loop *loop);
/* Runs until loop_stop: 0, or -1 with errno if waiting for events failed. */
int loop_run(struct loop *loop);
/* One turn: the before-sleep hook, a wait of at most max_wait_ms (-1: until the
 * next timer), the ready handlers, the due timers. 0, or -1 with errno. */
int loop_run_once(struct loop *loop, int max_wait_ms);
void loop_stop(struct loop *loop);

/* File events: one handler per fd, called with the ready mask. 0 or -1 with errno. */
int loop_watch(struct loop *loop, int fd, int mask, loop_fd_fn *fn, void *data);
int loop_set_mask(struct loop *loop, int fd, int mask);
int loop_get_mask(struct loop *loop, int fd);
void loop_unwatch(struct loop *loop, int fd);

/* Timers on the monotonic clock. The owner embeds a struct loop_timer (zeroed)
 * and must stop it before freeing it; a timer fires once and may restart itself. */
struct loop_timer {
	uint64_t when; /* private */
	size_t slot;   /* private: heap index + 1, 0 when not pending */
	loop_timer_fn *fn;
	void *data;
};
void loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t ms, loop_timer_fn *fn,
                      void *data);
void loop_timer_stop(struct loop *loop, struct loop_timer *t); /* no-op if not pending */
static inline int loop_timer_pending(const struct loop_timer *t) { return t->slot != 0; }

/* Called once per iteration before waiting: the place to flush output and reap. */
void loop_set_before_sleep(struct loop *loop, loop_hook_fn *fn, void *data);

/* Milliseconds on the monotonic clock, cached at each wake-up. */
uint64_t loop_now(struct loop *loop);
uint64_t loop_clock_ms(void);

#endif
