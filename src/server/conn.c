/* conn.c - one connection's life: greeting, read -> frame -> command, replies
 * into the output queue, flush, and close. Nothing here blocks: reads take what
 * the socket has, writes stop when the socket is full and wait for EPOLLOUT. */
#include "conn.h"
#include "escape.h"
#include "log.h"
#include "perms.h"
#include "proto.h"
#include "seed.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Private replies up to this size are copied into the queue's tail block, so a
 * burst of pipelined replies goes out in one writev slot instead of one each.
 * Broadcasts are never copied: every receiver references the one encoding. */
#define CONN_COPY_BELOW 512

static const struct {
	const char *log;   /* for the server log */
	const char *leave; /* for the room's LEAVE event */
} end_texts[] = {
	[END_QUIT] = { "quit", "quit" },
	[END_PEER_CLOSED] = { "peer closed", "closed" },
	[END_RESET] = { "reset", "closed" },
	[END_KEEPALIVE] = { "keepalive timeout", "timeout" },
	[END_OVERFLOW] = { "output overflow", "too slow" },
	[END_IDLE] = { "idle", "timeout" },
	[END_PROTOCOL] = { "protocol error", "closed" },
	[END_SHUTDOWN] = { "shutdown", "shutdown" },
	[END_FULL] = { "server full", "closed" },
	[END_ERROR] = { "error", "closed" },
	[END_DONE] = { "transfer done", "quit" },
	[END_SUPERSEDED] = { "superseded by a newer connection", "closed" },
	[END_STALLED] = { "transfer stalled", "timeout" },
	[END_DRAIN_TIMEOUT] = { "did not read its last output in time", "timeout" },
};

const char *conn_end_text(enum conn_end why) { return end_texts[why].log; }
const char *conn_leave_text(enum conn_end why) { return end_texts[why].leave; }

struct conn *conn_new(struct conn_env *env, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = xcalloc(1, sizeof *c);
	c->env = env;
	c->fd = fd;
	c->state = CONN_GREETING;
	c->last_read = c->last_io = loop_now(env->loop);
	c->member.ops = &conn_member_ops;
	outq_init(&c->out);
	net_addr_text(peer, c->peer);
	return c;
}

void conn_free(struct conn *c)
{
	if (c->framed)
		framer_free(&c->framer);
	outq_free(&c->out);
	if (c->io)
		c->io->free(c);
	free(c->held);
	free(c->credit);
	free(c->account);
	free(c->auth_wait);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

bool conn_alive(const struct conn *c) { return c->state != CONN_DEAD; }

static void list_add(struct conn_list *l, struct conn *c)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		l->items = xrealloc(l->items, l->cap * sizeof *l->items);
	}
	l->items[l->n++] = c;
}

void conn_want_flush(struct conn *c)
{
	if (c->flush_pending)
		return;
	c->flush_pending = true;
	list_add(&c->env->flush, c);
}

/* ---- ending ---- */

static enum conn_end end_from_errno(int err)
{
	switch (err) {
	case ECONNRESET:
	case EPIPE:
	case ECONNABORTED: return END_RESET;
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH: return END_KEEPALIVE;
	default: return END_ERROR;
	}
}

void conn_close_errno(struct conn *c, int err) { conn_close(c, end_from_errno(err)); }

void conn_close(struct conn *c, enum conn_end why)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	c->end = why;
	loop_timer_stop(c->env->loop, &c->greet_timer);
	loop_timer_stop(c->env->loop, &c->resume_timer);
	loop_timer_stop(c->env->loop, &c->pause_timer);
	loop_unwatch(c->env->loop, c->fd);
	/* Everything else waits for the reaper: the caller may be a stream, a
	 * command handler or a broadcast walking the member list right now. */
	list_add(&c->env->dead, c);
}

void conn_close_after_flush(struct conn *c, enum conn_end why)
{
	if (c->state == CONN_DEAD || c->state == CONN_DRAINING)
		return;
	loop_timer_stop(c->env->loop, &c->greet_timer);
	loop_timer_stop(c->env->loop, &c->resume_timer);
	c->state = CONN_DRAINING;
	c->end = why;
	c->drain_since = loop_now(c->env->loop);
	loop_set_mask(c->env->loop, c->fd, loop_get_mask(c->env->loop, c->fd) & ~LOOP_READABLE);
	conn_want_flush(c);
}

