/* ratelimit.c - the token bucket behind --limit-rate. */
#include "ratelimit.h"
#include "size.h"
#include "tpkt.h"

#include <stdlib.h>
#include <string.h>

#define LIMIT_SLACK 1e-6 /* rounding in the token arithmetic */

void ratelimit_init(struct ratelimit *l, uint64_t rate, double now)
{
	memset(l, 0, sizeof *l);
	l->rate = (double)rate;
	l->quantum = l->rate / 10; /* about ten grants a second */
	if (l->quantum > TPKT_MAX_PAYLOAD)
		l->quantum = TPKT_MAX_PAYLOAD;
	if (l->quantum < 1)
		l->quantum = 1;
	l->burst = 2 * l->quantum;
	l->tokens = l->quantum;
	l->last = now;
}

static void refill(struct ratelimit *l, double now)
{
	if (now > l->last) {
		l->tokens += (now - l->last) * l->rate;
		if (l->tokens > l->burst)
			l->tokens = l->burst;
	}
	l->last = now;
}

static double need_for(const struct ratelimit *l, size_t want)
{
	return (double)want < l->quantum ? (double)want : l->quantum;
}

size_t ratelimit_take(struct ratelimit *l, size_t want, double now)
{
	if (l->rate <= 0)
		return want;
	refill(l, now);
	double have = l->tokens + LIMIT_SLACK;
	if (want == 0 || have < need_for(l, want))
		return 0;
	size_t grant = have < (double)want ? (size_t)have : want;
	l->tokens -= (double)grant;
	return grant;
}

void ratelimit_spend(struct ratelimit *l, size_t n, double now)
{
	if (l->rate <= 0)
		return;
	refill(l, now);
	l->tokens -= (double)n;
}

double ratelimit_wait(struct ratelimit *l, size_t want, double now)
{
	if (l->rate <= 0)
		return 0;
	refill(l, now);
	double need = need_for(l, want);
	return l->tokens + LIMIT_SLACK >= need ? 0 : (need - l->tokens) / l->rate;
}

int ratelimit_parse(const char *s, uint64_t *rate)
{
	uint64_t v;
	if (size_parse(s, &v) < 0 || v < 1 || v > UINT64_C(1000000000000000))
		return -1;
	*rate = v;
	return 0;
}
