/* transfer.c - the driver of one put, get or ls (transfer.h): it wires a
 * reconnecting link (link.h) to one kind of transfer (kind.h: put.c, get.c,
 * ls.c), owns the rate limit, the progress and what the user is told, and
 * holds the pure helpers of transfer.h.
 *
 * A break after the transfer began (its first reply) makes the link dial
 * again with backoff until its retry window runs out: then the chat asks the
 * user (io->ask), or it gives up. Before that, a break is the end
 * (TRANSFER_NO_SERVER). ERR replies and local file errors end it at once,
 * but "ERR busy: ...", which is retried as a break (transfer_refused). */
#include "transfer.h"
#include "account.h"
#include "escape.h"
#include "kind.h"
#include "progress.h"
#include "proto.h"
#include "resume.h"
#include "userkey.h"
#include "wire.h"
#include "xmalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAFE_NAME (WIRE_NAME_MAX * 4 + 4)
#define RESUMES_SHOWN 4

_Static_assert(TRANSFER_KEY_LEN == RESUME_KEY_LEN && TRANSFER_TOKEN_HEX == RESUME_TOKEN_HEX &&
                       TRANSFER_SHA_HEX == WIRE_SHA_HEX && RESUME_KEY_LEN == USERKEY_LEN,
               "transfer.h says the same sizes as resume.h, wire.h and userkey.h");

struct transfer {
	enum transfer_kind kind;
	const struct kind_ops *ops;
	void *k;                    /* the kind's own state */
	struct transfer_config cfg; /* its strings point at the copies below */
	char *addr, *file, *name, *output;
	char sname[SAFE_NAME];      /* the name, safe to show */
	char label[SAFE_NAME + 12]; /* "upload <sname>" */
	struct transfer_io io;
	enum transfer_result result;
	struct link link;
	bool started; /* a reply arrived once: breaks are retried now */

	struct ratelimit lim;
	struct progress prog;
	double next_draw;
	double t_begin, t_end;
	uint64_t first_offset;           /* where this run started: the rest is its work */
	uint64_t resumes[RESUMES_SHOWN]; /* offsets of resumed starts */
	int nresumes;
};

/* ==== pure helpers ==== */

void transfer_token(const unsigned char key[TRANSFER_KEY_LEN], const char *name, uint64_t size,
                    const char *sha_hex, char out[TRANSFER_TOKEN_HEX + 1])
{
	resume_token(key, name, size, sha_hex, out);
}

/* A name the wire encoders can take (at most WIRE_NAME_MAX bytes). */
static bool wire_name(char out[WIRE_NAME_MAX + 1], const char *name)
{
	return snprintf(out, WIRE_NAME_MAX + 1, "%s", name) <= WIRE_NAME_MAX;
}

int transfer_upload_args(char *out, size_t outsz, const char *name, uint64_t size, const char *sha,
                         const char *token)
{
	struct wire_upload u = { .size = size };

	if (!wire_name(u.name, name) || strlen(sha) > WIRE_SHA_HEX ||
	    strlen(token) > WIRE_TOKEN_MAX)
		return -1;
	snprintf(u.sha, sizeof u.sha, "%s", sha);
	snprintf(u.token, sizeof u.token, "%s", token);
	return wire_upload_encode(out, outsz, &u);
}

int transfer_download_args(char *out, size_t outsz, const char *name, uint64_t offset,
                           const char *sha)
{
	struct wire_download d = { .offset = offset };

	if (!wire_name(d.name, name) || (sha && strlen(sha) > WIRE_SHA_HEX))
		return -1;
	snprintf(d.sha, sizeof d.sha, "%s", sha ? sha : "");
	return wire_download_encode(out, outsz, &d);
}

int transfer_backoff_ms(int attempt) { return link_backoff_ms(attempt); }

char *transfer_shell_quote(const char *s, char *out, size_t outsz)
{
	return resume_shell_quote(s, out, outsz);
}

/* ==== telling the user ==== */

void transfer_say(struct transfer *t, enum transfer_text kind, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	t->io.say(t->io.ctx, t, kind, text, strlen(text));
}

