/* conn.h - one client connection: its framing, output queue, chat presence,
 * and the path of a byte from read() to a command and back. */
#ifndef BOTTLE_CONN_H
#define BOTTLE_CONN_H

#include "buf.h"
#include "framing.h"
#include "loop.h"
#include "net.h"
#include "room.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct cluster;
struct conn;
struct xfer_env;

/* Connections listed for their owner, who walks the list between events. */
struct conn_list {
	struct conn **items;
	size_t n, cap;
};

/* What the connections need from their owner (server.c fills one for all of
 * them): conn.c reaches nothing beyond this, so it never calls up into the
 * server. The owner walks the two lists before the loop sleeps: `flush` to
 * write what is queued, `dead` to free what closed (the reaper). */
struct conn_env {
	struct loop *loop;
	struct room *room;
	unsigned char *rbuf; /* one read buffer shared by every connection */
	size_t rbuf_size;
	size_t max_clients; /* greeted clients at most; more get "server full" */
	size_t greeted;     /* connections greeted and not yet released */
	size_t max_line, max_frame, max_output;
	/* Runs one command for c (cmd_execute). */
	void (*command)(struct conn *c, const char *cmd, size_t len);
	/* For the transfer commands (xfer.h); conn.c never looks inside. */
	struct xfer_env *xfer;
	/* The other nodes (cluster.h), NULL for a single node; conn.c never looks inside. */
	struct cluster *cluster;
	/* Accounts and permissions (auth.h); conn.c never looks inside. */
	struct auth *auth;
	/* Called just before c enters the room (auth_entering: an account
	 * takes its name); may be NULL. */
	void (*entering)(struct conn *c);
	struct conn_list flush; /* output to write: conn_want_flush adds */
	struct conn_list dead;  /* closed, waiting to be freed: conn_close adds */
};

/* A byte stream that takes over a connection for a while (a file transfer).
 * While one is attached and the connection is open, the connection hands it the
 * input it would otherwise decode as commands, and lets it write once the
 * output queue is empty. The connection owns the attachment: conn_stream_begin
 * and conn_stream_end set and clear it, and `release` runs exactly once, either
 * from conn_stream_end or, for a connection that closed, from the reaper. */
struct conn_stream {
	/* True while the stream wants the incoming bytes: raw bytes in line mode,
	 * each frame's payload in TPKT mode. */
	bool (*wants_input)(struct conn *c);
	/* Takes input; returns how much it consumed (all of a TPKT payload). */
	size_t (*input)(struct conn *c, const unsigned char *data, size_t len);
	/* Called when the output queue is empty: write more. */
	void (*pump)(struct conn *c);
	/* True while pump has more to write. */
	bool (*wants_write)(struct conn *c);
	/* Frees the stream's state; nothing may be sent from here. */
	void (*release)(struct conn *c, void *data);
};

/* A transport between the socket and the connection's bytes (TLS: tls.c).
 * A connection without one reads, writes and sends files on its socket
 * directly; with one, these replace read(), outq_flush and conn_send_file's
 * sendfile, with the same results and errno. */
struct conn_io {
	ssize_t (*read)(struct conn *c, void *buf, size_t cap);
	ssize_t (*flush)(struct conn *c); /* writes c->out */
	ssize_t (*send_file)(struct conn *c, int fd, uint64_t off, uint64_t len);
	/* Reading starts again: input may wait inside the transport already. */
	void (*resumed)(struct conn *c);
	/* From conn_free: frees the transport's state. */
	void (*free)(struct conn *c);
};

enum conn_state {
	CONN_GREETING, /* accepted; waiting for a first byte or the grace period */
	CONN_OPEN,     /* greeted, in the room, taking commands */
	CONN_DRAINING, /* no more input, a stream stopped: flushing, then close */
	CONN_DEAD,     /* closed: only marked; the reaper frees it before the sleep */
};

/* Why a connection ended: the log says `log`, the room says `leave`. */
enum conn_end {
	END_QUIT,
	END_PEER_CLOSED,
	END_RESET,
	END_KEEPALIVE,
	END_OVERFLOW,
	END_IDLE,
	END_PROTOCOL,
	END_SHUTDOWN,
	END_FULL,
	END_ERROR,
	END_DONE,
	END_SUPERSEDED,
	END_STALLED,
	END_DRAIN_TIMEOUT
};

struct conn {
	struct conn_env *env;
	int fd;
	char peer[NET_ADDR_LEN];
	enum conn_state state;
	enum conn_end end;
	struct framer framer;
	bool framed;       /* framer chosen (after the first byte or the grace period) */
	bool input_closed; /* the peer half-closed while a stream was busy */
	bool counted;      /* greeted: counts against max_clients until released */
	bool join_pending; /* TPKT: in the room with its first command (or never) */
	bool seed;         /* the seed's dialect (seed.h): frames are chat, not commands */
	bool tls;          /* accepted on a --tls-listen listener (tls.h) */
	bool loopback;     /* the peer's address is a loopback one (protect.h) */
	struct outq out;
	struct member member; /* in the room while OPEN */
	struct loop_timer greet_timer;
	uint64_t last_read;   /* loop time of the last byte read */
	uint64_t last_io;     /* ... of the last byte moved either way, or stream progress */
	uint64_t drain_since; /* when DRAINING began */
	size_t index;         /* the owner's: slot in its table */
	bool flush_pending;   /* listed in env->flush (the owner clears it as it flushes) */
	const struct conn_stream *stream; /* private: conn_stream_begin/_end */
	void *stream_data;
	char *credit;        /* ROLE files <nick>: the chat member it works for */
	unsigned char *held; /* input that arrived while a stream didn't want it */
	size_t held_len;
	struct loop_timer resume_timer;
	const struct conn_io *io; /* NULL: plain TCP on fd; else TLS (tls.h) */
	void *io_data;
	/* Accounts (auth.h): what this connection may do (PERM_*), as whom. */
	unsigned perms;
	char *account;   /* NULL: a guest */
	char *auth_wait; /* a delayed AUTH's account (NULL: it failed) */
	bool paused;     /* conn_pause: input waits in `held` */
	struct loop_timer pause_timer;
	void (*pause_then)(struct conn *c);
};

