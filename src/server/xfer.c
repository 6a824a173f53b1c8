/* xfer.c - file transfer. A transfer is a conn_stream: once UPLOAD or DOWNLOAD
 * is accepted, the connection hands this module its input (upload data) or its
 * writable socket (download data) until the transfer ends. Hashing runs in
 * bounded steps on a zero-delay timer, so a 1 GiB file never stalls the loop.
 *
 *   upload:   [RECEIVING] -> VERIFYING -> published, "OK <size> <sha256>"
 *   download: [HASHING ->] "OK <size> <offset> <sha256>" -> SENDING -> done
 *
 * Lifetime: a transfer ends either by itself (xfer_finish -> conn_stream_end)
 * or because its connection closed; then the reaper calls xfer_release. A
 * reply that overflows the output queue only marks the connection closed, so
 * the code after any conn_ok/conn_err here still holds a live transfer. */
#include "xfer.h"
#include "auth.h"
#include "conn.h"
#include "files.h"
#include "log.h"
#include "sha256.h"
#include "store.h"
#include "wire.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Bytes hashed per loop turn: about a third of a millisecond of SHA-256 (and
 * pread) here, so a first DOWNLOAD of a big file delays nobody's reply. */
#define XFER_HASH_STEP (512u * 1024)
#define XFER_SYNC_STEP (8u << 20) /* an upload's writeback starts every this many bytes */

enum xfer_state { XF_HASHING, XF_RECEIVING, XF_VERIFYING, XF_SENDING, XF_DONE };

struct xfer {
	struct conn *conn;
	struct xfer_env *env;
	struct xfer *prev, *next; /* uploads: in env->uploads while attached */
	bool upload;
	bool anonymous; /* no resume token: nothing to resume later */
	enum xfer_state state;
	int fd; /* the file read, or the partial written */
	struct store_partial part;
	char name[WIRE_NAME_MAX + 1];
	char sha_want[WIRE_SHA_HEX + 1]; /* upload: the client's; download: resume check */
	char sha[WIRE_SHA_HEX + 1];
	uint64_t size, start, pos; /* whole size, first byte moved, next byte */
	uint64_t synced;           /* upload: writeback started below this */
	struct sha256_steps hash;  /* upload: fed as data arrives (sha256_steps_feed) */
	struct loop_timer step;
	uint64_t t_start, t_end; /* microseconds, monotonic */
	bool failed;             /* already logged as failed */
};

static const struct conn_stream upload_stream, download_stream;

static uint64_t clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct xfer *xfer_of(struct conn *c) { return c->stream_data; }
static struct store *store_of(struct conn *c) { return c->env->xfer->store; }

static void xfer_free(struct xfer *x)
{
	loop_timer_stop(x->env->loop, &x->step);
	if (x->fd >= 0)
		close(x->fd);
	sha256_steps_abort(&x->hash);
	free(x);
}

/* The transfer is over: the connection gets its input back. x is freed. */
static void xfer_finish(struct xfer *x)
{
	x->state = XF_DONE;
	conn_stream_end(x->conn);
}

/* A failure after the transfer began: the peer may still be sending data we
 * can't tell from commands, so the connection ends after the ERR. The stream
 * stops now; the reaper releases it (keeping a resumable partial). */
static void xfer_fail(struct xfer *x, const char *fmt, const char *detail)
{
	struct conn *c = x->conn;
	conn_err(c, fmt, detail);
	log_warn("%s %s from %s failed at %" PRIu64 " of %" PRIu64 " bytes: %s%s",
	         x->upload ? "upload" : "download", x->name, c->peer, x->pos, x->size,
	         x->upload && !x->anonymous ? "partial kept; " : "", detail);
	x->failed = true;
	conn_close_after_flush(c, END_ERROR);
}

static void log_rate(const struct xfer *x)
{
	uint64_t bytes = x->pos - x->start, us = x->t_end - x->t_start;
	double secs = (double)(us ? us : 1) / 1e6;
	double mbs = (double)bytes / secs / 1e6;
	log_info("%s %s %s %s: %" PRIu64 " bytes in %.6f s (from offset %" PRIu64 "), "
	         "%.2f MB/s, %.2f Mbit/s",
	         x->upload ? "upload" : "download", x->name, x->upload ? "from" : "to",
	         x->conn->peer, bytes, (double)us / 1e6, x->start, mbs, mbs * 8);
}

/* ---- hashing in steps ---- */

static void upload_verified(struct xfer *x);
static void download_hashed(struct xfer *x);

