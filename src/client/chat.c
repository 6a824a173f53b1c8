/* chat.c - the chat session: one thread, one ppoll loop over the chat's
 * socket, the input source (terminal or script, behind struct chat_input) and
 * the background transfers (chat_jobs.c). It sends what the input asks for,
 * matches replies to commands, shows events and notices, and decides when the
 * session is over: QUIT answered (or not within QUIT_WAIT_MS), or the
 * connection lost with no transfer left to wait for. */
#include "chat.h"
#include "chat_slash.h"
#include "exit_codes.h"
#include "nick.h"
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define QUIT_WAIT_MS 5000 /* for "OK bye" after QUIT */

/* ==== output ==== */

void chat_write_line(FILE *out, const char *text)
{
	fputs(text, out);
	fputc('\n', out);
	fflush(out);
}

void chat_show(struct chat *ch, bool error, const char *text)
{
	if (error)
		ch->in->show_error(ch, text);
	else
		ch->in->show(ch, text);
}

void chat_show_text(struct chat *ch, bool error, const char *prefix, const char *text, size_t len)
{
	char *safe = client_render_lines(prefix, text, len);
	chat_show(ch, error, safe);
	free(safe);
}

void chat_show_error(struct chat *ch, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	chat_show_text(ch, true, "error: ", text, strlen(text));
}

/* The session is over because the connection is: say why unless it was
 * expected. Transfers have connections of their own and may still recover:
 * the session then stays until they end (or the user leaves). */
static void connection_lost(struct chat *ch, const char *why)
{
	if (ch->done || ch->offline)
		return;
	if (ch->quit_sent) {
		ch->done = true;
		return;
	}
	chat_show_error(ch, "connection lost: %s", ch->reason[0] ? ch->reason : why);
	ch->status = BOTTLE_EXIT_CONN;
	if (ch->jobs.count) {
		ch->offline = true;
		chat_show(ch, true, "the transfers go on by themselves; Ctrl-D leaves");
		return;
	}
	ch->done = true;
}

/* ==== sending ==== */

void chat_send(struct chat *ch, const char *verb, const char *arg, size_t len, int tag)
{
	if (ch->offline)
		chat_show_error(ch, "not connected (the chat's connection was lost)");
	else if (client_send(ch->cl, verb, arg, len, tag) < 0)
		chat_show_error(ch, "%s: command too long (at most %d bytes)", verb,
		                TPKT_MAX_PAYLOAD);
}

void chat_say(struct chat *ch, const char *text, size_t len)
{
	if (len > WIRE_SAY_MAX) {
		chat_show_error(ch, "message too long (%zu bytes, at most %zu)", len,
		                (size_t)WIRE_SAY_MAX);
		return;
	}
	chat_send(ch, "SAY", text, len, CHAT_TAG_SAY);
}

void chat_quit(struct chat *ch)
{
	if (ch->quit_sent)
		return;
	if (ch->offline) {
		ch->done = true;
		return;
	}
	chat_send(ch, "QUIT", NULL, 0, CHAT_TAG_QUIT);
	ch->quit_sent = true;
	clock_gettime(CLOCK_MONOTONIC, &ch->quit_at);
	ch->in->stop(ch);
}

/* ==== incoming messages ==== */

static void on_greeting(struct chat *ch, const struct client_msg *m)
{
	char line[NICK_MAX_BYTES + 320];
	const char *nick;
	size_t len;

	if (m->kind != CLIENT_OK) {
		chat_show_text(ch, true, "error: server refused the connection: ", m->arg,
		               m->arg_len);
		ch->status = BOTTLE_EXIT_CONN;
		ch->done = true;
		return;
	}
	if (!ch->in->welcome)
		return;
	if (!client_greeting_nick(m, &nick, &len) || len > NICK_MAX_BYTES) {
		nick = "?";
		len = 1;
	}
	snprintf(line, sizeof line, "connected to %s as %.*s; type /help for help", ch->addr,
	         (int)len, nick);
	chat_show_text(ch, false, "", line, strlen(line)); /* escapes the nick and address */
}

static void on_reply(struct chat *ch, const struct client_msg *m)
{
	if (m->kind == CLIENT_ERR) {
		chat_show_text(ch, true, "error: ", m->arg, m->arg_len);
	} else if (m->tag == CHAT_TAG_QUIT) {
		ch->done = true; /* "OK bye": nothing more to wait for */
	} else if (m->tag == CHAT_TAG_HELLO) {
		if (ch->in->welcome)
			chat_show_text(ch, false, "in the room: ", m->arg, m->arg_len);
	} else if (m->tag >= 0) {
		chat_show_text(ch, false, chat_slash_label(m->tag), m->arg, m->arg_len);
	}
}

/* Kept raw (and cut short) like any network text until it is shown escaped. */
static void remember_reason(struct chat *ch, const char *text, size_t len)
{
	size_t n = len < sizeof ch->reason - 1 ? len : sizeof ch->reason - 1;
	memcpy(ch->reason, text, n);
	ch->reason[n] = '\0';
}

