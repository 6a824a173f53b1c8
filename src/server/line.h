/* line.h - line framing for telnet/netcat users, pure: no I/O.
 * A line ends with "\n"; a "\r" right before it is dropped. Telnet IAC sequences
 * are removed (IAC IAC stands for one 0xFF byte). Lines longer than max are
 * reported once as too long and discarded up to their newline. */
#ifndef BOTTLE_LINE_H
#define BOTTLE_LINE_H

#include <stdbool.h>
#include <stddef.h>

enum line_status {
	LINE_NEED_MORE, /* all input consumed, no complete line yet */
	LINE_FRAME,     /* one line decoded */
	LINE_TOO_LONG,  /* a line passed max; its rest will be skipped */
};

struct line_decoder { /* private; shown so callers can embed it */
	size_t max;
	char *buf; /* partial line, allocated when a line spans reads */
	size_t len, cap;
	int telnet; /* IAC parser state */
	bool discarding;
};

void line_decoder_init(struct line_decoder *d, size_t max);
void line_decoder_free(struct line_decoder *d);
/* Consumes in[0..n) up to and including one line end. On LINE_FRAME, *line and *len
 * give the line without its "\r\n"; it points into `in` or into the decoder and is
 * valid until the next call. *used tells how much of `in` was consumed. */
enum line_status line_decode(struct line_decoder *d, const void *in, size_t n, size_t *used,
                             const char **line, size_t *len);
/* True when the decoder holds part of a line (used to tell a clean EOF). */
bool line_decoder_pending(const struct line_decoder *d);

#endif
