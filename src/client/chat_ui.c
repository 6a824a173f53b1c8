/* chat_ui.c - interactive, script and one-command sessions over a client.
 *
 * One thread, one poll loop over the socket and the input (terminal or stdin).
 * Line editing uses GNU readline's callback interface, not libedit: tried in
 * tmux, libedit 3.1's callback mode (Debian 12) leaves rl_end/rl_line_buffer
 * stale so saving and restoring the typed line loses keystrokes, garbles the
 * prompt line when redrawing it, and prints arrow keys as "^[[A" instead of
 * walking the history. GNU readline gets all three right and also supports
 * bracketed paste, which delivers a pasted block as one line. */
#include "chat_ui.h"
#include "xmalloc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define PROMPT "> "
#define PROMPT_MORE "... "              /* a message continues */
#define QUIT_WAIT_MS 5000               /* for "OK bye" after QUIT */
#define SCRIPT_HIGH_WATER (256 * 1024)  /* stop reading stdin above this backlog */
#define SCRIPT_BUF (CLIENT_SAY_MAX + 2) /* one longest line with "\r\n" */
#define HISTORY_MAX 500
#define CHAT_MAX_XFERS 16 /* transfers running at once */
#define PROMPT_MAX 512

enum chat_mode { MODE_TTY, MODE_SCRIPT, MODE_ONCE };

/* Reply tags: what a command was, so its reply is shown the right way.
 * Tags >= 0 are indexes into slash_table. */
enum { TAG_SAY = -1, TAG_HELLO = -2, TAG_ONCE = -3, TAG_QUIT = -4 };

struct chat {
	struct client *cl;
	const char *addr; /* as the user gave it, for messages */
	enum chat_mode mode;
	int status; /* exit status once done */
	bool done;
	bool quit_sent;          /* a close from now on is expected */
	bool offline;            /* the chat's connection is lost; transfers still run */
	bool once_pending;       /* -c: its reply has not come yet */
	bool input_eof;          /* script: stdin is finished */
	struct timespec quit_at; /* when QUIT went out */
	char reason[256];        /* the server's last notice, to explain a close */
	/* interactive */
	bool rl_on;      /* readline handler installed */
	bool in_handler; /* inside on_line: no prompt on screen */
	bool hidden;     /* prompt line cleared to print above it */
	char *saved_line;
	int saved_point;
	struct client_draft draft;
	sigset_t waitmask; /* signals let through only while polling */
	/* script */
	char *sbuf;
	size_t slen;
	bool skipping; /* inside a line too long to send */
	/* transfers (interactive): each on its own connection, driven by this loop */
	const struct transfer_config *xfer; /* shared settings */
	struct transfer *xfers[CHAT_MAX_XFERS];
	size_t nxfers;
	struct transfer *asking; /* its retry window ran out: the next line answers */
	bool prompt_dirty;       /* progress changed: redraw the prompt */
};

struct slash;
typedef void slash_fn(struct chat *ch, const struct slash *s, const char *arg, size_t len);

