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

struct server;
struct conn;

/* A byte stream that takes over a connection for a while (a file transfer).
 * While conn->stream is set, the connection hands it the input it would
 * otherwise decode as commands, and lets it write once the output queue is empty. */
struct conn_stream {
	/* True while the stream wants the incoming bytes: raw bytes in line mode,
	 * each frame's payload in TPKT mode. */
	bool (*wants_input)(struct conn *c);
	/* Takes input; returns how much it consumed (all of a TPKT payload). */
	size_t (*input)(struct conn *c, const unsigned char *data, size_t len);
	/* Called when the output queue is empty: write more. False if c died. */
	bool (*pump)(struct conn *c);
	/* True while pump has more to write. */
	bool (*wants_write)(struct conn *c);
	/* The connection is closing: release everything (conn->stream is cleared). */
	void (*abort)(struct conn *c);
};

enum conn_state {
	CONN_GREETING,           /* accepted; waiting for a first byte or the grace period */
	CONN_OPEN,               /* greeted, in the room, taking commands */
	CONN_DRAINING,           /* no more input; flushing output, then close */
	CONN_DEAD,               /* closed; freed before the next sleep */
};

/* Why a connection ended: the log says `log`, the room says `leave`. */
enum conn_end {
	END_QUIT, END_PEER_CLOSED, END_RESET, END_KEEPALIVE, END_OVERFLOW, END_IDLE,
	END_PROTOCOL, END_SHUTDOWN, END_FULL, END_ERROR, END_DONE, END_SUPERSEDED,
};

struct conn {
	struct server *srv;
	int fd;
	char peer[NET_ADDR_LEN];
	enum conn_state state;
	enum conn_end end;
	struct framer framer;
	bool framed;             /* framer chosen (after the first byte or the grace period) */
	struct outq out;
	struct member member;    /* in the room while OPEN */
	struct loop_timer greet_timer;
	uint64_t last_active;    /* loop time of the last byte read */
	size_t index;            /* private: slot in the server's table */
	bool flush_pending;      /* private: on the server's flush list */
	const struct conn_stream *stream;   /* a transfer in progress, or NULL */
	void *stream_data;
	unsigned char *held;     /* input that arrived while a stream didn't want it */
	size_t held_len;
	struct loop_timer resume_timer;
};

struct conn *conn_new(struct server *srv, int fd, const struct sockaddr_storage *peer);
void conn_free(struct conn *c);

/* Loop callbacks. */
void conn_on_io(struct loop *loop, int fd, void *data, int mask);
void conn_on_greeting_timer(struct loop *loop, struct loop_timer *t, void *data);
/* Picks the framing, queues the greeting and joins the room. */
void conn_greet(struct conn *c, enum framing_kind kind);

/* Replies: "OK text" / "ERR text" in the connection's framing. */
void conn_reply(struct conn *c, const char *status, const char *text, size_t len);
void conn_ok(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queues bytes already encoded for this connection's framing: a private reply
 * (may be copied into the queue) or a block shared with other receivers. */
void conn_send_blob(struct conn *c, struct blob *b);
void conn_send_shared(struct conn *c, struct blob *b);
void conn_send_raw(struct conn *c, const void *data, size_t len);
bool conn_alive(const struct conn *c);
/* The stream has ended (conn->stream already cleared): a line-mode connection
 * closes after its output (its stream can't be trusted to hold commands), a
 * TPKT one goes back to commands, starting with any input held meanwhile. */
void conn_stream_done(struct conn *c);

/* Writes queued output; returns false when the connection died doing it. */
bool conn_flush(struct conn *c);
/* Ends the connection now (output is dropped), or after the output is flushed. */
void conn_close(struct conn *c, enum conn_end why);
void conn_close_after_flush(struct conn *c, enum conn_end why);
const char *conn_end_text(enum conn_end why);
const char *conn_leave_text(enum conn_end why);

#endif
