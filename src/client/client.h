/* client.h - the client's side of a bottled connection, and the pure helpers
 * every client mode shares. One TPKT frame carries one command or one server
 * message; replies come back in the order the commands went out, so each
 * command carries a caller's tag that comes back with its reply. */
#ifndef BOTTLE_CLIENT_H
#define BOTTLE_CLIENT_H

#include "buf.h"
#include "message.h"
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

/* ---- server messages, display, drafts (pure): message.h ---- */

/* ---- the connection ---- */

/* One read's worth: a download reads this much per call (and writes and
 * hashes each piece while it is still in the cache). 1 MiB reads took a
 * fifth less CPU per GiB than 256 KiB ones (a quarter of the reads, wakeups
 * and ACK rounds); a chat client touches only the pages its messages fill. */
#define CLIENT_RBUF (1024 * 1024)

struct client;

/* A transport under the connection (TLS: tls_client.c). Without one the
 * client reads and writes its socket directly; with one these replace read()
 * and outq_flush, with the same results and errno (EPROTO: a TLS error, whose
 * text read and flush put in c->error). */
struct client_io {
	ssize_t (*read)(struct client *c, void *buf, size_t cap);
	ssize_t (*flush)(struct client *c); /* writes c->out */
	void (*close)(struct client *c);    /* frees the transport, before the socket */
};

struct client {
	int fd;
	const struct client_io *io; /* NULL: plain TCP */
	void *io_data;
	struct tpkt_decoder dec;
	struct outq out;
	unsigned char *rbuf; /* bytes read and not yet decoded: [roff, rlen) */
	size_t roff, rlen;
	int *tags; /* commands owed a reply, oldest first (a ring) */
	size_t tag_head, tag_count, tag_cap;
	bool greeted;
	char error[NET_ERR_LEN]; /* why the connection broke, for the user */
	/* client_next_data: where it is in the frames of a download's data */
	size_t data_left; /* payload bytes of the current frame still to come */
	unsigned char data_hdr[TPKT_HDR_LEN];
	size_t data_hdr_have;
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
/* The same for a stream of data frames whose boundaries don't matter (a
 * download's bytes): the next piece of payload as it lies in what was read,
 * however frames and reads split it, so nothing is copied. Headers are
 * checked as client_next_frame does. Use it from a frame boundary (after a
 * reply) and only for frames known to be data; it stops at frame boundaries
 * only where the data does, so switch back to client_next once the last
 * byte is in. Valid until the next call or client_read. */
enum client_next client_next_data(struct client *c, const unsigned char **payload, size_t *len);

#endif
