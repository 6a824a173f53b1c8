/* progress.c - rate, bar and summary text for transfers. */
#include "progress.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LABEL_MAX 24  /* columns of the name on the bar */
#define BAR_MIN 10    /* narrower than this: no bar at all */
#define SMOOTHING 0.3 /* weight of the newest sample */

void progress_init(struct progress *p, uint64_t total, uint64_t done, double now)
{
	memset(p, 0, sizeof *p);
	p->total = total;
	p->last_t = now;
	p->last_done = done;
}

void progress_sample(struct progress *p, uint64_t done, double now)
{
	double dt = now - p->last_t;

	if (dt < PROGRESS_INTERVAL / 2)
		return; /* too short to measure anything */
	double moved = done >= p->last_done ? (double)(done - p->last_done) : 0;
	double instant = moved / dt;
	p->rate = p->rate > 0 ? (1 - SMOOTHING) * p->rate + SMOOTHING * instant : instant;
	p->last_t = now;
	p->last_done = done;
}

char *progress_bytes(char *out, size_t outsz, double bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	while (bytes >= 1024 && u < 3) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, outsz, "%.0f B", bytes);
	else
		snprintf(out, outsz, "%.1f %s", bytes, units[u]);
	return out;
}

char *progress_eta(char *out, size_t outsz, double secs)
{
	if (!isfinite(secs) || secs < 0 || secs > 99 * 3600.0) {
		snprintf(out, outsz, "--:--");
		return out;
	}
	long s = lround(secs);
	if (s >= 3600)
		snprintf(out, outsz, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(out, outsz, "%ld:%02ld", s / 60, s % 60);
	return out;
}

/* Copies safe text, cut to max code points ("..." ending a cut one). */
static void copy_label(char *out, size_t outsz, const char *label, size_t max)
{
	size_t len = strlen(label);
	size_t n = utf8_columns(label) <= max ? len : utf8_prefix(label, max - 3);

	if (n + 4 > outsz) /* room for "..." and the NUL */
		n = outsz - 4;
	memcpy(out, label, n);
	out[n] = '\0';
	if (n < len)
		snprintf(out + n, outsz - n, "...");
}

char *progress_bar(char *out, size_t outsz, const struct progress *p, const char *label,
                   uint64_t done, int width)
{
	char name[LABEL_MAX * 4 + 4], have[32], total[32], rate[32], eta[32], tail[160];
	double frac = p->total ? (double)done / (double)p->total : 1.0;

	if (frac > 1)
		frac = 1;
	copy_label(name, sizeof name, label, LABEL_MAX);
	progress_bytes(have, sizeof have, (double)done);
	progress_bytes(total, sizeof total, (double)p->total);
	if (p->rate > 0)
		progress_bytes(rate, sizeof rate, p->rate);
	else
		snprintf(rate, sizeof rate, "--");
	progress_eta(eta, sizeof eta, p->rate > 0 ? (double)(p->total - done) / p->rate : -1);
	snprintf(tail, sizeof tail, " %s / %s  %s/s  ETA %s", have, total, rate, eta);

	int head = snprintf(out, outsz, "%s %3d%% ", name, (int)(frac * 100));
	int bar = width - head - (int)strlen(tail) - 2; /* columns between [ and ] */
	if (head < 0 || (size_t)head >= outsz)
		return out;
	if (bar >= BAR_MIN && (size_t)head + (size_t)bar + 3 + strlen(tail) < outsz) {
		int fill = (int)(frac * bar);
		char *q = out + head;
		*q++ = '[';
		for (int i = 0; i < bar; i++)
			*q++ = i < fill ? '#' : ' ';
		*q++ = ']';
		*q = '\0';
	}
	size_t used = strlen(out);
	snprintf(out + used, outsz - used, "%s", tail);
	return out;
}

char *progress_summary(char *out, size_t outsz, uint64_t bytes, double secs)
{
	double mbs = (double)bytes / (secs > 1e-6 ? secs : 1e-6) / 1e6;

	snprintf(out, outsz, "%llu bytes in %.3f s, %.2f MB/s, %.2f Mbit/s",
	         (unsigned long long)bytes, secs, mbs, mbs * 8);
	return out;
}
