/* framing.h - the layer between bytes and commands. A connection speaks one
 * framing for its whole life, chosen by its first byte: TPKT (RFC 1006) when
 * it is 0x03, lines otherwise. Commands and replies are the same text in both;
 * only the envelope differs. Pure: no I/O. */
#ifndef BOTTLE_FRAMING_H
#define BOTTLE_FRAMING_H

#include "buf.h"
#include "line.h"
#include "tpkt.h"

#include <stddef.h>

enum framing_kind { FRAMING_LINE, FRAMING_TPKT, FRAMING_COUNT };

enum frame_result {
	FRAME_NEED_MORE, /* everything consumed, nothing complete */
	FRAME_OK,        /* one command */
	FRAME_REJECT,    /* a bad frame that was skipped: reply with the error, go on */
	FRAME_FATAL,     /* the stream can't be trusted: reply with the error, close */
};

struct framer {
	enum framing_kind kind;
	union {
		struct line_decoder line;
		struct tpkt_decoder tpkt;
	} u;
};

void framer_init(struct framer *f, enum framing_kind kind, size_t max_line, size_t max_frame);
void framer_free(struct framer *f);
/* Decodes at most one command from in[0..n). On FRAME_OK, *cmd and *len hold it (valid
 * until the next call); on REJECT/FATAL, *error says what was wrong. */
enum frame_result framer_decode(struct framer *f, const void *in, size_t n, size_t *used,
                                const char **cmd, size_t *len, const char **error);
/* Bytes the decoder wants sent back to the peer (telnet answers, line framing only),
 * collected by the decode calls since the last take: *out is a malloc'ed buffer the
 * caller sends as is and frees. Returns their length; 0 (and *out NULL) when none. */
size_t framer_take_reply(struct framer *f, unsigned char **out);
/* Tells the framer the last command has been used: buffers that hold no partial
 * frame or line are freed, so an idle connection keeps none. */
void framer_trim(struct framer *f);
enum framing_kind framing_detect(unsigned char first_byte);
const char *framing_name(enum framing_kind kind);

/* Encodes one server message, head followed by body, as a new blob:
 *  line: one "head line\n" for each line of body (so a multi-line chat message
 *        stays readable by telnet users), or "head\n" when body is empty; head and
 *        lines made safe for a terminal (escape.h, ESCAPE_LINE: controls, bytes that
 *        are not UTF-8 and bidi controls escaped, tab and backslash kept);
 *  tpkt: one frame whose payload is head and body, byte for byte.
 * A TPKT payload is cut at TPKT_MAX_PAYLOAD; callers keep messages below it. */
struct blob *framing_encode(enum framing_kind kind, const char *head, size_t hlen, const char *body,
                            size_t blen);

#endif
