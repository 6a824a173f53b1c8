/* ratelimit.h - a token bucket for --limit-rate, pure (times in seconds).
 * Uploads take bytes before sending them; downloads spend what arrived and
 * stop reading while in debt, so TCP slows the server down. */
#ifndef BOTTLE_RATELIMIT_H
#define BOTTLE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit {
	double rate;    /* bytes per second; 0: no limit */
	double tokens;  /* bytes that may go now; negative: a debt */
	double burst;   /* the most tokens saved up */
	double quantum; /* the smallest grant worth waking up for */
	double last;    /* when tokens were last refilled */
};

/* A --limit-rate value: bytes per second, with an optional k/M/g (1024s)
 * suffix, 1..1e15. 0, or -1 when it is not one. */
int ratelimit_parse(const char *s, uint64_t *rate);

void ratelimit_init(struct ratelimit *l, uint64_t rate, double now);
/* Up to want bytes that may go now, taken from the bucket; 0: wait. */
size_t ratelimit_take(struct ratelimit *l, size_t want, double now);
/* Records n bytes that went already. */
void ratelimit_spend(struct ratelimit *l, size_t n, double now);
/* Seconds until a take of want bytes (or a read after a debt) can go; 0: now. */
double ratelimit_wait(struct ratelimit *l, size_t want, double now);

#endif
