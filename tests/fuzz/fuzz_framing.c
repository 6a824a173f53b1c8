/* fuzz_framing - framer_decode over both framings against the bare decoders it
 * wraps, and framing_encode checked by decoding what it made.
 *
 * Input: a flags byte (bit 0: TPKT, else lines; bit 1: small limits), a limit
 * byte, a u16 body length for the encoder, a head length byte, then the data.
 * The data is decoded by a framer and, call for call with the same byte
 * counts, by a line or TPKT decoder: results must map one to one (FRAME ->
 * FRAME_OK, LINE_TOO_LONG -> FRAME_REJECT "line too long", TPKT errors ->
 * FRAME_FATAL with tpkt_strerror's text, sticky). Then the data's first bytes
 * make a head (no newlines, as the server's heads) and the data repeated to
 * the body length makes a body; both encodings are decoded back. */
#include "fuzz.h"
#include "escape.h"
#include "framing.h"

#include <stdbool.h>
#include <string.h>

static void check_decode(const uint8_t *s, size_t n, bool tpkt, size_t max_line, size_t max_frame)
{
	struct framer f;
	struct line_decoder ld;
	struct tpkt_decoder td;
	bool fatal = false;

	framer_init(&f, tpkt ? FRAMING_TPKT : FRAMING_LINE, max_line, max_frame);
	CHECK(f.kind == (tpkt ? FRAMING_TPKT : FRAMING_LINE));
	line_decoder_init(&ld, max_line);
	tpkt_decoder_init(&td, max_frame);
	for (size_t pos = 0;;) {
		const char *cmd = "junk", *err = "junk", *bcmd;
		const unsigned char *payload;
		size_t used = 99999, len = 99999, bused, blen;
		enum frame_result r = framer_decode(&f, s + pos, n - pos, &used, &cmd, &len, &err);

		CHECK(used <= n - pos);
		if (r == FRAME_OK) {
			CHECK(cmd != NULL && err == NULL);
		} else if (r == FRAME_NEED_MORE) {
			CHECK(cmd == NULL && len == 0 && err == NULL && used == n - pos);
		} else {
			CHECK(cmd == NULL && len == 0 && err != NULL && *err);
		}
		if (tpkt) {
			enum tpkt_status st =
				tpkt_decode(&td, s + pos, n - pos, &bused, &payload, &blen);
			CHECK(bused == used);
			if (st == TPKT_FRAME)
				CHECK(r == FRAME_OK && blen == len &&
				      memcmp(payload, cmd, len) == 0);
			else if (st == TPKT_NEED_MORE)
				CHECK(r == FRAME_NEED_MORE);
			else
				CHECK(r == FRAME_FATAL && strcmp(err, tpkt_strerror(st)) == 0);
		} else {
			enum line_status st =
				line_decode(&ld, s + pos, n - pos, &bused, &bcmd, &blen);
			CHECK(bused == used);
			CHECK(r != FRAME_FATAL);
			if (st == LINE_FRAME)
				CHECK(r == FRAME_OK && blen == len && memcmp(bcmd, cmd, len) == 0);
			else if (st == LINE_TOO_LONG)
				CHECK(r == FRAME_REJECT && strcmp(err, "line too long") == 0);
			else
				CHECK(r == FRAME_NEED_MORE);
		}
		pos += used;
		if (r == FRAME_FATAL) {
			if (fatal)
				break; /* seen twice: sticky, done */
			fatal = true;
			continue; /* once more: must fail the same way */
		}
		if (pos == n)
			break;
	}
	framer_free(&f);
	line_decoder_free(&ld);
	tpkt_decoder_free(&td);
}

static void check_encode_tpkt(const char *head, size_t hlen, const char *body, size_t blen)
{
	struct blob *b = framing_encode(FRAMING_TPKT, head, hlen, body, blen);
	size_t h = hlen < TPKT_MAX_PAYLOAD ? hlen : TPKT_MAX_PAYLOAD;
	size_t bl = blen < TPKT_MAX_PAYLOAD - h ? blen : TPKT_MAX_PAYLOAD - h;
	struct tpkt_decoder d;
	const unsigned char *payload;
	size_t used, len;

	CHECK(b->refs == 1 && b->len <= b->cap);
	CHECK(b->len == TPKT_HDR_LEN + h + bl);
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	CHECK(tpkt_decode(&d, b->data, b->len, &used, &payload, &len) == TPKT_FRAME);
	CHECK(used == b->len && len == h + bl);
	CHECK(memcmp(payload, head, h) == 0);
	CHECK(bl == 0 || memcmp(payload + h, body, bl) == 0);
	tpkt_decoder_free(&d);
	blob_unref(b);
}