/* One step: XFER_HASH_STEP bytes, then the loop serves others. An upload
 * about to be published goes to disk step by step too, so the fsync before
 * the rename finds little left to write and stays short. */
static void on_hash_step(struct loop *loop, struct loop_timer *t, void *data)
{
	struct xfer *x = data;

	if (!conn_streaming(x->conn))
		return; /* closing: the reaper releases x */
	conn_touch(x->conn);
	int rc = sha256_steps_run(&x->hash, x->env->buf, x->env->bufsz, XFER_HASH_STEP);
	if (rc >= 0 && x->upload &&
	    sync_file_range(x->fd, 0, (off64_t)x->hash.done, SYNC_FILE_RANGE_WRITE) < 0 &&
	    errno != EINVAL)
		rc = -1;
	if (rc < 0) {
		xfer_fail(x, "%s", "read error while hashing");
		return;
	}
	if (rc == 0) {
		loop_timer_start(loop, t, 0, on_hash_step, x);
		return;
	}
	sha256_steps_finish(&x->hash, x->sha);
	if (x->upload)
		upload_verified(x);
	else
		download_hashed(x);
}

static void hash_begin(struct xfer *x)
{
	if (sha256_steps_begin(&x->hash, x->fd, x->size) < 0) {
		fprintf(stderr, "bottled: OpenSSL cannot hash SHA-256\n");
		abort();
	}
}

/* Hashes what is not hashed yet: a download's whole file; for an upload only
 * what it didn't see arrive (a resumed partial's start), often nothing. */
static void hash_start(struct xfer *x, enum xfer_state state)
{
	x->state = state;
	if (!x->hash.md)
		hash_begin(x);
	loop_timer_start(x->env->loop, &x->step, 0, on_hash_step, x);
}

/* ---- arguments (wire.c parses them) ---- */

/* Replies to arguments wire.c refused; usage is the command's usage line. */
static void reply_bad_args(struct conn *c, enum wire_status st, const char *usage)
{
	switch (st) {
	case WIRE_NO_NAME: conn_err(c, "file name required"); break;
	case WIRE_BAD_NAME: conn_err(c, "invalid file name"); break;
	case WIRE_BAD_SIZE: conn_err(c, "invalid size"); break;
	default: conn_err(c, "usage: %s", usage); break;
	}
}

static struct xfer *xfer_new(struct conn *c, bool upload, const char *name)
{
	struct xfer *x = xcalloc(1, sizeof *x);
	x->conn = c;
	x->env = c->env->xfer;
	x->upload = upload;
	x->fd = -1;
	x->part.fd = -1;
	snprintf(x->name, sizeof x->name, "%s", name);
	return x;
}

/* ---- UPLOAD <name> <size> [<sha256> <token>] ---- */

/* The uploads in progress, so that a token finds its connection. */
static void upload_track(struct xfer *x)
{
	x->prev = NULL;
	x->next = x->env->uploads;
	if (x->next)
		x->next->prev = x;
	x->env->uploads = x;
}

static void upload_untrack(struct xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		x->env->uploads = x->next;
	if (x->next)
		x->next->prev = x->prev;
}

/* The upload of this process that holds the token's partial, its
 * connection alive or already closed (not reaped yet, the lock still held). */
static struct xfer *upload_owner(struct xfer_env *env, const char *token)
{
	for (struct xfer *x = env->uploads; x; x = x->next)
		if (x->part.fd >= 0 && strcmp(x->part.id, token) == 0)
			return x;
	return NULL;
}

/* The superseded upload gives up its partial's descriptor, and with it the
 * lock (storelock.h): the newcomer goes on with no gap another node could
 * fall into. The old one touches it no more (its connection is closed). */
static int upload_hand_over(struct xfer *old)
{
	int fd = old->part.fd;
	old->part.fd = old->fd = -1;
	return fd;
}

/* An id of its own for an upload without a token. Random where the kernel
 * gives randomness; otherwise still unique within this process (pid, clock,
 * counter), so two anonymous uploads never share one partial. */
