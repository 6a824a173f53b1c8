/* put.c - an upload as one kind of transfer (kind.h; docs/protocol.md,
 * UPLOAD). It hashes the local file first, in steps: the digest and the
 * user's key make the resume token, so the same command run again finds the
 * server's partial. Then on each connection:
 *
 *   HASH -> (the link is up) ASKED -> SEND -> SENT -> "OK <size> <sha256>"
 *
 * "OK <offset>" says where to go on from; data goes in frames while the queue
 * has room and the rate limit allows. */
#include "kind.h"
#include "escape.h"
#include "reply.h"
#include "resume.h"
#include "sha256.h"
#include "userkey.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_STEP (1 << 20) /* bytes hashed per step */
#define HASH_BUF (64 * 1024)
#define SEND_QUEUE_MAX (256 * 1024) /* data queued but not yet in the socket */
#define ARGS_MAX (2 * WIRE_NAME_MAX + 200)
#define ACK_WATCH_S 0.1 /* after a break: how often acknowledgements are looked at */

enum put_phase {
	PUT_HASH,  /* hashing the local file */
	PUT_OFF,   /* no connection: the link dials */
	PUT_ASKED, /* UPLOAD sent: "OK <offset>" is awaited */
	PUT_SEND,  /* sending data frames */
	PUT_SENT,  /* all data queued: "OK <size> <sha256>" is awaited */
};

struct put {
	struct transfer *t;
	const char *file, *name;
	enum put_phase ph;
	int fd;
	uint64_t size;
	uint64_t pos;        /* bytes queued */
	uint64_t sess_start; /* where this connection's data started */
	char sha[WIRE_SHA_HEX + 1];
	char token[RESUME_TOKEN_HEX + 1];
	unsigned char key[USERKEY_LEN];
	struct sha256_steps hash;
	size_t cmd_bytes;  /* the command frame, sent first on each connection */
	uint64_t sess_out; /* bytes queued on this connection */
};

static void *put_open(struct transfer *t, const struct transfer_config *cfg, char err[NET_ERR_LEN])
{
	struct put *p = xcalloc(1, sizeof *p);
	struct stat sb;
	char file[NET_ERR_LEN / 2], kerr[USERKEY_ERR_LEN];

	p->t = t;
	p->file = cfg->file;
	p->name = cfg->name;
	escape_text(file, sizeof file, p->file, strlen(p->file));
	p->fd = open(p->file, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0 || fstat(p->fd, &sb) < 0) {
		snprintf(err, NET_ERR_LEN, "cannot open %s: %s", file, strerror(errno));
	} else if (!S_ISREG(sb.st_mode)) {
		snprintf(err, NET_ERR_LEN, "%s: not a regular file", file);
	} else if (userkey_load(p->key, kerr) < 0) {
		snprintf(err, NET_ERR_LEN, "%.250s", kerr);
	} else if (sha256_steps_begin(&p->hash, p->fd, (uint64_t)sb.st_size) < 0) {
		snprintf(err, NET_ERR_LEN, "cannot hash %s: %s", file, strerror(errno));
	} else {
		p->size = (uint64_t)sb.st_size;
		p->ph = PUT_HASH; /* one step per loop turn, from the first */
		transfer_checking(t, p->size);
		return p;
	}
	if (p->fd >= 0)
		close(p->fd);
	free(p);
	return NULL;
}

