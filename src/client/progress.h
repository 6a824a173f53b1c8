/* progress.h - how a transfer is going, for people: a smoothed rate, the
 * one-line progress bar, the final line, and the terminal arithmetic of
 * redrawing the bar. Pure: the caller passes the time (seconds on a
 * monotonic clock) and the width, and does the printing.
 *
 * One unit family everywhere, binary: B, KiB, MiB, GiB, TiB (and MiB/s);
 * the bar and the final line use the same progress_bytes. */
#ifndef BOTTLE_PROGRESS_H
#define BOTTLE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_INTERVAL 0.1 /* redraw at most this often (seconds) */
/* Columns a bar leaves free at the right of the terminal: the last one (no
 * autowrap) and two for the terminal's echo of ^C, so the echo stays on the
 * bar's line and clearing that line clears it too. */
#define PROGRESS_MARGIN 3

struct progress {
	uint64_t total; /* the size the transfer ends at */
	double last_t;  /* the previous sample */
	uint64_t last_done;
	double rate; /* bytes per second, smoothed; 0 while unknown */
};

/* ---- the rate ---- */
void progress_init(struct progress *p, uint64_t total, uint64_t done, double now);
/* Takes a sample of bytes done so far; updates the smoothed rate. */
void progress_sample(struct progress *p, uint64_t done, double now);

/* ---- the bar ---- */
/* "name  45% [#########    ] 45.0 MiB / 100.0 MiB  12.3 MiB/s  ETA 0:05" in
 * at most width columns, never more (label is safe text; cut with "..." past
 * 24 columns). Narrower, it shortens, then drops, in this order: the total
 * ("45.0 MiB"), the word ETA, the bar (down to 10 columns, then all of it),
 * the bytes, the rate, the time left; then the name is cut further and
 * finally goes: the percentage stays. "" below 4 columns. */
char *progress_bar(char *out, size_t outsz, const struct progress *p, const char *label,
                   uint64_t done, int width);
/* The columns a bar takes on the terminal. */
int progress_columns(const char *bar);
/* What to print to put the cursor back at the start of a bar of old_cols
 * columns, with that bar erased, now that the terminal is width wide: "\r"
 * and erase-line; or, when the terminal got narrower than the bar and
 * reflowed it onto more rows (tmux, VTE, kitty, iTerm2 do), up that many
 * rows first and erase to the end of the screen. "" when old_cols is 0. */
char *progress_rewind(char *out, size_t outsz, int old_cols, int width);

/* ---- the final line ---- */
struct progress_end {
	uint64_t size;           /* bytes of the file */
	uint64_t moved;          /* bytes of it this command carried (size - first offset) */
	double secs;             /* from the first reply to the end */
	const char *verb;        /* "sent", "received" */
	const uint64_t *resumed; /* offsets it resumed at, in order (a rerun's start too) */
	int nresumed;
};
/* "10.0 MiB in 2.1 s (4.8 MiB/s, 40.27 Mbit/s)"; after any resume, automatic
 * or by running the command again, the same plus what moved now and where it
 * resumed: "10.0 MiB in 2.1 s, 3.2 MiB sent now (1.5 MiB/s, 12.78 Mbit/s),
 * resumed at 6.8 MiB". The rates are always of the bytes moved now; sizes in
 * binary units like the bar, the bitrate in SI bits as networks count it. */
char *progress_final(char *out, size_t outsz, const struct progress_end *e);

/* ---- pieces ---- */
/* 1023 -> "1023 B", 1536 -> "1.5 KiB", up to EiB; one decimal, rounding up
 * to the next unit rather than showing "1024.0 KiB". */
char *progress_bytes(char *out, size_t outsz, double bytes);
/* "0:05", "12:34", "1:02:03"; "--:--" when unknown (negative, not finite, huge). */
char *progress_eta(char *out, size_t outsz, double secs);
/* "0.003 s", "2.1 s", "1:02:03" for the final line. */
char *progress_secs(char *out, size_t outsz, double secs);

#endif
