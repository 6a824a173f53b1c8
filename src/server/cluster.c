/* cluster.c - a node of the cluster (docs/cluster.md): its id and life, what
 * linking to Redis sets going (guest numbers, the history read back, the
 * first heartbeat, our names announced, the other nodes read), the dispatch
 * of what the other nodes publish, the heartbeat and the periodic check.
 * The other jobs have files of their own (cluster_priv.h lists them); the
 * lifecycle rules they all follow are written there too. */
#include "cluster.h"
#include "cluster_event.h"
#include "cluster_priv.h"
#include "cluster_url.h"
#include "log.h"
#include "net.h"
#include "sha256.h"
#include "xmalloc.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK_MS 500      /* look for silent nodes and unanswered claims */
#define GUEST_RANGE 10000 /* GuestN numbers a node takes at a time */

/* KEYS: heartbeat, member hash, node set. ARGV: node id, ttl, name, prefix.
 * The node lives: its heartbeat and the claims of its members go on. */
static const char beat_lua[] =
	"redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2]) "
	"redis.call('SADD', KEYS[3], ARGV[1]) "
	"redis.call('EXPIRE', KEYS[2], 2 * ARGV[2]) "
	"for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do "
	"  local k = ARGV[4] .. ':nick:' .. f "
	"  if redis.call('GET', k) == ARGV[1] then redis.call('EXPIRE', k, ARGV[2]) end "
	"end "
	"return 1";

/* ---- what the other nodes publish ---- */

void cluster_on_event(struct cluster *cl, const char *data, size_t len)
{
	struct cluster_event ev;

	if (cluster_event_decode(data, len, &ev) < 0) {
		/* Anyone who can reach Redis can publish: say it once, then count. */
		if (cl->bad_events++ == 0)
			log_warn("cluster: ignored a malformed event on %s (further ones logged "
			         "at debug level)",
			         cl->channel);
		else
			log_debug("cluster: ignored a malformed event (%lu so far)",
			          cl->bad_events);
		return;
	}
	if (ev.type == CLUSTER_EV_POST) { /* ours too: numbered messages come back to all */
		cluster_history_event(cl, &ev, data, len);
		return;
	}
	if (cluster_span_is(ev.node, cl->id))
		return; /* our own, back from Redis */
	cluster_peers_event(cl, &ev);
}

/* ---- linked ---- */

static void on_guests(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct cluster *cl = priv;
	const redisReply *r = reply;

	if (!r || cl->closing || r->type != REDIS_REPLY_INTEGER || r->integer < GUEST_RANGE)
		return;
	cl->guests_taken = true;
	room_set_next_guest(cl->room, (unsigned long)(r->integer - GUEST_RANGE + 1));
}

static void beat(struct cluster *cl)
{
	char key[KEY_MAX], hash[KEY_MAX], nodes[KEY_MAX];
	cluster_key(cl, key, "node", cl->id);
	cluster_key(cl, hash, "members", cl->id);
	snprintf(nodes, sizeof nodes, "%s:nodes", cl->url.prefix);
	const char *args[] = { key, hash, nodes, cl->id, cl->ttl, cl->name, cl->url.prefix };
	(void)cluster_link_eval(cl, NULL, NULL, beat_lua, 3, 7, args, NULL);
	char h[CLUSTER_NAME_MAX + 3];
	int n = snprintf(h, sizeof h, "H %s", cl->name);
	cluster_link_publish(cl, h, (size_t)n, "", 0, "", 0);
}

static void on_beat(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)t;
	struct cluster *cl = data;
	if (cl->linked)
		beat(cl);
	loop_timer_start(loop, &cl->beat, cl->ttl_s * 1000 / 3, on_beat, cl);
}

/* Both links up and subscribed (cluster_link.c has logged it). */
void cluster_on_linked(struct cluster *cl)
{
	if (!cl->guests_taken)
		(void)redisAsyncCommand(cl->cmd, on_guests, cl, "INCRBY %s:guests %d",
		                        cl->url.prefix, GUEST_RANGE);
	cluster_history_read(cl);
	beat(cl);
	cluster_names_announce(cl);
	cluster_peers_relinked(cl);
	if (!loop_timer_pending(&cl->beat))
		loop_timer_start(cl->loop, &cl->beat, cl->ttl_s * 1000 / 3, on_beat, cl);
}