static void put_free(void *k)
{
	struct put *p = k;
	sha256_steps_abort(&p->hash);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static enum kind_need put_need(const void *k)
{
	const struct put *p = k;

	switch (p->ph) {
	case PUT_HASH: return KIND_LOCAL;
	case PUT_OFF: return KIND_WAIT;
	case PUT_ASKED: return KIND_TALK;
	case PUT_SEND:
	case PUT_SENT: break;
	}
	return KIND_SEND;
}

/* A read of the local file failed (0 from a read: it is shorter now). */
static void read_failed(struct put *p, bool shrank)
{
	char file[NET_ERR_LEN / 2];
	escape_text(file, sizeof file, p->file, strlen(p->file));
	transfer_fail(p->t, "cannot read %s: %s", file, shrank ? "file shrank" : strerror(errno));
}

/* The digest names the upload (and its token); then the link is dialed. */
static void put_work(void *k)
{
	static unsigned char buf[HASH_BUF];
	struct put *p = k;
	int rc = sha256_steps_run(&p->hash, buf, sizeof buf, HASH_STEP);

	if (rc < 0) {
		read_failed(p, errno == EIO); /* sha256_steps: EIO when the file ended early */
		return;
	}
	if (rc == 0)
		return;
	sha256_steps_finish(&p->hash, p->sha);
	resume_token(p->key, p->name, p->size, p->sha, p->token);
	p->ph = PUT_OFF;
	link_open(transfer_link(p->t));
}

static void put_begin(void *k, struct client *cl)
{
	struct put *p = k;
	char args[ARGS_MAX];
	int n = transfer_upload_args(args, sizeof args, p->name, p->size, p->sha, p->token);

	if (n < 0) {
		transfer_fail(p->t, "name too long");
		return;
	}
	client_send(cl, "UPLOAD", args, (size_t)n, 0);
	p->cmd_bytes = client_pending_output(cl);
	p->sess_out = p->cmd_bytes;
	p->ph = PUT_ASKED;
}

/* "OK <offset>" */
static bool offset_reply(struct put *p, const struct client_msg *m)
{
	uint64_t offset;

	if (!reply_u63(m->arg, m->arg_len, &offset))
		return false;
	if (offset > p->size) {
		transfer_fail(p->t, "the server has more bytes (%" PRIu64 ") than the file",
		              offset);
		return true;
	}
	transfer_began(p->t, offset, p->size);
	p->sess_start = offset;
	p->pos = offset;
	p->ph = offset == p->size ? PUT_SENT : PUT_SEND;
	return true;
}

/* "OK <size> <sha256>" after the data; it comes unasked (no tag). */
static bool stored_reply(struct put *p, const struct client_msg *m)
{
	const char *w[2];
	size_t wl[2];
	uint64_t size;

	if (reply_words(m->arg, m->arg_len, w, wl, 2) != 2 || !reply_u63(w[0], wl[0], &size) ||
	    !reply_sha(w[1], wl[1]))
		return false;
	if (p->ph != PUT_SENT || size != p->size || memcmp(w[1], p->sha, WIRE_SHA_HEX) != 0) {
		transfer_fail(p->t,
		              "the server stored something else (%" PRIu64 " bytes, sha256 %.64s)",
		              size, w[1]);
		return true;
	}
	transfer_succeed(p->t, "uploaded", NULL);
	return true;
}

static bool put_message(void *k, const struct client_msg *m)
{
	struct put *p = k;
	bool sending = p->ph == PUT_SEND || p->ph == PUT_SENT;

	if (!sending && !(p->ph == PUT_ASKED && m->role == CLIENT_REPLY))
		return false;
	if (m->kind == CLIENT_ERR) {
		transfer_refused(p->t, m);
		return true;
	}
	return sending ? stored_reply(p, m) : offset_reply(p, m);
}

/* Bytes on their way: queued here or in the kernel, not acknowledged yet. */
static uint64_t unconfirmed(const struct client *cl)
{
	return client_pending_output(cl) + client_unacked(cl);
}

static void put_pump(void *k, struct client *cl)
{
	struct put *p = k;
	struct ratelimit *lim = transfer_limit(p->t);
	double now = link_now();

	while (p->ph == PUT_SEND && client_pending_output(cl) < SEND_QUEUE_MAX) {
		uint64_t left = p->size - p->pos;
		size_t want = left < TPKT_MAX_PAYLOAD ? (size_t)left : TPKT_MAX_PAYLOAD;
		size_t grant = ratelimit_take(lim, want, now);
		if (grant == 0)
			break;
		ssize_t n = client_send_file(cl, p->fd, p->pos, grant);
		if (n <= 0) {
			read_failed(p, n == 0);
			return;
		}
		p->pos += (uint64_t)n;
		p->sess_out += (uint64_t)n + TPKT_HDR_LEN;
		if (p->pos == p->size)
			p->ph = PUT_SENT;
	}
	/* After a break, the window restarts once the server acknowledges data. */
	struct link *l = transfer_link(p->t);
	if (link_recovering(l) && p->sess_out - unconfirmed(cl) > p->cmd_bytes)
		link_confirmed(l);
}

/* NOLINTNEXTLINE(readability-non-const-parameter): kind_ops.poll's signature */
static void put_poll(const void *k, short *events, double *wait)
{
	const struct put *p = k;
	struct link *l = transfer_link(p->t);
	struct ratelimit lim = *transfer_limit(p->t);

	(void)events;
	if (p->ph != PUT_SEND)
		return;
	if (client_pending_output(link_client(l)) < SEND_QUEUE_MAX)
		*wait = ratelimit_wait(&lim, TPKT_MAX_PAYLOAD, link_now());
	if (link_recovering(l) && (*wait < 0 || *wait > ACK_WATCH_S))
		*wait = ACK_WATCH_S;
}

static void put_down(void *k)
{
	struct put *p = k;
	p->ph = PUT_OFF;
}

static void put_progress(const void *k, struct kind_progress *pr)
{
	const struct put *p = k;
	struct client *cl = link_client(transfer_link(p->t));

	pr->shown = p->ph == PUT_HASH || p->ph == PUT_SEND || p->ph == PUT_SENT;
	pr->checking = p->ph == PUT_HASH;
	pr->total = p->size;
	if (p->ph == PUT_HASH) {
		pr->done = p->hash.done;
	} else if (cl) {
		uint64_t u = unconfirmed(cl);
		pr->done = p->pos > p->sess_start + u ? p->pos - u : p->sess_start;
	} else {
		pr->done = p->pos;
	}
}

static void put_resume_hint(const void *k, const char *addr, char *out, size_t outsz)
{
	const struct put *p = k;
	char file[600], name[600];

	resume_shell_quote(p->file, file, sizeof file);
	resume_shell_quote(p->name, name, sizeof name);
	snprintf(out, outsz, "run the same command again to resume: bottle put %s --as %s %s", file,
	         name, addr);
}

const struct kind_ops put_ops = {
	.verb = "upload",
	.resumable = true,
	.open = put_open,
	.free = put_free,
	.need = put_need,
	.work = put_work,
	.begin = put_begin,
	.message = put_message,
	.pump = put_pump,
	.poll = put_poll,
	.down = put_down,
	.progress = put_progress,
	.resume_hint = put_resume_hint,
};
