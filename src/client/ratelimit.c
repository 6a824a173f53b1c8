/* ratelimit.c - the token bucket behind --limit-rate. */
#include "ratelimit.h"
#include "tpkt.h"

#include <errno.h>
#include <math.h>
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
	char *end;
	double mult = 1;

	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || *s == '-' || *s == '+')
		return -1;
	/* One line a unit reads as a table. */
	/* clang-format off */
	switch (*end) {
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	default: break;
	}
	/* clang-format on */
	v *= mult;
	if (*end != '\0' || v < 1 || v > 1e15)
		return -1;
	*rate = (uint64_t)v;
	return 0;
}
