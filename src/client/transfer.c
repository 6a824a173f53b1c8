/* transfer.c - put, get and ls as non-blocking state machines that reconnect
 * and resume by themselves.
 *
 *   put:  HASH -> DIAL -> ASKED -> SEND -> SENT -> end
 *   get:  DIAL -> ASKED -> RECV -> VERIFY -> end
 *   ls:   DIAL -> ASKED -> end
 *
 * A broken link (reset, EOF, ETIMEDOUT from keepalive or TCP_USER_TIMEOUT,
 * a refused reconnect) leads from any of DIAL, ASKED, SEND, SENT, RECV to
 * BACKOFF, which dials again when its timer is due, until the retry window
 * runs out: then ASK (the chat asks the user) or the end. ERR replies and
 * local file errors end the transfer at once. */
#include "transfer.h"
#include "args.h"
#include "client.h"
#include "escape.h"
#include "progress.h"
#include "proto.h"
#include "userkey.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define HASH_STEP (1 << 20) /* bytes hashed per step */
#define HASH_BUF (64 * 1024)
#define SEND_QUEUE_MAX (256 * 1024) /* data queued but not yet in the socket */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 5000
#define SHA_XATTR "user.bottle.sha256"
#define NAME_MAX_BYTES 255
#define ARGS_MAX (2 * NAME_MAX_BYTES + 200)
#define RESUMES_SHOWN 4

enum state {
	ST_HASH,    /* put: hashing the local file */
	ST_DIAL,    /* connecting */
	ST_ASKED,   /* command sent: the greeting and the reply are awaited */
	ST_SEND,    /* put: sending data frames */
	ST_SENT,    /* put: all data queued, awaiting "OK <size> <sha256>" */
	ST_RECV,    /* get: receiving data frames into the .part */
	ST_VERIFY,  /* get: hashing the .part */
	ST_BACKOFF, /* the link broke: waiting to dial again */
	ST_ASK,     /* the retry window ran out: the user decides */
	ST_END,
};

struct transfer {
	enum transfer_kind kind;
	struct transfer_config cfg; /* its strings point at the copies below */
	char *addr, *file, *name, *output;
	char *path, *part;                   /* get: where the file goes, and PATH.part */
	char sname[NAME_MAX_BYTES * 4 + 4];  /* the name, safe to show */
	char label[NAME_MAX_BYTES * 4 + 16]; /* "upload <sname>" */
	struct transfer_io io;
	enum state st;
	uint64_t listed; /* ls: lines shown so far (the next page's start) */
	enum transfer_result result;
	char host[256];
	int port;

	int fd;                         /* put: the local file; get: the .part, or -1 */
	uint64_t size;                  /* put: local; get: from the reply */
	uint64_t pos;                   /* put: bytes queued; get: bytes in the .part */
	uint64_t sess_start;            /* where this connection's transfer started */
	char sha[TRANSFER_SHA_HEX + 1]; /* put: ours; get: the server's ("" unknown) */
	char token[TRANSFER_TOKEN_HEX + 1];
	unsigned char key[USERKEY_LEN]; /* put: the user's resume key */
	EVP_MD_CTX *md;
	uint64_t hashed;

	struct client cl;
	bool connected;
	struct client_dial dial;
	double dial_deadline;
	size_t cmd_bytes;         /* the command frame, sent first on each connection */
	uint64_t sess_out;        /* bytes queued on this connection */
	char notice[NET_ERR_LEN]; /* the server's unasked word, explains a close */

	bool started;    /* a reply arrived once: breaks are retried now */
	double broke_at; /* start of the retry window; < 0: the link is fine */
	int attempts;
	double next_try;
	char why[NET_ERR_LEN];

	struct ratelimit lim;
	struct progress prog;
	double next_draw;
	double t_begin, t_end;
	uint64_t first_offset;           /* where this run started: the rest is its work */
	uint64_t resumes[RESUMES_SHOWN]; /* offsets of resumed starts */
	int nresumes;
};

/* ==== pure helpers ==== */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void transfer_token(const unsigned char key[TRANSFER_KEY_LEN], const char *name, uint64_t size,
                    const char *sha_hex, char out[TRANSFER_TOKEN_HEX + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char num[24];
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	snprintf(num, sizeof num, "%" PRIu64, size);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, key, TRANSFER_KEY_LEN);
	EVP_DigestUpdate(md, "", 1);
	EVP_DigestUpdate(md, name, strlen(name));
	EVP_DigestUpdate(md, "", 1);
	EVP_DigestUpdate(md, num, strlen(num));
	EVP_DigestUpdate(md, "", 1);
	EVP_DigestUpdate(md, sha_hex, strlen(sha_hex));
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	hex_encode(digest, TRANSFER_TOKEN_HEX / 2, out);
}

int transfer_upload_args(char *out, size_t outsz, const char *name, uint64_t size, const char *sha,
                         const char *token)
{
	char q[ARGS_MAX];
	if (args_quote(name, q, sizeof q) < 0)
		return -1;
	int n = snprintf(out, outsz, "%s %" PRIu64 " %s %s", q, size, sha, token);
	return n < 0 || (size_t)n >= outsz ? -1 : n;
}

