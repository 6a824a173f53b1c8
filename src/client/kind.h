/* kind.h - what one kind of transfer (put.c, get.c, ls.c) implements for
 * the driver in transfer.c, and what the driver offers it in return.
 *
 * The driver owns the link, the rate limit, the progress and the user's
 * messages; a kind owns its own phases and the protocol of its command. It
 * speaks when the link comes up, takes the replies and data frames meant for
 * it, queues its output, and ends the transfer through transfer_succeed or
 * transfer_fail. Local work (hashing) goes in steps while need says so. */
#ifndef BOTTLE_KIND_H
#define BOTTLE_KIND_H

#include "client.h"
#include "link.h"
#include "net.h"
#include "ratelimit.h"
#include "transfer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the driver does for a kind right now. */
enum kind_need {
	KIND_WAIT,  /* nothing of its own: the link is dialing or backing off */
	KIND_LOCAL, /* local work (hashing): work is due at once, no socket */
	KIND_TALK,  /* its command is out: messages go to message */
	KIND_SEND,  /* data goes out: pump when the link may take more; messages too */
	KIND_RECV,  /* data comes in: frames go to data */
};

struct kind_progress {
	bool shown;    /* a phase worth a progress bar (hashing, moving data) */
	bool checking; /* hashing: "checking <name>" */
	uint64_t done, total;
};

struct kind_ops {
	const char *verb; /* "upload": the label's first word */
	/* Names a file: in its label, and in the resume hint told when it stops. */
	bool resumable;
	/* At transfer_start: what can be opened at once; NULL with err. The
	 * transfer then dials, unless the kind starts with KIND_LOCAL work (it
	 * opens transfer_link itself once that is done). */
	void *(*open)(struct transfer *t, const struct transfer_config *cfg, char err[NET_ERR_LEN]);
	void (*free)(void *k);
	enum kind_need (*need)(const void *k);
	void (*work)(void *k); /* KIND_LOCAL: one step */
	/* The link is up (again): queue the command. */
	void (*begin)(void *k, struct client *cl);
	/* A reply, or an OK/ERR nobody asked for. False: not one it waits for
	 * (the driver keeps it as the likely reason of a close that follows). */
	bool (*message)(void *k, const struct client_msg *m);
	/* KIND_RECV: one data frame. False when no more frames are wanted now. */
	bool (*data)(void *k, const unsigned char *p, size_t len);
	/* KIND_SEND: queue output while the link and the limit allow. */
	void (*pump)(void *k, struct client *cl);
	/* While the link is up: may drop POLLIN from *events (a rate limit) and
	 * lower *wait, the seconds until the driver must step (-1: none). work,
	 * data, pump and poll may be NULL for a kind whose need never asks for
	 * them (poll: nothing to add). */
	void (*poll)(const void *k, short *events, double *wait);
	/* The link broke; it dials again by itself (begin follows). */
	void (*down)(void *k);
	void (*progress)(const void *k, struct kind_progress *p);
	/* The command that picks it up again; addr is shell-quoted already. */
	void (*resume_hint)(const void *k, const char *addr, char *out, size_t outsz);
};

extern const struct kind_ops put_ops, get_ops, ls_ops;

/* ---- what transfer.c offers the kinds ---- */

/* One line for the user (safe text made with printf). */
void transfer_say(struct transfer *t, enum transfer_text kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One listing line as the server sent it (TRANSFER_LISTING). */
void transfer_list_line(struct transfer *t, const char *line, size_t len);
/* A final failure: "<label>: <why>", the end (TRANSFER_FAILED). */
void transfer_fail(struct transfer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An ERR reply to its command: the same with the server's text. */
void transfer_refused(struct transfer *t, const struct client_msg *m);
/* The first reply on a connection: the transfer (re)starts at offset of
 * total. The first one arms the link's reconnecting; a later one after a
 * break says "resumed at". */
void transfer_began(struct transfer *t, uint64_t offset, uint64_t total);
/* Hashing total bytes starts: the progress counts from 0. */
void transfer_checking(struct transfer *t, uint64_t total);
/* The end (TRANSFER_OK): QUIT on the link and, when done is not NULL, the
 * final line: "<done> <name>[ to <where>]: <bytes, time, rate>". */
void transfer_succeed(struct transfer *t, const char *done, const char *where);

struct link *transfer_link(struct transfer *t);
struct ratelimit *transfer_limit(struct transfer *t);

#endif
