/* progress.c - rate, bar, final line and redraw arithmetic for transfers. */
#include "progress.h"
#include "utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LABEL_MAX 24  /* columns of the name on the bar */
#define LABEL_MIN 4   /* "a..." */
#define BAR_MIN 10    /* narrower than this: no bar at all */
#define SMOOTHING 0.3 /* weight of the newest sample */

/* ==== the rate ==== */

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

/* ==== pieces ==== */

char *progress_bytes(char *out, size_t outsz, double bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	const int last = (int)(sizeof units / sizeof units[0]) - 1;
	int u = -1;

	if (!(bytes >= 0)) /* negative or NaN: nothing sensible to say */
		bytes = 0;
	while (u < last && (u < 0 ? bytes >= 1024 : bytes >= 1023.95)) {
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

char *progress_secs(char *out, size_t outsz, double secs)
{
	if (!isfinite(secs) || secs < 0)
		secs = 0;
	if (secs < 1)
		snprintf(out, outsz, "%.3f s", secs);
	else if (secs < 60)
		snprintf(out, outsz, "%.1f s", secs);
	else
		progress_eta(out, outsz, secs);
	return out;
}

/* ==== the bar ==== */

/* Copies safe text in at most max columns, "..." ending a cut one. */
static void copy_label(char *out, size_t outsz, const char *label, size_t max)
{
	size_t len = strlen(label);
	size_t n = utf8_columns(label) <= max ? len : utf8_prefix(label, max > 3 ? max - 3 : 0);

	if (n + 4 > outsz) /* room for "..." and the NUL */
		n = outsz - 4;
	memcpy(out, label, n);
	out[n] = '\0';
	if (n < len)
		snprintf(out + n, outsz - n, "...");
}

/* The fields a layout shows; each step of the list drops or shortens one. */
enum {
	BAR_NAME = 1 << 0,
	BAR_BAR = 1 << 1,
	BAR_BYTES = 1 << 2,    /* "45.0 MiB" */
	BAR_TOTAL = 1 << 3,    /* " / 100.0 MiB" after the bytes */
	BAR_RATE = 1 << 4,     /* "  12.3 MiB/s" */
	BAR_ETA = 1 << 5,      /* "  0:05" */
	BAR_ETA_WORD = 1 << 6, /* "ETA " before it */
	BAR_CUT = 1 << 7,      /* the name may be cut below LABEL_MAX */
};

static const unsigned layouts[] = {
	BAR_NAME | BAR_BAR | BAR_BYTES | BAR_TOTAL | BAR_RATE | BAR_ETA | BAR_ETA_WORD,
	BAR_NAME | BAR_BAR | BAR_BYTES | BAR_RATE | BAR_ETA | BAR_ETA_WORD,
	BAR_NAME | BAR_BAR | BAR_BYTES | BAR_RATE | BAR_ETA,
	BAR_NAME | BAR_BYTES | BAR_RATE | BAR_ETA,
	BAR_NAME | BAR_RATE | BAR_ETA,
	BAR_NAME | BAR_ETA,
	BAR_NAME,
	BAR_NAME | BAR_CUT,
	0,
};

struct bar_text {
	char name[LABEL_MAX * 4 + 4];
	int name_cols; /* of the whole label, capped at LABEL_MAX */
	char pct[8], have[32], total[40], rate[40], eta[40];
};

/* Columns a layout needs, the name at its widest (or narrowest when it may
 * be cut) and the bar at BAR_MIN. */
static int layout_cols(unsigned f, const struct bar_text *b)
{
	int n = (int)strlen(b->pct);

	if (f & BAR_NAME)
		n += 1 + ((f & BAR_CUT) && b->name_cols > LABEL_MIN ? LABEL_MIN : b->name_cols);
	if (f & BAR_BAR)
		n += 3 + BAR_MIN; /* " [" and "]" */
	if (f & BAR_BYTES)
		n += 1 + (int)strlen(b->have) + ((f & BAR_TOTAL) ? (int)strlen(b->total) : 0);
	if (f & BAR_RATE)
		n += (int)strlen(b->rate);
	if (f & BAR_ETA)
		n += 2 + (int)strlen(b->eta) + ((f & BAR_ETA_WORD) ? 4 : 0);
	return n;
}

/* Appends printf output, truncating quietly at the end of out. */
static void add(char *out, size_t outsz, size_t *used, const char *fmt, const char *s)
{
	if (*used + 1 >= outsz)
		return;
	int n = snprintf(out + *used, outsz - *used, fmt, s);
	if (n > 0)
		*used = *used + (size_t)n < outsz ? *used + (size_t)n : outsz - 1;
}

static void render(char *out, size_t outsz, unsigned f, const struct bar_text *b, const char *label,
                   double frac, int spare)
{
	char name[sizeof b->name];
	size_t used = 0;

	out[0] = '\0';
	if (f & BAR_NAME) {
		int cols = (f & BAR_CUT) ? LABEL_MIN + spare : b->name_cols;
		if (cols > b->name_cols)
			cols = b->name_cols;
		spare -= cols -
		         ((f & BAR_CUT) && b->name_cols > LABEL_MIN ? LABEL_MIN : b->name_cols);
		copy_label(name, sizeof name, label, (size_t)cols);
		add(out, outsz, &used, "%s ", name);
	}
	add(out, outsz, &used, "%s", b->pct);
	if (f & BAR_BAR) {
		int inner = BAR_MIN + spare, fill = (int)(frac * inner);
		add(out, outsz, &used, "%s", " [");
		for (int i = 0; i < inner; i++)
			add(out, outsz, &used, "%s", i < fill ? "#" : " ");
		add(out, outsz, &used, "%s", "]");
	}
	if (f & BAR_BYTES) {
		add(out, outsz, &used, " %s", b->have);
		if (f & BAR_TOTAL)
			add(out, outsz, &used, "%s", b->total);
	}
	if (f & BAR_RATE)
		add(out, outsz, &used, "%s", b->rate);
	if (f & BAR_ETA)
		add(out, outsz, &used, (f & BAR_ETA_WORD) ? "  ETA %s" : "  %s", b->eta);
}

char *progress_bar(char *out, size_t outsz, const struct progress *p, const char *label,
                   uint64_t done, int width)
{
	struct bar_text b;
	char num[32];
	double frac = p->total ? (double)done / (double)p->total : 1.0;

	if (outsz == 0)
		return out;
	out[0] = '\0';
	if (width > (int)(outsz / 2)) /* the bar's '#' and ' ' are one byte a column: fits */
		width = (int)(outsz / 2);
	if (frac > 1)
		frac = 1;
	size_t cols = utf8_columns(label);
	b.name_cols = cols > LABEL_MAX ? LABEL_MAX : (int)cols;
	snprintf(b.pct, sizeof b.pct, "%3d%%", (int)(frac * 100));
	progress_bytes(b.have, sizeof b.have, (double)done);
	snprintf(b.total, sizeof b.total, " / %s",
	         progress_bytes(num, sizeof num, (double)p->total));
	if (p->rate > 0)
		snprintf(b.rate, sizeof b.rate, "  %s/s", progress_bytes(num, sizeof num, p->rate));
	else
		snprintf(b.rate, sizeof b.rate, "  --/s");
	uint64_t left = p->total > done ? p->total - done : 0;
	progress_eta(b.eta, sizeof b.eta, p->rate > 0 ? (double)left / p->rate : -1);
	if (b.name_cols == 0) /* nothing to name: the layouts with a name are the same without */
		label = "";

	for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
		unsigned f = layouts[i];
		if (b.name_cols == 0)
			f &= ~(unsigned)(BAR_NAME | BAR_CUT);
		int need = layout_cols(f, &b);
		if (need <= width) {
			render(out, outsz, f, &b, label, frac, width - need);
			return out;
		}
	}
	return out; /* narrower than "100%": nothing */
}

int progress_columns(const char *bar) { return (int)utf8_columns(bar); }

char *progress_rewind(char *out, size_t outsz, int old_cols, int width)
{
	int up = width > 0 && old_cols > width ? (old_cols - 1) / width : 0;

	if (old_cols <= 0)
		snprintf(out, outsz, "%s", "");
	else if (up == 0)
		snprintf(out, outsz, "\r\x1b[K");
	else
		snprintf(out, outsz, "\x1b[%dA\r\x1b[J", up);
	return out;
}

/* ==== the final line ==== */

/* The bitrate as networks count it (the seed asks for it after a transfer):
 * bits per second in SI units, "2.78 Gbit/s". */
static char *bitrate(char *out, size_t outsz, double bytes_per_s)
{
	static const char *const units[] = { "bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s" };
	double v = bytes_per_s * 8;
	size_t u = 0;
	while (v >= 1000 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1000;
		u++;
	}
	snprintf(out, outsz, u ? "%.2f %s" : "%.0f %s", v, units[u]);
	return out;
}

char *progress_final(char *out, size_t outsz, const struct progress_end *e)
{
	char size[32], moved[32], secs[32], rate[32], bits[32], at[32];
	double t = e->secs > 1e-6 ? e->secs : 1e-6;
	size_t used = 0;

	progress_bytes(size, sizeof size, (double)e->size);
	progress_bytes(moved, sizeof moved, (double)e->moved);
	progress_secs(secs, sizeof secs, e->secs);
	progress_bytes(rate, sizeof rate, (double)e->moved / t);
	bitrate(bits, sizeof bits, (double)e->moved / t);
	out[0] = '\0';
	add(out, outsz, &used, "%s", size);
	add(out, outsz, &used, " in %s", secs);
	if (e->nresumed <= 0) {
		add(out, outsz, &used, " (%s/s, ", rate);
		add(out, outsz, &used, "%s)", bits);
		return out;
	}
	add(out, outsz, &used, ", %s", moved);
	add(out, outsz, &used, " %s now", e->verb ? e->verb : "moved");
	add(out, outsz, &used, " (%s/s, ", rate);
	add(out, outsz, &used, "%s)", bits);
	for (int i = 0; i < e->nresumed; i++)
		add(out, outsz, &used, i ? ", %s" : ", resumed at %s",
		    progress_bytes(at, sizeof at, (double)e->resumed[i]));
	return out;
}
