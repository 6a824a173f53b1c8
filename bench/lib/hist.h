/* hist.h - a latency histogram of fixed size: log-linear buckets (32 per
 * power of two, ~3 % wide), exact below 64 ns; percentiles from the counts. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 1920

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t ns);
uint64_t hist_pct(const struct hist *h, double pct); /* 0..100, ns; 0 if empty */

#endif
