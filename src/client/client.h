/* client.h - the client's side of a bottled connection, and the pure helpers
 * every client mode shares. One TPKT frame carries one command or one server
 * message; replies come back in the order the commands went out, so each
 * command carries a caller's tag that comes back with its reply. */
#ifndef BOTTLE_CLIENT_H
#define BOTTLE_CLIENT_H

#include "buf.h"
#include "net.h"
#include "tpkt.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- address (pure) ---- */

/* The server address to use: the command line's, else env (BOTTLE_SERVER) when
 * set and not empty, else BOTTLE_DEFAULT_ADDR. */
const char *client_addr_pick(const char *arg, const char *env);

/* ---- server messages (pure) ---- */

enum client_kind {
	/* replies */
	CLIENT_OK,
	CLIENT_ERR,
	/* events */
	CLIENT_MSG,
	CLIENT_JOIN,
	CLIENT_LEAVE,
	CLIENT_NICK,
	CLIENT_UNKNOWN, /* a word we don't know */
};

/* What a message is to this connection (set by client_next). */
enum client_role {
	CLIENT_GREETING, /* the first message: OK when welcome, ERR when refused */
	CLIENT_REPLY,    /* answers the oldest command still owed; tag says which */
	CLIENT_NOTICE,   /* OK/ERR nobody asked for ("server shutting down") */
	CLIENT_EVENT,    /* chat: MSG, JOIN, LEAVE, NICK (and unknown words) */
};

/* Points into the payload; valid until the next client_next or client_read. */
struct client_msg {
	enum client_kind kind;
	enum client_role role;
	int tag;          /* CLIENT_REPLY: the tag given to client_send */
	const char *text; /* the whole payload */
	size_t len;
	const char *nick; /* events: who (NICK: the old name) */
	size_t nick_len;
	const char *arg; /* OK/ERR: after the word; MSG: the text; */
	size_t arg_len;  /* LEAVE: the reason; NICK: the new name */
};

/* Splits a payload into kind, nick and arg; role is CLIENT_EVENT for events,
 * CLIENT_REPLY for OK/ERR. Never fails: odd input is CLIENT_UNKNOWN. */
void client_parse(const char *p, size_t len, struct client_msg *m);
bool client_is_event(enum client_kind kind);

/* ---- display (pure) ---- */

/* Text for the terminal, made safe with escape_text line by line: every line
 * starts with prefix (already safe), later lines are indented to line up under
 * the first line's text. Returns a NUL-terminated string without a final
 * newline; the caller frees it. */
char *client_render_lines(const char *prefix, const char *text, size_t len);
/* An event as the user sees it: "nick: text", "* nick joined", "* a is now b",
 * "* nick left (reason)". Caller frees. */
char *client_render_event(const struct client_msg *m);
/* The nickname at the end of a greeting ("... you are Guest12"), as a span of
 * the payload (not escaped); false when the greeting doesn't name one. */
bool client_greeting_nick(const struct client_msg *m, const char **nick, size_t *len);

/* ---- composing a message from typed lines (pure) ---- */

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

/* ---- the connection ---- */

#define CLIENT_RBUF 65536

struct client {
	int fd;
	struct tpkt_decoder dec;
	struct outq out;
	unsigned char *rbuf; /* bytes read and not yet decoded: [roff, rlen) */
	size_t roff, rlen;
	int *tags; /* commands owed a reply, oldest first (a ring) */
	size_t tag_head, tag_count, tag_cap;
	bool greeted;
	char error[NET_ERR_LEN]; /* why the connection broke, for the user */
};

/* Connects to host:port within timeout_ms, then makes the socket non-blocking
 * with keepalive (ka may be NULL) and TCP_NODELAY. 0, or -1 with err saying
 * "cannot connect to HOST:PORT: why". */
int client_connect(struct client *c, const char *host, int port, int timeout_ms,
                   const struct net_keepalive *ka, char err[NET_ERR_LEN]);
/* Makes an already connected socket the client's (it closes it later): non-
 * blocking, keepalive (ka may be NULL), TCP_NODELAY, empty buffers. */
void client_attach(struct client *c, int fd, const struct net_keepalive *ka);
void client_close(struct client *c);

/* Connecting without blocking is net_dial (net.h). */

/* Queues one command frame, "verb" or "verb arg" (arg may hold any bytes);
 * tag comes back with its reply. -1 with errno EMSGSIZE if it can't fit a frame. */
int client_send(struct client *c, const char *verb, const char *arg, size_t len, int tag);
/* Queues one frame of file data: up to max bytes (at most TPKT_MAX_PAYLOAD)
 * read with pread from fd at off. Returns the bytes queued (0: end of file),
 * or -1 with errno from pread. No reply is owed for data. */
ssize_t client_send_file(struct client *c, int fd, uint64_t off, size_t max);
/* Writes what the socket takes now. 0, or -1 with c->error set. */
int client_flush(struct client *c);
bool client_wants_write(const struct client *c);
size_t client_pending_output(const struct client *c);
/* Bytes written to the socket that the peer has not acknowledged yet (the
 * kernel's send queue); 0 when that is unknown. */
size_t client_unacked(const struct client *c);
/* Commands sent whose replies have not arrived yet. */
size_t client_owed(const struct client *c);

/* Reads once from the socket, to be called when poll says it is readable and
 * client_next has returned CLIENT_NEXT_NONE. 1: data (or nothing yet), 0: the
 * server closed the connection, -1: error with c->error set. */
int client_read(struct client *c);

enum client_next {
	CLIENT_NEXT_NONE,   /* nothing complete in what was read */
	CLIENT_NEXT_MSG,    /* *m holds one message */
	CLIENT_NEXT_BROKEN, /* the server broke framing; c->error says how */
};
enum client_next client_next(struct client *c, struct client_msg *m);
/* The same, for frames that are not messages (a download's data): the next
 * payload as it is, without parsing or pairing with a command. Valid until
 * the next client_next, client_next_frame or client_read. */
enum client_next client_next_frame(struct client *c, const unsigned char **payload, size_t *len);

#endif
