/* chat_once.c - bottle -c COMMAND. The command goes out as one frame with
 * QUIT pipelined behind it; the reply line is printed exactly as received
 * (escaped only when stdout is a terminal) and its OK or ERR makes the exit
 * status. There is no input and no chat: events are ignored, and a notice is
 * only kept to explain a close that comes before the reply. With --nick, NICK
 * goes first and the command only once it is answered OK: a refused name
 * sends nothing else and exits 1. */
#include "chat_once.h"
#include "account.h"
#include "chat.h"
#include "exit_codes.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TAG_COMMAND, TAG_QUIT, TAG_NICK };

struct once {
	struct client *cl;
	const char *command;
	const char *nick; /* --nick, or NULL */
	int status;
	bool done;
	bool replied;     /* the command's reply came: a close is expected now */
	char reason[256]; /* the server's last notice, to explain a close */
};

/* Untrusted text after a safe prefix, escaped, on stderr. */
static void print_error(const char *prefix, const char *text, size_t len)
{
	char *safe = client_render_lines(prefix, text, len);
	chat_write_line(stderr, safe);
	free(safe);
}

static void print_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void print_errorf(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	print_error("error: ", text, strlen(text));
}

static void connection_lost(struct once *o, const char *why)
{
	if (o->done)
		return;
	o->done = true;
	if (o->replied)
		return;
	print_errorf("connection lost: %s", o->reason[0] ? o->reason : why);
	o->status = BOTTLE_EXIT_CONN;
}

/* The reply line exactly as received, escaped only for a terminal. */
static void on_command_reply(struct once *o, const struct client_msg *m)
{
	if (isatty(STDOUT_FILENO)) {
		char *safe = client_render_lines("", m->text, m->len);
		chat_write_line(stdout, safe);
		free(safe);
	} else {
		fwrite(m->text, 1, m->len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	o->status = m->kind == CLIENT_OK ? BOTTLE_EXIT_OK : BOTTLE_EXIT_ERR;
	o->replied = true;
}

/* Queues the command with QUIT pipelined behind it: bye comes after the reply. */
static void send_command(struct once *o)
{
	if (client_send(o->cl, o->command, NULL, 0, TAG_COMMAND) < 0)
		print_errorf("%s: command too long (at most %d bytes)", o->command,
		             TPKT_MAX_PAYLOAD);
	(void)client_send(o->cl, "QUIT", NULL, 0, TAG_QUIT);
}

static void on_nick_reply(struct once *o, const struct client_msg *m)
{
	if (m->kind == CLIENT_OK) {
		send_command(o);
		return;
	}
	char line[NICK_MAX_BYTES + 192];
	snprintf(line, sizeof line, "could not take the nickname %s: %.*s", o->nick,
	         (int)(m->arg_len < 128 ? m->arg_len : 128), m->arg);
	print_error("error: ", line, strlen(line));
	o->status = BOTTLE_EXIT_ERR;
	o->replied = true; /* the close that follows is expected */
	(void)client_send(o->cl, "QUIT", NULL, 0, TAG_QUIT);
}

static void on_message(void *ctx, const struct client_msg *m)
{
	struct once *o = ctx;

	if (m->role == CLIENT_GREETING && m->kind != CLIENT_OK) {
		print_error("error: server refused the connection: ", m->arg, m->arg_len);
		o->status = BOTTLE_EXIT_CONN;
		o->done = true;
	} else if (m->role == CLIENT_REPLY && m->tag == ACCOUNT_TAG) {
		char why[ACCOUNT_ERR_LEN];
		if (!account_accepted(m, why)) {
			fprintf(stderr, "bottle: %s\n", why);
			o->status = BOTTLE_EXIT_ERR;
			o->done = true;
		}
	} else if (m->role == CLIENT_REPLY && m->tag == TAG_NICK) {
		on_nick_reply(o, m);
	} else if (m->role == CLIENT_REPLY && m->tag == TAG_COMMAND) {
		on_command_reply(o, m);
	} else if (m->role == CLIENT_REPLY && m->kind == CLIENT_ERR) {
		print_error("error: ", m->arg, m->arg_len);
	} else if (m->role == CLIENT_REPLY) {
		o->done = true; /* "OK bye" */
	} else if (m->role == CLIENT_NOTICE) {
		size_t n = m->arg_len < sizeof o->reason - 1 ? m->arg_len : sizeof o->reason - 1;
		memcpy(o->reason, m->arg, n); /* kept raw, shown escaped */
		o->reason[n] = '\0';
	}
}

/* Writes what is queued, waits for the server and reads what it sent. */
static void once_step(struct once *o)
{
	struct pollfd p = { .fd = o->cl->fd, .events = POLLIN };

	if (client_flush(o->cl) < 0) {
		connection_lost(o, o->cl->error);
		return;
	}
	if (client_wants_write(o->cl))
		p.events |= POLLOUT;
	if (poll(&p, 1, -1) < 0) {
		if (errno != EINTR)
			connection_lost(o, strerror(errno));
		return;
	}
	if ((p.revents & (POLLIN | POLLHUP | POLLERR)) &&
	    chat_receive(o->cl, on_message, o, &o->done) < 0)
		connection_lost(o, o->cl->error);
}

int chat_once_run(struct client *cl, const char *command, const char *nick)
{
	struct once o = { .cl = cl, .command = command, .nick = nick, .status = BOTTLE_EXIT_OK };

	(void)signal(SIGPIPE, SIG_IGN); /* a dead socket is an error, not a kill */
	/* AUTH first (account.h) */
	account_send(cl);
	if (nick)
		(void)client_send(cl, "NICK", nick, strlen(nick), TAG_NICK);
	else
		send_command(&o);
	while (!o.done)
		once_step(&o);
	fflush(stdout);
	return o.status;
}
