/* client.c - the client's connection (connect, queue commands, decode TPKT
 * frames, pair replies with commands) and the pure text helpers around it. */
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

/* ---- server messages ---- */

/* Splits p[0..len) at the first space: *word gets the part before it, the
 * return value the rest (NULL when there is no space). */
static const char *split_word(const char *p, size_t len, size_t *word, size_t *rest)
{
	const char *sp = memchr(p, ' ', len);

	if (!sp) {
		*word = len;
		*rest = 0;
		return NULL;
	}
	*word = (size_t)(sp - p);
	*rest = len - *word - 1;
	return sp + 1;
}

static bool word_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(p, word, len) == 0;
}

static enum client_kind kind_of(const char *p, size_t len)
{
	static const struct {
		const char *word;
		enum client_kind kind;
	} words[] = {
		{ "OK", CLIENT_OK },     { "ERR", CLIENT_ERR },     { "MSG", CLIENT_MSG },
		{ "JOIN", CLIENT_JOIN }, { "LEAVE", CLIENT_LEAVE }, { "NICK", CLIENT_NICK },
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (word_is(p, len, words[i].word))
			return words[i].kind;
	return CLIENT_UNKNOWN;
}

void client_parse(const char *p, size_t len, struct client_msg *m)
{
	size_t wlen, rlen;
	const char *rest = split_word(p, len, &wlen, &rlen);

	memset(m, 0, sizeof *m);
	m->text = p;
	m->len = len;
	m->kind = kind_of(p, wlen);
	m->role = client_is_event(m->kind) ? CLIENT_EVENT : CLIENT_REPLY;
	m->arg = rest ? rest : p + len;
	m->arg_len = rlen;
	if (m->kind == CLIENT_OK || m->kind == CLIENT_ERR || m->kind == CLIENT_UNKNOWN)
		return;
	/* Events name a nick first; what follows it is the event's argument. */
	m->nick = m->arg;
	const char *after = split_word(m->nick, rlen, &m->nick_len, &m->arg_len);
	m->arg = after ? after : m->nick + m->nick_len;
}

bool client_is_event(enum client_kind kind) { return kind != CLIENT_OK && kind != CLIENT_ERR; }

/* ---- display ---- */

/* A growing NUL-terminated string. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

/* escape_text output for n untrusted bytes: at most "\xNN" for each. */
static char *escape_dup(const char *s, size_t n)
{
	size_t cap = n * 4 + 4;
	return escape_text(xmalloc(cap), cap, s, n);
}

char *client_render_lines(const char *prefix, const char *text, size_t len)
{
	struct text out = { 0 };
	size_t indent = utf8_columns(prefix);
	const char *p = text, *end = text + len;

	text_add(&out, prefix, strlen(prefix));
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *safe = escape_dup(p, n);
		text_add(&out, safe, strlen(safe));
		free(safe);
		if (!nl)
			break;
		text_add(&out, "\n", 1);
		for (size_t i = 0; i < indent; i++)
			text_add(&out, " ", 1);
		p = nl + 1;
	}
	return out.s;
}

/* "* <nick><middle><arg><end>" with nick and arg escaped. */
static char *render_notice(const struct client_msg *m, const char *middle, bool with_arg,
                           const char *end)
{
	char *nick = escape_dup(m->nick, m->nick_len);
	char *arg = escape_dup(m->arg, with_arg ? m->arg_len : 0);
	size_t n = strlen(nick) + strlen(middle) + strlen(arg) + strlen(end) + 3;
	char *out = xmalloc(n);

	snprintf(out, n, "* %s%s%s%s", nick, middle, arg, end);
	free(nick);
	free(arg);
	return out;
}

static char *render_msg(const struct client_msg *m)
{
	char *nick = escape_dup(m->nick, m->nick_len);
	size_t n = strlen(nick) + 3;
	char *prefix = xmalloc(n);

	snprintf(prefix, n, "%s: ", nick);
	char *out = client_render_lines(prefix, m->arg, m->arg_len);
	free(prefix);
	free(nick);
	return out;
}

char *client_render_event(const struct client_msg *m)
{
	switch (m->kind) {
	case CLIENT_MSG: return render_msg(m);
	case CLIENT_JOIN: return render_notice(m, " joined", false, "");
	case CLIENT_LEAVE: return render_notice(m, " left (", true, ")");
	case CLIENT_NICK: return render_notice(m, " is now ", true, "");
	default: return client_render_lines("", m->text, m->len);
	}
}

bool client_greeting_nick(const struct client_msg *m, const char **nick, size_t *len)
{
	static const char marker[] = "you are ";
	const char *end = m->arg + m->arg_len;

	*nick = NULL;
	*len = 0;
	for (const char *p = m->arg; p + sizeof marker - 1 <= end; p++)
		if (memcmp(p, marker, sizeof marker - 1) == 0)
			*nick = p + sizeof marker - 1; /* the last one counts */
	if (!*nick)
		return false;
	*len = (size_t)(end - *nick);
	return true;
}

/* ---- composing a message ---- */

void client_draft_init(struct client_draft *d) { memset(d, 0, sizeof *d); }

void client_draft_free(struct client_draft *d)
{
	free(d->text);
	client_draft_init(d);
}

static void draft_append(struct client_draft *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		d->cap = (d->len + n + 1) * 2;
		d->text = xrealloc(d->text, d->cap);
	}
	memcpy(d->text + d->len, s, n);
	d->len += n;
	d->text[d->len] = '\0';
}

bool client_draft_add(struct client_draft *d, const char *line, size_t len, bool more_follows)
{
	bool cont = len > 0 && line[len - 1] == '\\';

	if (cont)
		len--;
	if (d->open)
		draft_append(d, "\n", 1);
	draft_append(d, line, len);
	d->open = cont || more_follows;
	return !d->open;
}

char *client_draft_take(struct client_draft *d, size_t *len)
{
	char *text = d->text ? d->text : xstrdup("");
	size_t n = d->len;

	while (n > 0 && text[n - 1] == '\n') /* a paste's final newline ends it, no more */
		n--;
	text[n] = '\0';
	*len = n;
	client_draft_init(d);
	return text;
}

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
	if (outq_bytes(&c->out) && outq_flush(&c->out, c->fd) < 0) {
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
	ssize_t n = read(c->fd, c->rbuf, CLIENT_RBUF);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 1;
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
