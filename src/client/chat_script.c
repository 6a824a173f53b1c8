/* chat_script.c - stdin and stdout as the chat's input source, for when
 * either is not a terminal. Each non-empty stdin line is one message, read as
 * the terminal reads a line: "/cmd" runs a slash command, "//" sends text
 * that starts with "/", anything else is said; messages and events go to
 * stdout, errors to stderr, with no prompt to keep. Reading waits for the
 * answer to --nick, stops while the socket's backlog is high, and at the end
 * of stdin the session leaves once every line has been answered. */
#include "chat_script.h"
#include "wire.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRIPT_HIGH_WATER (256 * 1024) /* stop reading stdin above this backlog */
#define SCRIPT_BUF (WIRE_SAY_MAX + 2)  /* one longest line with "\r\n" */

/* One script per process, like the terminal: its state lives here. */
static struct {
	char *buf; /* the start of a line not complete yet */
	size_t len;
	bool skipping;  /* inside a line too long to send */
	bool eof;       /* stdin is finished */
	bool splitting; /* inside script_split: stop must not free buf */
	bool stopped;   /* the session left (/quit, a refused --nick) */
} script;

/* One stdin line: said as it is (a "\r" before the newline dropped); empty
 * lines are skipped, the rest of a too long line too. */
static void script_line(struct chat *ch, const char *line, size_t len)
{
	if (script.skipping) {
		script.skipping = false;
		return;
	}
	if (len && line[len - 1] == '\r')
		len--;
	if (len)
		chat_submit(ch, line, len);
}

static void script_split(struct chat *ch)
{
	char *p = script.buf, *end = script.buf + script.len, *nl;

	script.splitting = true;
	while (!script.stopped && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		script_line(ch, p, (size_t)(nl - p));
		p = nl + 1;
	}
	script.splitting = false;
	if (script.stopped) {
		free(script.buf); /* stop came from one of the lines */
		script.buf = NULL;
		script.len = 0;
		return;
	}
	script.len = (size_t)(end - p);
	memmove(script.buf, p, script.len);
	if (script.len == SCRIPT_BUF) {
		if (!script.skipping)
			chat_show_error(ch, "line too long (more than %zu bytes), skipped",
			                (size_t)WIRE_SAY_MAX);
		script.skipping = true;
		script.len = 0;
	}
}

static void script_read(struct chat *ch)
{
	ssize_t n = read(STDIN_FILENO, script.buf + script.len, SCRIPT_BUF - script.len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		chat_show_error(ch, "reading stdin: %s", strerror(errno));
	if (n <= 0) { /* the last line may lack its newline */
		script.splitting = true;
		script_line(ch, script.buf, script.len);
		script.splitting = false;
		script.len = 0;
		script.eof = true;
		if (script.stopped) {
			free(script.buf);
			script.buf = NULL;
		}
		return;
	}
	script.len += (size_t)n;
	script_split(ch);
}

/* ==== the input source ==== */

static void script_start(struct chat *ch)
{
	(void)ch;
	script.buf = xmalloc(SCRIPT_BUF);
	script.len = 0;
	script.skipping = false;
	script.eof = false;
	script.splitting = false;
	script.stopped = false;
}

static int script_fd(const struct chat *ch)
{
	return !script.eof && !script.stopped && !ch->nick_pending && ch->cl &&
	                       client_pending_output(ch->cl) < SCRIPT_HIGH_WATER
	               ? STDIN_FILENO
	               : -1;
}

static void script_feed(struct chat *ch, bool readable)
{
	if (readable && !script.stopped)
		script_read(ch);
	if (script.eof && !script.stopped && ch->cl && client_owed(ch->cl) == 0 &&
	    ch->jobs.count == 0)
		chat_quit(ch); /* every line answered, every /upload done: leave */
}

static void script_show(struct chat *ch, const char *text)
{
	(void)ch;
	chat_write_line(stdout, text);
}

static void script_show_error(struct chat *ch, const char *text)
{
	(void)ch;
	chat_write_line(stderr, text);
}

/* The session left (the end of stdin, /quit, a refused --nick) or ended:
 * nothing more to read. Called again at the end. */
static void script_stop(struct chat *ch)
{
	(void)ch;
	script.stopped = true;
	if (script.splitting)
		return; /* script_split frees it when the line is done */
	free(script.buf);
	script.buf = NULL;
}

const struct chat_input chat_script_input = {
	.welcome = false,
	.start = script_start,
	.fd = script_fd,
	.woke = NULL,
	.feed = script_feed,
	.show = script_show,
	.show_error = script_show_error,
	.stop = script_stop,
};
