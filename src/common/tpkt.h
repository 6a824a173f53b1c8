/* TPKT framing (RFC 1006): 0x03, 0x00, 16-bit big-endian whole-frame length, payload.
 * Pure: no I/O, no logging, no globals. */
#ifndef BOTTLE_TPKT_H
#define BOTTLE_TPKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPKT_VERSION 3
#define TPKT_HDR_LEN 4
#define TPKT_MAX_LEN 65535 /* whole frame */
#define TPKT_MAX_PAYLOAD (TPKT_MAX_LEN - TPKT_HDR_LEN)

enum tpkt_status {
	TPKT_NEED_MORE,    /* all input consumed, no complete frame yet */
	TPKT_FRAME,        /* one frame decoded */
	TPKT_BAD_VERSION,  /* first byte != 3 */
	TPKT_BAD_RESERVED, /* second byte != 0 */
	TPKT_BAD_LENGTH,   /* length field < 4 */
	TPKT_TOO_LONG,     /* length field > decoder's max_len */
};

struct tpkt_decoder {       /* fields are private; shown so callers can embed it */
	unsigned char *buf; /* partial payload, allocated only when a frame spans calls */
	uint32_t max_len;   /* largest whole frame accepted (4..65535) */
	uint32_t have, cap;
	uint32_t want; /* payload length of the current frame */
	unsigned char hdr[TPKT_HDR_LEN];
	unsigned char hdr_have;
	bool failed;         /* sticky: after an error, always return it again */
	unsigned char error; /* an enum tpkt_status */
};

/* max_len is clamped to TPKT_HDR_LEN..TPKT_MAX_LEN. */
void tpkt_decoder_init(struct tpkt_decoder *d, size_t max_len);
/* Frees the internal buffer; safe to call twice. */
void tpkt_decoder_free(struct tpkt_decoder *d);
/* The caller is done with the last payload: frees the buffer unless it holds part of the
 * next frame, so an idle decoder holds no memory. Ends the payload's validity like a call
 * to tpkt_decode. */
void tpkt_decoder_trim(struct tpkt_decoder *d);

/* Consumes bytes of in[0..n), stopping right after one complete frame; *used tells how many
 * were consumed. On TPKT_FRAME, *payload and *len give the payload: it points into `in`
 * (zero copy) when the payload was wholly in `in` and nothing was buffered, otherwise into
 * the decoder's own buffer; it stays valid until the next call on this decoder or until
 * `in` changes. On other statuses *payload is NULL and *len is 0.
 * Header errors are reported as soon as the offending byte arrives (version at byte 0,
 * reserved at byte 1, length after byte 3); *used then includes that byte. Errors are
 * sticky: later calls return the same error with *used == 0. All pointers must be
 * non-NULL except `in` when n == 0. */
enum tpkt_status tpkt_decode(struct tpkt_decoder *d, const void *in, size_t n, size_t *used,
                             const unsigned char **payload, size_t *len);

/* Writes the 4-byte header for a payload of payload_len bytes (<= TPKT_MAX_PAYLOAD). */
void tpkt_encode_header(unsigned char hdr[TPKT_HDR_LEN], size_t payload_len);

/* Fixed human text for a status; NEED_MORE and FRAME give "ok". */
const char *tpkt_strerror(enum tpkt_status st);

#endif
