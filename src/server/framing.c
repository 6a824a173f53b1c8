/* framing.c - chooses and drives a framer, and encodes replies per framing. */
#include "framing.h"
#include "escape.h"

#include <stdbool.h>
#include <string.h>

void framer_init(struct framer *f, enum framing_kind kind, size_t max_line, size_t max_frame)
{
	f->kind = kind;
	if (kind == FRAMING_TPKT)
		tpkt_decoder_init(&f->u.tpkt, max_frame);
	else
		line_decoder_init(&f->u.line, max_line);
}

void framer_free(struct framer *f)
{
	if (f->kind == FRAMING_TPKT)
		tpkt_decoder_free(&f->u.tpkt);
	else
		line_decoder_free(&f->u.line);
}

size_t framer_take_reply(struct framer *f, unsigned char **out)
{
	*out = NULL;
	if (f->kind != FRAMING_LINE)
		return 0;
	return line_decoder_take_reply(&f->u.line, out);
}

void framer_trim(struct framer *f)
{
	if (f->kind == FRAMING_TPKT)
		tpkt_decoder_trim(&f->u.tpkt);
	else
		line_decoder_trim(&f->u.line);
}

enum framing_kind framing_detect(unsigned char first_byte)
{
	return first_byte == TPKT_VERSION ? FRAMING_TPKT : FRAMING_LINE;
}

const char *framing_name(enum framing_kind kind) { return kind == FRAMING_TPKT ? "tpkt" : "line"; }

static enum frame_result decode_line(struct line_decoder *d, const void *in, size_t n, size_t *used,
                                     const char **cmd, size_t *len, const char **error)
{
	switch (line_decode(d, in, n, used, cmd, len)) {
	case LINE_FRAME: return FRAME_OK;
	case LINE_TOO_LONG: *error = "line too long"; return FRAME_REJECT;
	default: return FRAME_NEED_MORE;
	}
}

static enum frame_result decode_tpkt(struct tpkt_decoder *d, const void *in, size_t n, size_t *used,
                                     const char **cmd, size_t *len, const char **error)
{
	const unsigned char *payload;
	enum tpkt_status st = tpkt_decode(d, in, n, used, &payload, len);

	if (st == TPKT_NEED_MORE)
		return FRAME_NEED_MORE;
	if (st == TPKT_FRAME) {
		*cmd = (const char *)payload;
		return FRAME_OK;
	}
	*error = tpkt_strerror(st);
	return FRAME_FATAL;
}

enum frame_result framer_decode(struct framer *f, const void *in, size_t n, size_t *used,
                                const char **cmd, size_t *len, const char **error)
{
	*cmd = NULL;
	*len = 0;
	*error = NULL;
	if (f->kind == FRAMING_TPKT)
		return decode_tpkt(&f->u.tpkt, in, n, used, cmd, len, error);
	return decode_line(&f->u.line, in, n, used, cmd, len, error);
}

static struct blob *encode_tpkt(const char *head, size_t hlen, const char *body, size_t blen)
{
	if (hlen > TPKT_MAX_PAYLOAD)
		hlen = TPKT_MAX_PAYLOAD;
	if (blen > TPKT_MAX_PAYLOAD - hlen)
		blen = TPKT_MAX_PAYLOAD - hlen;
	struct blob *b = blob_new(TPKT_HDR_LEN + hlen + blen);
	tpkt_encode_header(b->data, hlen + blen);
	b->len = TPKT_HDR_LEN;
	blob_append(b, head, hlen);
	blob_append(b, body, blen);
	return b;
}

/* True when text[0..len) holds a byte the line-mode rule may change; with `split`,
 * newlines don't count (the body's become line ends). */
static bool needs_escape(const char *text, size_t len, bool split)
{
	for (size_t i = 0; i < len; i++)
		if (escape_needs_look((unsigned char)text[i], ESCAPE_LINE) &&
		    !(split && text[i] == '\n'))
			return true;
	return false;
}

/* Appends text[0..len) to b made safe for a terminal (escape.h, ESCAPE_LINE);
 * with b NULL, only counts. Returns the bytes it appends. */
static size_t put_escaped(struct blob *b, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t out = 0;

	for (size_t i = 0; i < len;) {
		char tmp[ESCAPE_UNIT_MAX];
		size_t used, n = escape_unit(tmp, s + i, len - i, &used, ESCAPE_LINE);
		if (b)
			blob_append(b, tmp, n);
		out += n;
		i += used;
	}
	return out;
}

/* One "head line\n" per line of the body; each part escaped unless it is plain. */
static struct blob *encode_lines(const char *head, size_t hlen, const char *body, size_t blen)
{
	bool esc_head = needs_escape(head, hlen, false), esc_body = needs_escape(body, blen, true);
	size_t ehlen = esc_head ? put_escaped(NULL, head, hlen) : hlen;
	size_t nlines = 1, size = 0;
	const char *p = body, *end = body + blen;

	for (size_t i = 0; i < blen; i++)
		nlines += body[i] == '\n';
	/* Newlines become line ends, so the escaped body never counts them. */
	size = esc_body ? put_escaped(NULL, body, blen) - 2 * (nlines - 1) : blen;
	struct blob *b = blob_new(nlines * (ehlen + 1) + size);
	do {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		if (esc_head)
			put_escaped(b, head, hlen);
		else
			blob_append(b, head, hlen);
		if (esc_body)
			put_escaped(b, p, (size_t)(stop - p));
		else
			blob_append(b, p, (size_t)(stop - p));
		blob_append(b, "\n", 1);
		p = nl ? nl + 1 : end;
	} while (p < end);
	return b;
}

struct blob *framing_encode(enum framing_kind kind, const char *head, size_t hlen, const char *body,
                            size_t blen)
{
	if (kind == FRAMING_TPKT)
		return encode_tpkt(head, hlen, body, blen);
	return encode_lines(head, hlen, body, blen);
}