void transfer_list_line(struct transfer *t, const char *line, size_t len)
{
	t->io.say(t->io.ctx, t, TRANSFER_LISTING, line, len);
}

/* The command that picks the transfer up again, for the user. */
static void say_resume_hint(struct transfer *t)
{
	char addr[600], hint[2048];

	if (t->cfg.resume_hint) {
		transfer_say(t, TRANSFER_NOTE, "%s", t->cfg.resume_hint);
		return;
	}
	resume_shell_quote(t->addr, addr, sizeof addr);
	t->ops->resume_hint(t->k, addr, hint, sizeof hint);
	transfer_say(t, TRANSFER_NOTE, "%s", hint);
}

/* "<done> <name>[ to <where>]: " and progress_final's line. */
static void say_done(struct transfer *t, const char *done, const char *where)
{
	char summary[300], to[SAFE_NAME + 16] = "";
	struct kind_progress p = { 0 };

	t->ops->progress(t->k, &p);
	struct progress_end end = {
		.size = p.total,
		.moved = p.total - t->first_offset,
		.secs = t->t_end - t->t_begin,
		.verb = t->kind == TRANSFER_GET ? "received" : "sent",
		.resumed = t->resumes,
		.nresumed = t->nresumes,
	};
	progress_final(summary, sizeof summary, &end);
	if (where) {
		char safe[SAFE_NAME];
		escape_text(safe, sizeof safe, where, strlen(where));
		snprintf(to, sizeof to, " to %s", safe);
	}
	transfer_say(t, TRANSFER_DONE, "%s %s%s: %s", done, t->sname, to, summary);
}

/* ==== ending ==== */

static void finish(struct transfer *t, enum transfer_result result)
{
	link_close(&t->link);
	t->result = result;
}

void transfer_fail(struct transfer *t, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	transfer_say(t, TRANSFER_ERROR, "%s: %s", t->label, text);
	finish(t, TRANSFER_FAILED);
}

/* "ERR busy: ..." (another node of a cluster is writing this upload's
 * partial right now) is worth waiting for: the link breaks and dials again
 * within its retry window, as after a lost connection, even on the first
 * connection. Any other ERR is the end. */
void transfer_refused(struct transfer *t, const struct client_msg *m)
{
	char text[NET_ERR_LEN];
	escape_text(text, sizeof text, m->arg, m->arg_len);
	if (m->arg_len >= strlen(WIRE_BUSY) && memcmp(m->arg, WIRE_BUSY, strlen(WIRE_BUSY)) == 0) {
		link_keep_up(&t->link, true);
		link_break(&t->link, text);
		return;
	}
	transfer_fail(t, "%s", text);
}

void transfer_succeed(struct transfer *t, const char *done, const char *where)
{
	t->t_end = link_now();
	link_quit(&t->link);
	finish(t, TRANSFER_OK);
	if (done)
		say_done(t, done, where);
}

static void give_up(struct transfer *t, const char *why)
{
	transfer_say(t, TRANSFER_ERROR, "%s: giving up: %s (no working connection for %d s)",
	             t->label, why, t->cfg.retry_for_s);
	say_resume_hint(t);
	finish(t, TRANSFER_GAVE_UP);
}

/* ==== what the kinds are told and use ==== */

void transfer_began(struct transfer *t, uint64_t offset, uint64_t total)
{
	double now = link_now();

	if (!t->started) {
		t->started = true;
		link_keep_up(&t->link, true);
		t->t_begin = now;
		t->first_offset = offset;
		if (offset && t->nresumes < RESUMES_SHOWN)
			t->resumes[t->nresumes++] = offset;
	} else if (link_recovering(&t->link)) {
		transfer_say(t, TRANSFER_NOTE, "%s: resumed at %" PRIu64, t->label, offset);
		if (t->nresumes < RESUMES_SHOWN)
			t->resumes[t->nresumes++] = offset;
	}
	progress_init(&t->prog, total, offset, now);
}

void transfer_checking(struct transfer *t, uint64_t total)
{
	progress_init(&t->prog, total, 0, link_now());
}

struct link *transfer_link(struct transfer *t) { return &t->link; }
struct ratelimit *transfer_limit(struct transfer *t) { return &t->lim; }

