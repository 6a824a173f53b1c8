/* chat.c - the chat session: one thread, one ppoll loop over the chat's
 * socket, the input source (terminal or script, behind struct chat_input) and
 * the background transfers (chat_jobs.c). It sends what the input asks for,
 * matches replies to commands, shows events and notices, and decides when the
 * session is over: QUIT answered (or not within QUIT_WAIT_MS), or the
 * connection lost with no transfer left to wait for. On a terminal a lost
 * connection is not the end: the chat's connection moves into a link (link.h)
 * that dials again within --retry-for, takes the nickname back, catches up
 * with what the room said meanwhile (HISTORY SINCE the last offset seen) and
 * asks "retry? [y/N]" when the window runs out. */
#include "chat.h"
#include "account.h"
#include "chat_slash.h"
#include "exit_codes.h"
#include "nick.h"
#include "proto.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* ==== reconnecting ==== */

/* The first break of a window: one line, and nothing is sent until back. */
static void go_away(struct chat *ch, const char *why)
{
	char line[NET_ERR_LEN + 64];

	if (ch->away)
		return;
	ch->away = true;
	ch->away_at = link_now();
	ch->status = BOTTLE_EXIT_CONN; /* leaving while away */
	snprintf(line, sizeof line, "connection lost: %s; reconnecting...", why);
	chat_show_text(ch, true, "* ", line, strlen(line));
	ch->jobs.changed = true;
}

/* The greeting, and the nickname's reply when one was owed: one line. */
static void come_back(struct chat *ch)
{
	char line[NICK_MAX_BYTES + 64];

	ch->away = ch->restoring = false;
	ch->status = BOTTLE_EXIT_OK;
	ch->reason[0] = '\0';
	link_confirmed(&ch->link);
	snprintf(line, sizeof line, "back (away %.1f s) as %s", link_now() - ch->away_at,
	         ch->nick[0] ? ch->nick : "?");
	chat_show_text(ch, false, "* ", line, strlen(line)); /* escapes the nick */
	ch->jobs.changed = true;
}

/* The first frames of every connection of a reconnecting chat: OFFSETS on
 * (it does not join), then, after a break, HISTORY SINCE the last message
 * received, which joins without the newcomer's replay, so each message is
 * shown once and nothing said between the catch-up and live traffic is lost. */
static void send_offsets(struct chat *ch)
{
	char arg[CLIENT_EPOCH_MAX + 48];

	(void)client_send(ch->cl, "OFFSETS", "on", 2, CHAT_TAG_OFFSETS);
	ch->catching_up = ch->have_epoch;
	if (!ch->have_epoch)
		return;
	int n = snprintf(arg, sizeof arg, "SINCE %s %" PRIu64, ch->epoch, ch->last_offset);
	(void)client_send(ch->cl, "HISTORY", arg, (size_t)n, CHAT_TAG_CATCHUP);
}

static void link_up(void *ctx)
{
	struct chat *ch = ctx;

	ch->cl = link_client(&ch->link);
	ch->refused = false;
	/* Speak first (the server picks the framing from the first byte): the
	 * catch-up, the nickname we had, else a question whose answer nobody shows.
	 * An account signs in again first, and its name is its nickname. */
	account_send(ch->cl);
	send_offsets(ch);
	ch->restoring = ch->nick[0] != '\0' && !account_name();
	if (ch->restoring)
		client_send(ch->cl, "NICK", ch->nick, strlen(ch->nick), CHAT_TAG_RENICK);
	else
		client_send(ch->cl, "WHO", NULL, 0, CHAT_TAG_QUIET);
	(void)client_flush(ch->cl); /* a failure shows on the next flush */
}

static void link_down(void *ctx, const char *why, bool lost)
{
	struct chat *ch = ctx;

	(void)lost; /* away says it better: also set before the link's first dial */
	ch->cl = NULL;
	ch->restoring = false;
	go_away(ch, why);
}

static void link_gave_up(void *ctx, const char *why)
{
	struct chat *ch = ctx;
	char line[NET_ERR_LEN + 96];

	ch->asking = true;
	snprintf(line, sizeof line, "still no connection after %d s (%s); retry? [y/N]",
	         ch->link.cfg.retry_for_s, why);
	chat_show_text(ch, true, "* ", line, strlen(line));
	ch->jobs.changed = true; /* the prompt asks */
}

static void link_failed(void *ctx, const char *why)
{
	struct chat *ch = ctx; /* not kept up: never happens, but end cleanly */

	ch->cl = NULL;
	go_away(ch, why);
	ch->done = true;
}

bool chat_asking(const struct chat *ch) { return ch->asking; }

