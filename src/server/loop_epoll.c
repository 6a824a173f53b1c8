/* loop_epoll.c - the loop's readiness backend; the only file that knows epoll. */
#include "loop.h"
#include "loop_backend.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct loop_backend {
	int epfd;
	int max_events;
	struct epoll_event *events;
};

struct loop_backend *loop_backend_new(int setsize)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return NULL;
	struct loop_backend *b = xmalloc(sizeof *b);
	b->epfd = epfd;
	b->max_events = setsize < 1024 ? setsize : 1024;
	b->events = xcalloc((size_t)b->max_events, sizeof *b->events);
	return b;
}

void loop_backend_free(struct loop_backend *b)
{
	if (!b)
		return;
	close(b->epfd);
	free(b->events);
	free(b);
}

int loop_backend_set(struct loop_backend *b, int fd, int old_mask, int new_mask)
{
	struct epoll_event ev = { .events = 0, .data.fd = fd };

	if (new_mask & LOOP_READABLE)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (new_mask & LOOP_WRITABLE)
		ev.events |= EPOLLOUT;
	if (new_mask == LOOP_NONE)
		return old_mask == LOOP_NONE ? 0 : epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev);
	return epoll_ctl(b->epfd, old_mask == LOOP_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

int loop_backend_wait(struct loop_backend *b, struct loop_ready *ready, int max, int timeout_ms)
{
	if (max > b->max_events)
		max = b->max_events;
	int n = epoll_wait(b->epfd, b->events, max, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		uint32_t e = b->events[i].events;
		ready[i].fd = b->events[i].data.fd;
		ready[i].mask = 0;
		if (e & (EPOLLIN | EPOLLRDHUP))
			ready[i].mask |= LOOP_READABLE;
		if (e & EPOLLOUT)
			ready[i].mask |= LOOP_WRITABLE;
		if (e & (EPOLLERR | EPOLLHUP))
			ready[i].mask |= LOOP_ERROR | LOOP_READABLE | LOOP_WRITABLE;
	}
	return n;
}