/* Appends text escaped by the line-mode rule (escape.h, ESCAPE_LINE) at out + *o. */
static void esc_append(char *out, size_t *o, const char *text, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t used, n = escape_unit(out + *o, (const unsigned char *)text + i, len - i,
		                             &used, ESCAPE_LINE);
		CHECK(n >= 1 && n <= ESCAPE_UNIT_MAX && used >= 1 && used <= len - i);
		*o += n;
		i += used;
	}
}

/* One "head<line>\n" per line of the body, head and line escaped by the line-mode
 * rule; a final newline of the body adds no empty line; an empty body gives
 * "head\n". Nothing but the line ends and tabs is a control byte. */
static void check_encode_lines(const char *head, size_t hlen, const char *body, size_t blen)
{
	struct blob *b = framing_encode(FRAMING_LINE, head, hlen, body, blen);
	size_t lines = 1;

	for (size_t i = 0; i < blen; i++)
		lines += body[i] == '\n';
	if (blen && body[blen - 1] == '\n')
		lines--;
	if (lines == 0)
		lines = 1;
	CHECK(b->refs == 1 && b->len <= b->cap);
	CHECK(b->len > 0 && b->data[b->len - 1] == '\n');

	/* The reference: at most 4 bytes out per byte in, plus a newline per line. */
	char *want = malloc(lines * (4 * hlen + 1) + 4 * blen + 1);
	size_t wlen = 0;
	CHECK(want != NULL);
	const char *p = body, *end = body + blen;
	do {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		esc_append(want, &wlen, head, hlen);
		esc_append(want, &wlen, p, (size_t)(stop - p));
		want[wlen++] = '\n';
		p = nl ? nl + 1 : end;
	} while (p < end);
	CHECK(b->len == wlen && memcmp(b->data, want, wlen) == 0);
	size_t nl_count = 0;
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = b->data[i];
		CHECK(c >= 0x20 || c == '\n' || c == '\t');
		CHECK(c != 0x7f);
		nl_count += c == '\n';
	}
	CHECK(nl_count == lines);
	free(want);
	blob_unref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags = fuzz_byte(&in), limit = fuzz_byte(&in);
	size_t body_len = fuzz_u16(&in) + (flags & 4 ? 65536 : 0);
	size_t head_len = fuzz_byte(&in);
	bool small = flags & 2;

	CHECK(framing_detect(TPKT_VERSION) == FRAMING_TPKT);
	CHECK(framing_detect(in.n ? in.p[0] : 0) ==
	      (in.n && in.p[0] == TPKT_VERSION ? FRAMING_TPKT : FRAMING_LINE));
	CHECK(strcmp(framing_name(FRAMING_TPKT), "tpkt") == 0);
	CHECK(strcmp(framing_name(FRAMING_LINE), "line") == 0);

	check_decode(in.p, in.n, flags & 1, small ? (size_t)limit % 32 + 1 : 65536,
	             small ? (size_t)limit % 64 + 5 : 65535);

	/* The encoder: a head from the front of the data, a body of body_len. */
	if (head_len > in.n)
		head_len = in.n;
	char *head = malloc(head_len + 1);
	char *body = malloc(body_len + 1);
	CHECK(head && body);
	for (size_t i = 0; i < head_len; i++)
		head[i] = in.p[i] == '\n' ? ' ' : (char)in.p[i];
	size_t rest = in.n - head_len;
	if (rest == 0)
		body_len = 0;
	for (size_t i = 0; i < body_len; i++)
		body[i] = (char)in.p[head_len + i % rest];
	/* Bodies past a TPKT frame are cut: test the cut, but lines only on small ones. */
	check_encode_tpkt(head, head_len, body, body_len);
	check_encode_tpkt(head, head_len, body, body_len < 300 ? body_len : 300);
	check_encode_lines(head, head_len, body, body_len < 4096 ? body_len : 4096);
	check_encode_lines(head, head_len, body, 0);
	free(head);
	free(body);
	return 0;
}