void chat_answer(struct chat *ch, const char *line)
{
	if (!ch->asking)
		return;
	ch->asking = false;
	ch->jobs.changed = true;
	if (strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0)
		link_retry(&ch->link); /* may report up or down at once */
	else
		ch->done = true; /* status: BOTTLE_EXIT_CONN since the break */
}

/* Sets up the link for the address the chat is on; false when it can't. */
static bool link_setup(struct chat *ch, const struct transfer_config *xfer)
{
	static const struct link_events ev = {
		.up = link_up, .down = link_down, .gave_up = link_gave_up, .failed = link_failed
	};
	struct link_events events = ev;
	struct link_config cfg = { .ka = xfer->ka,
		                   .timeout_s = xfer->timeout_s,
		                   .retry_for_s = xfer->retry_for_s };
	char host[256], err[NET_ERR_LEN];

	if (!xfer->addr || net_split_hostport(xfer->addr, BOTTLE_DEFAULT_PORT, host, sizeof host,
	                                      &cfg.port, err) < 0)
		return false;
	cfg.host = host;
	events.ctx = ch;
	link_init(&ch->link, &cfg, &events);
	link_keep_up(&ch->link, true);
	return true;
}

/* A break on a terminal: the link dials again. The first time, the caller's
 * client is closed here (closing it again is harmless) and the link takes over. */
static void reconnect(struct chat *ch, const char *why)
{
	if (ch->linked) {
		link_break(&ch->link, why); /* reports down */
		return;
	}
	ch->linked = true;
	go_away(ch, why);
	client_close(ch->cl);
	ch->cl = NULL;
	link_open(&ch->link);
}

/* The session is over because the connection is: say why unless it was
 * expected. Transfers have connections of their own and may still recover:
 * the session then stays until they end (or the user leaves). On a terminal
 * the chat reconnects instead. */