/* ==== the link's events ==== */

/* The tag of "ROLE files", whose reply is nobody's business. */
#define TAG_ROLE 1

/* Every connection of a transfer says first that it only moves files, so it
 * never shows up in the chat (docs/protocol.md, section 4); the kind's
 * command follows in the same write. Its reply is dropped: "OK files", or
 * "ERR unknown command: ROLE" from a server that predates ROLE. */
static void on_up(void *ctx)
{
	struct transfer *t = ctx;
	struct client *cl = link_client(&t->link);

	account_send(cl); /* AUTH first, on every connection (account.h) */
	client_send(cl, "ROLE", "files", 5, TAG_ROLE); /* TPKT clients speak first */
	t->ops->begin(t->k, cl);
}

static void on_down(void *ctx, const char *why, bool lost)
{
	struct transfer *t = ctx;

	t->ops->down(t->k);
	if (lost)
		transfer_say(t, TRANSFER_NOTE,
		             "%s: connection lost (%s); retrying for up to %d s...", t->label, why,
		             t->cfg.retry_for_s);
}

static void on_gave_up(void *ctx, const char *why)
{
	struct transfer *t = ctx;

	if (t->io.ask)
		t->io.ask(t->io.ctx, t);
	else
		give_up(t, why);
}

/* Before anything began that is the end, like the chat's "cannot connect". */
static void on_failed(void *ctx, const char *why)
{
	struct transfer *t = ctx;
	transfer_say(t, TRANSFER_ERROR, "%s", why);
	finish(t, TRANSFER_NO_SERVER);
}

/* ==== messages and data ==== */

/* Keeps an unasked OK/ERR as the reason of a close that usually follows
 * ("server shutting down"). */
static void remember_notice(struct transfer *t, const struct client_msg *m, const char *what,
                            size_t room)
{
	char text[NET_ERR_LEN], reason[2 * NET_ERR_LEN];
	escape_text(text, room, m->arg, m->arg_len);
	snprintf(reason, sizeof reason, "%s%s", what, text);
	link_explain(&t->link, reason);
}

static void on_message(struct transfer *t, const struct client_msg *m)
{
	switch (m->role) {
	case CLIENT_GREETING:
		if (m->kind != CLIENT_OK)
			remember_notice(t, m, "server refused the connection: ", NET_ERR_LEN - 40);
		break;
	case CLIENT_EVENT: break; /* chat events: not ours to show */
	case CLIENT_REPLY:
	case CLIENT_NOTICE:
		if (m->role == CLIENT_REPLY && m->tag == TAG_ROLE)
			break;
		if (m->role == CLIENT_REPLY && m->tag == ACCOUNT_TAG) {
			char why[ACCOUNT_ERR_LEN];
			if (!account_accepted(m, why)) {
				transfer_say(t, TRANSFER_ERROR, "%s", why);
				finish(t, TRANSFER_FAILED);
			}
			break;
		}
		if (!t->ops->message(t->k, m))
			remember_notice(t, m, "server: ", NET_ERR_LEN - 16);
		break;
	}
}

/* Handles everything decoded from what was read. False when the connection
 * is over (broken, or the transfer moved on). */
static bool drain(struct transfer *t)
{
	struct client *cl;

	while (t->result == TRANSFER_RUNNING && (cl = link_client(&t->link))) {
		enum client_next st;
		if (t->ops->need(t->k) == KIND_RECV) {
			const unsigned char *p;
			size_t len;
			st = client_next_data(cl, &p, &len);
			if (st == CLIENT_NEXT_MSG && !t->ops->data(t->k, p, len))
				return false;
		} else {
			struct client_msg m;
			st = client_next(cl, &m);
			if (st == CLIENT_NEXT_MSG)
				on_message(t, &m);
		}
		if (st == CLIENT_NEXT_NONE)
			return true;
		if (st == CLIENT_NEXT_BROKEN) {
			link_break(&t->link, cl->error);
			return false;
		}
	}
	return false;
}

static bool read_input(struct transfer *t) { return link_read(&t->link) && drain(t); }