static void on_message(void *ctx, const struct client_msg *m)
{
	struct chat *ch = ctx;

	switch (m->role) {
	case CLIENT_GREETING: on_greeting(ch, m); break;
	case CLIENT_REPLY: on_reply(ch, m); break;
	case CLIENT_NOTICE: /* e.g. "OK server shutting down": explains the close */
		remember_reason(ch, m->arg, m->arg_len);
		chat_show_text(ch, false, "server: ", m->arg, m->arg_len);
		break;
	case CLIENT_EVENT: {
		char *text = client_render_event(m);
		chat_show(ch, false, text);
		free(text);
		break;
	}
	}
}

int chat_receive(struct client *cl, void (*fn)(void *ctx, const struct client_msg *m), void *ctx,
                 const bool *stop)
{
	struct client_msg m;
	enum client_next st;

	if (client_read(cl) <= 0)
		return -1;
	while (!*stop && (st = client_next(cl, &m)) == CLIENT_NEXT_MSG)
		fn(ctx, &m);
	return !*stop && st == CLIENT_NEXT_BROKEN ? -1 : 0;
}

/* ==== the loop ==== */

/* Milliseconds ppoll may sleep: forever, or what is left of the wait for "OK bye". */
static int wait_ms(const struct chat *ch)
{
	struct timespec now;

	if (!ch->quit_sent)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (now.tv_sec - ch->quit_at.tv_sec) * 1000LL +
	               (now.tv_nsec - ch->quit_at.tv_nsec) / 1000000;
	return ms >= QUIT_WAIT_MS ? 0 : (int)(QUIT_WAIT_MS - ms);
}

/* Sleeps until the socket, the input or a transfer is ready (p: the chat's
 * socket, the input, then one per transfer); false when the quit wait ran out. */
static bool wait_ready(struct chat *ch, struct pollfd *p)
{
	int ms = wait_ms(ch), quit_ms = ms;
	nfds_t n = 2 + ch->jobs.count;

	p[0] = (struct pollfd){ .fd = ch->offline ? -1 : ch->cl->fd, .events = POLLIN };
	if (client_wants_write(ch->cl))
		p[0].events |= POLLOUT;
	p[1] = (struct pollfd){ .fd = ch->in->fd(ch), .events = POLLIN };
	ms = chat_jobs_poll(&ch->jobs, p + 2, ms);
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	int rc = ppoll(p, n, ms < 0 ? NULL : &ts, &ch->sleep_mask);
	if (rc < 0) {
		for (nfds_t i = 0; i < n; i++)
			p[i].revents = 0;
		if (errno != EINTR)
			connection_lost(ch, strerror(errno));
		return true;
	}
	return rc > 0 || quit_ms != 0 || ms != quit_ms;
}

/* Flushes, then sleeps; false when the session ended on the way. */
static bool flush_and_wait(struct chat *ch, struct pollfd *p)
{
	if (!ch->offline && client_flush(ch->cl) < 0) {
		connection_lost(ch, ch->cl->error);
		return false;
	}
	if (ch->offline && ch->jobs.count == 0) {
		ch->done = true; /* the last transfer ended */
		return false;
	}
	if (!wait_ready(ch, p)) {
		ch->done = true; /* QUIT sent, no "bye": leave anyway */
		return false;
	}
	return true;
}

static void chat_step(struct chat *ch)
{
	struct pollfd p[2 + CHAT_JOBS_MAX];
	bool woke = flush_and_wait(ch, p);

	if (woke) {
		if (ch->in->woke)
			ch->in->woke(ch);
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    chat_receive(ch->cl, on_message, ch, &ch->done) < 0)
			connection_lost(ch, ch->cl->error);
		if (!ch->done && ch->jobs.count)
			chat_jobs_step(&ch->jobs, p + 2);
	}
	/* The input's turn: after what woke the loop, and before the next sleep. */
	if (woke || !ch->done)
		ch->in->feed(ch, woke && !ch->done && p[1].revents != 0);
}

int chat_run(struct client *cl, const struct chat_input *in, const char *addr,
             const struct transfer_config *xfer)
{
	struct chat ch = { .cl = cl, .in = in, .addr = addr, .status = BOTTLE_EXIT_OK };

	sigprocmask(SIG_SETMASK, NULL, &ch.sleep_mask); /* the input may block some */
	chat_jobs_init(&ch.jobs, &ch, xfer);
	(void)signal(SIGPIPE, SIG_IGN); /* a dead socket is an error, not a kill */
	/* The server picks the framing from the first byte it sees, within a short
	 * grace period: speak at once, before setting up the input (a terminal is
	 * slow to set up under valgrind or on a loaded host). WHO is useful as well. */
	chat_send(&ch, "WHO", NULL, 0, CHAT_TAG_HELLO);
	(void)client_flush(cl);
	in->start(&ch);
	while (!ch.done)
		chat_step(&ch);
	chat_jobs_stop_all(&ch.jobs);
	in->stop(&ch);
	fflush(stdout);
	sigprocmask(SIG_SETMASK, &ch.sleep_mask, NULL);
	return ch.status;
}