/* Detaches the stream, then frees it: it may look at c, never at itself via c. */
static void stream_release(struct conn *c)
{
	const struct conn_stream *ops = c->stream;
	void *data = c->stream_data;

	c->stream = NULL;
	c->stream_data = NULL;
	if (ops)
		ops->release(c, data);
}

void conn_release(struct conn *c)
{
	stream_release(c);
	room_leave(c->env->room, &c->member, conn_leave_text(c->end));
	c->join_pending = false;
	if (c->counted) {
		c->counted = false;
		c->env->greeted--;
	}
}

/* ---- streams ---- */

void conn_stream_begin(struct conn *c, const struct conn_stream *ops, void *data)
{
	c->stream = ops;
	c->stream_data = data;
	c->last_io = loop_now(c->env->loop);
}

void *conn_stream_of(const struct conn *c, const struct conn_stream *ops)
{
	return c->stream == ops ? c->stream_data : NULL;
}

bool conn_streaming(const struct conn *c) { return c->stream && c->state == CONN_OPEN; }

void conn_touch(struct conn *c) { c->last_io = loop_now(c->env->loop); }

static void on_resume(struct loop *loop, struct loop_timer *t, void *data);

void conn_stream_end(struct conn *c)
{
	if (!c->stream)
		return;
	stream_release(c);
	if (c->state != CONN_OPEN)
		return;
	if (c->framer.kind == FRAMING_LINE) {
		conn_close_after_flush(c, c->input_closed ? END_PEER_CLOSED : END_DONE);
		return;
	}
	/* Not from here: we may be inside a flush, a timer or a command. */
	loop_timer_start(c->env->loop, &c->resume_timer, 0, on_resume, c);
}

/* ---- output ---- */

static void conn_queue(struct conn *c, struct blob *b, bool shared)
{
	if (c->state == CONN_DEAD)
		return;
	if (b->len < CONN_COPY_BELOW && !shared)
		outq_append(&c->out, b->data, b->len);
	else
		outq_push(&c->out, b);
	conn_want_flush(c);
	if (outq_bytes(&c->out) > c->env->max_output) {
		log_warn("%s: output over %zu bytes, disconnecting", c->peer, c->env->max_output);
		conn_close(c, END_OVERFLOW);
	}
}

void conn_send_blob(struct conn *c, struct blob *b) { conn_queue(c, b, false); }

void conn_send_shared(struct conn *c, struct blob *b) { conn_queue(c, b, true); }

void conn_send_raw(struct conn *c, const void *data, size_t len)
{
	struct blob *b = blob_from(data, len);
	conn_send_blob(c, b);
	blob_unref(b);
}

void conn_reply(struct conn *c, const char *status, const char *text, size_t len)
{
	/* "OK " or "ERR " (no space before an empty text): no printf on the hot
	 * path of every reply. */
	const char *head = strcmp(status, "OK") == 0 ? "OK " : "ERR ";
	size_t n = strlen(head) - (len ? 0 : 1);
	struct blob *b =
		framing_encode(c->framed ? c->framer.kind : FRAMING_LINE, head, n, text, len);
	conn_send_blob(c, b);
	blob_unref(b);
}

