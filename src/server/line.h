/* line.h - line framing for telnet/netcat users, pure: no I/O.
 * A line ends with "\n"; a "\r" right before it is dropped. Lines longer than max
 * are reported once as too long and discarded up to their newline.
 * Telnet (RFC 854) is removed from the input and answered (docs/protocol.md,
 * "Line framing"): IAC IAC stands for one 0xFF byte; IAC IP, BRK, AO and EL drop
 * the line typed so far; DO TIMING-MARK is answered WILL TIMING-MARK (RFC 860),
 * every other option is refused (DO x: WONT x, WILL x: DONT x; WONT and DONT need
 * no answer); IAC AYT is answered "[bottled: yes]"; the rest (NOP, DM, GA, EC,
 * subnegotiations) is ignored. Answers collect in the decoder until taken. */
#ifndef BOTTLE_LINE_H
#define BOTTLE_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum line_status {
	LINE_NEED_MORE, /* all input consumed, no complete line yet */
	LINE_FRAME,     /* one line decoded */
	LINE_TOO_LONG,  /* a line passed max; its rest will be skipped */
};

/* Answers a decoder collects between takes, at most (a flood of negotiation gets no
 * more; nothing a real telnet sends comes near). */
#define LINE_REPLY_MAX 65536
/* The answer to IAC AYT ("are you there"). */
#define LINE_AYT_ANSWER "[bottled: yes]\n"

struct line_decoder {         /* private; shown so callers can embed it */
	char *buf;            /* partial line, allocated only when one is kept across calls */
	unsigned char *reply; /* telnet answers not taken yet, allocated when there are some */
	uint32_t max;         /* longest line (clamped to LINE_MAX_MAX) */
	uint32_t len, cap;
	uint32_t reply_len, reply_cap;
	unsigned char telnet; /* IAC parser state */
	unsigned char verb;   /* WILL/WONT/DO/DONT waiting for its option byte */
	bool discarding;
};

/* The largest max line_decoder_init takes; more is clamped to it. */
#define LINE_MAX_MAX (1u << 30)

void line_decoder_init(struct line_decoder *d, size_t max);
/* Frees the buffers (and untaken answers); safe to call twice. */
void line_decoder_free(struct line_decoder *d);
/* Consumes in[0..n) up to and including one line end. On LINE_FRAME, *line and *len
 * give the line without its "\r\n"; it points into `in` (a line wholly in `in` with no
 * telnet bytes is not copied) or into the decoder and is valid until the next call.
 * *used tells how much of `in` was consumed. */
enum line_status line_decode(struct line_decoder *d, const void *in, size_t n, size_t *used,
                             const char **line, size_t *len);
/* True when the decoder holds part of a line (used to tell a clean EOF). */
bool line_decoder_pending(const struct line_decoder *d);
/* Hands over the telnet answers collected since the last take: *out is malloc'ed, the
 * caller sends and frees it. Returns their length; 0 and *out NULL when there are none. */
size_t line_decoder_take_reply(struct line_decoder *d, unsigned char **out);
/* The caller is done with the last line: frees the line buffer unless it holds part of
 * the next one. Ends the validity of the last line like a call to line_decode. */
void line_decoder_trim(struct line_decoder *d);

#endif
