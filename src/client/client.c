/* client.c - the client's connection (connect, queue commands, decode TPKT
 * frames, pair replies with commands) and the address rule; parsing and
 * showing messages is message.c. */
#include "client.h"
#include "escape.h"
#include "proto.h"
#include "utf8.h"
#include "xmalloc.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- address ---- */

const char *client_addr_pick(const char *arg, const char *env)
{
	if (arg)
		return arg;
	if (env && *env)
		return env;
	return BOTTLE_DEFAULT_ADDR;
}

/* Parsing and showing messages, and composing them: message.c. */

/* ---- the connection ---- */

int client_connect(struct client *c, const char *host, int port, int timeout_ms,
                   const struct net_keepalive *ka, char err[NET_ERR_LEN])
{
	memset(c, 0, sizeof *c);
	c->fd = net_connect(host, port, timeout_ms, err);
	if (c->fd < 0)
		return -1;
	client_attach(c, c->fd, ka);
	return 0;
}

void client_attach(struct client *c, int fd, const struct net_keepalive *ka)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	/* Best effort: a socket without keepalive or NODELAY still works. */
	net_set_nonblock(c->fd, true);
	if (ka)
		net_set_keepalive(c->fd, ka);
	net_set_nodelay(c->fd);
	tpkt_decoder_init(&c->dec, TPKT_MAX_LEN);
	outq_init(&c->out);
	c->rbuf = xmalloc(CLIENT_RBUF);
}

