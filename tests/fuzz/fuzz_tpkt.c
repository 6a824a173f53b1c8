/* fuzz_tpkt - tpkt_decode against a reference decoder, whole and in chunks.
 *
 * Input: u16 max_len (clamped by the decoder to 4..65535), a flags byte (bit 0:
 * add 65536 to max_len, to test the upper clamp), a chunk spec (fuzz.h), then
 * the byte stream. The stream is decoded three ways: by a small reference
 * written from RFC 1006 and tpkt.h, by one decoder fed everything at once, and
 * by another fed in chunks of the input's choosing. All three must give the
 * same frames, the same final status and the same count of consumed bytes;
 * each call must keep the contract of tpkt.h (used <= n, payload bounds, zero
 * copy when nothing was buffered, sticky errors reported with used == 0). */
#include "fuzz.h"
#include "tpkt.h"

#include <stdbool.h>
#include <string.h>

/* What a decoding produced. */
struct tlog {
	size_t nframes;
	size_t *lens;
	unsigned char *bytes; /* the payloads, one after the other */
	size_t nbytes;
	enum tpkt_status end; /* NEED_MORE, or the error that stopped it */
	size_t consumed;
};

static void tlog_init(struct tlog *lg, size_t n)
{
	memset(lg, 0, sizeof *lg);
	lg->lens = malloc((n / TPKT_HDR_LEN + 1) * sizeof *lg->lens);
	lg->bytes = malloc(n + 1);
	CHECK(lg->lens && lg->bytes);
}

static void tlog_free(struct tlog *lg)
{
	free(lg->lens);
	free(lg->bytes);
}

static void tlog_frame(struct tlog *lg, const unsigned char *p, size_t len)
{
	lg->lens[lg->nframes++] = len;
	if (len)
		memcpy(lg->bytes + lg->nbytes, p, len);
	lg->nbytes += len;
}

static void tlog_same(const struct tlog *a, const struct tlog *b)
{
	CHECK(a->nframes == b->nframes);
	CHECK(a->nbytes == b->nbytes);
	CHECK(a->end == b->end);
	CHECK(a->consumed == b->consumed);
	for (size_t i = 0; i < a->nframes; i++)
		CHECK(a->lens[i] == b->lens[i]);
	CHECK(a->nbytes == 0 || memcmp(a->bytes, b->bytes, a->nbytes) == 0);
}

/* The reference: the whole stream at hand, one frame after another. An error
 * counts as found at its byte: version at 0, reserved at 1, length at 3. */
static void ref_decode(const uint8_t *s, size_t n, size_t max_len, struct tlog *lg)
{
	size_t pos = 0;

	lg->end = TPKT_NEED_MORE;
	lg->consumed = n;
	for (;;) {
		if (pos == n)
			return;
		if (s[pos] != TPKT_VERSION) {
			lg->end = TPKT_BAD_VERSION;
			lg->consumed = pos + 1;
			return;
		}
		if (pos + 1 == n)
			return;
		if (s[pos + 1] != 0) {
			lg->end = TPKT_BAD_RESERVED;
			lg->consumed = pos + 2;
			return;
		}
		if (n - pos < TPKT_HDR_LEN)
			return;
		size_t total = (size_t)s[pos + 2] * 256 + s[pos + 3];
		if (total < TPKT_HDR_LEN || total > max_len) {
			lg->end = total < TPKT_HDR_LEN ? TPKT_BAD_LENGTH : TPKT_TOO_LONG;
			lg->consumed = pos + TPKT_HDR_LEN;
			return;
		}
		if (n - pos < total)
			return;
		unsigned char hdr[TPKT_HDR_LEN];
		tpkt_encode_header(hdr, total - TPKT_HDR_LEN);
		CHECK(memcmp(hdr, s + pos, TPKT_HDR_LEN) == 0);
		tlog_frame(lg, s + pos + TPKT_HDR_LEN, total - TPKT_HDR_LEN);
		pos += total;
	}
}

