/* redis_loop.c - the adapter between hiredis and loop.c. hiredis frees the
 * context (and calls cleanup) from inside redisAsyncHandleRead/Write, so the
 * watch outlives a handler that is still running: it is freed on the way out. */
#include "redis_loop.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct redis_watch {
	struct loop *loop;
	redisAsyncContext *ac;
	int fd;
	int mask;
	bool busy; /* inside on_io: hiredis may clean up under our feet */
	bool gone; /* cleanup ran: ac is being freed */
	redis_loop_gone_fn *on_gone;
	void *data;
};

static void set_mask(struct redis_watch *w, int mask)
{
	if (w->gone || mask == w->mask)
		return;
	w->mask = mask;
	(void)loop_set_mask(w->loop, w->fd, mask);
}

static void add_read(void *p)
{
	struct redis_watch *w = p;
	set_mask(w, w->mask | LOOP_READABLE);
}

static void del_read(void *p)
{
	struct redis_watch *w = p;
	set_mask(w, w->mask & ~LOOP_READABLE);
}

static void add_write(void *p)
{
	struct redis_watch *w = p;
	set_mask(w, w->mask | LOOP_WRITABLE);
}

static void del_write(void *p)
{
	struct redis_watch *w = p;
	set_mask(w, w->mask & ~LOOP_WRITABLE);
}

static void cleanup(void *p)
{
	struct redis_watch *w = p;
	loop_unwatch(w->loop, w->fd);
	w->gone = true;
	w->ac->ev.data = NULL;
	if (w->on_gone)
		w->on_gone(w->data);
	if (!w->busy)
		free(w);
}

static void on_io(struct loop *loop, int fd, void *data, int mask)
{
	(void)loop;
	(void)fd;
	struct redis_watch *w = data;

	w->busy = true;
	/* An error or hang-up is read: hiredis finds out why and disconnects. */
	if (mask & (LOOP_READABLE | LOOP_ERROR) && (w->mask & LOOP_READABLE))
		redisAsyncHandleRead(w->ac);
	/* Writable also means "connected" to hiredis while connecting. */
	if (!w->gone && (mask & LOOP_WRITABLE) && (w->mask & LOOP_WRITABLE))
		redisAsyncHandleWrite(w->ac);
	w->busy = false;
	if (w->gone)
		free(w);
}

int redis_loop_attach(redisAsyncContext *ac, struct loop *loop, redis_loop_gone_fn *gone,
                      void *data)
{
	if (ac->ev.data) {
		errno = EEXIST;
		return -1;
	}
	struct redis_watch *w = xcalloc(1, sizeof *w);
	w->loop = loop;
	w->ac = ac;
	w->fd = ac->c.fd;
	w->on_gone = gone;
	w->data = data;
	if (loop_watch(loop, w->fd, LOOP_NONE, on_io, w) < 0) {
		free(w);
		return -1;
	}
	ac->ev.data = w;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	return 0;
}
