/* hist.c - log-linear latency histogram (hist.h). */
#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, e;

	if (v < 64)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	e = msb - 5u; /* keep 6 significant bits: mantissa 32..63 */
	return 32u * e + (unsigned)(v >> e);
}

static uint64_t value_of(unsigned idx)
{
	unsigned e;
	uint64_t lo;

	if (idx < 64)
		return idx;
	e = idx / 32u - 1u;
	lo = (uint64_t)(idx - 32u * e) << e;
	return lo + ((1ull << e) >> 1); /* middle of the bucket */
}

void hist_add(struct hist *h, uint64_t ns)
{
	h->b[bucket_of(ns)]++;
	h->count++;
	if (ns > h->max)
		h->max = ns;
}

uint64_t hist_pct(const struct hist *h, double pct)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)((double)h->count * pct / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = value_of(i);

			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
