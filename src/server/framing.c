/* framing.c - chooses and drives a framer, and encodes replies per framing. */
#include "framing.h"

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

static struct blob *encode_lines(const char *head, size_t hlen, const char *body, size_t blen)
{
	size_t nlines = 1;
	for (size_t i = 0; i < blen; i++)
		nlines += body[i] == '\n';
	struct blob *b = blob_new(nlines * (hlen + 1) + blen);
	const char *p = body, *end = body + blen;
	do {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		blob_append(b, head, hlen);
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
