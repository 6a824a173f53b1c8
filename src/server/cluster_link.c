/* cluster_link.c - the node's two links to Redis: one subscribed to the event
 * channel, one for commands (EVAL, PUBLISH). Both connect without blocking,
 * are given up on after CONNECT_TIMEOUT_MS, go down together when either
 * breaks, and come back with a backoff from RETRY_FIRST_MS to RETRY_CAP_MS.
 * What linking and unlinking mean for the node is cluster.c's.
 *
 * hiredis frees a context itself (after a failed connect, a disconnect, or
 * redisAsyncFree) and calls gone_* just before: that is the one place we
 * forget the pointer, and we never free a context after it. A lost link is
 * never reused: both go, and new ones are dialled on the next retry. */
#include "cluster_priv.h"
#include "log.h"
#include "redis_loop.h"
#include "xmalloc.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_FIRST_MS 250
#define RETRY_CAP_MS 2000 /* Redis back: linked again within this (and a connect) */
#define CONNECT_TIMEOUT_MS 3000

/* ---- commands ---- */

/* An EVAL with KEYS then ARGV. false when the link could not take it. The
 * scripts are a few hundred bytes: Redis caches them by digest, so EVAL
 * costs their bytes on the wire, not a compile (EVALSHA would save those and
 * add a NOSCRIPT path after every Redis restart). */
bool cluster_link_eval(struct cluster *cl, redisCallbackFn *fn, void *priv, const char *script,
                       int nkeys, int nargs, const char **args, const size_t *lens)
{
	if (!cl->linked || !cl->cmd)
		return false;
	int argc = 3 + nargs;
	const char **argv = xcalloc((size_t)argc, sizeof *argv);
	size_t *argvlen = xcalloc((size_t)argc, sizeof *argvlen);
	char nk[12];
	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = nk;
	for (int i = 0; i < 3; i++)
		argvlen[i] = strlen(argv[i]);
	for (int i = 0; i < nargs; i++) {
		argv[3 + i] = args[i];
		argvlen[3 + i] = lens ? lens[i] : strlen(args[i]);
	}
	int r = redisAsyncCommandArgv(cl->cmd, fn, priv, argc, argv, argvlen);
	free(argv);
	free(argvlen);
	return r == REDIS_OK;
}

/* "<id> <a><b><c>" on the channel. */
void cluster_link_publish(struct cluster *cl, const char *a, size_t alen, const char *b,
                          size_t blen, const char *c, size_t clen)
{
	if (!cl->linked || !cl->cmd)
		return; /* away from Redis: the event stays in this room */
	size_t idlen = strlen(cl->id), need = idlen + 1 + alen + blen + clen;
	if (need > cl->bufcap) {
		cl->bufcap = need * 2;
		cl->buf = xrealloc(cl->buf, cl->bufcap);
	}
	char *p = cl->buf;
	memcpy(p, cl->id, idlen);
	p += idlen;
	*p++ = ' ';
	memcpy(p, a, alen);
	p += alen;
	if (blen)
		memcpy(p, b, blen);
	p += blen;
	if (clen)
		memcpy(p, c, clen);
	(void)redisAsyncCommand(cl->cmd, NULL, NULL, "PUBLISH %s %b", cl->channel, cl->buf, need);
}

/* ---- connecting ---- */

static void on_down(struct loop *loop, struct loop_timer *t, void *data);

/* A link broke (or never came up): tear the other down too and retry, from
 * a timer: we may be inside hiredis right now. */
static void link_broken(struct cluster *cl)
{
	cl->linked = false;
	if (!cl->closing && !loop_timer_pending(&cl->down))
		loop_timer_start(cl->loop, &cl->down, 0, on_down, cl);
}

static void gone_cmd(void *data)
{
	struct cluster *cl = data;
	cl->cmd = NULL;
	cl->cmd_up = false;
	link_broken(cl);
}

static void gone_sub(void *data)
{
	struct cluster *cl = data;
	cl->sub = NULL;
	cl->sub_up = false;
	link_broken(cl);
}

static void note_error(struct cluster *cl, const redisAsyncContext *ac, const char *fallback)
{
	snprintf(cl->why, sizeof cl->why, "%s",
	         ac && ac->errstr && ac->errstr[0] ? ac->errstr : fallback);
}

static void link_up(struct cluster *cl)
{
	cl->linked = true;
	cl->ever_linked = true;
	cl->down_logged = false;
	cl->retry_ms = RETRY_FIRST_MS;
	cl->attempts = 0;
	cl->linked_at = cluster_now(cl);
	log_info("cluster: linked to redis at %s:%d as node %s", cl->url.host, cl->url.port,
	         cl->id);
	cluster_on_linked(cl);
}

/* The subscribed link: its confirmation links us, then each message is an
 * event. */