struct conn *conn_new(struct conn_env *env, int fd, const struct sockaddr_storage *peer);
void conn_free(struct conn *c);

/* Loop callbacks. */
void conn_on_io(struct loop *loop, int fd, void *data, int mask);
void conn_on_greeting_timer(struct loop *loop, struct loop_timer *t, void *data);
/* Picks the framing and queues the greeting. A line-mode connection joins the
 * room at once (telnet users wait for the server); a TPKT one only reserves
 * its name and joins with its first command, unless that command is
 * `ROLE files` (docs/protocol.md §4). */
void conn_greet(struct conn *c, enum framing_kind kind);
/* A connection from a --seed-listen listener, at once on accept: TPKT in the
 * seed's dialect (seed.h), greeted first and in the room at once. */
void conn_greet_seed(struct conn *c);
/* (conn_chat.c) The room's side of a connection: conn_new gives each one
 * these ops, and conn_of_member tells a connection from other members. */
extern const struct member_ops conn_member_ops;
/* The chat side of ROLE: enter the room now (if not in it: a fresh name if the
 * old one was given back; `replay`: with the history a newcomer gets), or
 * leave it (telling the others if it had entered). */
void conn_enter_chat(struct conn *c, bool replay);
void conn_leave_chat(struct conn *c);
bool conn_in_chat(const struct conn *c);
/* ROLE files <nick>: this connection works for the member called nick, which
 * must be connected from the same host; false if not. */
bool conn_speak_for(struct conn *c, const char *nick, size_t len);
/* Who the room's file news names for what c does: the member it works for,
 * else its own name. */
const char *conn_credit(const struct conn *c);
/* A command other than ROLE arrived: a TPKT connection waiting to join does. */
void conn_first_command(struct conn *c);
/* The connection whose room member m is, or NULL (a member of another kind). */
struct conn *conn_of_member(struct member *m);
/* Holds c's input for ms (what arrives meanwhile waits, unread), then calls
 * then(c) and goes on with the input: a failed AUTH's slowed reply (auth.c).
 * Closing c cancels it; then is never called on a closed connection. */
void conn_pause(struct conn *c, uint64_t ms, void (*then)(struct conn *c));
/* Ends a pause early, without calling its `then`: the answer it waited for
 * came (a name claim in the cluster, commands.c). The input held meanwhile is
 * taken on the next turn. */
void conn_pause_end(struct conn *c);

/* Replies: "OK text" / "ERR text" in the connection's framing. */
void conn_reply(struct conn *c, const char *status, const char *text, size_t len);
void conn_ok(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queues bytes already encoded for this connection's framing: a private reply
 * (may be copied into the queue) or a block shared with other receivers.
 * None of these frees anything: past --max-output they only mark the
 * connection closed, so the caller's pointers all stay valid. */
void conn_send_blob(struct conn *c, struct blob *b);
void conn_send_shared(struct conn *c, struct blob *b);
void conn_send_raw(struct conn *c, const void *data, size_t len);
/* (conn_file.c) Sends up to len bytes of the file fd from offset off: sendfile straight to
 * the socket in line mode (only once the queue is empty), TPKT frames into the
 * queue in TPKT mode, never past --max-output. Returns the bytes moved, 0 when
 * the socket or the queue is full (called again through the stream's pump
 * after the next flush), -1 with errno when the file could not be read
 * (ENODATA: it ended early) or the socket failed (then c is closed). */
ssize_t conn_send_file(struct conn *c, int fd, uint64_t off, uint64_t len);
bool conn_alive(const struct conn *c);

/* Streams. begin attaches one to an open connection; end detaches and releases
 * it (its memory is gone when end returns) and gives the connection back to
 * commands: a line-mode connection closes after its output (its byte stream
 * can't be trusted to hold commands), a TPKT one goes on with any input held
 * meanwhile. */
void conn_stream_begin(struct conn *c, const struct conn_stream *ops, void *data);
void conn_stream_end(struct conn *c);
/* The stream's data if c carries a stream of this kind, else NULL. */
void *conn_stream_of(const struct conn *c, const struct conn_stream *ops);
/* True while the stream may act: attached and the connection open. A closing
 * connection keeps its stream attached but inert until the reaper releases it. */
bool conn_streaming(const struct conn *c);
/* The stream made progress without moving bytes (hashing): not stalled. */
void conn_touch(struct conn *c);

/* Lists c in env->flush (once) to be flushed before the loop sleeps. */
void conn_want_flush(struct conn *c);
/* Writes queued output. The connection may be closed (marked) when it returns. */
void conn_flush(struct conn *c);
/* Ending. Both only mark: close drops the output, after_flush sends it first
 * (within a drain timeout). A stream attached to a closing connection stops at
 * once and is released by the reaper, with the room membership and the memory
 * (the owner's reaper, for each in env->dead: conn_release, then conn_free). */
void conn_close(struct conn *c, enum conn_end why);
/* conn_close with the reason a socket errno means (reset, timeout, ...). */
void conn_close_errno(struct conn *c, int err);
void conn_close_after_flush(struct conn *c, enum conn_end why);
/* The reaper's half of closing: releases the stream and leaves the room. */
void conn_release(struct conn *c);
const char *conn_end_text(enum conn_end why);
const char *conn_leave_text(enum conn_end why);

#endif