static void anonymous_id(char id[WIRE_TOKEN_MAX + 1])
{
	static uint64_t serial;
	unsigned char r[12];

	if (getrandom(r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) {
		static const char prefix[] = "anon_";
		memcpy(id, prefix, sizeof prefix); /* with its NUL, which hex_encode overwrites */
		hex_encode(r, sizeof r, id + sizeof prefix - 1);
		return;
	}
	snprintf(id, WIRE_TOKEN_MAX + 1, "anon_%ld_%" PRIu64 "_%" PRIu64, (long)getpid(),
	         clock_us(), ++serial);
}

/* The refusal of an UPLOAD. In line mode the content is already on its way
 * right behind the command and can't be told from commands: close after it. */
static void upload_refuse(struct conn *c, const char *fmt, const char *detail)
{
	conn_err(c, fmt, detail);
	if (c->framer.kind == FRAMING_LINE)
		conn_close_after_flush(c, END_ERROR);
}

/* The very file is published already: a client whose link died between its
 * last byte and our final OK comes back to find it done, not to send it again. */
static bool already_stored(struct conn *c, const struct wire_upload *u)
{
	char have[WIRE_SHA_HEX + 1];
	struct stat sb;
	int fd = store_open_file(store_of(c), u->name, &sb);
	bool same = fd >= 0 && (uint64_t)sb.st_size == u->size && store_get_sha(fd, &sb, have) &&
	            strcmp(have, u->sha) == 0;

	if (fd >= 0)
		close(fd);
	if (!same)
		return false;
	log_info("upload %s from %s: already stored with this digest, nothing to send", u->name,
	         c->peer);
	conn_ok(c, "%" PRIu64, u->size);
	conn_ok(c, "%" PRIu64 " %s", u->size, u->sha);
	if (c->framer.kind == FRAMING_LINE)
		conn_close_after_flush(c, END_DONE);
	return true;
}

void xfer_cmd_upload(struct conn *c, const char *arg, size_t len)
{
	struct xfer_env *env = c->env->xfer;
	struct wire_upload u;
	enum wire_status st = wire_upload_parse(arg, len, &u);

	if (st != WIRE_OK) {
		reply_bad_args(c, st, WIRE_UPLOAD_USAGE);
		if (c->framer.kind == FRAMING_LINE)
			conn_close_after_flush(c, END_ERROR);
		return;
	}
	if (env->max_file_size && u.size > env->max_file_size) {
		char limit[32];
		snprintf(limit, sizeof limit, "%llu", env->max_file_size);
		upload_refuse(c, "file too large (limit %s bytes)", limit);
		return;
	}
	/* An account's token names a partial of its own: no other account can
	 * continue, replace or take it over. */
	auth_partial_id(c, u.token);
	/* The token is the client's secret, so a second connection with it is that
	 * client coming back over a new link while the server still believes in the
	 * old one (a dead link not yet detected). The newcomer takes over. */
	struct xfer *old = u.token[0] ? upload_owner(env, u.token) : NULL;
	if (old && conn_alive(old->conn)) {
		log_info("upload %s: resumed from %s; dropping the old connection %s", u.name,
		         c->peer, old->conn->peer);
		conn_close(old->conn, END_SUPERSEDED);
	}
	if (u.sha[0] && already_stored(c, &u))
		return;
	struct xfer *x = xfer_new(c, true, u.name);
	x->anonymous = !u.token[0];
	if (x->anonymous)
		anonymous_id(u.token);
	snprintf(x->sha_want, sizeof x->sha_want, "%s", u.sha);
	int held = old ? upload_hand_over(old) : -1;
	if (store_partial_take_over(store_of(c), held, u.token, u.name, u.size, u.sha, &x->part) <
	    0) {
		if (errno == EBUSY) {
			/* Another node writes it: the client comes back in a moment. */
			log_info("upload %s from %s: its partial is held by %s; told to retry",
			         u.name, c->peer, x->part.owner);
			upload_refuse(c, WIRE_BUSY "upload in progress on %s; retry later",
			              x->part.owner);
		} else {
			log_error("upload %s: cannot open partial: %s", u.name, strerror(errno));
			upload_refuse(c, "storage error: %s", strerror(errno));
		}
		xfer_free(x);
		return;
	}
	x->fd = x->part.fd;
	/* Only what it still lacks must fit (its partial counts already). */
	if (!files_have_room(c, u.size - x->part.have)) {
		if (x->anonymous || x->part.have == 0) /* a resumable start stays */
			store_partial_remove(store_of(c), &x->part);
		if (c->framer.kind == FRAMING_LINE)
			conn_close_after_flush(c, END_ERROR);
		xfer_free(x);
		return;
	}
	x->size = u.size;
	x->start = x->pos = x->synced = x->part.have;
	hash_begin(x); /* data is hashed as it arrives, so nothing is read back */
	x->t_start = clock_us();
	x->state = XF_RECEIVING;
	conn_stream_begin(c, &upload_stream, x);
	upload_track(x);
	log_info("upload %s from %s: %" PRIu64 " bytes%s, starting at %" PRIu64, x->name, c->peer,
	         x->size, x->anonymous ? "" : " (resumable)", x->start);
	conn_ok(c, "%" PRIu64, x->start);
	if (x->pos == x->size) {
		x->t_end = x->t_start;
		hash_start(x, XF_VERIFYING);
	}
}

static size_t upload_input(struct conn *c, const unsigned char *data, size_t len)
{
	struct xfer *x = xfer_of(c);
	uint64_t left = x->size - x->pos;
	size_t take = len < left ? len : (size_t)left;

	if (c->framer.kind == FRAMING_TPKT && (len > left || len == 0)) {
		xfer_fail(x, "%s", len ? "more data than the upload's size" : "empty data frame");
		return len;
	}
	sha256_steps_feed(&x->hash, x->pos, data, take); /* while it is in the cache */
	for (size_t done = 0; done < take;) {
		ssize_t w = pwrite(x->fd, data + done, take - done, (off_t)x->pos);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			bool full = errno == ENOSPC || errno == EDQUOT;
			xfer_fail(x, "%s", full ? "no space left" : strerror(errno));
			return len;
		}
		done += (size_t)w;
		x->pos += (uint64_t)w;
	}
	/* Writeback starts as data comes, so the fdatasync before publishing finds
	 * little left to write. Best effort (EINVAL: nothing to sync here). */
	if (x->pos - x->synced >= XFER_SYNC_STEP || x->pos == x->size) {
		sync_file_range(x->fd, (off64_t)x->synced, (off64_t)(x->pos - x->synced),
		                SYNC_FILE_RANGE_WRITE);
		x->synced = x->pos;
	}
	if (x->pos == x->size) {
		x->t_end = clock_us();
		hash_start(x, XF_VERIFYING);
	}
	return take;
}