static void on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)priv;
	struct cluster *cl = ac->data;
	const redisReply *r = reply;

	if (!r || cl->closing || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return;
	const redisReply *kind = r->element[0], *payload = r->element[2];
	if (strcmp(kind->str, "subscribe") == 0 && !cl->linked)
		link_up(cl);
	else if (strcmp(kind->str, "message") == 0 && payload->type == REDIS_REPLY_STRING)
		cluster_on_event(cl, payload->str, payload->len);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct cluster *cl = ac->data;

	if (status != REDIS_OK) {
		note_error(cl, ac, "cannot connect");
		return; /* hiredis frees it now: gone_* follows */
	}
	if (ac == cl->cmd)
		cl->cmd_up = true;
	else if (ac == cl->sub)
		cl->sub_up = true;
	if (cl->cmd_up && cl->sub_up) {
		loop_timer_stop(cl->loop, &cl->connect_timeout);
		/* Linked once the subscription is confirmed (on_sub). */
		if (redisAsyncCommand(cl->sub, on_sub, NULL, "SUBSCRIBE %s", cl->channel) !=
		    REDIS_OK)
			link_broken(cl);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct cluster *cl = ac->data;
	if (status != REDIS_OK)
		note_error(cl, ac, "disconnected");
	else if (!cl->closing)
		snprintf(cl->why, sizeof cl->why, "closed by redis");
}

static redisAsyncContext *dial(struct cluster *cl, redis_loop_gone_fn *gone)
{
	redisAsyncContext *ac = redisAsyncConnect(cl->addr, cl->url.port);
	if (!ac) {
		snprintf(cl->why, sizeof cl->why, "out of memory");
		return NULL;
	}
	if (ac->err) {
		note_error(cl, ac, "cannot connect");
		redisAsyncFree(ac); /* not attached yet: nothing calls us back */
		return NULL;
	}
	ac->data = cl;
	if (redis_loop_attach(ac, cl->loop, gone, cl) < 0) {
		snprintf(cl->why, sizeof cl->why, "cannot watch the socket");
		ac->ev.cleanup = NULL;
		redisAsyncFree(ac);
		return NULL;
	}
	/* After attaching: setting the connect callback asks for the first write. */
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

/* hiredis 0.14 has no connect timeout of its own. */
static void on_connect_timeout(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	(void)t;
	struct cluster *cl = data;
	if (cl->cmd_up && cl->sub_up)
		return;
	snprintf(cl->why, sizeof cl->why, "no answer within %d ms", CONNECT_TIMEOUT_MS);
	link_broken(cl);
}

static void connect_links(struct cluster *cl)
{
	log_debug("cluster: connecting to redis at %s:%d (attempt %u)", cl->url.host, cl->url.port,
	          ++cl->attempts);
	cl->cmd = dial(cl, gone_cmd);
	cl->sub = cl->cmd ? dial(cl, gone_sub) : NULL;
	if (!cl->cmd || !cl->sub) {
		link_broken(cl);
		return;
	}
	loop_timer_start(cl->loop, &cl->connect_timeout, CONNECT_TIMEOUT_MS, on_connect_timeout,
	                 cl);
}

static void on_retry(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	(void)t;
	connect_links(data);
}

/* Both links go (a node that hears without speaking, or the reverse, would
 * drift), the loss is logged once, and a retry is planned. */
static void on_down(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	(void)t;
	struct cluster *cl = data;

	loop_timer_stop(cl->loop, &cl->connect_timeout);
	if (cl->cmd)
		redisAsyncFree(cl->cmd); /* pending replies run with NULL; gone_cmd clears it */
	if (cl->sub)
		redisAsyncFree(cl->sub);
	cl->linked = false;
	cluster_on_unlinked(cl);
	if (!cl->down_logged) {
		cl->down_logged = true;
		if (cl->ever_linked)
			log_warn("cluster: link to redis at %s:%d lost (%s); the room goes on "
			         "locally, reconnecting",
			         cl->url.host, cl->url.port, cl->why);
		else
			log_warn(
				"cluster: cannot reach redis at %s:%d (%s); serving the local room, "
				"retrying",
				cl->url.host, cl->url.port, cl->why);
	}
	if (!loop_timer_pending(&cl->retry)) {
		loop_timer_start(cl->loop, &cl->retry, cl->retry_ms, on_retry, cl);
		cl->retry_ms = cl->retry_ms * 2 > RETRY_CAP_MS ? RETRY_CAP_MS : cl->retry_ms * 2;
	}
}

/* ---- life ---- */

/* The first connect; later ones come from on_retry. */
void cluster_link_start(struct cluster *cl)
{
	cl->retry_ms = RETRY_FIRST_MS;
	connect_links(cl);
}

/* At the end (cl->closing): pending replies run now with NULL and only free
 * themselves; gone_* clears the pointers and plans nothing. */
void cluster_link_close(struct cluster *cl)
{
	loop_timer_stop(cl->loop, &cl->retry);
	loop_timer_stop(cl->loop, &cl->connect_timeout);
	loop_timer_stop(cl->loop, &cl->down);
	if (cl->cmd)
		redisAsyncFree(cl->cmd);
	if (cl->sub)
		redisAsyncFree(cl->sub);
	free(cl->buf);
	cl->buf = NULL;
	cl->bufcap = 0;
}