enum slash_arg { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

/* A chat command: /name maps to a server verb; its OK reply is shown after label.
 * Commands that need more than one request and reply (file transfer) bring
 * their own run function. */
struct slash {
	const char *name;
	const char *verb;
	const char *usage;
	const char *summary;
	enum slash_arg arg;
	const char *label;
	slash_fn *run;
};

static slash_fn slash_send, slash_help, slash_quit, slash_upload, slash_download;

static const struct slash slash_table[] = {
	{ "nick", "NICK", "/nick NAME", "change your nickname", ARG_REQUIRED, "you are now ",
	  slash_send },
	{ "who", "WHO", "/who", "count and list the people in the room", ARG_NONE,
	  "in the room: ", slash_send },
	{ "time", "TIME", "/time", "the server's clock", ARG_NONE, "server time: ", slash_send },
	{ "echo", "ECHO", "/echo TEXT", "have the server send TEXT back", ARG_OPTIONAL, "",
	  slash_send },
	{ "upload", "UPLOAD", "/upload FILE",
	  "send FILE (stored as its base name) in the background", ARG_REQUIRED, "", slash_upload },
	{ "download", "DOWNLOAD", "/download NAME", "fetch NAME into ./NAME in the background",
	  ARG_REQUIRED, "", slash_download },
	{ "list", "LIST", "/list", "the files on the server, with their sizes", ARG_NONE,
	  "files on the server: ", slash_send },
	{ "help", "HELP", "/help [COMMAND]", "this help, then the server's commands", ARG_OPTIONAL,
	  "server: ", slash_help },
	{ "quit", "QUIT", "/quit", "leave the room (Ctrl-D does too)", ARG_NONE, "", slash_quit },
};
#define SLASH_COUNT (sizeof slash_table / sizeof slash_table[0])

/* readline's callbacks take no context pointer: the session they serve. */
static struct chat *tty_chat;
static volatile sig_atomic_t sig_int, sig_quit, sig_winch;

static void tty_hide(struct chat *ch);
static void tty_stop(struct chat *ch);
static void xfer_start(struct chat *ch, enum transfer_kind kind, const char *arg, size_t len);

/* ==== output ==== */

/* Prints safe text (several lines allowed) above the prompt; errors go to stderr. */
static void show(struct chat *ch, bool error, const char *text)
{
	FILE *out = error ? stderr : stdout;

	tty_hide(ch);
	fputs(text, out);
	fputc('\n', out);
	fflush(out);
}

/* Shows prefix and untrusted text, escaped line by line. */
static void show_text(struct chat *ch, bool error, const char *prefix, const char *text, size_t len)
{
	char *safe = client_render_lines(prefix, text, len);
	show(ch, error, safe);
	free(safe);
}

static void show_error(struct chat *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void show_error(struct chat *ch, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	show_text(ch, true, "error: ", text, strlen(text));
}

/* The session is over because the connection is: say why unless it was
 * expected. Transfers have connections of their own and may still recover:
 * the session then stays until they end (or the user leaves). */
static void connection_lost(struct chat *ch, const char *why)
{
	if (ch->done || ch->offline)
		return;
	if (ch->quit_sent && !ch->once_pending) {
		ch->done = true;
		return;
	}
	show_error(ch, "connection lost: %s", ch->reason[0] ? ch->reason : why);
	ch->status = CHAT_EXIT_CONN;
	if (ch->mode == MODE_TTY && ch->nxfers) {
		ch->offline = true;
		show(ch, true, "the transfers go on by themselves; Ctrl-D leaves");
		return;
	}
	ch->done = true;
}

/* ==== sending ==== */

static void send_cmd(struct chat *ch, const char *verb, const char *arg, size_t len, int tag)
{
	if (ch->offline)
		show_error(ch, "not connected (the chat's connection was lost)");
	else if (client_send(ch->cl, verb, arg, len, tag) < 0)
		show_error(ch, "%s: command too long (at most %d bytes)", verb, TPKT_MAX_PAYLOAD);
}

static void say(struct chat *ch, const char *text, size_t len)
{
	if (len > CLIENT_SAY_MAX) {
		show_error(ch, "message too long (%zu bytes, at most %zu)", len,
		           (size_t)CLIENT_SAY_MAX);
		return;
	}
	send_cmd(ch, "SAY", text, len, TAG_SAY);
}

/* Leaves: QUIT goes out, input stops, the loop waits a bounded time for "OK bye". */
static void chat_quit(struct chat *ch)
{
	if (ch->quit_sent)
		return;
	if (ch->offline) {
		ch->done = true;
		return;
	}
	send_cmd(ch, "QUIT", NULL, 0, TAG_QUIT);
	ch->quit_sent = true;
	clock_gettime(CLOCK_MONOTONIC, &ch->quit_at);
	tty_stop(ch);
}

/* ==== slash commands ==== */

static void slash_send(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	send_cmd(ch, s->verb, arg, len, (int)(s - slash_table));
}

static void slash_quit(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	(void)s;
	(void)arg;
	(void)len;
	chat_quit(ch);
}

static void slash_upload(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	(void)s;
	xfer_start(ch, TRANSFER_PUT, arg, len);
}

static void slash_download(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	(void)s;
	xfer_start(ch, TRANSFER_GET, arg, len);
}

static const char help_text[] =
	"Type a message and press Enter to send it to everyone in the room.\n"
	"A line ending in \\ continues the message on the next line (the \\ is dropped);\n"
	"lines pasted together go as one message. Start a message with // to send\n"
	"text that begins with /. Up and Down walk the history; Ctrl-C clears the\n"
	"line, or leaves when it is empty.\n"
	"Commands:";

static void slash_help(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	if (len == 0) {
		show(ch, false, help_text);
		for (size_t i = 0; i < SLASH_COUNT; i++) {
			char line[160];
			snprintf(line, sizeof line, "  %-16s %s", slash_table[i].usage,
			         slash_table[i].summary);
			show(ch, false, line);
		}
	}
	slash_send(ch, s, arg, len);
}

static const struct slash *slash_find(const char *name, size_t len)
{
	for (size_t i = 0; i < SLASH_COUNT; i++)
		if (strlen(slash_table[i].name) == len &&
		    strncasecmp(slash_table[i].name, name, len) == 0)
			return &slash_table[i];
	return NULL;
}

/* "/name[ arg]": the argument follows one space or newline and may span lines. */
static void run_slash(struct chat *ch, const char *text, size_t len)
{
	size_t n = strcspn(text, " \n");
	const char *arg = n < len ? text + n + 1 : text + len;
	size_t alen = n < len ? len - n - 1 : 0;
	const struct slash *s = slash_find(text, n);

	if (!s) {
		show_error(ch, "unknown command /%.*s (/help lists them)", (int)(n < 64 ? n : 64),
		           text);
		return;
	}
	if ((s->arg == ARG_NONE && alen) || (s->arg == ARG_REQUIRED && !alen)) {
		show_error(ch, "usage: %s", s->usage);
		return;
	}
	s->run(ch, s, arg, alen);
}

/* A finished message from the keyboard: a slash command or something to say. */
static void submit(struct chat *ch, const char *text, size_t len)
{
	if (len == 0)
		return;
	if (text[0] == '/' && !(len > 1 && text[1] == '/'))
		run_slash(ch, text + 1, len - 1);
	else
		say(ch, text[0] == '/' ? text + 1 : text, text[0] == '/' ? len - 1 : len);
}

/* ==== incoming messages ==== */

static void on_greeting(struct chat *ch, const struct client_msg *m)
{
	char line[NICK_MAX_BYTES + 320];
	const char *nick;
	size_t len;

	if (m->kind != CLIENT_OK) {
		show_text(ch, true, "error: server refused the connection: ", m->arg, m->arg_len);
		ch->status = CHAT_EXIT_CONN;
		ch->done = true;
		return;
	}
	if (ch->mode != MODE_TTY)
		return;
	if (!client_greeting_nick(m, &nick, &len) || len > NICK_MAX_BYTES) {
		nick = "?";
		len = 1;
	}
	snprintf(line, sizeof line, "connected to %s as %.*s; type /help for help", ch->addr,
	         (int)len, nick);
	show_text(ch, false, "", line, strlen(line)); /* escapes the nick and address */
}

/* -c: the reply line exactly as received, escaped only for a terminal. */
static void on_once_reply(struct chat *ch, const struct client_msg *m)
{
	if (isatty(STDOUT_FILENO)) {
		show_text(ch, false, "", m->text, m->len);
	} else {
		fwrite(m->text, 1, m->len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	ch->status = m->kind == CLIENT_OK ? CHAT_EXIT_OK : CHAT_EXIT_ERR;
	ch->once_pending = false;
}

static void on_reply(struct chat *ch, const struct client_msg *m)
{
	if (m->tag == TAG_ONCE) {
		on_once_reply(ch, m);
	} else if (m->kind == CLIENT_ERR) {
		show_text(ch, true, "error: ", m->arg, m->arg_len);
	} else if (m->tag == TAG_QUIT) {
		ch->done = true; /* "OK bye": nothing more to wait for */
	} else if (m->tag == TAG_HELLO && ch->mode == MODE_TTY) {
		show_text(ch, false, "in the room: ", m->arg, m->arg_len);
	} else if (m->tag >= 0) {
		show_text(ch, false, slash_table[m->tag].label, m->arg, m->arg_len);
	}
}

/* Kept raw (and cut short) like any network text until it is shown escaped. */
static void remember_reason(struct chat *ch, const char *text, size_t len)
{
	size_t n = len < sizeof ch->reason - 1 ? len : sizeof ch->reason - 1;
	memcpy(ch->reason, text, n);
	ch->reason[n] = '\0';
}

static void on_message(struct chat *ch, const struct client_msg *m)
{
	switch (m->role) {
	case CLIENT_GREETING: on_greeting(ch, m); break;
	case CLIENT_REPLY: on_reply(ch, m); break;
	case CLIENT_NOTICE: /* e.g. "OK server shutting down": explains the close */
		remember_reason(ch, m->arg, m->arg_len);
		if (ch->mode != MODE_ONCE)
			show_text(ch, false, "server: ", m->arg, m->arg_len);
		break;
	case CLIENT_EVENT:
		if (ch->mode != MODE_ONCE) {
			char *text = client_render_event(m);
			show(ch, false, text);
			free(text);
		}
		break;
	}
}

static void socket_input(struct chat *ch)
{
	struct client_msg m;
	enum client_next st;
	int r = client_read(ch->cl);

	if (r <= 0) {
		connection_lost(ch, ch->cl->error);
		return;
	}
	while (!ch->done && (st = client_next(ch->cl, &m)) == CLIENT_NEXT_MSG)
		on_message(ch, &m);
	if (!ch->done && st == CLIENT_NEXT_BROKEN)
		connection_lost(ch, ch->cl->error);
}

/* ==== interactive: readline ==== */

/* True when more terminal input is already waiting: the line just finished
 * came in one burst with it (a paste), so they form one message. */
static bool tty_pending(void)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

static void xfer_answer(struct chat *ch, const char *line);
static void tty_set_prompt(struct chat *ch);

static void on_line(char *line)
{
	struct chat *ch = tty_chat;

	ch->in_handler = true;
	if (line && ch->asking) { /* "retry? [y/N]" */
		xfer_answer(ch, line);
		free(line);
	} else if (!line) { /* Ctrl-D on an empty line */
		fputc('\n', stdout);
		chat_quit(ch);
	} else {
		size_t len = strlen(line);
		if (len)
			add_history(line);
		if (client_draft_add(&ch->draft, line, len, tty_pending())) {
			char *text = client_draft_take(&ch->draft, &len);
			submit(ch, text, len);
			free(text);
		}
		free(line);
	}
	if (ch->rl_on)
		tty_set_prompt(ch);
	ch->in_handler = false;
}

/* Clears the prompt line so text can be printed above it (tty_restore redraws). */
static void tty_hide(struct chat *ch)
{
	if (!ch->rl_on || ch->in_handler || ch->hidden)
		return;
	ch->saved_point = rl_point;
	ch->saved_line = rl_copy_text(0, rl_end);
	rl_save_prompt();
	rl_replace_line("", 0);
	rl_redisplay();
	ch->hidden = true;
}

static void tty_restore(struct chat *ch)
{
	if (!ch->hidden)
		return;
	rl_restore_prompt();
	rl_replace_line(ch->saved_line, 0);
	rl_point = ch->saved_point;
	rl_redisplay();
	free(ch->saved_line);
	ch->saved_line = NULL;
	ch->hidden = false;
}

/* No more line editing: the prompt line is cleared and the terminal restored. */
static void tty_stop(struct chat *ch)
{
	if (!ch->rl_on)
		return;
	tty_hide(ch);
	if (ch->hidden)
		rl_restore_prompt();
	free(ch->saved_line);
	ch->saved_line = NULL;
	ch->hidden = false;
	rl_callback_handler_remove();
	ch->rl_on = false;
}

/* Ctrl-C: drop what is typed (and a message in progress); on an empty line, leave. */
static void tty_interrupt(struct chat *ch)
{
	if (!ch->rl_on)
		return;
	if (rl_end == 0 && !ch->draft.open) {
		chat_quit(ch);
		return;
	}
	client_draft_free(&ch->draft);
	tty_set_prompt(ch);
	rl_replace_line("", 0);
	rl_point = 0;
	rl_redisplay();
}

static void on_signal(int sig)
{
	if (sig == SIGINT)
		sig_int = 1;
	else if (sig == SIGWINCH)
		sig_winch = 1;
	else
		sig_quit = 1;
}

/* Signals are blocked except inside ppoll, so handlers never interrupt readline. */
static void tty_signals(struct chat *ch, sigset_t *old)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &block, old);
	ch->waitmask = *old;
}

static void handle_signals(struct chat *ch)
{
	if (sig_winch && ch->rl_on)
		rl_resize_terminal();
	if (sig_int)
		tty_interrupt(ch);
	if (sig_quit)
		chat_quit(ch);
	sig_int = sig_winch = sig_quit = 0;
}

static void tty_start(struct chat *ch)
{
	tty_chat = ch;
	rl_readline_name = "bottle";
	rl_catch_signals = 0; /* we own SIGINT/SIGWINCH (handle_signals) */
	rl_catch_sigwinch = 0;
	rl_inhibit_completion = 1; /* Tab is just a character in a chat */
	using_history();
	stifle_history(HISTORY_MAX);
	rl_callback_handler_install(PROMPT, on_line);
	ch->rl_on = true;
}

/* ==== script: stdin lines ==== */

/* One stdin line: said as it is (a "\r" before the newline dropped); empty
 * lines are skipped, the rest of a too long line too. */
static void script_line(struct chat *ch, const char *line, size_t len)
{
	if (ch->skipping) {
		ch->skipping = false;
		return;
	}
	if (len && line[len - 1] == '\r')
		len--;
	if (len)
		say(ch, line, len);
}

static void script_split(struct chat *ch)
{
	char *p = ch->sbuf, *end = ch->sbuf + ch->slen, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		script_line(ch, p, (size_t)(nl - p));
		p = nl + 1;
	}
	ch->slen = (size_t)(end - p);
	memmove(ch->sbuf, p, ch->slen);
	if (ch->slen == SCRIPT_BUF) {
		if (!ch->skipping)
			show_error(ch, "line too long (more than %zu bytes), skipped",
			           (size_t)CLIENT_SAY_MAX);
		ch->skipping = true;
		ch->slen = 0;
	}
}

static void script_input(struct chat *ch)
{
	ssize_t n = read(STDIN_FILENO, ch->sbuf + ch->slen, SCRIPT_BUF - ch->slen);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		show_error(ch, "reading stdin: %s", strerror(errno));
	if (n <= 0) { /* the last line may lack its newline */
		script_line(ch, ch->sbuf, ch->slen);
		ch->slen = 0;
		ch->input_eof = true;
		return;
	}
	ch->slen += (size_t)n;
	script_split(ch);
}

/* ==== transfers in the background ==== */

/* The prompt: "> ", "... " in a message, "retry? [y/N] " when asking; running
 * transfers show as "[notes.txt 45%] " in front. */
static void tty_set_prompt(struct chat *ch)
{
	char prompt[PROMPT_MAX] = "";
	size_t n = 0;

	for (size_t i = 0; i < ch->nxfers && n + 80 < sizeof prompt; i++) {
		char item[128];
		transfer_progress_short(ch->xfers[i], item, sizeof item);
		n += (size_t)snprintf(prompt + n, sizeof prompt - n, "%s%s", i ? " | " : "[", item);
	}
	if (n)
		n += (size_t)snprintf(prompt + n, sizeof prompt - n, "] ");
	snprintf(prompt + n, sizeof prompt - n, "%s",
	         ch->asking       ? "retry? [y/N] "
	         : ch->draft.open ? PROMPT_MORE
	                          : PROMPT);
	rl_set_prompt(prompt);
	ch->prompt_dirty = false;
}

static void xfer_say(void *ctx, struct transfer *t, enum transfer_text kind, const char *text,
                     size_t len)
{
	struct chat *ch = ctx;
	(void)t;
	if (kind == TRANSFER_LISTING)
		show_text(ch, false, "", text, len);
	else
		show(ch, kind != TRANSFER_DONE, text); /* already safe */
	ch->prompt_dirty = true;
}

static void xfer_progress(void *ctx, struct transfer *t)
{
	struct chat *ch = ctx;
	(void)t;
	ch->prompt_dirty = true;
}

/* Asks about the first transfer waiting for an answer, if none is being asked. */
static void xfer_ask_next(struct chat *ch)
{
	char line[600];

	if (ch->asking)
		return;
	for (size_t i = 0; i < ch->nxfers; i++) {
		if (transfer_asking(ch->xfers[i])) {
			ch->asking = ch->xfers[i];
			snprintf(line, sizeof line,
			         "%s: still no connection after %d s; retry? [y/N]",
			         transfer_label(ch->asking), ch->xfer->retry_for_s);
			show(ch, true, line);
			ch->prompt_dirty = true;
			return;
		}
	}
}

static void xfer_ask(void *ctx, struct transfer *t)
{
	(void)t;
	xfer_ask_next(ctx);
}

static void xfer_answer(struct chat *ch, const char *line)
{
	struct transfer *t = ch->asking;

	ch->asking = NULL;
	if (strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0)
		transfer_retry(t);
	else
		transfer_abandon(t);
	ch->prompt_dirty = true;
	xfer_ask_next(ch);
}

static void xfer_start(struct chat *ch, enum transfer_kind kind, const char *arg, size_t len)
{
	struct transfer_io io = {
		.say = xfer_say, .progress = xfer_progress, .ask = xfer_ask, .ctx = ch
	};
	struct transfer_config cfg = *ch->xfer;
	char err[NET_ERR_LEN], hint[600];

	if (ch->nxfers == CHAT_MAX_XFERS) {
		show_error(ch, "already %d transfers running; wait for one to end", CHAT_MAX_XFERS);
		return;
	}
	char *what = xstrndup(arg, len);
	const char *slash = strrchr(what, '/');
	const char *name = kind == TRANSFER_PUT && slash ? slash + 1 : what;
	for (size_t i = 0; i < ch->nxfers; i++) {
		if (transfer_kind(ch->xfers[i]) == kind &&
		    strcmp(transfer_name(ch->xfers[i]), name) == 0) {
			show_error(ch, "%s is already running", transfer_label(ch->xfers[i]));
			free(what);
			return;
		}
	}
	cfg.kind = kind;
	cfg.progress = true;
	if (kind == TRANSFER_PUT)
		cfg.file = what;
	else
		cfg.name = what;
	char *safe = client_render_lines("", what, strlen(what));
	snprintf(hint, sizeof hint, "type /%s %s again to resume it",
	         kind == TRANSFER_PUT ? "upload" : "download", safe);
	free(safe);
	cfg.resume_hint = hint;
	struct transfer *t = transfer_start(&cfg, &io, err);
	free(what);
	if (!t) {
		show_error(ch, "%s", err);
		return;
	}
	ch->xfers[ch->nxfers++] = t;
	ch->prompt_dirty = true;
}

/* Steps every transfer with what ppoll said about its socket; forgets the finished. */
static void xfer_steps(struct chat *ch, const struct pollfd *p)
{
	size_t kept = 0;

	for (size_t i = 0; i < ch->nxfers; i++)
		transfer_step(ch->xfers[i], (short)(p[i].fd >= 0 ? p[i].revents : 0));
	for (size_t i = 0; i < ch->nxfers; i++) {
		if (transfer_result(ch->xfers[i]) == TRANSFER_RUNNING) {
			ch->xfers[kept++] = ch->xfers[i];
		} else {
			transfer_free(ch->xfers[i]);
			ch->prompt_dirty = true;
		}
	}
	ch->nxfers = kept;
}

/* Leaving with transfers still running: they stop; each resumes when started again. */
static void xfer_stop_all(struct chat *ch)
{
	if (ch->nxfers) {
		char line[128];
		snprintf(line, sizeof line,
		         "stopped %zu transfer%s; the same /upload or /download "
		         "resumes it later",
		         ch->nxfers, ch->nxfers == 1 ? "" : "s");
		show(ch, true, line);
	}
	for (size_t i = 0; i < ch->nxfers; i++)
		transfer_free(ch->xfers[i]);
	ch->nxfers = 0;
	ch->asking = NULL;
}

/* ==== the loop ==== */

/* Milliseconds ppoll may sleep: forever, or what is left of the wait for "OK bye". */
static int wait_ms(const struct chat *ch)
{
	struct timespec now;

	if (!ch->quit_sent || ch->mode == MODE_ONCE)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (now.tv_sec - ch->quit_at.tv_sec) * 1000LL +
	               (now.tv_nsec - ch->quit_at.tv_nsec) / 1000000;
	return ms >= QUIT_WAIT_MS ? 0 : (int)(QUIT_WAIT_MS - ms);
}

static bool want_input(const struct chat *ch)
{
	if (ch->mode == MODE_TTY)
		return ch->rl_on;
	return ch->mode == MODE_SCRIPT && !ch->input_eof &&
	       client_pending_output(ch->cl) < SCRIPT_HIGH_WATER;
}

/* Sleeps until the socket, the input or a transfer is ready (p: the chat's
 * socket, the input, then one per transfer); false when the quit wait ran out. */
static bool wait_ready(struct chat *ch, struct pollfd *p)
{
	int ms = wait_ms(ch), quit_ms = ms;
	nfds_t n = 2;

	p[0] = (struct pollfd){ .fd = ch->offline ? -1 : ch->cl->fd, .events = POLLIN };
	if (client_wants_write(ch->cl))
		p[0].events |= POLLOUT;
	p[1] = (struct pollfd){ .fd = want_input(ch) ? STDIN_FILENO : -1, .events = POLLIN };
	for (size_t i = 0; i < ch->nxfers; i++, n++) {
		int t_ms = transfer_timeout_ms(ch->xfers[i]);
		p[n] = (struct pollfd){ .fd = -1 };
		p[n].fd = transfer_fd(ch->xfers[i], &p[n].events);
		if (t_ms >= 0 && (ms < 0 || t_ms < ms))
			ms = t_ms;
	}
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	int rc = ppoll(p, n, ms < 0 ? NULL : &ts, ch->mode == MODE_TTY ? &ch->waitmask : NULL);
	if (rc < 0) {
		for (nfds_t i = 0; i < n; i++)
			p[i].revents = 0;
		if (errno != EINTR)
			connection_lost(ch, strerror(errno));
		return true;
	}
	return rc > 0 || quit_ms != 0 || ms != quit_ms;
}

static void chat_step(struct chat *ch)
{
	struct pollfd p[2 + CHAT_MAX_XFERS];

	tty_restore(ch);
	if (ch->prompt_dirty && ch->rl_on && !ch->hidden && !ch->in_handler) {
		tty_set_prompt(ch);
		rl_redisplay();
	}
	if (!ch->offline && client_flush(ch->cl) < 0) {
		connection_lost(ch, ch->cl->error);
		return;
	}
	if (ch->offline && ch->nxfers == 0) {
		ch->done = true; /* the last transfer ended */
		return;
	}
	if (!wait_ready(ch, p)) {
		ch->done = true; /* QUIT sent, no "bye": leave anyway */
		return;
	}
	handle_signals(ch);
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
		socket_input(ch);
	if (!ch->done && ch->nxfers)
		xfer_steps(ch, p + 2);
	tty_restore(ch);
	if (!ch->done && p[1].revents && ch->mode == MODE_TTY)
		rl_callback_read_char();
	else if (!ch->done && p[1].revents)
		script_input(ch);
	if (ch->mode == MODE_SCRIPT && ch->input_eof && client_owed(ch->cl) == 0)
		chat_quit(ch); /* every line answered: leave */
}

static int chat_run(struct chat *ch)
{
	while (!ch->done)
		chat_step(ch);
	xfer_stop_all(ch);
	tty_stop(ch);
	fflush(stdout);
	client_draft_free(&ch->draft);
	free(ch->sbuf);
	return ch->status;
}

static void chat_init(struct chat *ch, struct client *cl, enum chat_mode mode)
{
	memset(ch, 0, sizeof *ch);
	ch->cl = cl;
	ch->mode = mode;
	ch->status = CHAT_EXIT_OK;
	client_draft_init(&ch->draft);
	(void)signal(SIGPIPE, SIG_IGN); /* a dead socket is an error, not a kill */
}

/* ==== public ==== */

int chat_interactive(struct client *cl, const char *addr, const struct transfer_config *xfer)
{
	struct chat ch;
	sigset_t old;

	chat_init(&ch, cl, MODE_TTY);
	ch.addr = addr;
	ch.xfer = xfer;
	/* The server picks the framing from the first byte it sees, within a short
	 * grace period: speak at once, before setting up the terminal (slow under
	 * valgrind or on a loaded host). WHO is useful as well. */
	send_cmd(&ch, "WHO", NULL, 0, TAG_HELLO);
	(void)client_flush(cl);
	tty_signals(&ch, &old);
	tty_start(&ch);
	int status = chat_run(&ch);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return status;
}

int chat_script(struct client *cl)
{
	struct chat ch;

	chat_init(&ch, cl, MODE_SCRIPT);
	ch.sbuf = xmalloc(SCRIPT_BUF);
	send_cmd(&ch, "WHO", NULL, 0, TAG_HELLO); /* speak first: see chat_interactive */
	return chat_run(&ch);
}

int chat_once(struct client *cl, const char *command)
{
	struct chat ch;

	chat_init(&ch, cl, MODE_ONCE);
	ch.once_pending = true;
	send_cmd(&ch, command, NULL, 0, TAG_ONCE);
	chat_quit(&ch); /* pipelined: bye comes after the reply */
	return chat_run(&ch);
}

void chat_print_slash_help(FILE *out, const char *indent)
{
	for (size_t i = 0; i < SLASH_COUNT; i++)
		fprintf(out, "%s%-18s %s\n", indent, slash_table[i].usage, slash_table[i].summary);
}