void client_close(struct client *c)
{
	if (c->io)
		c->io->close(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	tpkt_decoder_free(&c->dec);
	outq_free(&c->out);
	free(c->rbuf);
	free(c->tags);
	c->rbuf = NULL;
	c->tags = NULL;
	c->tag_count = c->tag_cap = c->tag_head = 0;
}

static void tag_push(struct client *c, int tag)
{
	if (c->tag_count == c->tag_cap) {
		size_t ncap = c->tag_cap ? c->tag_cap * 2 : 16;
		int *ring = xmalloc(ncap * sizeof *ring);
		for (size_t i = 0; i < c->tag_count; i++)
			ring[i] = c->tags[(c->tag_head + i) % c->tag_cap];
		free(c->tags);
		c->tags = ring;
		c->tag_cap = ncap;
		c->tag_head = 0;
	}
	c->tags[(c->tag_head + c->tag_count++) % c->tag_cap] = tag;
}

static int tag_pop(struct client *c)
{
	int tag = c->tags[c->tag_head];
	c->tag_head = (c->tag_head + 1) % c->tag_cap;
	c->tag_count--;
	return tag;
}

int client_send(struct client *c, const char *verb, const char *arg, size_t len, int tag)
{
	size_t vlen = strlen(verb), total = vlen + (len ? 1 + len : 0);
	unsigned char hdr[TPKT_HDR_LEN];

	if (total > TPKT_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	tpkt_encode_header(hdr, total);
	outq_append(&c->out, hdr, sizeof hdr);
	outq_append(&c->out, verb, vlen);
	if (len) {
		outq_append(&c->out, " ", 1);
		outq_append(&c->out, arg, len);
	}
	tag_push(c, tag);
	return 0;
}

ssize_t client_send_file(struct client *c, int fd, uint64_t off, size_t max)
{
	if (max > TPKT_MAX_PAYLOAD)
		max = TPKT_MAX_PAYLOAD;
	struct blob *b = blob_new(TPKT_HDR_LEN + max);
	ssize_t n;

	do
		n = pread(fd, b->data + TPKT_HDR_LEN, max, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		tpkt_encode_header(b->data, (size_t)n);
		b->len = TPKT_HDR_LEN + (size_t)n;
		outq_push(&c->out, b);
	}
	int saved = errno;
	blob_unref(b);
	errno = saved;
	return n;
}

int client_flush(struct client *c)
{
	if (!outq_bytes(&c->out))
		return 0;
	if ((c->io ? c->io->flush(c) : outq_flush(&c->out, c->fd)) < 0) {
		if (!c->io || errno != EPROTO) /* else the transport said what */
			snprintf(c->error, sizeof c->error, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

bool client_wants_write(const struct client *c) { return outq_bytes(&c->out) > 0; }
size_t client_pending_output(const struct client *c) { return outq_bytes(&c->out); }
size_t client_owed(const struct client *c) { return c->tag_count; }

size_t client_unacked(const struct client *c)
{
	int n = 0;
	if (c->fd < 0 || ioctl(c->fd, SIOCOUTQ, &n) < 0 || n < 0)
		return 0;
	return (size_t)n;
}

int client_read(struct client *c)
{
	if (c->roff < c->rlen)
		return 1; /* still holding undecoded bytes: decode first */
	ssize_t n =
		c->io ? c->io->read(c, c->rbuf, CLIENT_RBUF) : read(c->fd, c->rbuf, CLIENT_RBUF);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 1;
		if (!c->io || errno != EPROTO) /* else the transport said what */
			snprintf(c->error, sizeof c->error, "%s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		snprintf(c->error, sizeof c->error, "connection closed by server");
		return 0;
	}
	c->roff = 0;
	c->rlen = (size_t)n;
	return 1;
}

/* Decides what a parsed message is to us: greeting, the reply to the oldest
 * command owed, an unasked-for notice, or an event. */
static void assign_role(struct client *c, struct client_msg *m)
{
	if (!c->greeted) {
		c->greeted = true;
		m->role = CLIENT_GREETING;
	} else if (m->role == CLIENT_REPLY && c->tag_count) {
		m->tag = tag_pop(c);
	} else if (m->role == CLIENT_REPLY) {
		m->role = CLIENT_NOTICE;
	}
}

enum client_next client_next_frame(struct client *c, const unsigned char **payload, size_t *len)
{
	size_t used;

	if (c->roff == c->rlen)
		return CLIENT_NEXT_NONE;
	enum tpkt_status st =
		tpkt_decode(&c->dec, c->rbuf + c->roff, c->rlen - c->roff, &used, payload, len);
	c->roff += used;
	if (st == TPKT_NEED_MORE)
		return CLIENT_NEXT_NONE;
	if (st != TPKT_FRAME) {
		snprintf(c->error, sizeof c->error, "bad frame from server: %s", tpkt_strerror(st));
		return CLIENT_NEXT_BROKEN;
	}
	return CLIENT_NEXT_MSG;
}

enum client_next client_next_data(struct client *c, const unsigned char **payload, size_t *len)
{
	while (c->roff < c->rlen) {
		if (c->data_left) {
			size_t n =
				c->rlen - c->roff < c->data_left ? c->rlen - c->roff : c->data_left;
			*payload = c->rbuf + c->roff;
			*len = n;
			c->roff += n;
			c->data_left -= n;
			return CLIENT_NEXT_MSG;
		}
		c->data_hdr[c->data_hdr_have++] = c->rbuf[c->roff++];
		if (c->data_hdr_have < TPKT_HDR_LEN)
			continue;
		const unsigned char *h = c->data_hdr;
		size_t total = (size_t)h[2] << 8 | h[3];
		c->data_hdr_have = 0;
		enum tpkt_status bad = h[0] != TPKT_VERSION   ? TPKT_BAD_VERSION
		                       : h[1] != 0            ? TPKT_BAD_RESERVED
		                       : total < TPKT_HDR_LEN ? TPKT_BAD_LENGTH
		                                              : TPKT_FRAME;
		if (bad != TPKT_FRAME) {
			snprintf(c->error, sizeof c->error, "bad frame from server: %s",
			         tpkt_strerror(bad));
			return CLIENT_NEXT_BROKEN;
		}
		c->data_left = total - TPKT_HDR_LEN;
	}
	return CLIENT_NEXT_NONE;
}

enum client_next client_next(struct client *c, struct client_msg *m)
{
	const unsigned char *payload;
	size_t len;
	enum client_next st = client_next_frame(c, &payload, &len);

	if (st != CLIENT_NEXT_MSG)
		return st;
	client_parse((const char *)payload, len, m);
	assign_role(c, m);
	return CLIENT_NEXT_MSG;
}
