/* chat.h - a chat session over a connected client: one poll loop over the
 * chat's socket, its input and its background transfers; replies and events
 * shown as they come. Where lines come from and where messages go is an input
 * source (struct chat_input): the terminal (chat_tty.c) or a script
 * (chat_script.c). */
#ifndef BOTTLE_CHAT_H
#define BOTTLE_CHAT_H

#include "chat_jobs.h"
#include "client.h"
#include "link.h"
#include "nick.h"
#include "transfer.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct chat;

/* An input source. The session calls these in this order each time round its
 * loop: fd (then it sleeps), woke, feed; show and show_error whenever there is
 * something to print; start once at the beginning, stop when the user leaves
 * and again at the end. It never asks which source it has. */
struct chat_input {
	bool welcome;   /* show "connected to ... as ..." and who is in the room */
	bool reconnect; /* a lost connection is dialed again (with "retry? [y/N]") and
	                 * what was said meanwhile is caught up (OFFSETS, HISTORY SINCE) */
	bool stamps;    /* "HH:MM " before live messages and events, from the start */
	/* Takes over stdin and stdout; the session's first command is already out. */
	void (*start)(struct chat *ch);
	/* The fd to poll for input now, or -1 (none left, or not now). */
	int (*fd)(const struct chat *ch);
	/* Just woken, before the sockets are read: act on signals caught while
	 * asleep. NULL: the source catches none. */
	void (*woke)(struct chat *ch);
	/* After the sockets and transfers had their turn (and before the next sleep
	 * while the session goes on): readable says fd has input to take. */
	void (*feed)(struct chat *ch, bool readable);
	/* Prints safe text (several lines allowed) on stdout, or on stderr. */
	void (*show)(struct chat *ch, const char *text);
	void (*show_error)(struct chat *ch, const char *text);
	/* No more input: the user left. Called again at the end; messages may
	 * still be shown after it. */
	void (*stop)(struct chat *ch);
};

/* Reply tags of the session's own commands; tags >= 0 are slash commands'
 * (chat_slash_label). */
enum {
	CHAT_TAG_SAY = -1,
	CHAT_TAG_HELLO = -2,
	CHAT_TAG_QUIT = -3,
	CHAT_TAG_RENICK = -4,  /* taking the nickname back after a reconnect */
	CHAT_TAG_QUIET = -5,   /* a reply nobody shows */
	CHAT_TAG_OFFSETS = -6, /* OFFSETS on: the epoch and the last offset */
	CHAT_TAG_CATCHUP = -7, /* HISTORY SINCE after a reconnect */
	CHAT_TAG_SETNICK = -8, /* --nick, right after connecting */
};

struct chat {
	struct client *cl;
	const struct chat_input *in;
	const char *addr;        /* as the user gave it, for messages */
	int status;              /* exit status once done */
	bool done;               /* the loop ends */
	bool quit_sent;          /* a close from now on is expected */
	bool offline;            /* the chat's connection is lost; transfers still run */
	struct timespec quit_at; /* when QUIT went out */
	char reason[256];        /* the server's last notice, to explain a close */
	sigset_t sleep_mask;     /* signals let through while polling: those open at the start */
	struct chat_jobs jobs;   /* /upload and /download running in the background */
	char nick[NICK_MAX_BYTES + 1];       /* ours, as the server last said (raw) */
	char greeted_as[NICK_MAX_BYTES + 1]; /* a new connection's name until NICK is answered */
	/* Reconnecting (in->reconnect): after the first break, the connection is
	 * the link's and cl follows it (NULL while it is down). */
	bool reconnects; /* in->reconnect, and the link is set up */
	bool linked;     /* the link is in use */
	bool away;       /* lost and not back yet: nothing is sent */
	bool asking;     /* the retry window ran out: the next line answers */
	bool restoring;  /* NICK went out on the new connection, its reply is owed */
	bool refused;    /* the new connection's greeting was ERR: break it */
	double away_at;  /* link_now() at the break */
	struct link link;
	/* --nick: asked for right after connecting; a script reads no input
	 * until it is answered, and ends if it is refused. */
	const char *want_nick;
	bool nick_pending;
	bool stamps; /* "HH:MM " before live messages and events (/time on|off) */
	/* History: HISTORY events are shown between "--- history ---" and
	 * "--- live ---" (the first other message ends the run). */
	bool in_history;
	/* Catching up (in->reconnect): the server's epoch and the offset of the
	 * last room message received, sent as HISTORY SINCE after a reconnect. */
	bool have_epoch;
	bool catching_up; /* HISTORY SINCE went out on this connection */
	char epoch[CLIENT_EPOCH_MAX + 1];
	uint64_t last_offset;
};

/* Runs a session until it ends and returns the exit status; the caller
 * connected the client and closes it afterwards. addr is only shown.
 * xfer: the settings for /upload and /download (kind, file, name unset);
 * nick: the nickname to ask for at once (--nick), or NULL. */
int chat_run(struct client *cl, const struct chat_input *in, const char *addr,
             const struct transfer_config *xfer, const char *nick);

/* ---- what inputs, commands and jobs ask of the session ---- */

/* Queues a command; tag comes back with its reply. Says why when it can't. */
void chat_send(struct chat *ch, const char *verb, const char *arg, size_t len, int tag);
/* Says text to the room (SAY), unless it is too long for one message. */
void chat_say(struct chat *ch, const char *text, size_t len);
/* A finished message from the input: "/cmd ..." runs a slash command, "//..."
 * says the text from its second character, anything else is said. */
void chat_submit(struct chat *ch, const char *text, size_t len);
/* Leaves: QUIT goes out, input stops, the loop waits a bounded time for "OK bye". */
void chat_quit(struct chat *ch);

/* True while the chat's own "retry? [y/N]" waits for the next line. */
bool chat_asking(const struct chat *ch);
/* The answer: "y" or "yes" (any case) opens a new retry window, else the
 * session ends with the lost-connection status. */
void chat_answer(struct chat *ch, const char *line);

/* Shows safe text (several lines allowed) through the input; errors on stderr. */
void chat_show(struct chat *ch, bool error, const char *text);
/* Shows prefix (safe) and untrusted text, escaped line by line. */
void chat_show_text(struct chat *ch, bool error, const char *prefix, const char *text, size_t len);
/* "error: " and the formatted text, escaped, on stderr. */
void chat_show_error(struct chat *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints text and a newline on out, flushed: how the inputs show a message. */
void chat_write_line(FILE *out, const char *text);

/* Reads once from cl's socket and hands each complete message to fn until
 * *stop turns true. 0, or -1 when the connection broke (cl->error says why). */
int chat_receive(struct client *cl, void (*fn)(void *ctx, const struct client_msg *m), void *ctx,
                 const bool *stop);

#endif
