/* progress.h - how a transfer is going, for people: a smoothed rate, the
 * one-line progress bar and the final summary. Pure: the caller passes the
 * time (seconds on a monotonic clock) and does the printing. */
#ifndef BOTTLE_PROGRESS_H
#define BOTTLE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_INTERVAL 0.1 /* redraw at most this often (seconds) */

struct progress {
	uint64_t total; /* the size the transfer ends at */
	double last_t;  /* the previous sample */
	uint64_t last_done;
	double rate; /* bytes per second, smoothed; 0 while unknown */
};

void progress_init(struct progress *p, uint64_t total, uint64_t done, double now);
/* Takes a sample of bytes done so far; updates the smoothed rate. */
void progress_sample(struct progress *p, uint64_t done, double now);

/* "name  45% [#########           ] 45.0 MiB / 100.0 MiB  12.3 MiB/s  ETA 0:05"
 * in at most width columns (the bar shrinks, then goes); label is safe text. */
char *progress_bar(char *out, size_t outsz, const struct progress *p, const char *label,
                   uint64_t done, int width);
/* "12 bytes in 0.003 s, 0.00 MB/s, 0.03 Mbit/s" (MB = 10^6 bytes). */
char *progress_summary(char *out, size_t outsz, uint64_t bytes, double secs);
/* 1023 -> "1023 B", 1536 -> "1.5 KiB", up to TiB. */
char *progress_bytes(char *out, size_t outsz, double bytes);
/* "0:05", "12:34", "1:02:03"; "--:--" when unknown (negative, not finite, huge). */
char *progress_eta(char *out, size_t outsz, double secs);

#endif
