/* link.h - one connection to the server that dials without blocking and,
 * once told to keep itself up, reconnects by itself when it breaks: with
 * backoff (250 ms doubling up to 5 s), each attempt bounded by a timeout,
 * for up to a retry window from the break. Then it gives up and waits for
 * its owner to say: another window (link_retry), or off (link_close).
 *
 * The owner's poll loop watches link_fd, sleeps at most link_timeout_ms and
 * calls link_step; while the link is up it reads and writes through
 * link_client itself (link_read, client_next, client_send, client_flush) and
 * reports what breaks it (link_break). What happens comes back through
 * struct link_events. A transfer uses one for each file; the chat can use
 * one to reconnect by itself. */
#ifndef BOTTLE_LINK_H
#define BOTTLE_LINK_H

#include "client.h"
#include "net.h"

#include <stdbool.h>

struct link_config {
	const char *host; /* copied */
	int port;
	struct net_keepalive ka;
	int timeout_s;   /* bounds each connect attempt */
	int retry_for_s; /* after a break, keep dialing this long */
};

/* Each is the last thing the link does in the call that reports it (but
 * down, which gave_up may follow), so the owner may close the link or open
 * it again from any of them. why is safe text. */
struct link_events {
	/* Connected (again): link_client is the connection; TPKT clients speak first. */
	void (*up)(void *ctx);
	/* A break while kept up (link_keep_up): the link dials again by itself.
	 * lost: the first break since the link last worked, opening the window. */
	void (*down)(void *ctx, const char *why, bool lost);
	/* After down, when the retry window has run out: the link waits for
	 * link_retry or link_close (LINK_WAITING). */
	void (*gave_up)(void *ctx, const char *why);
	/* A break while not kept up: the link is off now. */
	void (*failed)(void *ctx, const char *why);
	void *ctx;
};

enum link_state {
	LINK_OFF,       /* never opened, closed, or failed */
	LINK_DIALING,   /* a connect attempt is in progress: poll link_fd for POLLOUT */
	LINK_HANDSHAKE, /* connected; the TLS handshake goes on (--tls): poll link_fd */
	LINK_UP,        /* connected: the owner talks through link_client */
	LINK_BACKOFF,   /* broken: the next attempt is due at link_timeout_ms */
	LINK_WAITING,   /* gave up: the owner decides */
};

struct link {
	struct link_config cfg;
	char host[256];
	struct link_events ev;
	enum link_state st;
	struct client cl; /* while LINK_UP */
	struct net_dial dial;
	double dial_deadline; /* bounds the connect and the TLS handshake together */
	short tls_events;     /* LINK_HANDSHAKE: what the handshake waits for */
	bool keep_up;         /* breaks are retried (link_keep_up) */
	double broke_at;      /* start of the retry window; < 0: the link works */
	int attempts;
	double next_try;
	char reason[NET_ERR_LEN]; /* a better why for the next break (link_explain) */
	char why[NET_ERR_LEN];    /* the last break's */
};

/* ---- opening and closing ---- */

/* Sets it up, off. Nothing is dialed yet. */
void link_init(struct link *l, const struct link_config *cfg, const struct link_events *ev);
/* Dials: LINK_DIALING, or up at once, or a down / failed event. */
void link_open(struct link *l);
/* Off now, without retrying; safe in any state, also twice. */
void link_close(struct link *l);
/* Says QUIT first when up (best effort, so others see "left (quit)"), then closes. */
void link_quit(struct link *l);
/* From now on (on) a break reconnects within the retry window; off, the start:
 * a break ends the link with a failed event. */
void link_keep_up(struct link *l, bool on);
/* LINK_WAITING: a new retry window from now, dialing at once. */
void link_retry(struct link *l);

/* ---- driving ---- */

/* The socket to poll and its events (POLLIN, and POLLOUT when output waits or
 * a connect is in progress), or -1 when there is none. */
int link_fd(const struct link *l, short *events);
/* Milliseconds until link_step is due anyway; -1: only the socket matters. */
int link_timeout_ms(const struct link *l);
/* Dialing and backoff: does what is due (revents: what poll said of link_fd). */
void link_step(struct link *l, short revents);
/* The monotonic clock (seconds) the link's deadlines use. */
double link_now(void);

/* ---- while up ---- */

/* The connection while LINK_UP, else NULL. */
struct client *link_client(struct link *l);
/* Reads once (poll said readable). False when that broke the link (reported). */
bool link_read(struct link *l);
/* The owner saw the connection break (framing, a write error): handled as
 * any break. The link's reason, when set, is told instead of why. */
void link_break(struct link *l, const char *why);
/* Keeps the server's last word ("server: shutting down") as the reason the
 * next breaks report, until the link is up again. */
void link_explain(struct link *l, const char *reason);

/* ---- the retry window ---- */

/* A break's retry window is open: the link broke and has not worked since. */
bool link_recovering(const struct link *l);
/* Data got through again: the next break opens a new window. */
void link_confirmed(struct link *l);
/* Milliseconds to wait before reconnect attempt n (0, 1, ...). */
int link_backoff_ms(int attempt);

#endif