static void conn_vreply(struct conn *c, const char *status, const char *fmt, va_list ap)
{
	char text[4096];
	int n = vsnprintf(text, sizeof text, fmt, ap);
	if (n < 0)
		n = 0;
	conn_reply(c, status, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void conn_ok(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vreply(c, "OK", fmt, ap);
	va_end(ap);
}

void conn_err(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vreply(c, "ERR", fmt, ap);
	va_end(ap);
}

static void update_write_interest(struct conn *c, bool want)
{
	int mask = loop_get_mask(c->env->loop, c->fd);
	int next = want ? mask | LOOP_WRITABLE : mask & ~LOOP_WRITABLE;
	if (next != mask)
		loop_set_mask(c->env->loop, c->fd, next);
}

void conn_flush(struct conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	if (outq_bytes(&c->out)) {
		ssize_t n = c->io ? c->io->flush(c) : outq_flush(&c->out, c->fd);
		if (n < 0) {
			conn_close_errno(c, errno);
			return;
		}
		if (n > 0)
			c->last_io = loop_now(c->env->loop);
	}
	if (!outq_bytes(&c->out) && conn_streaming(c)) {
		c->stream->pump(c);
		if (c->state == CONN_DEAD)
			return;
	}
	bool more = outq_bytes(&c->out) || (conn_streaming(c) && c->stream->wants_write(c));
	if (!more && c->state == CONN_DRAINING) {
		conn_close(c, c->end);
		return;
	}
	update_write_interest(c, more);
}

/* ---- input ---- */

void conn_greet(struct conn *c, enum framing_kind kind)
{
	struct conn_env *env = c->env;

	loop_timer_stop(env->loop, &c->greet_timer);
	framer_init(&c->framer, kind, env->max_line, env->max_frame);
	c->framed = true;
	/* Only those served count: connections still waiting for their first byte
	 * (or being turned away) must not crowd out one that speaks. */
	if (env->greeted >= env->max_clients) {
		conn_err(c, "server full");
		conn_close_after_flush(c, END_FULL);
		return;
	}
	c->state = CONN_OPEN;
	c->counted = true;
	env->greeted++;
	room_reserve(env->room, &c->member);
	if (c->seed) {
		seed_greet(c);
		log_debug("%s speaks the seed dialect as %s", c->peer, c->member.nick);
		return;
	}
	conn_ok(c, "bottled %s ready; type HELP for commands; you are %s", BOTTLE_VERSION,
	        c->member.nick);
	/* After the greeting: joining gives a newcomer the room's history. Without
	 * the chat permission it waits, out of the room, for an AUTH that gives it. */
	if (kind == FRAMING_LINE && (c->perms & PERM_CHAT))
		room_enter(env->room, &c->member, true);
	else
		c->join_pending = true;
	log_debug("%s speaks %s as %s", c->peer, framing_name(kind), c->member.nick);
}

void conn_greet_seed(struct conn *c)
{
	c->seed = true;
	conn_greet(c, FRAMING_TPKT);
}

void conn_on_greeting_timer(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	(void)t;
	struct conn *c = data;
	if (c->state == CONN_GREETING)
		conn_greet(c, FRAMING_LINE);
}

static void conn_command(struct conn *c, const char *cmd, size_t len)
{
	if (c->seed) {
		seed_frame(c, cmd, len); /* a chat message, /nick or exit: never a command */
		return;
	}
	if (len == 0 && c->framer.kind == FRAMING_LINE)
		return; /* an empty line is no command */
	if (len == 0) {
		conn_err(c, "empty command");
		return;
	}
	c->env->command(c, cmd, len);
}

static void conn_frame_error(struct conn *c, enum frame_result r, const char *error)
{
	/* The one rejected frame a line can be: say the rule it broke. */
	if (r == FRAME_REJECT && c->framer.kind == FRAMING_LINE)
		conn_err(c, "%s (at most %zu bytes)", error, c->env->max_line);
	else
		conn_err(c, "%s", error);
	if (r == FRAME_FATAL) {
		log_warn("%s: %s, closing", c->peer, error);
		conn_close_after_flush(c, END_PROTOCOL);
	} else {
		log_info("%s: %s", c->peer, error);
	}
}

static void set_reading(struct conn *c, bool on)
{
	int mask = loop_get_mask(c->env->loop, c->fd);
	loop_set_mask(c->env->loop, c->fd, on ? mask | LOOP_READABLE : mask & ~LOOP_READABLE);
	if (on && c->io)
		c->io->resumed(c); /* epoll can't see what TLS decrypted already */
}

/* Keeps input that arrives while a transfer is busy (hashing, sending) and
 * stops reading until it is over: at most one read's worth is ever held. */
static void conn_hold(struct conn *c, const unsigned char *data, size_t n)
{
	c->held = xrealloc(c->held, c->held_len + n);
	memcpy(c->held + c->held_len, data, n);
	c->held_len += n;
	set_reading(c, false);
}

/* Feeds bytes read from the socket through the framer into the dispatcher. */
static void conn_feed(struct conn *c, const unsigned char *data, size_t n)
{
	size_t off = 0;

	if (c->state == CONN_GREETING)
		conn_greet(c, framing_detect(data[0]));
	while (off < n && c->state == CONN_OPEN) {
		if (c->paused) {
			conn_hold(c, data + off, n - off);
			break;
		}
		const struct conn_stream *stream = c->stream;
		bool to_stream = stream && stream->wants_input(c);
		if (stream && !to_stream) {
			conn_hold(c, data + off, n - off);
			break;
		}
		if (to_stream && c->framer.kind == FRAMING_LINE) {
			off += stream->input(c, data + off, n - off);
			continue;
		}
		const char *cmd, *error;
		size_t used, len;
		enum frame_result r =
			framer_decode(&c->framer, data + off, n - off, &used, &cmd, &len, &error);
		off += used;
		/* Telnet answers (a timing mark) go after the replies to what came before
		 * them and before the reply to this command (RFC 860). */
		unsigned char *answer;
		size_t alen = framer_take_reply(&c->framer, &answer);
		if (alen) {
			conn_send_raw(c, answer, alen);
			free(answer);
		}
		if (r == FRAME_OK && to_stream)
			stream->input(c, (const unsigned char *)cmd, len);
		else if (r == FRAME_OK)
			conn_command(c, cmd, len);
		else if (r == FRAME_REJECT || r == FRAME_FATAL)
			conn_frame_error(c, r, error);
	}
	/* The last command is done with: an idle connection keeps no decoder buffer. */
	if (c->framed)
		framer_trim(&c->framer);
}

/* A stream ended on a TPKT connection: commands again, starting with those
 * that arrived meanwhile. A peer that half-closed meanwhile is done then. */
static void on_resume(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	(void)t;
	struct conn *c = data;
	unsigned char *held = c->held;
	size_t len = c->held_len;

	if (c->state != CONN_OPEN || c->stream)
		return;
	c->held = NULL; /* feeding may start a stream that holds again */
	c->held_len = 0;
	if (!c->input_closed)
		set_reading(c, true);
	if (len)
		conn_feed(c, held, len);
	free(held);
	if (c->input_closed && !c->stream && !c->paused) /* a pause comes back here */
		conn_close_after_flush(c, END_PEER_CLOSED);
}

static void on_pause_end(struct loop *loop, struct loop_timer *t, void *data)
{
	struct conn *c = data;
	c->paused = false;
	if (c->state != CONN_OPEN)
		return;
	c->pause_then(c);
	on_resume(loop, t, c); /* the input that waited */
}

void conn_pause_end(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	loop_timer_stop(c->env->loop, &c->pause_timer);
	if (c->state == CONN_OPEN)
		loop_timer_start(c->env->loop, &c->resume_timer, 0, on_resume, c);
}

void conn_pause(struct conn *c, uint64_t ms, void (*then)(struct conn *c))
{
	c->paused = true;
	c->pause_then = then;
	loop_timer_start(c->env->loop, &c->pause_timer, ms, on_pause_end, c);
}

static void conn_read(struct conn *c)
{
	ssize_t n = c->io ? c->io->read(c, c->env->rbuf, c->env->rbuf_size)
	                  : read(c->fd, c->env->rbuf, c->env->rbuf_size);

	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close_errno(c, errno);
		return;
	}
	if (n == 0) {
		/* The peer is done sending but may still read: finish what we owe,
		 * a transfer's last reply or its remaining bytes included, then close
		 * (conn_stream_end, on_resume). Only an upload still waiting for data
		 * can never finish. */
		if (conn_streaming(c) && c->stream->wants_input(c)) {
			conn_close(c, END_PEER_CLOSED);
		} else if (conn_streaming(c) || c->paused) { /* a pause's reply is owed too */
			c->input_closed = true;
			set_reading(c, false);
		} else {
			conn_close_after_flush(c, END_PEER_CLOSED);
		}
		return;
	}
	c->last_read = c->last_io = loop_now(c->env->loop);
	conn_feed(c, c->env->rbuf, (size_t)n);
}

void conn_on_io(struct loop *loop, int fd, void *data, int mask)
{
	(void)loop;
	(void)fd;
	struct conn *c = data;

	if (mask & LOOP_WRITABLE)
		conn_flush(c);
	if ((mask & LOOP_READABLE) && (c->state == CONN_GREETING || c->state == CONN_OPEN) &&
	    !c->input_closed)
		conn_read(c);
}