/* One call, checked against the contract. Returns its status; *used as told. */
static enum tpkt_status checked_decode(struct tpkt_decoder *d, const uint8_t *in, size_t n,
                                       size_t *used, struct tlog *lg)
{
	const unsigned char *payload = (const unsigned char *)"junk";
	size_t len = 12345;
	bool was_failed = d->failed;
	size_t buffered = d->have;
	enum tpkt_status st = tpkt_decode(d, in, n, used, &payload, &len);

	CHECK(*used <= n);
	CHECK(strcmp(tpkt_strerror(st), "ok") == 0 || (st != TPKT_FRAME && st != TPKT_NEED_MORE));
	if (was_failed) {
		/* Sticky: the same error again, nothing consumed. */
		CHECK(st == d->error && st != TPKT_FRAME && st != TPKT_NEED_MORE);
		CHECK(*used == 0 && payload == NULL && len == 0);
		return st;
	}
	switch (st) {
	case TPKT_FRAME:
		CHECK(*used > 0); /* a frame's last byte comes with it */
		CHECK(payload != NULL);
		CHECK(len <= d->max_len - TPKT_HDR_LEN);
		if (buffered == 0) {
			/* Nothing held back: the payload is the tail of what this call used. */
			CHECK(in != NULL && payload + len == in + *used && payload >= in);
		} else {
			CHECK(payload == d->buf);
			CHECK(len > buffered);
		}
		tlog_frame(lg, payload, len);
		break;
	case TPKT_NEED_MORE:
		CHECK(*used == n);
		CHECK(payload == NULL && len == 0);
		break;
	default:
		CHECK(*used >= 1); /* the offending byte is included */
		CHECK(payload == NULL && len == 0);
		CHECK(d->failed && d->error == st);
		break;
	}
	return st;
}

/* Feeds s[0..n) to d, in chunks from ch (or all at once when ch is NULL). */
static void run_decoder(struct tpkt_decoder *d, const uint8_t *s, size_t n, struct fuzz_chunks *ch,
                        struct tlog *lg)
{
	size_t pos = 0, used;

	lg->end = TPKT_NEED_MORE;
	while (pos < n) {
		size_t len = ch ? fuzz_chunks_next(ch, n - pos) : n - pos;
		if (len == 0) { /* an empty call changes nothing */
			CHECK(checked_decode(d, NULL, 0, &used, lg) == TPKT_NEED_MORE);
			len = 1;
		}
		for (size_t off = 0; off < len;) {
			enum tpkt_status st =
				checked_decode(d, s + pos + off, len - off, &used, lg);
			off += used;
			if (st == TPKT_FRAME || st == TPKT_NEED_MORE)
				continue;
			lg->end = st;
			lg->consumed = pos + off;
			/* Sticky, whatever comes next. */
			CHECK(checked_decode(d, s + pos + off, len - off, &used, lg) == st);
			CHECK(checked_decode(d, NULL, 0, &used, lg) == st);
			return;
		}
		pos += len;
	}
	lg->consumed = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	size_t max_len = fuzz_u16(&in);
	uint8_t flags = fuzz_byte(&in);
	struct fuzz_chunks ch;
	struct tpkt_decoder whole, split;
	struct tlog ref, lw, ls;

	if (flags & 1)
		max_len += 65536;
	fuzz_chunks_init(&ch, &in);
	size_t eff = max_len < TPKT_HDR_LEN   ? TPKT_HDR_LEN
	             : max_len > TPKT_MAX_LEN ? TPKT_MAX_LEN
	                                      : max_len;

	tpkt_decoder_init(&whole, max_len);
	tpkt_decoder_init(&split, max_len);
	CHECK(whole.max_len == eff);
	tlog_init(&ref, in.n);
	tlog_init(&lw, in.n);
	tlog_init(&ls, in.n);

	ref_decode(in.p, in.n, eff, &ref);
	run_decoder(&whole, in.p, in.n, NULL, &lw);
	run_decoder(&split, in.p, in.n, &ch, &ls);
	tlog_same(&ref, &lw);
	tlog_same(&ref, &ls);

	tpkt_decoder_free(&whole);
	tpkt_decoder_free(&whole); /* safe twice */
	tpkt_decoder_free(&split);
	tlog_free(&ref);
	tlog_free(&lw);
	tlog_free(&ls);
	return 0;
}
