/* TPKT framing (RFC 1006): incremental decoder and header encoder. */
#include "tpkt.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Buffers up to this size are kept between the frames of one read; bigger ones are
 * released once their frame has been delivered, and tpkt_decoder_trim releases any, so
 * an idle connection pins none. */
#define TPKT_KEEP_CAP 4096

/* Standalone on purpose (no project xmalloc): out of memory is fatal. */
static void *tpkt_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	return p;
}

static enum tpkt_status tpkt_fail(struct tpkt_decoder *d, enum tpkt_status st)
{
	d->failed = true;
	d->error = (unsigned char)st;
	return st;
}

static void tpkt_reset_frame(struct tpkt_decoder *d)
{
	d->hdr_have = 0;
	d->want = 0;
	d->have = 0;
}

static void tpkt_release_buf(struct tpkt_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->cap = 0;
}

/* Called with have == 0, so old contents need not be preserved. */
static void tpkt_reserve(struct tpkt_decoder *d, size_t need)
{
	if (d->cap >= need)
		return;
	tpkt_release_buf(d);
	d->cap = (uint32_t)(need > TPKT_KEEP_CAP ? need : TPKT_KEEP_CAP);
	d->buf = tpkt_xmalloc(d->cap);
}

/* Validates the header byte just stored at hdr[hdr_have - 1]. */
static enum tpkt_status tpkt_check_hdr_byte(struct tpkt_decoder *d)
{
	size_t total;

	switch (d->hdr_have) {
	case 1: return d->hdr[0] == TPKT_VERSION ? TPKT_NEED_MORE : TPKT_BAD_VERSION;
	case 2: return d->hdr[1] == 0 ? TPKT_NEED_MORE : TPKT_BAD_RESERVED;
	case TPKT_HDR_LEN:
		total = (size_t)d->hdr[2] << 8 | d->hdr[3];
		if (total < TPKT_HDR_LEN)
			return TPKT_BAD_LENGTH;
		if (total > d->max_len)
			return TPKT_TOO_LONG;
		d->want = (uint32_t)(total - TPKT_HDR_LEN);
		return TPKT_NEED_MORE;
	default: return TPKT_NEED_MORE;
	}
}

/* Collects header bytes one at a time so a bad byte is reported the moment it arrives.
 * Returns TPKT_FRAME once the header is complete and valid, NEED_MORE if input ran out. */
static enum tpkt_status tpkt_read_header(struct tpkt_decoder *d, const unsigned char *p, size_t n,
                                         size_t *pos)
{
	enum tpkt_status st;

	while (d->hdr_have < TPKT_HDR_LEN) {
		if (*pos == n)
			return TPKT_NEED_MORE;
		d->hdr[d->hdr_have++] = p[(*pos)++];
		st = tpkt_check_hdr_byte(d);
		if (st != TPKT_NEED_MORE)
			return tpkt_fail(d, st);
	}
	return TPKT_FRAME;
}

static enum tpkt_status tpkt_read_payload(struct tpkt_decoder *d, const unsigned char *p, size_t n,
                                          size_t *pos, const unsigned char **payload, size_t *len)
{
	size_t avail = n - *pos;
	size_t take;

	if (d->have == 0 && avail >= d->want) {
		/* Whole payload is in the caller's buffer: hand it out without copying. */
		*payload = p + *pos;
		*len = d->want;
		*pos += d->want;
		tpkt_reset_frame(d);
		return TPKT_FRAME;
	}
	if (avail == 0)
		return TPKT_NEED_MORE; /* don't allocate until payload bytes really split */
	tpkt_reserve(d, d->want);
	/* Mid-frame (have > 0) or reserved just now for want > 0 bytes: the buffer exists. */
	assert(d->buf != NULL);
	take = d->want - d->have < avail ? d->want - d->have : avail;
	memcpy(d->buf + d->have, p + *pos, take);
	d->have += (uint32_t)take;
	*pos += take;
	if (d->have < d->want)
		return TPKT_NEED_MORE;
	*payload = d->buf;
	*len = d->want;
	tpkt_reset_frame(d);
	return TPKT_FRAME;
}

void tpkt_decoder_init(struct tpkt_decoder *d, size_t max_len)
{
	memset(d, 0, sizeof(*d));
	if (max_len < TPKT_HDR_LEN)
		max_len = TPKT_HDR_LEN;
	if (max_len > TPKT_MAX_LEN)
		max_len = TPKT_MAX_LEN;
	d->max_len = (uint32_t)max_len;
	d->error = TPKT_NEED_MORE;
}

void tpkt_decoder_free(struct tpkt_decoder *d)
{
	tpkt_release_buf(d);
	d->have = 0;
}

void tpkt_decoder_trim(struct tpkt_decoder *d)
{
	if (d->have == 0 && d->buf)
		tpkt_release_buf(d);
}

enum tpkt_status tpkt_decode(struct tpkt_decoder *d, const void *in, size_t n, size_t *used,
                             const unsigned char **payload, size_t *len)
{
	const unsigned char *p = in;
	size_t pos = 0;
	enum tpkt_status st;

	*used = 0;
	*payload = NULL;
	*len = 0;
	if (d->failed)
		return (enum tpkt_status)d->error;
	/* Between frames the buffer holds at most an already-delivered payload, which this
	 * call invalidates anyway, so a big one can go now. */
	if (d->hdr_have < TPKT_HDR_LEN && d->cap > TPKT_KEEP_CAP)
		tpkt_release_buf(d);
	st = tpkt_read_header(d, p, n, &pos);
	if (st == TPKT_FRAME)
		st = tpkt_read_payload(d, p, n, &pos, payload, len);
	*used = pos;
	return st;
}

void tpkt_encode_header(unsigned char hdr[TPKT_HDR_LEN], size_t payload_len)
{
	size_t total = payload_len + TPKT_HDR_LEN;

	assert(payload_len <= TPKT_MAX_PAYLOAD);
	hdr[0] = TPKT_VERSION;
	hdr[1] = 0;
	hdr[2] = (unsigned char)(total >> 8);
	hdr[3] = (unsigned char)(total & 0xff);
}

const char *tpkt_strerror(enum tpkt_status st)
{
	switch (st) {
	case TPKT_NEED_MORE:
	case TPKT_FRAME: return "ok";
	case TPKT_BAD_VERSION: return "bad TPKT version";
	case TPKT_BAD_RESERVED: return "bad TPKT reserved byte";
	case TPKT_BAD_LENGTH: return "bad TPKT length";
	case TPKT_TOO_LONG: return "TPKT frame too long";
	}
	return "unknown TPKT status";
}
