/* message.h - the server's messages as the client reads and shows them: a
 * payload split into kind, nick and argument (every event of docs/protocol.md
 * sections 2 and 4, the "@<offset>" tags and HISTORY's head), the lines a
 * person sees for each, always escaped, and a message composed from typed
 * lines. Pure: no sockets, no terminal. */
#ifndef BOTTLE_MESSAGE_H
#define BOTTLE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- server messages ---- */

/* The first six keep their order (tests/fuzz/fuzz_client.c counts on it). */
enum client_kind {
	/* replies */
	CLIENT_OK,
	CLIENT_ERR,
	/* events */
	CLIENT_MSG,
	CLIENT_JOIN,
	CLIENT_LEAVE,
	CLIENT_NICK,
	CLIENT_ACTION,   /* ACTION <nick> <action>: /me */
	CLIENT_PRIVATE,  /* PRIVATE <from> <text>: only to us */
	CLIENT_HISTORY,  /* HISTORY <offset> <time> MSG|ACTION <nick> <text> */
	CLIENT_PRESENCE, /* PRESENCE <members> +<joined> -<left>: no nick */
	CLIENT_FILE,     /* FILE <nick> uploaded|deleted|renamed ... */
	CLIENT_UNKNOWN,  /* a word we don't know */
};

/* What a message is to this connection (set by client_next). */
enum client_role {
	CLIENT_GREETING, /* the first message: OK when welcome, ERR when refused */
	CLIENT_REPLY,    /* answers the oldest command still owed; tag says which */
	CLIENT_NOTICE,   /* OK/ERR nobody asked for ("server shutting down") */
	CLIENT_EVENT,    /* chat events (and unknown words) */
};

/* Points into the payload; valid until the next client_next or client_read. */
struct client_msg {
	enum client_kind kind;
	enum client_role role;
	int tag;          /* CLIENT_REPLY: the tag given to client_send */
	const char *text; /* the whole payload */
	size_t len;
	const char *nick; /* events: who (NICK: the old name); PRESENCE: none */
	size_t nick_len;
	const char *arg; /* OK/ERR: after the word; MSG, ACTION, PRIVATE, HISTORY: */
	size_t arg_len;  /* the text; LEAVE: the reason; NICK: the new name; FILE:
	                  * what happened ("uploaded 12 notes.txt"); PRESENCE: all */
	/* A room message's offset: "@17 MSG ..." (tagged) and HISTORY; 0: none. */
	uint64_t offset;
	enum client_kind of; /* HISTORY: the kind of the message kept (MSG, ACTION,
	                      * or CLIENT_UNKNOWN when malformed: shown raw) */
	const char *time;    /* HISTORY: when it was said, RFC 3339 */
	size_t time_len;
};

/* Splits a payload into kind, nick and arg; role is CLIENT_EVENT for events,
 * CLIENT_REPLY for OK/ERR. A leading "@<offset> " sets offset and the rest is
 * parsed as usual. Never fails: odd input is CLIENT_UNKNOWN. */
void client_parse(const char *p, size_t len, struct client_msg *m);
bool client_is_event(enum client_kind kind);
/* The reply to OFFSETS, HISTORY and HISTORY SINCE: "OK <epoch> <last>
 * [complete|incomplete]". epoch gets the raw word (1..CLIENT_EPOCH_MAX bytes
 * of letters and digits), *complete is 1, 0, or -1 when the word is absent.
 * False when the reply is not of that form. */
#define CLIENT_EPOCH_MAX 32
bool client_offsets_reply(const struct client_msg *m, char epoch[CLIENT_EPOCH_MAX + 1],
                          uint64_t *last, int *complete);

/* ---- display ---- */

/* Text for the terminal, made safe with escape_text line by line: every line
 * starts with prefix (already safe), later lines are indented to line up under
 * the first line's text. Returns a NUL-terminated string without a final
 * newline; the caller frees it. */
char *client_render_lines(const char *prefix, const char *text, size_t len);
/* An event as the user sees it: "nick: text", "* nick waves", "[private]
 * nick: text", "* nick joined", "* a is now b", "* nick left (reason)",
 * "* 380 joined, 7 left (5012 here)", "* nick uploaded NAME (10 MiB)",
 * "* nick deleted NAME", "* nick renamed OLD to NEW". A HISTORY event shows as
 * the message it keeps. Caller frees. */
char *client_render_event(const struct client_msg *m);
/* The same with stamp (safe text, "" for none: "12:45 ") in front of the
 * first line; later lines are indented under the text. */
char *client_render_stamped(const struct client_msg *m, const char *stamp);
/* A byte count for people: "512 bytes", "1.5 KiB", "10 MiB" (the units of the
 * progress bar). */
char *client_human_size(char *out, size_t outsz, uint64_t bytes);

/* "HH:MM " in local time, or "YYYY-MM-DD HH:MM " when t is on another local
 * day than now. */
#define CLIENT_STAMP_LEN 24
void client_stamp(char out[CLIENT_STAMP_LEN], time_t t, time_t now);
/* When a HISTORY event's message was said (its RFC 3339 time); false when the
 * time is missing or malformed. */
bool client_history_time(const struct client_msg *m, time_t *t);
/* The nickname at the end of a greeting ("... you are Guest12"), as a span of
 * the payload (not escaped); false when the greeting doesn't name one. */
bool client_greeting_nick(const struct client_msg *m, const char **nick, size_t *len);

/* ---- composing a message from typed lines ---- */

/* A line ending in '\' continues the message (the backslash removed, a newline
 * kept); so does a line that arrived together with more input (a paste). */
struct client_draft {
	char *text;
	size_t len, cap;
	bool open; /* some lines are in, more will follow */
};

void client_draft_init(struct client_draft *d);
/* Frees the text and empties the draft (also to discard a message half typed). */
void client_draft_free(struct client_draft *d);
/* Adds one line (without its newline); more_follows says further lines arrived
 * with it. True when the message is complete: take it with client_draft_take. */
bool client_draft_add(struct client_draft *d, const char *line, size_t len, bool more_follows);
/* Hands out the finished text (trailing newlines dropped, NUL-terminated, the
 * caller frees it) and empties the draft. */
char *client_draft_take(struct client_draft *d, size_t *len);

#endif
