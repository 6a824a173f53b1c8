/* link.c - a connection to the server that dials without blocking and
 * reconnects with backoff within a retry window (link.h).
 *
 *   OFF -> DIALING -> UP -> (a break) -> BACKOFF -> DIALING -> ...
 *
 * A break (EOF, reset, ETIMEDOUT from keepalive or TCP_USER_TIMEOUT, a failed
 * or timed-out dial) ends the link while it is not kept up; else it opens a
 * retry window, unless one is open already, and the link dials again when its
 * backoff timer is due, until the window runs out: then WAITING. */
#include "link.h"
#include "tls_client.h"

#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 5000

double link_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int link_backoff_ms(int attempt)
{
	if (attempt < 0)
		attempt = 0;
	if (attempt >= 5) /* 250 << 5 already passes the cap */
		return BACKOFF_MAX_MS;
	int ms = BACKOFF_FIRST_MS << attempt;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

void link_init(struct link *l, const struct link_config *cfg, const struct link_events *ev)
{
	memset(l, 0, sizeof *l);
	l->cfg = *cfg;
	snprintf(l->host, sizeof l->host, "%s", cfg->host);
	l->cfg.host = l->host;
	l->ev = *ev;
	l->st = LINK_OFF;
	l->cl.fd = -1;
	l->dial.fd = -1;
	l->broke_at = -1;
}

/* Closes what is open without changing the state. */
static void drop(struct link *l)
{
	net_dial_abort(&l->dial);
	if (l->st == LINK_UP || l->st == LINK_HANDSHAKE)
		client_close(&l->cl);
}

void link_close(struct link *l)
{
	drop(l);
	l->st = LINK_OFF;
}

void link_quit(struct link *l)
{
	if (l->st == LINK_UP) {
		client_send(&l->cl, "QUIT", NULL, 0, 0);
		client_flush(&l->cl);
	}
	link_close(l);
}

void link_keep_up(struct link *l, bool on) { l->keep_up = on; }

void link_explain(struct link *l, const char *reason)
{
	snprintf(l->reason, sizeof l->reason, "%s", reason);
}

bool link_recovering(const struct link *l) { return l->broke_at >= 0; }

void link_confirmed(struct link *l)
{
	l->broke_at = -1;
	l->attempts = 0;
}

/* ==== breaking ==== */

void link_break(struct link *l, const char *why)
{
	double now = link_now();

	snprintf(l->why, sizeof l->why, "%s", l->reason[0] ? l->reason : why);
	drop(l);
	if (!l->keep_up) {
		l->st = LINK_OFF;
		l->ev.failed(l->ev.ctx, l->why);
		return;
	}
	bool lost = l->broke_at < 0;
	if (lost) {
		l->broke_at = now;
		l->attempts = 0;
	}
	double end = l->broke_at + l->cfg.retry_for_s;
	l->next_try = now + link_backoff_ms(l->attempts++) / 1000.0;
	if (l->next_try > end)
		l->next_try = end; /* one last try as the window closes */
	l->st = now >= end ? LINK_WAITING : LINK_BACKOFF;
	enum link_state st = l->st;
	l->ev.down(l->ev.ctx, l->why, lost);
	if (st == LINK_WAITING && l->st == st) /* unless the owner closed it meanwhile */
		l->ev.gave_up(l->ev.ctx, l->why);
}

/* ==== dialing ==== */

static void up(struct link *l)
{
	l->st = LINK_UP;
	l->reason[0] = '\0';
	l->ev.up(l->ev.ctx);
}

/* rc of a TLS handshake step: up, on, or a break (a refused certificate
 * ends the link: dialing again would only meet it again). */
static void shaken(struct link *l, int rc, const char *err)
{
	if (rc == TLS_CLIENT_DONE) {
		up(l);
	} else if (rc == TLS_CLIENT_REFUSED) {
		l->keep_up = false;
		link_break(l, err);
	} else if (rc == TLS_CLIENT_FAILED) {
		link_break(l, err);
	}
}

static void connected(struct link *l)
{
	char err[NET_ERR_LEN];

	client_attach(&l->cl, net_dial_take(&l->dial), &l->cfg.ka);
	if (!tls_client_enabled()) {
		up(l);
		return;
	}
	l->st = LINK_HANDSHAKE; /* within what is left of the dial's deadline */
	int rc = tls_client_start(&l->cl, l->host, l->cfg.port, err);
	if (rc == TLS_CLIENT_MORE)
		rc = tls_client_step(&l->cl, &l->tls_events, err);
	shaken(l, rc, err);
}

/* rc of net_dial_start or net_dial_step. */
static void dialed(struct link *l, int rc, const char *err)
{
	if (rc < 0) {
		link_break(l, err);
	} else if (rc == 0) {
		l->st = LINK_DIALING;
		l->dial_deadline = link_now() + l->cfg.timeout_s;
	} else {
		if (l->st != LINK_DIALING) /* connected at once: the handshake's bound */
			l->dial_deadline = link_now() + l->cfg.timeout_s;
		connected(l);
	}
}

void link_open(struct link *l)
{
	char err[NET_ERR_LEN];
	int rc = net_dial_start(&l->dial, l->host, l->cfg.port, err);
	dialed(l, rc, err);
}

void link_retry(struct link *l)
{
	if (l->st != LINK_WAITING)
		return;
	l->broke_at = link_now();
	l->attempts = 0;
	link_open(l);
}

/* ==== driving ==== */

int link_fd(const struct link *l, short *events)
{
	*events = 0;
	if (l->st == LINK_DIALING) {
		*events = POLLOUT;
		return l->dial.fd;
	}
	if (l->st == LINK_HANDSHAKE) {
		*events = l->tls_events;
		return l->cl.fd;
	}
	if (l->st != LINK_UP)
		return -1;
	*events = POLLIN;
	if (client_wants_write(&l->cl))
		*events |= POLLOUT;
	return l->cl.fd;
}

static int ms_until(double when)
{
	double now = link_now();
	return when > now ? (int)ceil((when - now) * 1000) : 0;
}

int link_timeout_ms(const struct link *l)
{
	if (l->st == LINK_DIALING || l->st == LINK_HANDSHAKE)
		return ms_until(l->dial_deadline);
	if (l->st == LINK_BACKOFF)
		return ms_until(l->next_try);
	return -1;
}

void link_step(struct link *l, short revents)
{
	char err[NET_ERR_LEN];
	double now = link_now();

	if (l->st == LINK_DIALING && (revents || now >= l->dial_deadline)) {
		int rc = net_dial_step(&l->dial, revents == 0, err);
		dialed(l, rc, err);
	} else if (l->st == LINK_HANDSHAKE && revents) {
		shaken(l, tls_client_step(&l->cl, &l->tls_events, err), err);
	} else if (l->st == LINK_HANDSHAKE && now >= l->dial_deadline) {
		snprintf(err, sizeof err, "TLS handshake with %.200s:%d timed out", l->host,
		         l->cfg.port);
		link_break(l, err);
	} else if (l->st == LINK_BACKOFF && now >= l->next_try) {
		link_open(l);
	}
}

/* ==== while up ==== */

struct client *link_client(struct link *l) { return l->st == LINK_UP ? &l->cl : NULL; }

bool link_read(struct link *l)
{
	int r = client_read(&l->cl);
	if (r <= 0) {
		link_break(l, r == 0 ? "connection closed by server" : l->cl.error);
		return false;
	}
	return true;
}