static void upload_verified(struct xfer *x)
{
	struct conn *c = x->conn;

	if (x->sha_want[0] && strcmp(x->sha, x->sha_want) != 0) {
		store_partial_remove(store_of(c), &x->part);
		x->anonymous = true; /* nothing left to keep */
		xfer_fail(x, "%s", "checksum mismatch: nothing stored");
		return;
	}
	store_set_sha(x->fd, x->sha);
	if (store_partial_publish(store_of(c), &x->part, x->name) < 0) {
		xfer_fail(x, "storage error: %s", strerror(errno));
		return;
	}
	log_rate(x);
	conn_ok(c, "%" PRIu64 " %s", x->size, x->sha);
	char size[24];
	snprintf(size, sizeof size, "%" PRIu64, x->size);
	files_announce(c, "uploaded", size, x->name, NULL);
	xfer_finish(x);
}

static bool upload_wants_input(struct conn *c) { return xfer_of(c)->state == XF_RECEIVING; }
static void upload_pump(struct conn *c) { (void)c; }
static bool never(struct conn *c)
{
	(void)c;
	return false;
}

static void upload_release(struct conn *c, void *data)
{
	struct xfer *x = data;
	if (x->state != XF_DONE && x->anonymous)
		store_partial_remove(store_of(c), &x->part);
	else if (x->state != XF_DONE && !x->failed)
		log_info("upload %s from %s interrupted at %" PRIu64 " of %" PRIu64
		         " bytes; partial kept for resume",
		         x->name, c->peer, x->pos, x->size);
	upload_untrack(x);
	xfer_free(x);
}

static const struct conn_stream upload_stream = {
	.wants_input = upload_wants_input,
	.input = upload_input,
	.pump = upload_pump,
	.wants_write = never,
	.release = upload_release,
};

/* ---- DOWNLOAD <name> [<offset> [<sha256>]] ---- */

void xfer_cmd_download(struct conn *c, const char *arg, size_t len)
{
	struct wire_download d;
	struct stat sb;
	enum wire_status st = wire_download_parse(arg, len, &d);

	if (st != WIRE_OK) {
		reply_bad_args(c, st, WIRE_DOWNLOAD_USAGE);
		return;
	}
	int fd = store_open_file(store_of(c), d.name, &sb);
	if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)) {
		conn_err(c, "no such file: %s", d.name);
		return;
	}
	if (fd < 0) {
		log_error("download %s: cannot open: %s", d.name, strerror(errno));
		conn_err(c, "storage error: %s", strerror(errno));
		return;
	}
	if (d.offset > (uint64_t)sb.st_size) {
		close(fd);
		conn_err(c, "offset beyond the end of the file");
		return;
	}
	struct xfer *x = xfer_new(c, false, d.name);
	x->fd = fd;
	x->size = (uint64_t)sb.st_size;
	x->start = d.offset;
	snprintf(x->sha_want, sizeof x->sha_want, "%s", d.sha);
	conn_stream_begin(c, &download_stream, x);
	if (store_get_sha(fd, &sb, x->sha))
		download_hashed(x);
	else
		hash_start(x, XF_HASHING);
}