/* Both links gone; the room goes on alone until they are back. */
void cluster_on_unlinked(struct cluster *cl) { cluster_history_forget(cl); }

/* Claims left unanswered, and nodes silent for a TTL. */
static void on_check(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)t;
	struct cluster *cl = data;
	uint64_t now = cluster_now(cl);

	cluster_names_expire(cl);
	if (cl->linked)
		cluster_peers_look_silent(cl, now);
	loop_timer_start(loop, &cl->check, CHECK_MS, on_check, cl);
}

/* ---- life ---- */

static void default_name(char out[CLUSTER_NAME_MAX + 1], int listen_fd)
{
	char host[256] = "bottled", addr[NET_ADDR_LEN] = "";

	if (gethostname(host, sizeof host - 1) < 0)
		snprintf(host, sizeof host, "bottled");
	host[sizeof host - 1] = '\0';
	if (listen_fd >= 0)
		net_local_text(listen_fd, addr); /* "host:port", "[v6]:port" */
	const char *port = strrchr(addr, ':');
	snprintf(out, CLUSTER_NAME_MAX + 1, "%.50s:%.6s", host, port ? port + 1 : "0");
	for (char *p = out; *p; p++)
		if (!cluster_name_valid(p, 1))
			*p = '-';
}

/* Once, before the loop runs: hiredis is given an address, never a name. */
static void resolve(struct cluster *cl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
	int e = getaddrinfo(cl->url.host, NULL, &hints, &res);
	if (e != 0)
		fatalx(1, "--cluster: cannot resolve %s: %s", cl->url.host, gai_strerror(e));
	const void *a = res->ai_family == AF_INET6
	                        ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
	                        : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
	inet_ntop(res->ai_family, a, cl->addr, sizeof cl->addr);
	freeaddrinfo(res);
}

struct cluster *cluster_new(struct loop *loop, struct room *room, const struct cluster_config *cfg)
{
	struct cluster *cl = xcalloc(1, sizeof *cl);
	char err[128];

	cl->loop = loop;
	cl->room = room;
	if (cluster_url_parse(cfg->url, &cl->url, err, sizeof err) < 0)
		fatalx(2, "--cluster: %s, got '%s'", err, cfg->url);
	if (cfg->node_name)
		snprintf(cl->name, sizeof cl->name, "%s", cfg->node_name);
	else
		default_name(cl->name, cfg->listen_fd);
	if (!cluster_name_valid(cl->name, strlen(cl->name)))
		fatalx(2, "--node-name: 1-%d letters, digits or _-.: expected, got '%s'",
		       CLUSTER_NAME_MAX, cl->name);
	unsigned char run[8];
	if (getrandom(run, sizeof run, 0) != (ssize_t)sizeof run)
		fatal(1, "getrandom");
	char hex[17];
	hex_encode(run, sizeof run, hex);
	snprintf(cl->id, sizeof cl->id, "%s~%s", cl->name, hex);
	cl->ttl_s = cfg->ttl_s ? cfg->ttl_s : CLUSTER_TTL_DEFAULT;
	snprintf(cl->ttl, sizeof cl->ttl, "%u", cl->ttl_s);
	snprintf(cl->channel, sizeof cl->channel, "%s:events", cl->url.prefix);
	resolve(cl);
	cluster_history_init(cl, cfg->history);
	cluster_uplink_init(cl);
	cluster_peers_init(cl);
	room_set_uplink(room, &cl->uplink);
	log_info("cluster: node %s, redis at %s:%d (%s), prefix %s, ttl %u s", cl->id, cl->url.host,
	         cl->url.port, cl->addr, cl->url.prefix, cl->ttl_s);
	cluster_link_start(cl);
	loop_timer_start(loop, &cl->check, CHECK_MS, on_check, cl);
	return cl;
}

void cluster_free(struct cluster *cl)
{
	if (!cl)
		return;
	cl->closing = true;
	cl->linked = false;
	room_set_uplink(cl->room, NULL);
	loop_timer_stop(cl->loop, &cl->beat);
	loop_timer_stop(cl->loop, &cl->check);
	cluster_peers_free(cl);
	cluster_link_close(cl); /* pending replies run now with NULL and free themselves */
	cluster_history_forget(cl);
	free(cl);
}

bool cluster_linked(const struct cluster *cl) { return cl->linked; }
const char *cluster_node_id(const struct cluster *cl) { return cl->id; }
