/* loop_backend.h - what loop.c needs from a readiness backend (loop_epoll.c). */
#ifndef BOTTLE_LOOP_BACKEND_H
#define BOTTLE_LOOP_BACKEND_H

struct loop_backend;

struct loop_ready {
	int fd;
	int mask;
};

struct loop_backend *loop_backend_new(int setsize);
void loop_backend_free(struct loop_backend *b);
/* Sets fd's interest from old_mask to new_mask (LOOP_NONE removes it). 0 or -1/errno. */
int loop_backend_set(struct loop_backend *b, int fd, int old_mask, int new_mask);
/* Waits up to timeout_ms (-1: forever); fills ready[0..max) and returns the count. */
int loop_backend_wait(struct loop_backend *b, struct loop_ready *ready, int max, int timeout_ms);

#endif