static void download_hashed(struct xfer *x)
{
	struct conn *c = x->conn;

	if (x->state == XF_HASHING)
		store_set_sha(x->fd, x->sha);
	/* Resuming against a different file would splice two versions: start over. */
	if (x->sha_want[0] && strcmp(x->sha_want, x->sha) != 0)
		x->start = 0;
	x->pos = x->start;
	x->state = XF_SENDING;
	x->t_start = clock_us();
	conn_ok(c, "%" PRIu64 " %" PRIu64 " %s", x->size, x->start, x->sha);
	log_info("download %s to %s: %" PRIu64 " bytes from offset %" PRIu64, x->name, c->peer,
	         x->size, x->start);
	conn_want_flush(c);
}

static void download_done(struct xfer *x)
{
	x->t_end = clock_us();
	log_rate(x);
	xfer_finish(x);
}

static void download_pump(struct conn *c)
{
	struct xfer *x = xfer_of(c);
	if (x->state != XF_SENDING)
		return;
	if (x->pos < x->size) {
		ssize_t n = conn_send_file(c, x->fd, x->pos, x->size - x->pos);
		if (n < 0 && conn_alive(c)) {
			log_warn("download %s to %s: %s", x->name, c->peer,
			         errno == ENODATA ? "file shrank while sending" : strerror(errno));
			x->failed = true;
			conn_close(c, END_ERROR);
		}
		if (n <= 0)
			return;
		x->pos += (uint64_t)n;
	}
	if (x->pos == x->size && !outq_bytes(&c->out))
		download_done(x);
}

static bool download_wants_write(struct conn *c)
{
	struct xfer *x = xfer_of(c);
	return x->state == XF_SENDING;
}

/* Never called (a download wants no input); there for a complete table. */
static size_t download_input(struct conn *c, const unsigned char *data, size_t len)
{
	(void)c;
	(void)data;
	return len;
}

static void download_release(struct conn *c, void *data)
{
	struct xfer *x = data;
	if (x->state == XF_SENDING && !x->failed)
		log_info("download %s to %s interrupted at %" PRIu64 " of %" PRIu64 " bytes",
		         x->name, c->peer, x->pos, x->size);
	xfer_free(x);
}

static const struct conn_stream download_stream = {
	.wants_input = never,
	.input = download_input,
	.pump = download_pump,
	.wants_write = download_wants_write,
	.release = download_release,
};

/* ---- LIST [<from>] ---- */

/* One message holds what fits in a TPKT frame, so a big folder is read in
 * pages: "OK <count>" and "<size> <name>" lines from file number <from>. */
#define LIST_BUDGET (TPKT_MAX_PAYLOAD - sizeof "OK ")

void xfer_cmd_list(struct conn *c, const char *arg, size_t len)
{
	struct wire_list req;
	enum wire_status st = wire_list_parse(arg, len, &req);

	if (st != WIRE_OK) {
		reply_bad_args(c, st, WIRE_LIST_USAGE);
		return;
	}
	struct store_file *files;
	ssize_t listed = store_list(store_of(c), &files);
	if (listed < 0) {
		log_error("list: cannot read the storage folder: %s", strerror(errno));
		conn_err(c, "storage error: %s", strerror(errno));
		return;
	}
	size_t count = (size_t)listed, used;
	char *text = xmalloc(LIST_BUDGET);

	used = (size_t)snprintf(text, LIST_BUDGET, "%zu", count);
	for (size_t i = req.from < count ? (size_t)req.from : count; i < count; i++) {
		char line[WIRE_NAME_MAX + 24];
		size_t l = (size_t)snprintf(line, sizeof line, "\n%" PRIu64 " %s", files[i].size,
		                            files[i].name);
		if (used + l > LIST_BUDGET)
			break;
		memcpy(text + used, line, l);
		used += l;
	}
	conn_reply(c, "OK", text, used);
	free(text);
	free(files);
}

void xfer_expire_partials(struct xfer_env *env, unsigned long ttl_s)
{
	int n = store_expire_partials(env->store, (time_t)ttl_s);
	if (n > 0)
		log_info("deleted %d abandoned partial upload%s", n, n == 1 ? "" : "s");
}
