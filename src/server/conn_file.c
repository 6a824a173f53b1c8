/* conn_file.c - a file sent over a connection, without copying it through
 * memory: sendfile straight to the socket in line mode; in TPKT mode each
 * frame's 4-byte header (MSG_MORE), then sendfile of its payload. Bounded per
 * loop turn, and replies queued before always go first. */
#include "conn.h"
#include "tpkt.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* A file being sent moves at most this much per loop turn, in either mode:
 * on loopback that is well under a millisecond of sendfile, so a download
 * never holds up the other clients for long. */
#define CONN_SENDFILE_STEP (256u * 1024)

/* A socket error (c closed) or, when the file is what failed, the file's. */
static ssize_t send_failed(struct conn *c, int fd, off_t pos, bool socket_side)
{
	int err = errno;
	char probe;

	if (!socket_side && pread(fd, &probe, 1, pos) < 0)
		return -1; /* sendfile can't tell which end failed: the file did */
	conn_close_errno(c, err);
	errno = err;
	return -1;
}

/* Line mode: the kernel copies file pages straight to the socket. */
static ssize_t send_file_raw(struct conn *c, int fd, uint64_t off, uint64_t len)
{
	off_t pos = (off_t)off;
	size_t want = len < CONN_SENDFILE_STEP ? (size_t)len : CONN_SENDFILE_STEP;

	if (outq_bytes(&c->out))
		return 0; /* replies first: they were sent first */
	ssize_t n = sendfile(c->fd, fd, &pos, want);
	if (n > 0) {
		c->last_io = loop_now(c->env->loop);
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0) {
		errno = ENODATA;
		return -1;
	}
	return send_failed(c, fd, pos, false);
}

/* TPKT mode without copying: each frame's 4-byte header goes to the socket
 * (MSG_MORE: it leaves with its payload), then sendfile hands the kernel the
 * payload's file pages. At most CONN_SENDFILE_STEP bytes per call, so one
 * transfer never holds the loop for long. A frame the socket took only part
 * of is completed from the file into the queue, so every call ends on a
 * frame boundary and nothing else can slip into a frame. */

/* Queues what the socket did not take of a frame: the rest of its header
 * (sent bytes of it: hdr_sent) and of its payload (from off, rest bytes). */
static int splice_complete(struct conn *c, int fd, const unsigned char *hdr, size_t hdr_sent,
                           uint64_t off, size_t rest)
{
	struct blob *b = blob_new(rest ? rest : 1);
	ssize_t r = rest ? pread(fd, b->data, rest, (off_t)off) : 0;

	if (r != (ssize_t)rest) {
		blob_unref(b);
		if (r >= 0)
			errno = ENODATA;
		return -1; /* the frame can't be completed: the connection must end */
	}
	if (hdr_sent < TPKT_HDR_LEN)
		outq_append(&c->out, hdr + hdr_sent, TPKT_HDR_LEN - hdr_sent);
	b->len = rest;
	if (rest)
		outq_push(&c->out, b);
	blob_unref(b);
	conn_want_flush(c);
	return 0;
}

static ssize_t send_file_spliced(struct conn *c, int fd, uint64_t off, uint64_t len)
{
	uint64_t moved = 0;

	if (outq_bytes(&c->out))
		return 0; /* replies first, and the queue ends on a frame boundary */
	while (moved < len && moved < CONN_SENDFILE_STEP) {
		uint64_t left = len - moved;
		size_t want = left < TPKT_MAX_PAYLOAD ? (size_t)left : TPKT_MAX_PAYLOAD;
		unsigned char hdr[TPKT_HDR_LEN];
		tpkt_encode_header(hdr, want);
		ssize_t h = send(c->fd, hdr, sizeof hdr, MSG_DONTWAIT | MSG_MORE | MSG_NOSIGNAL);
		if (h < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (h < 0)
			return send_failed(c, fd, 0, true);
		off_t pos = (off_t)(off + moved);
		ssize_t n = h == (ssize_t)sizeof hdr ? sendfile(c->fd, fd, &pos, want) : 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return send_failed(c, fd, pos, false);
		n = n < 0 ? 0 : n;
		moved += (uint64_t)n;
		if ((size_t)n == want)
			continue;
		/* The socket is full mid-frame: the rest waits in the queue, read from
		 * the file (the only copy on this path). */
		if (splice_complete(c, fd, hdr, (size_t)h, off + moved, want - (size_t)n) < 0)
			return -1;
		moved += want - (size_t)n;
		break;
	}
	if (moved)
		c->last_io = loop_now(c->env->loop);
	return (ssize_t)moved;
}

ssize_t conn_send_file(struct conn *c, int fd, uint64_t off, uint64_t len)
{
	if (c->state == CONN_DEAD) {
		errno = ECONNRESET;
		return -1;
	}
	if (c->io)
		return c->io->send_file(c, fd, off, len); /* TLS: tls.c */
	if (c->framer.kind == FRAMING_TPKT)
		return send_file_spliced(c, fd, off, len);
	return send_file_raw(c, fd, off, len);
}