static void session_io(struct transfer *t, short revents)
{
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !read_input(t))
		return;
	struct client *cl = link_client(&t->link);
	if (cl && t->ops->need(t->k) == KIND_SEND)
		t->ops->pump(t->k, cl);
	if (t->result != TRANSFER_RUNNING || !(cl = link_client(&t->link)))
		return;
	if (client_flush(cl) < 0) {
		char why[NET_ERR_LEN];
		snprintf(why, sizeof why, "%s", cl->error);
		/* The server may have said why before closing (an ERR): read it first. */
		if (read_input(t) && link_client(&t->link))
			link_break(&t->link, why);
	}
}

/* ==== progress ==== */

/* The kind's progress; shown only while hashing or while data moves. */
static struct kind_progress progress_of(const struct transfer *t)
{
	struct kind_progress p = { 0 };

	t->ops->progress(t->k, &p);
	if (t->ops->need(t->k) != KIND_LOCAL && t->link.st != LINK_UP)
		p.shown = false;
	return p;
}

static bool shows_progress(const struct transfer *t)
{
	return t->cfg.progress && t->io.progress && t->result == TRANSFER_RUNNING &&
	       progress_of(t).shown;
}

char *transfer_progress_text(struct transfer *t, char *out, size_t outsz, int width)
{
	char label[SAFE_NAME + 32];
	const char *what = t->label;
	struct kind_progress p = progress_of(t);

	if (p.checking) {
		snprintf(label, sizeof label, "checking %s", t->sname);
		what = label;
	}
	progress_sample(&t->prog, p.done, link_now());
	return progress_bar(out, outsz, &t->prog, what, p.done, width);
}

char *transfer_progress_short(const struct transfer *t, char *out, size_t outsz)
{
	struct kind_progress p = progress_of(t);
	const char *name = t->sname;
	int pct = (int)(p.total ? p.done * 100 / p.total : 100);

	if (t->link.st == LINK_BACKOFF || t->link.st == LINK_DIALING)
		snprintf(out, outsz, "%.40s %s", name, t->started ? "reconnecting" : "connecting");
	else if (transfer_asking(t))
		snprintf(out, outsz, "%.40s stalled", name);
	else if (p.checking)
		snprintf(out, outsz, "%.40s checking %d%%", name, pct);
	else
		snprintf(out, outsz, "%.40s %d%%", name, pct);
	return out;
}

/* ==== driving ==== */

int transfer_fd(const struct transfer *t, short *events)
{
	double wait = -1;
	int fd = link_fd(&t->link, events);

	if (t->link.st == LINK_UP && t->ops->poll)
		t->ops->poll(t->k, events, &wait);
	return fd;
}

int transfer_timeout_ms(const struct transfer *t)
{
	short events = 0;
	double wait = -1;

	if (t->result != TRANSFER_RUNNING)
		return -1;
	if (t->ops->need(t->k) == KIND_LOCAL)
		return 0;
	if (t->link.st == LINK_UP && t->ops->poll)
		t->ops->poll(t->k, &events, &wait);
	if (shows_progress(t)) { /* redraws */
		double now = link_now(), w = t->next_draw > now ? t->next_draw - now : 0;
		if (wait < 0 || w < wait)
			wait = w;
	}
	int ms = wait < 0 ? -1 : (int)ceil(wait * 1000);
	int link_ms = link_timeout_ms(&t->link);
	return link_ms >= 0 && (ms < 0 || link_ms < ms) ? link_ms : ms;
}

void transfer_step(struct transfer *t, short revents)
{
	if (t->result != TRANSFER_RUNNING)
		return;
	if (t->ops->need(t->k) == KIND_LOCAL)
		t->ops->work(t->k);
	else if (t->link.st == LINK_UP)
		session_io(t, revents);
	else
		link_step(&t->link, revents);
	double now = link_now();
	if (shows_progress(t) && now >= t->next_draw) {
		t->next_draw = now + PROGRESS_INTERVAL;
		t->io.progress(t->io.ctx, t);
	}
}

enum transfer_result transfer_result(const struct transfer *t) { return t->result; }
const char *transfer_label(const struct transfer *t) { return t->label; }
const char *transfer_name(const struct transfer *t) { return t->name; }
enum transfer_kind transfer_kind(const struct transfer *t) { return t->kind; }