static void connection_lost(struct chat *ch, const char *why)
{
	if (ch->done || ch->offline)
		return;
	if (ch->quit_sent) {
		ch->done = true;
		return;
	}
	if (ch->reconnects) {
		reconnect(ch, ch->reason[0] ? ch->reason : why);
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
	else if (ch->away || !ch->cl)
		chat_show_error(ch, "not sent: no connection (reconnecting; %s)",
		                ch->asking ? "answer retry? first" : "type it again when back");
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

void chat_submit(struct chat *ch, const char *text, size_t len)
{
	if (len == 0)
		return;
	if (text[0] == '/' && !(len > 1 && text[1] == '/'))
		chat_slash_run(ch, text + 1, len - 1);
	else
		chat_say(ch, text[0] == '/' ? text + 1 : text, text[0] == '/' ? len - 1 : len);
}

void chat_quit(struct chat *ch)
{
	if (ch->quit_sent)
		return;
	if (ch->offline || ch->away || !ch->cl) {
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
		if (ch->linked) { /* a new connection: break it, the link dials again */
			ch->refused = true;
			return;
		}
		ch->status = BOTTLE_EXIT_CONN;
		ch->done = true;
		return;
	}
	if (!client_greeting_nick(m, &nick, &len) || len > NICK_MAX_BYTES) {
		nick = "?";
		len = 1;
	} else {
		char *to = ch->restoring ? ch->greeted_as : ch->nick; /* NICK may fail */
		memcpy(to, nick, len);
		to[len] = '\0';
	}
	if (account_name()) { /* the AUTH sent first makes its name ours */
		nick = account_name();
		len = strlen(nick);
		snprintf(ch->nick, sizeof ch->nick, "%s", nick);
	}
	if (ch->linked) {
		if (!ch->restoring)
			come_back(ch);
		return;
	}
	if (!ch->in->welcome)
		return;
	snprintf(line, sizeof line, "connected to %s as %.*s; type /help for help", ch->addr,
	         (int)len, nick);
	chat_show_text(ch, false, "", line, strlen(line)); /* escapes the nick and address */
}

/* The reply to NICK on a new connection: we are back either way. */
static void on_renick(struct chat *ch, const struct client_msg *m)
{
	char line[2 * NICK_MAX_BYTES + 64];

	if (m->kind == CLIENT_ERR) {
		snprintf(line, sizeof line, "could not take back the nickname %s: %.*s", ch->nick,
		         (int)(m->arg_len < 128 ? m->arg_len : 128), m->arg);
		chat_show_text(ch, true, "error: ", line, strlen(line));
		snprintf(ch->nick, sizeof ch->nick, "%s", ch->greeted_as); /* the server's pick */
	}
	come_back(ch);
}

/* The reply to --nick's NICK. Refused: the interactive chat goes on as the
 * guest; a script ends with BOTTLE_EXIT_ERR, never speaking as someone else. */
static void on_setnick(struct chat *ch, const struct client_msg *m)
{
	char line[2 * NICK_MAX_BYTES + 192];

	ch->nick_pending = false;
	if (m->kind == CLIENT_OK && m->arg_len <= NICK_MAX_BYTES) {
		memcpy(ch->nick, m->arg, m->arg_len);
		ch->nick[m->arg_len] = '\0';
		if (ch->in->welcome)
			chat_show_text(ch, false, "you are now ", m->arg, m->arg_len);
		return;
	}
	snprintf(line, sizeof line, "could not take the nickname %s: %.*s%s%s", ch->want_nick,
	         (int)(m->arg_len < 128 ? m->arg_len : 128), m->arg,
	         ch->in->welcome ? "; you are " : "", ch->in->welcome ? ch->nick : "");
	chat_show_text(ch, true, "error: ", line, strlen(line));
	if (!ch->in->welcome) {
		ch->status = BOTTLE_EXIT_ERR;
		chat_quit(ch);
	}
}

/* OFFSETS on, or the catch-up after a reconnect: where the room stands. */
static void on_offsets(struct chat *ch, const struct client_msg *m)
{
	char epoch[CLIENT_EPOCH_MAX + 1];
	uint64_t last;
	int complete;

	if (!client_offsets_reply(m, epoch, &last, &complete))
		return; /* a server without offsets: no catch-up */
	if (m->tag == CHAT_TAG_OFFSETS && ch->catching_up)
		return; /* the catch-up's reply says it, after its messages */
	memcpy(ch->epoch, epoch, sizeof epoch);
	ch->last_offset = last;
	ch->have_epoch = true;
	if (m->tag == CHAT_TAG_CATCHUP) {
		ch->catching_up = false;
		if (complete == 0)
			chat_show(
				ch, true,
				"* some messages said while you were away are missing (the server "
				"restarted, or no longer keeps them)");
	}
}

/* AUTH's reply: the account's name is our nickname, or the chat is over. */
static void on_auth(struct chat *ch, const struct client_msg *m)
{
	char why[ACCOUNT_ERR_LEN];
	if (account_accepted(m, why)) {
		snprintf(ch->nick, sizeof ch->nick, "%s", account_name());
		return;
	}
	chat_show_error(ch, "%s", why);
	ch->status = BOTTLE_EXIT_ERR;
	ch->done = true;
}

static void on_reply(struct chat *ch, const struct client_msg *m)
{
	if (m->tag == ACCOUNT_TAG) {
		on_auth(ch, m);
	} else if (m->tag == CHAT_TAG_RENICK) {
		on_renick(ch, m);
	} else if (m->tag == CHAT_TAG_SETNICK) {
		on_setnick(ch, m);
	} else if (m->tag == CHAT_TAG_OFFSETS || m->tag == CHAT_TAG_CATCHUP) {
		on_offsets(ch, m);
	} else if (m->tag == CHAT_TAG_QUIET) {
		/* nothing to show */
	} else if (m->kind == CLIENT_ERR) {
		chat_show_text(ch, true, "error: ", m->arg, m->arg_len);
	} else if (m->tag == CHAT_TAG_QUIT) {
		ch->done = true; /* "OK bye": nothing more to wait for */
	} else if (m->tag == CHAT_TAG_HELLO) {
		if (ch->in->welcome)
			chat_show_text(ch, false, "in the room: ", m->arg, m->arg_len);
	} else if (m->tag >= 0) {
		if (chat_slash_renames(m->tag) && m->arg_len <= NICK_MAX_BYTES) {
			memcpy(ch->nick, m->arg, m->arg_len);
			ch->nick[m->arg_len] = '\0';
		}
		const char *label = chat_slash_label(m->tag);
		if (label) /* NULL: the reply says nothing worth showing (/msg, /me) */
			chat_show_text(ch, false, label, m->arg, m->arg_len);
	}
}

/* Kept raw (and cut short) like any network text until it is shown escaped. */
static void remember_reason(struct chat *ch, const char *text, size_t len)
{
	size_t n = len < sizeof ch->reason - 1 ? len : sizeof ch->reason - 1;
	memcpy(ch->reason, text, n);
	ch->reason[n] = '\0';
}

/* The end of a run of HISTORY events: the next message is live. */
static void end_history(struct chat *ch)
{
	if (!ch->in_history)
		return;
	ch->in_history = false;
	chat_show(ch, false, "--- live ---");
}

/* An event, with its time in front: a HISTORY event's own (after
 * "--- history ---"), else now's when time stamps are on. */
static void show_event(struct chat *ch, const struct client_msg *m)
{
	char stamp[CLIENT_STAMP_LEN] = "";
	time_t now = time(NULL), t;

	if (m->kind == CLIENT_HISTORY) {
		if (!ch->in_history)
			chat_show(ch, false, "--- history ---");
		ch->in_history = true;
		if (client_history_time(m, &t))
			client_stamp(stamp, t, now);
	} else if (ch->stamps) {
		client_stamp(stamp, now, now);
	}
	if (m->offset > ch->last_offset) /* the last room message received */
		ch->last_offset = m->offset;
	char *text = client_render_stamped(m, stamp);
	chat_show(ch, false, text);
	free(text);
}

static void on_message(void *ctx, const struct client_msg *m)
{
	struct chat *ch = ctx;

	if (m->kind != CLIENT_HISTORY)
		end_history(ch);
	switch (m->role) {
	case CLIENT_GREETING: on_greeting(ch, m); break;
	case CLIENT_REPLY: on_reply(ch, m); break;
	case CLIENT_NOTICE: /* e.g. "OK server shutting down": explains the close */
		remember_reason(ch, m->arg, m->arg_len);
		chat_show_text(ch, false, "server: ", m->arg, m->arg_len);
		break;
	case CLIENT_EVENT: show_event(ch, m); break;
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

	p[0] = (struct pollfd){ .fd = -1, .events = POLLIN };
	if (ch->linked) {
		p[0].fd = link_fd(&ch->link, &p[0].events);
	} else if (!ch->offline && ch->cl) {
		p[0].fd = ch->cl->fd;
		if (client_wants_write(ch->cl))
			p[0].events |= POLLOUT;
	}
	p[1] = (struct pollfd){ .fd = ch->in->fd(ch), .events = POLLIN };
	ms = chat_jobs_poll(&ch->jobs, p + 2, ms);
	int link_ms = ch->linked ? link_timeout_ms(&ch->link) : -1;
	if (link_ms >= 0 && (ms < 0 || link_ms < ms))
		ms = link_ms;
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
	if (!ch->offline && ch->cl && client_flush(ch->cl) < 0) {
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
		if (ch->linked && !ch->cl)
			link_step(&ch->link,
			          (short)(p[0].fd >= 0 ? p[0].revents : 0)); /* dialing */
		else if (ch->cl && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		         chat_receive(ch->cl, on_message, ch, &ch->done) < 0)
			connection_lost(ch, ch->cl->error);
		else if (ch->refused)
			connection_lost(ch, "server refused the connection");
		if (!ch->done && ch->jobs.count)
			chat_jobs_step(&ch->jobs, p + 2);
	}
	/* The input's turn: after what woke the loop, and before the next sleep. */
	if (woke || !ch->done)
		ch->in->feed(ch, woke && !ch->done && p[1].revents != 0);
}

int chat_run(struct client *cl, const struct chat_input *in, const char *addr,
             const struct transfer_config *xfer, const char *nick)
{
	struct chat ch = { .cl = cl,
		           .in = in,
		           .addr = addr,
		           .status = BOTTLE_EXIT_OK,
		           .want_nick = nick,
		           .stamps = in->stamps };
	ch.reconnects = in->reconnect && link_setup(&ch, xfer);

	sigprocmask(SIG_SETMASK, NULL, &ch.sleep_mask); /* the input may block some */
	chat_jobs_init(&ch.jobs, &ch, xfer);
	(void)signal(SIGPIPE, SIG_IGN); /* a dead socket is an error, not a kill */
	/* The server picks the framing from the first byte it sees, within a short
	 * grace period: speak at once, before setting up the input (a terminal is
	 * slow to set up under valgrind or on a loaded host). WHO is useful as well;
	 * OFFSETS does not join, so NICK (or else WHO) does. */
	account_send(cl); /* AUTH first (account.h) */
	if (ch.reconnects)
		chat_send(&ch, "OFFSETS", "on", 2, CHAT_TAG_OFFSETS);
	if (nick) {
		chat_send(&ch, "NICK", nick, strlen(nick), CHAT_TAG_SETNICK);
		ch.nick_pending = true;
	}
	chat_send(&ch, "WHO", NULL, 0, CHAT_TAG_HELLO);
	(void)client_flush(cl);
	in->start(&ch);
	while (!ch.done)
		chat_step(&ch);
	chat_jobs_stop_all(&ch.jobs);
	in->stop(&ch);
	if (ch.linked)
		link_close(&ch.link);
	fflush(stdout);
	sigprocmask(SIG_SETMASK, &ch.sleep_mask, NULL);
	return ch.status;
}
