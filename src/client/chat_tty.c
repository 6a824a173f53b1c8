/* chat_tty.c - the terminal as the chat's input source. Line editing uses GNU
 * readline's callback interface, so the chat's loop stays in charge: it feeds
 * readline a character when the terminal is readable, and to print a message
 * it clears the prompt line, prints above it and redraws it with what was
 * typed. Readline, not libedit: tried in tmux, libedit 3.1's callback mode
 * (Debian 12) leaves rl_end/rl_line_buffer stale so saving and restoring the
 * typed line loses keystrokes, garbles the prompt line when redrawing it, and
 * prints arrow keys as "^[[A" instead of walking the history. GNU readline
 * gets all three right and also supports bracketed paste, which delivers a
 * pasted block as one line. Also here: the prompt, Ctrl-C and Ctrl-D, and
 * what a finished line means (a slash command or something to say). */
#include "chat_tty.h"
#include "chat_slash.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define PROMPT "> "
#define PROMPT_MORE "... " /* a message continues */
#define PROMPT_ASK "retry? [y/N] "
#define PROMPT_MAX 512
#define HISTORY_MAX 500

/* readline's callbacks take no context pointer, so there is one terminal
 * session per process and its state lives here. */
static struct {
	struct chat *chat;
	bool on;         /* readline handler installed */
	bool in_handler; /* inside on_line: no prompt on screen */
	bool hidden;     /* prompt line cleared to print above it */
	char *saved_line;
	int saved_point;
	struct client_draft draft; /* a message typed over several lines */
} tty;

static volatile sig_atomic_t sig_int, sig_quit, sig_winch;

/* ==== the prompt line ==== */

/* The prompt: "> ", "... " in a message, "retry? [y/N] " when asking; running
 * transfers show as "[notes.txt 45%] " in front. */
static void set_prompt(struct chat *ch)
{
	char prompt[PROMPT_MAX];
	size_t n = chat_jobs_progress(&ch->jobs, prompt, sizeof prompt);

	snprintf(prompt + n, sizeof prompt - n, "%s",
	         chat_asking(ch) || chat_jobs_asking(&ch->jobs) ? PROMPT_ASK
	         : tty.draft.open                               ? PROMPT_MORE
	                                                        : PROMPT);
	rl_set_prompt(prompt);
	ch->jobs.changed = false;
}

/* Clears the prompt line so text can be printed above it (restore redraws). */
static void hide(void)
{
	if (!tty.on || tty.in_handler || tty.hidden)
		return;
	tty.saved_point = rl_point;
	tty.saved_line = rl_copy_text(0, rl_end);
	rl_save_prompt();
	rl_replace_line("", 0);
	rl_redisplay();
	tty.hidden = true;
}

static void restore(void)
{
	if (!tty.hidden)
		return;
	rl_restore_prompt();
	rl_replace_line(tty.saved_line, 0);
	rl_point = tty.saved_point;
	rl_redisplay();
	free(tty.saved_line);
	tty.saved_line = NULL;
	tty.hidden = false;
}

/* ==== lines ==== */

/* True when more terminal input is already waiting: the line just finished
 * came in one burst with it (a paste), so they form one message. */
static bool input_pending(void)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

static void on_line(char *line)
{
	struct chat *ch = tty.chat;

	tty.in_handler = true;
	if (line && (chat_asking(ch) || chat_jobs_asking(&ch->jobs))) { /* "retry? [y/N]" */
		/* One answer for everything asking: the network is back or it isn't. */
		if (chat_asking(ch))
			chat_answer(ch, line);
		if (chat_jobs_asking(&ch->jobs))
			chat_jobs_answer(&ch->jobs, line);
		free(line);
	} else if (!line) { /* Ctrl-D on an empty line */
		fputc('\n', stdout);
		chat_quit(ch);
	} else {
		size_t len = strlen(line);
		if (len)
			add_history(line);
		if (client_draft_add(&tty.draft, line, len, input_pending())) {
			char *text = client_draft_take(&tty.draft, &len);
			chat_submit(ch, text, len);
			free(text);
		}
		free(line);
	}
	if (tty.on)
		set_prompt(ch);
	tty.in_handler = false;
}

/* ==== signals ==== */

/* Ctrl-C: drop what is typed (and a message in progress); on an empty line, leave. */
static void interrupt(struct chat *ch)
{
	if (!tty.on)
		return;
	if (rl_end == 0 && !tty.draft.open) {
		chat_quit(ch);
		return;
	}
	client_draft_free(&tty.draft);
	set_prompt(ch);
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

/* Signals are blocked except inside the chat's ppoll (chat_run lets through
 * there the ones open before start), so handlers never interrupt readline. */
static void catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &block, NULL);
}

static void tty_woke(struct chat *ch)
{
	if (sig_winch && tty.on)
		rl_resize_terminal();
	if (sig_int)
		interrupt(ch);
	if (sig_quit)
		chat_quit(ch);
	sig_int = sig_winch = sig_quit = 0;
}

/* ==== the input source ==== */

static void tty_start(struct chat *ch)
{
	tty.chat = ch;
	client_draft_init(&tty.draft);
	catch_signals();
	rl_readline_name = "bottle";
	rl_catch_signals = 0; /* we own SIGINT/SIGWINCH (tty_woke) */
	rl_catch_sigwinch = 0;
	rl_inhibit_completion = 1; /* Tab is just a character in a chat */
	using_history();
	stifle_history(HISTORY_MAX);
	rl_callback_handler_install(PROMPT, on_line);
	tty.on = true;
}

static int tty_fd(const struct chat *ch)
{
	(void)ch;
	return tty.on ? STDIN_FILENO : -1;
}

/* Redraws the line output hid, feeds readline, and brings the prompt up to
 * date with the transfers before the loop sleeps again. */
static void tty_feed(struct chat *ch, bool readable)
{
	restore();
	if (readable)
		rl_callback_read_char();
	if (!ch->done && ch->jobs.changed && tty.on && !tty.hidden && !tty.in_handler) {
		set_prompt(ch);
		rl_redisplay();
	}
}

static void tty_show(struct chat *ch, const char *text)
{
	(void)ch;
	hide();
	chat_write_line(stdout, text);
}

static void tty_show_error(struct chat *ch, const char *text)
{
	(void)ch;
	hide();
	chat_write_line(stderr, text);
}

/* No more line editing: the prompt line is cleared and the terminal restored. */
static void tty_stop(struct chat *ch)
{
	(void)ch;
	client_draft_free(&tty.draft);
	if (!tty.on)
		return;
	hide();
	if (tty.hidden)
		rl_restore_prompt();
	free(tty.saved_line);
	tty.saved_line = NULL;
	tty.hidden = false;
	rl_callback_handler_remove();
	tty.on = false;
}

const struct chat_input chat_tty_input = {
	.welcome = true,
	.reconnect = true,
	.stamps = true,
	.start = tty_start,
	.fd = tty_fd,
	.woke = tty_woke,
	.feed = tty_feed,
	.show = tty_show,
	.show_error = tty_show_error,
	.stop = tty_stop,
};