int transfer_download_args(char *out, size_t outsz, const char *name, uint64_t offset,
                           const char *sha)
{
	char q[ARGS_MAX];
	int n;

	if (args_quote(name, q, sizeof q) < 0)
		return -1;
	if (sha && *sha)
		n = snprintf(out, outsz, "%s %" PRIu64 " %s", q, offset, sha);
	else if (offset)
		n = snprintf(out, outsz, "%s %" PRIu64, q, offset);
	else
		n = snprintf(out, outsz, "%s", q);
	return n < 0 || (size_t)n >= outsz ? -1 : n;
}

int transfer_parse_rate(const char *s, uint64_t *rate)
{
	char *end;
	double mult = 1;

	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || *s == '-' || *s == '+')
		return -1;
	/* One line a unit reads as a table. */
	/* clang-format off */
	switch (*end) {
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	default: break;
	}
	/* clang-format on */
	v *= mult;
	if (*end != '\0' || v < 1 || v > 1e15)
		return -1;
	*rate = (uint64_t)v;
	return 0;
}

int transfer_backoff_ms(int attempt)
{
	if (attempt < 0)
		attempt = 0;
	if (attempt >= 5) /* 250 << 5 already passes the cap */
		return BACKOFF_MAX_MS;
	int ms = BACKOFF_FIRST_MS << attempt;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

char *transfer_shell_quote(const char *s, char *out, size_t outsz)
{
	size_t n = 0;
	bool plain = *s != '\0';

	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		            "_-./:@%+=,[]",
		            *p))
			plain = false;
	if (plain) {
		snprintf(out, outsz, "%s", s);
		return out;
	}
	if (outsz < 3)
		return out;
	out[n++] = '\'';
	for (const char *p = s; *p && n + 6 < outsz; p++) {
		if (*p == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else {
			out[n++] = *p;
		}
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}

/* ==== small things ==== */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool in_session(const struct transfer *t)
{
	return t->st == ST_ASKED || t->st == ST_SEND || t->st == ST_SENT || t->st == ST_RECV;
}

static void say(struct transfer *t, enum transfer_text kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct transfer *t, enum transfer_text kind, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	t->io.say(t->io.ctx, t, kind, text, strlen(text));
}

/* Untrusted bytes (a server's text) made safe into out. */
static void safe_copy(char *out, size_t outsz, const char *text, size_t len)
{
	escape_text(out, outsz, text, len);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* A name the client may use as one component of a local path. */
static bool local_name_ok(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static bool parse_u64(const char *p, size_t len, uint64_t *v)
{
	uint64_t x = 0;
	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	*v = x;
	return true;
}

static bool is_sha_hex(const char *p, size_t len)
{
	if (len != TRANSFER_SHA_HEX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* Splits "a b c" into up to n words (spans of p). Returns how many. */
static int split_words(const char *p, size_t len, const char **w, size_t *wl, int n)
{
	int k = 0;
	const char *end = p + len;

	while (p < end && k < n) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		w[k] = p;
		wl[k] = sp ? (size_t)(sp - p) : (size_t)(end - p);
		k++;
		p = sp ? sp + 1 : end;
	}
	return p < end ? -1 : k;
}

/* ==== ending ==== */

static void session_close(struct transfer *t)
{
	client_dial_abort(&t->dial);
	if (t->connected)
		client_close(&t->cl);
	t->connected = false;
}

/* Done with the connection: say QUIT first (best effort), so the others in
 * the room see "left (quit)" rather than a broken connection. */
static void session_quit(struct transfer *t)
{
	if (t->connected) {
		client_send(&t->cl, "QUIT", NULL, 0, 0);
		client_flush(&t->cl);
	}
	session_close(t);
}

static void finish(struct transfer *t, enum transfer_result result)
{
	session_close(t);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->st = ST_END;
	t->result = result;
}

/* A final failure: the reason, and no retry. */
static void fail(struct transfer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct transfer *t, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	say(t, TRANSFER_ERROR, "%s: %s", t->label, text);
	finish(t, TRANSFER_FAILED);
}

static void say_done(struct transfer *t)
{
	char summary[200], resumed[160] = "", where[NAME_MAX_BYTES * 4 + 16] = "";
	size_t n = 0;

	progress_summary(summary, sizeof summary, t->size - t->first_offset, t->t_end - t->t_begin);
	for (int i = 0; i < t->nresumes && n < sizeof resumed; i++)
		n += (size_t)snprintf(resumed + n, sizeof resumed - n, "%s%" PRIu64,
		                      i ? ", " : " (resumed at ", t->resumes[i]);
	if (t->nresumes && n < sizeof resumed)
		snprintf(resumed + n, sizeof resumed - n, ")");
	if (t->kind == TRANSFER_GET && strcmp(t->path, t->name) != 0) {
		char p[NAME_MAX_BYTES * 4];
		safe_copy(p, sizeof p, t->path, strlen(t->path));
		snprintf(where, sizeof where, " to %s", p);
	}
	say(t, TRANSFER_DONE, "%s %s%s: %s%s", t->kind == TRANSFER_PUT ? "uploaded" : "downloaded",
	    t->sname, where, summary, resumed);
}

static void succeed(struct transfer *t)
{
	t->t_end = now_s();
	session_quit(t);
	finish(t, TRANSFER_OK);
	if (t->kind != TRANSFER_LS)
		say_done(t);
}

/* The command that picks the transfer up again, for the user. */
static void say_resume_hint(struct transfer *t)
{
	char a[600], b[600], c[600], d[600];

	if (t->cfg.resume_hint) {
		say(t, TRANSFER_NOTE, "%s", t->cfg.resume_hint);
		return;
	}
	transfer_shell_quote(t->addr, a, sizeof a);
	if (t->kind == TRANSFER_PUT) {
		transfer_shell_quote(t->file, b, sizeof b);
		transfer_shell_quote(t->name, c, sizeof c);
		say(t, TRANSFER_NOTE,
		    "run the same command again to resume: bottle put %s --as %s %s", b, c, a);
	} else if (t->kind == TRANSFER_GET) {
		transfer_shell_quote(t->name, b, sizeof b);
		transfer_shell_quote(t->path, d, sizeof d);
		say(t, TRANSFER_NOTE,
		    "run the same command again to resume: bottle get %s -o %s %s", b, d, a);
	} else {
		say(t, TRANSFER_NOTE, "run the same command again: bottle ls %s", a);
	}
}

static void give_up(struct transfer *t)
{
	say(t, TRANSFER_ERROR, "%s: giving up: %s (no working connection for %d s)", t->label,
	    t->why, t->cfg.retry_for_s);
	say_resume_hint(t);
	finish(t, TRANSFER_GAVE_UP);
}

/* ==== the link ==== */

static void session_start(struct transfer *t);

/* The connection broke or could not be made. Before anything began that is
 * the end (like the chat: cannot connect); afterwards: reconnect with backoff
 * within the retry window. */
static void link_broken(struct transfer *t, const char *why)
{
	double now = now_s();

	snprintf(t->why, sizeof t->why, "%s", t->notice[0] ? t->notice : why);
	session_close(t);
	if (!t->started) {
		say(t, TRANSFER_ERROR, "%s", t->why);
		finish(t, TRANSFER_NO_SERVER);
		return;
	}
	if (t->broke_at < 0) {
		t->broke_at = now;
		t->attempts = 0;
		say(t, TRANSFER_NOTE, "%s: connection lost (%s); retrying for up to %d s...",
		    t->label, t->why, t->cfg.retry_for_s);
	}
	double end = t->broke_at + t->cfg.retry_for_s;
	if (now >= end) {
		if (t->io.ask) {
			t->st = ST_ASK;
			t->io.ask(t->io.ctx, t);
		} else {
			give_up(t);
		}
		return;
	}
	t->next_try = now + transfer_backoff_ms(t->attempts++) / 1000.0;
	if (t->next_try > end)
		t->next_try = end; /* one last try as the window closes */
	t->st = ST_BACKOFF;
}

/* Data moved again after a break: a new break gets a new window. */
static void link_works(struct transfer *t)
{
	t->broke_at = -1;
	t->attempts = 0;
}

static void send_command(struct transfer *t)
{
	char args[ARGS_MAX];
	const char *verb = "LIST";
	int n = 0;

	if (t->kind == TRANSFER_PUT) {
		verb = "UPLOAD";
		n = transfer_upload_args(args, sizeof args, t->name, t->size, t->sha, t->token);
	} else if (t->kind == TRANSFER_GET) {
		verb = "DOWNLOAD";
		n = transfer_download_args(args, sizeof args, t->name, t->pos,
		                           t->pos ? t->sha : NULL);
	} else if (t->listed) {
		n = snprintf(args, sizeof args, "%" PRIu64, t->listed);
	}
	if (n < 0) {
		fail(t, "name too long");
		return;
	}
	client_send(&t->cl, verb, args, (size_t)n, 0);
	t->cmd_bytes = client_pending_output(&t->cl);
	t->sess_out = t->cmd_bytes;
	t->notice[0] = '\0';
	t->st = ST_ASKED;
}

static void session_connected(struct transfer *t)
{
	client_attach(&t->cl, client_dial_take(&t->dial), &t->cfg.ka);
	t->connected = true;
	send_command(t); /* TPKT clients speak first */
}

static void session_start(struct transfer *t)
{
	char err[NET_ERR_LEN];
	int rc = client_dial_start(&t->dial, t->host, t->port, err);

	if (rc < 0) {
		link_broken(t, err);
	} else if (rc == 0) {
		t->st = ST_DIAL;
		t->dial_deadline = now_s() + t->cfg.timeout_s;
	} else {
		session_connected(t);
	}
}

static void dial_step(struct transfer *t, bool timed_out)
{
	char err[NET_ERR_LEN];
	int rc = client_dial_step(&t->dial, timed_out, err);

	if (rc < 0) {
		link_broken(t, err);
	} else if (rc == 0) {
		t->dial_deadline = now_s() + t->cfg.timeout_s;
	} else {
		session_connected(t);
	}
}

/* ==== hashing in steps ==== */

/* Hashes up to HASH_STEP more bytes of t->fd; true when all t->size are in. */
static bool hash_step(struct transfer *t, const char *what)
{
	static unsigned char buf[HASH_BUF];

	for (size_t done = 0; done < HASH_STEP && t->hashed < t->size;) {
		size_t want = t->size - t->hashed < sizeof buf ? (size_t)(t->size - t->hashed)
		                                               : sizeof buf;
		ssize_t n = pread(t->fd, buf, want, (off_t)t->hashed);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			char safe[NAME_MAX_BYTES * 4 + 16];
			const char *why = n < 0 ? strerror(errno) : "file shrank";
			safe_copy(safe, sizeof safe, what, strlen(what));
			fail(t, "cannot read %s: %s", safe, why);
			return false;
		}
		EVP_DigestUpdate(t->md, buf, (size_t)n);
		t->hashed += (uint64_t)n;
		done += (size_t)n;
	}
	return t->hashed == t->size;
}

static void hash_final(struct transfer *t, char hex[TRANSFER_SHA_HEX + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_DigestFinal_ex(t->md, digest, &len);
	hex_encode(digest, 32, hex);
}

static void hash_begin(struct transfer *t, double now)
{
	EVP_DigestInit_ex(t->md, EVP_sha256(), NULL);
	t->hashed = 0;
	progress_init(&t->prog, t->size, 0, now);
}

/* put: the digest of the local file names the upload (and its token). */
static void put_hash_step(struct transfer *t)
{
	if (!hash_step(t, t->file))
		return;
	hash_final(t, t->sha);
	transfer_token(t->key, t->name, t->size, t->sha, t->token);
	session_start(t);
}

/* get: the verified .part becomes the file. Its data reaches the disk before
 * the rename and the rename before we say so, so a crash leaves either the
 * old state or the whole new file, never a name pointing at lost pages. */
static int publish_part(const char *part, const char *path)
{
	int fd = open(part, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	if (rc < 0 && saved != EINVAL) {
		errno = saved;
		return -1;
	}
	if (rename(part, path) < 0)
		return -1;
	char *copy = xstrdup(path);
	int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (dfd < 0)
		return -1;
	rc = fsync(dfd);
	saved = errno;
	close(dfd);
	errno = saved;
	return rc < 0 && saved != EINVAL ? -1 : 0;
}

/* get: the .part must have the digest the server announced. */
static void get_verify_step(struct transfer *t)
{
	char sha[TRANSFER_SHA_HEX + 1];
	char part[NAME_MAX_BYTES * 4 + 16];

	if (!hash_step(t, t->part))
		return;
	hash_final(t, sha);
	safe_copy(part, sizeof part, t->part, strlen(t->part));
	if (strcmp(sha, t->sha) != 0) {
		unlink(t->part);
		fail(t, "checksum mismatch (got %s, the server has %s); %s deleted", sha, t->sha,
		     part);
		return;
	}
	if (publish_part(t->part, t->path) < 0) {
		fail(t, "cannot put %s in place: %s", part, strerror(errno));
		return;
	}
	succeed(t);
}

/* ==== replies ==== */

/* The first reply on a connection: the transfer (re)starts at offset. */
static void session_began(struct transfer *t, uint64_t offset)
{
	double now = now_s();

	if (!t->started) {
		t->started = true;
		t->t_begin = now;
		t->first_offset = offset;
		if (offset && t->nresumes < RESUMES_SHOWN)
			t->resumes[t->nresumes++] = offset;
	} else if (t->broke_at >= 0) {
		say(t, TRANSFER_NOTE, "%s: resumed at %" PRIu64, t->label, offset);
		if (t->nresumes < RESUMES_SHOWN)
			t->resumes[t->nresumes++] = offset;
	}
	t->sess_start = offset;
	t->pos = offset;
	progress_init(&t->prog, t->size, offset, now);
}

static void pump(struct transfer *t);

/* put: "OK <offset>" */
static bool put_reply(struct transfer *t, const struct client_msg *m)
{
	uint64_t offset;

	if (!parse_u64(m->arg, m->arg_len, &offset))
		return false;
	if (offset > t->size) {
		fail(t, "the server has more bytes (%" PRIu64 ") than the file", offset);
		return true;
	}
	session_began(t, offset);
	t->st = offset == t->size ? ST_SENT : ST_SEND;
	return true;
}

static int open_part(struct transfer *t)
{
	if (t->fd >= 0)
		return 0;
	t->fd = open(t->part, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	return t->fd < 0 ? -1 : 0;
}

/* get: "OK <size> <offset> <sha256>" */
static bool get_reply(struct transfer *t, const struct client_msg *m)
{
	const char *w[3];
	size_t wl[3];
	uint64_t size, offset;
	char part[NAME_MAX_BYTES * 4 + 16];

	if (split_words(m->arg, m->arg_len, w, wl, 3) != 3 || !parse_u64(w[0], wl[0], &size) ||
	    !parse_u64(w[1], wl[1], &offset) || !is_sha_hex(w[2], wl[2]))
		return false;
	safe_copy(part, sizeof part, t->part, strlen(t->part));
	if (offset > size || offset > t->pos) {
		fail(t, "the server resumed at %" PRIu64 ", we have %" PRIu64, offset, t->pos);
		return true;
	}
	if (open_part(t) < 0) {
		fail(t, "cannot create %s: %s", part, strerror(errno));
		return true;
	}
	if (offset < t->pos && ftruncate(t->fd, (off_t)offset) < 0) {
		fail(t, "cannot truncate %s: %s", part, strerror(errno));
		return true;
	}
	if (memcmp(t->sha, w[2], TRANSFER_SHA_HEX) != 0) {
		memcpy(t->sha, w[2], TRANSFER_SHA_HEX);
		t->sha[TRANSFER_SHA_HEX] = '\0';
		/* Best effort: without it a later resume still works, unchecked. */
		fsetxattr(t->fd, SHA_XATTR, t->sha, TRANSFER_SHA_HEX, 0);
	}
	t->size = size;
	session_began(t, offset);
	if (offset == size) {
		session_quit(t);
		hash_begin(t, now_s());
		t->st = ST_VERIFY;
	} else {
		t->st = ST_RECV;
	}
	return true;
}

/* ls: "OK <count>\n<size> <name>\n..." */
static bool ls_reply(struct transfer *t, const struct client_msg *m)
{
	const char *p = m->arg, *end = m->arg + m->arg_len;
	const char *nl = memchr(p, '\n', m->arg_len);
	uint64_t count, got = 0;

	if (!parse_u64(p, (size_t)((nl ? nl : end) - p), &count))
		return false;
	if (t->listed == 0)
		session_began(t, 0);
	while (nl) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		t->io.say(t->io.ctx, t, TRANSFER_LISTING, p, (size_t)((nl ? nl : end) - p));
		got++;
	}
	t->listed += got;
	if (got == 0 || t->listed >= count) {
		succeed(t);
		return true;
	}
	/* One reply holds what fits in a frame; ask for the next page. */
	char from[24];
	int n = snprintf(from, sizeof from, "%" PRIu64, t->listed);
	client_send(&t->cl, "LIST", from, (size_t)n, 0);
	return true;
}

/* Keeps an unasked OK/ERR: it explains the close that usually follows
 * ("server shutting down"). */
static void remember_notice(struct transfer *t, const struct client_msg *m)
{
	char text[NET_ERR_LEN - 16];
	safe_copy(text, sizeof text, m->arg, m->arg_len);
	snprintf(t->notice, sizeof t->notice, "server: %s", text);
}

static void on_reply(struct transfer *t, const struct client_msg *m)
{
	bool understood;

	if (m->kind == CLIENT_ERR) {
		char text[NET_ERR_LEN];
		safe_copy(text, sizeof text, m->arg, m->arg_len);
		fail(t, "%s", text);
		return;
	}
	if (t->kind == TRANSFER_PUT)
		understood = put_reply(t, m);
	else if (t->kind == TRANSFER_GET)
		understood = get_reply(t, m);
	else
		understood = ls_reply(t, m);
	if (!understood)
		remember_notice(t, m); /* e.g. "OK server shutting down" in its place */
}

/* put: "OK <size> <sha256>" after the data; it comes unasked (no tag). */
static void on_upload_done(struct transfer *t, const struct client_msg *m)
{
	const char *w[2];
	size_t wl[2];
	uint64_t size;

	if (m->kind == CLIENT_ERR) {
		on_reply(t, m);
		return;
	}
	if (split_words(m->arg, m->arg_len, w, wl, 2) != 2 || !parse_u64(w[0], wl[0], &size) ||
	    !is_sha_hex(w[1], wl[1])) {
		remember_notice(t, m);
		return;
	}
	if (t->st != ST_SENT || size != t->size || memcmp(w[1], t->sha, TRANSFER_SHA_HEX) != 0) {
		fail(t, "the server stored something else (%" PRIu64 " bytes, sha256 %.64s)", size,
		     w[1]);
		return;
	}
	succeed(t);
}

static void on_message(struct transfer *t, const struct client_msg *m)
{
	switch (m->role) {
	case CLIENT_GREETING:
		if (m->kind != CLIENT_OK) {
			char text[NET_ERR_LEN - 40];
			safe_copy(text, sizeof text, m->arg, m->arg_len);
			snprintf(t->notice, sizeof t->notice, "server refused the connection: %s",
			         text);
		}
		break;
	case CLIENT_EVENT: break; /* chat events: not ours to show */
	case CLIENT_REPLY:
		if (t->st == ST_ASKED) {
			on_reply(t, m);
			break;
		}
		/* fall through */
	case CLIENT_NOTICE:
		if (t->st == ST_SEND || t->st == ST_SENT)
			on_upload_done(t, m);
		else
			remember_notice(t, m);
		break;
	}
}

/* get: one data frame into the .part. */
static bool on_data(struct transfer *t, const unsigned char *p, size_t len)
{
	if (len > t->size - t->pos) {
		fail(t, "the server sent more than %" PRIu64 " bytes", t->size);
		return false;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(t->fd, p + done, len - done, (off_t)(t->pos + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			char part[NAME_MAX_BYTES * 4 + 16];
			safe_copy(part, sizeof part, t->part, strlen(t->part));
			fail(t, "cannot write %s: %s", part, strerror(errno));
			return false;
		}
		done += (size_t)n;
	}
	t->pos += len;
	ratelimit_spend(&t->lim, len, now_s());
	if (t->broke_at >= 0 && len)
		link_works(t);
	if (t->pos == t->size) {
		session_quit(t);
		hash_begin(t, now_s());
		t->st = ST_VERIFY;
		return false;
	}
	return true;
}

/* Handles everything decoded from what was read. False when the connection
 * is over (broken, or the transfer moved on). */
static bool drain(struct transfer *t)
{
	while (t->connected && in_session(t)) {
		enum client_next st;
		if (t->st == ST_RECV) {
			const unsigned char *p;
			size_t len;
			st = client_next_frame(&t->cl, &p, &len);
			if (st == CLIENT_NEXT_MSG && !on_data(t, p, len))
				return false;
		} else {
			struct client_msg m;
			st = client_next(&t->cl, &m);
			if (st == CLIENT_NEXT_MSG)
				on_message(t, &m);
		}
		if (st == CLIENT_NEXT_NONE)
			return true;
		if (st == CLIENT_NEXT_BROKEN) {
			link_broken(t, t->cl.error);
			return false;
		}
	}
	return false;
}

static bool read_input(struct transfer *t)
{
	int r = client_read(&t->cl);
	if (r <= 0) {
		link_broken(t, r == 0 ? "connection closed by server" : t->cl.error);
		return false;
	}
	return drain(t);
}

/* ==== sending ==== */

/* Bytes on their way: queued here or in the kernel, not acknowledged yet. */
static uint64_t unconfirmed(const struct transfer *t)
{
	return client_pending_output(&t->cl) + client_unacked(&t->cl);
}

/* put: queues data frames while the queue has room and the limit allows. */
static void pump(struct transfer *t)
{
	double now = now_s();

	while (t->st == ST_SEND && client_pending_output(&t->cl) < SEND_QUEUE_MAX) {
		uint64_t left = t->size - t->pos;
		size_t want = left < TPKT_MAX_PAYLOAD ? (size_t)left : TPKT_MAX_PAYLOAD;
		size_t grant = ratelimit_take(&t->lim, want, now);
		if (grant == 0)
			break;
		ssize_t n = client_send_file(&t->cl, t->fd, t->pos, grant);
		if (n <= 0) {
			char file[NAME_MAX_BYTES * 4 + 16];
			safe_copy(file, sizeof file, t->file, strlen(t->file));
			fail(t, "cannot read %s: %s", file,
			     n < 0 ? strerror(errno) : "file shrank");
			return;
		}
		t->pos += (uint64_t)n;
		t->sess_out += (uint64_t)n + TPKT_HDR_LEN;
		if (t->pos == t->size)
			t->st = ST_SENT;
	}
	/* After a break, the window restarts once the server acknowledges data. */
	if (t->broke_at >= 0 && t->sess_out - unconfirmed(t) > t->cmd_bytes)
		link_works(t);
}

static void session_io(struct transfer *t, short revents)
{
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !read_input(t))
		return;
	if (t->st == ST_SEND || t->st == ST_SENT)
		pump(t);
	if (!t->connected || !in_session(t))
		return;
	if (client_flush(&t->cl) < 0) {
		char why[NET_ERR_LEN];
		snprintf(why, sizeof why, "%s", t->cl.error);
		/* The server may have said why before closing (an ERR): read it first. */
		if (read_input(t) && t->connected)
			link_broken(t, why);
	}
}

/* ==== progress ==== */

static uint64_t done_bytes(const struct transfer *t)
{
	if (t->st == ST_HASH || t->st == ST_VERIFY)
		return t->hashed;
	if (t->kind == TRANSFER_PUT && t->connected) {
		uint64_t u = unconfirmed(t);
		return t->pos > t->sess_start + u ? t->pos - u : t->sess_start;
	}
	return t->pos;
}

static bool shows_progress(const struct transfer *t)
{
	return t->cfg.progress && t->io.progress && t->kind != TRANSFER_LS &&
	       (t->st == ST_HASH || t->st == ST_VERIFY || t->st == ST_SEND || t->st == ST_SENT ||
	        t->st == ST_RECV);
}

char *transfer_progress_text(struct transfer *t, char *out, size_t outsz, int width)
{
	char label[NAME_MAX_BYTES * 4 + 32];
	const char *what = t->label;
	uint64_t done = done_bytes(t);

	if (t->st == ST_HASH || t->st == ST_VERIFY) {
		snprintf(label, sizeof label, "checking %s", t->sname);
		what = label;
	}
	progress_sample(&t->prog, done, now_s());
	return progress_bar(out, outsz, &t->prog, what, done, width);
}

char *transfer_progress_short(const struct transfer *t, char *out, size_t outsz)
{
	uint64_t done = done_bytes(t), total = t->size ? t->size : 1;
	const char *name = t->sname;
	int pct = (int)(t->size ? done * 100 / total : 100);

	if (t->st == ST_BACKOFF || t->st == ST_DIAL)
		snprintf(out, outsz, "%.40s %s", name, t->started ? "reconnecting" : "connecting");
	else if (t->st == ST_ASK)
		snprintf(out, outsz, "%.40s stalled", name);
	else if (t->st == ST_HASH || t->st == ST_VERIFY)
		snprintf(out, outsz, "%.40s checking %d%%", name, pct);
	else
		snprintf(out, outsz, "%.40s %d%%", name, pct);
	return out;
}

/* ==== driving ==== */

int transfer_fd(const struct transfer *t, short *events)
{
	*events = 0;
	if (t->st == ST_DIAL) {
		*events = POLLOUT;
		return t->dial.fd;
	}
	if (!t->connected || !in_session(t))
		return -1;
	struct ratelimit lim = t->lim;
	if (t->st != ST_RECV || ratelimit_wait(&lim, 1, now_s()) == 0)
		*events |= POLLIN;
	if (client_wants_write(&t->cl))
		*events |= POLLOUT;
	return t->cl.fd;
}

static double until(double when, double now) { return when > now ? when - now : 0; }

int transfer_timeout_ms(const struct transfer *t)
{
	double now = now_s(), wait = -1;
	struct ratelimit lim = t->lim;

	switch (t->st) {
	case ST_HASH:
	case ST_VERIFY: return 0;
	case ST_DIAL: wait = until(t->dial_deadline, now); break;
	case ST_BACKOFF: wait = until(t->next_try, now); break;
	case ST_SEND:
		if (client_pending_output(&t->cl) < SEND_QUEUE_MAX)
			wait = ratelimit_wait(&lim, TPKT_MAX_PAYLOAD, now);
		break;
	case ST_RECV:
		wait = ratelimit_wait(&lim, 1, now);
		if (wait == 0)
			wait = -1;
		break;
	default: break;
	}
	/* Progress redraws; after a break, the upload's acknowledgements are watched. */
	if (shows_progress(t) || (t->broke_at >= 0 && t->st == ST_SEND)) {
		double w = t->broke_at >= 0 && t->st == ST_SEND ? 0.1 : until(t->next_draw, now);
		if (wait < 0 || w < wait)
			wait = w;
	}
	return wait < 0 ? -1 : (int)ceil(wait * 1000);
}

void transfer_step(struct transfer *t, short revents)
{
	double now = now_s();

	switch (t->st) {
	case ST_HASH: put_hash_step(t); break;
	case ST_VERIFY: get_verify_step(t); break;
	case ST_DIAL:
		if (revents)
			dial_step(t, false);
		else if (now >= t->dial_deadline)
			dial_step(t, true);
		break;
	case ST_BACKOFF:
		if (now >= t->next_try)
			session_start(t);
		break;
	case ST_ASKED:
	case ST_SEND:
	case ST_SENT:
	case ST_RECV: session_io(t, revents); break;
	case ST_ASK:
	case ST_END: break;
	}
	now = now_s();
	if (shows_progress(t) && now >= t->next_draw) {
		t->next_draw = now + PROGRESS_INTERVAL;
		t->io.progress(t->io.ctx, t);
	}
}

enum transfer_result transfer_result(const struct transfer *t) { return t->result; }
bool transfer_asking(const struct transfer *t) { return t->st == ST_ASK; }
const char *transfer_label(const struct transfer *t) { return t->label; }
const char *transfer_name(const struct transfer *t) { return t->name; }
enum transfer_kind transfer_kind(const struct transfer *t) { return t->kind; }

void transfer_retry(struct transfer *t)
{
	if (t->st != ST_ASK)
		return;
	t->broke_at = now_s();
	t->attempts = 0;
	say(t, TRANSFER_NOTE, "%s: retrying for up to %d s...", t->label, t->cfg.retry_for_s);
	session_start(t);
}

void transfer_abandon(struct transfer *t)
{
	if (t->st == ST_ASK)
		give_up(t);
}

void transfer_stop(struct transfer *t)
{
	if (t->result != TRANSFER_RUNNING)
		return;
	say(t, TRANSFER_ERROR, "%s: interrupted", t->label);
	if (t->kind != TRANSFER_LS)
		say_resume_hint(t);
	finish(t, TRANSFER_STOPPED);
}

enum transfer_result transfer_run(struct transfer *t, const volatile sig_atomic_t *stop)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	sigset_t block, old;

	sigemptyset(&block);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	while (t->result == TRANSFER_RUNNING) {
		if (stop && *stop) {
			transfer_stop(t);
			break;
		}
		struct pollfd p = { .fd = -1 };
		p.fd = transfer_fd(t, &p.events);
		int ms = transfer_timeout_ms(t);
		if (p.fd < 0 && ms < 0)
			ms = 1000; /* cannot happen; never sleep forever */
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
		int rc = ppoll(&p, 1, ms < 0 ? NULL : &ts, &old);
		transfer_step(t, (short)(rc > 0 ? p.revents : 0));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return t->result;
}

/* ==== starting ==== */

/* put: the local file, its remote name and the resume key. */
static int start_put(struct transfer *t, char err[NET_ERR_LEN])
{
	struct stat sb;
	char file[NET_ERR_LEN / 2];

	safe_copy(file, sizeof file, t->file, strlen(t->file));
	t->fd = open(t->file, O_RDONLY | O_CLOEXEC);
	if (t->fd < 0 || fstat(t->fd, &sb) < 0) {
		snprintf(err, NET_ERR_LEN, "cannot open %s: %s", file, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, NET_ERR_LEN, "%s: not a regular file", file);
		return -1;
	}
	t->size = (uint64_t)sb.st_size;
	char kerr[USERKEY_ERR_LEN];
	if (userkey_load(t->key, kerr) < 0) {
		snprintf(err, NET_ERR_LEN, "%.250s", kerr);
		return -1;
	}
	return 0;
}

/* get: where the file goes, and a .part to resume from. */
static int start_get(struct transfer *t, char err[NET_ERR_LEN])
{
	struct stat sb;
	bool into_dir = !t->output || (stat(t->output, &sb) == 0 && S_ISDIR(sb.st_mode));
	char safe[NET_ERR_LEN / 2];

	if (into_dir && !local_name_ok(t->name)) {
		safe_copy(safe, sizeof safe, t->name, strlen(t->name));
		snprintf(err, NET_ERR_LEN, "invalid file name: %s", safe);
		return -1;
	}
	if (!t->output)
		t->path = xstrdup(t->name);
	else if (into_dir) {
		size_t n = strlen(t->output) + strlen(t->name) + 2;
		t->path = xmalloc(n);
		snprintf(t->path, n, "%s%s%s", t->output,
		         t->output[strlen(t->output) - 1] == '/' ? "" : "/", t->name);
	} else {
		t->path = xstrdup(t->output);
	}
	size_t n = strlen(t->path) + sizeof ".part";
	t->part = xmalloc(n);
	snprintf(t->part, n, "%s.part", t->path);
	t->fd = open(t->part, O_RDWR | O_CLOEXEC);
	if (t->fd < 0 && errno != ENOENT) {
		safe_copy(safe, sizeof safe, t->part, strlen(t->part));
		snprintf(err, NET_ERR_LEN, "cannot open %s: %s", safe, strerror(errno));
		return -1;
	}
	if (t->fd >= 0 && fstat(t->fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		char sha[TRANSFER_SHA_HEX + 1];
		t->pos = (uint64_t)sb.st_size;
		if (fgetxattr(t->fd, SHA_XATTR, sha, TRANSFER_SHA_HEX) == TRANSFER_SHA_HEX &&
		    is_sha_hex(sha, TRANSFER_SHA_HEX)) {
			memcpy(t->sha, sha, TRANSFER_SHA_HEX);
			t->sha[TRANSFER_SHA_HEX] = '\0';
		}
	}
	return 0;
}

static void copy_config(struct transfer *t, const struct transfer_config *cfg)
{
	t->cfg = *cfg;
	t->kind = cfg->kind;
	t->addr = xstrdup(cfg->addr);
	t->file = cfg->file ? xstrdup(cfg->file) : NULL;
	t->output = cfg->output ? xstrdup(cfg->output) : NULL;
	if (cfg->name)
		t->name = xstrdup(cfg->name);
	else
		t->name = xstrdup(cfg->file ? base_name(cfg->file) : "");
	t->cfg.addr = t->addr;
	t->cfg.file = t->file;
	t->cfg.name = t->name;
	t->cfg.output = t->output;
	t->cfg.resume_hint = cfg->resume_hint ? xstrdup(cfg->resume_hint) : NULL;
}

struct transfer *transfer_start(const struct transfer_config *cfg, const struct transfer_io *io,
                                char err[NET_ERR_LEN])
{
	struct transfer *t = xcalloc(1, sizeof *t);
	static const char *const verbs[] = { "upload", "download", "list" };

	copy_config(t, cfg);
	t->io = *io;
	t->fd = -1;
	t->dial.fd = -1;
	t->broke_at = -1;
	t->result = TRANSFER_RUNNING;
	t->md = EVP_MD_CTX_new();
	safe_copy(t->sname, sizeof t->sname, t->name, strlen(t->name));
	if (t->kind == TRANSFER_LS)
		snprintf(t->label, sizeof t->label, "list");
	else
		snprintf(t->label, sizeof t->label, "%s %s", verbs[t->kind], t->sname);
	ratelimit_init(&t->lim, cfg->limit_rate, now_s());
	if (net_split_hostport(t->addr, BOTTLE_DEFAULT_PORT, t->host, sizeof t->host, &t->port,
	                       err) < 0)
		goto fail;
	if (t->kind == TRANSFER_PUT && start_put(t, err) < 0)
		goto fail;
	if (t->kind == TRANSFER_GET && start_get(t, err) < 0)
		goto fail;
	if (t->kind == TRANSFER_PUT) {
		t->st = ST_HASH; /* one step per loop turn, from the first */
		hash_begin(t, now_s());
	} else {
		session_start(t);
	}
	return t;
fail:
	transfer_free(t);
	return NULL;
}

void transfer_free(struct transfer *t)
{
	if (!t)
		return;
	session_close(t);
	if (t->fd >= 0)
		close(t->fd);
	EVP_MD_CTX_free(t->md);
	free(t->addr);
	free(t->file);
	free(t->name);
	free(t->output);
	free(t->path);
	free(t->part);
	free((char *)t->cfg.resume_hint);
	free(t);
}