bool transfer_asking(const struct transfer *t)
{
	return t->result == TRANSFER_RUNNING && t->link.st == LINK_WAITING;
}

void transfer_retry(struct transfer *t)
{
	if (!transfer_asking(t))
		return;
	transfer_say(t, TRANSFER_NOTE, "%s: retrying for up to %d s...", t->label,
	             t->cfg.retry_for_s);
	link_retry(&t->link);
}

void transfer_abandon(struct transfer *t)
{
	if (transfer_asking(t))
		give_up(t, t->link.why);
}

void transfer_stop(struct transfer *t)
{
	if (t->result != TRANSFER_RUNNING)
		return;
	transfer_say(t, TRANSFER_ERROR, "%s: interrupted", t->label);
	if (t->ops->resumable)
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

static const struct kind_ops *const kinds[] = {
	[TRANSFER_PUT] = &put_ops,
	[TRANSFER_GET] = &get_ops,
	[TRANSFER_LS] = &ls_ops,
};

static void copy_config(struct transfer *t, const struct transfer_config *cfg)
{
	const char *slash = cfg->file ? strrchr(cfg->file, '/') : NULL;

	t->cfg = *cfg;
	t->kind = cfg->kind;
	t->addr = xstrdup(cfg->addr);
	t->file = cfg->file ? xstrdup(cfg->file) : NULL;
	t->output = cfg->output ? xstrdup(cfg->output) : NULL;
	if (cfg->name)
		t->name = xstrdup(cfg->name);
	else if (cfg->file)
		t->name = xstrdup(slash ? slash + 1 : cfg->file); /* the base name */
	else
		t->name = xstrdup("");
	t->cfg.addr = t->addr;
	t->cfg.file = t->file;
	t->cfg.name = t->name;
	t->cfg.output = t->output;
	t->cfg.resume_hint = cfg->resume_hint ? xstrdup(cfg->resume_hint) : NULL;
}

/* The link to HOST:PORT, off until the kind is ready (and set up even when
 * the address is bad, so transfer_free may close it). */
static int init_link(struct transfer *t, char err[NET_ERR_LEN])
{
	struct link_config lc = { .ka = t->cfg.ka,
		                  .timeout_s = t->cfg.timeout_s,
		                  .retry_for_s = t->cfg.retry_for_s };
	struct link_events ev = {
		.up = on_up, .down = on_down, .gave_up = on_gave_up, .failed = on_failed, .ctx = t
	};
	char host[256] = "";
	int rc = net_split_hostport(t->addr, BOTTLE_DEFAULT_PORT, host, sizeof host, &lc.port, err);

	lc.host = host;
	link_init(&t->link, &lc, &ev);
	return rc < 0 ? -1 : 0;
}

struct transfer *transfer_start(const struct transfer_config *cfg, const struct transfer_io *io,
                                char err[NET_ERR_LEN])
{
	struct transfer *t = xcalloc(1, sizeof *t);

	copy_config(t, cfg);
	t->ops = kinds[t->kind];
	t->io = *io;
	t->result = TRANSFER_RUNNING;
	escape_text(t->sname, sizeof t->sname, t->name, strlen(t->name));
	if (t->ops->resumable)
		snprintf(t->label, sizeof t->label, "%s %s", t->ops->verb, t->sname);
	else
		snprintf(t->label, sizeof t->label, "%s", t->ops->verb);
	ratelimit_init(&t->lim, cfg->limit_rate, link_now());
	if (init_link(t, err) < 0 || !(t->k = t->ops->open(t, &t->cfg, err))) {
		transfer_free(t);
		return NULL;
	}
	if (t->ops->need(t->k) != KIND_LOCAL)
		link_open(&t->link);
	return t;
}

void transfer_free(struct transfer *t)
{
	if (!t)
		return;
	link_close(&t->link);
	if (t->k)
		t->ops->free(t->k);
	free(t->addr);
	free(t->file);
	free(t->name);
	free(t->output);
	free((char *)t->cfg.resume_hint);
	free(t);
}
