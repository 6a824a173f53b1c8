/* cluster.c - the node's side of the cluster: two Redis links (one
 * subscribed to the event channel, one for commands), the uplink member that
 * publishes what happens here, stand-ins for the other nodes' members, name
 * claims, heartbeats, and reconnecting. docs/cluster.md has the keys, the
 * scripts and what happens when each piece fails.
 *
 * Lifecycle: hiredis frees a context itself (after a failed connect, a
 * disconnect, or redisAsyncFree); redis_loop tells us just before (gone_*),
 * and we only clear our pointer there. Tearing a link down or reconnecting
 * is done from timers, never inside a hiredis callback. No reply callback
 * holds a pointer to a member or a node: it holds an id and looks it up. */
#include "cluster.h"
#include "cluster_event.h"
#include "cluster_url.h"
#include "log.h"
#include "net.h"
#include "nick.h"
#include "redis_loop.h"
#include "sha256.h"
#include "wire.h"
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
#include <time.h>
#include <unistd.h>

/* clang-format 14 takes (p) for a cast. */
/* clang-format off */
#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))
/* clang-format on */

#define RETRY_FIRST_MS 250
#define RETRY_CAP_MS 2000 /* Redis back: linked again within this (and a connect) */
#define CONNECT_TIMEOUT_MS 3000
#define CHECK_MS 500      /* look for silent nodes and unanswered claims */
#define GUEST_RANGE 10000 /* GuestN numbers a node takes at a time */
#define KEY_MAX (64 + 32 + NICK_MAX_BYTES + CLUSTER_NODE_ID_MAX)

/* ---- the scripts (docs/cluster.md, "Scripts"); Redis runs each atomically ---- */

/* KEYS: claim, member hash. ARGV: node id, ttl, folded nick, nick. 1: ours. */
static const char claim_lua[] = "local v = redis.call('GET', KEYS[1]) "
				"if v and v ~= ARGV[1] then return 0 end "
				"redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
				"redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) "
				"redis.call('EXPIRE', KEYS[2], 2 * ARGV[2]) "
				"return 1";

/* KEYS: claim, member hash. ARGV: node id, folded nick. Compare and delete. */
static const char release_lua[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end "
	"redis.call('HDEL', KEYS[2], ARGV[2]) "
	"return 1";

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

/* KEYS: member hash. ARGV: node id, ttl, prefix, then folded nick and nick
 * for each member. The node's list written anew; one 0/1 per member. */
static const char announce_lua[] = "redis.call('DEL', KEYS[1]) "
				   "local out = {} "
				   "for i = 4, #ARGV, 2 do "
				   "  local k = ARGV[3] .. ':nick:' .. ARGV[i] "
				   "  local v = redis.call('GET', k) "
				   "  if v and v ~= ARGV[1] then out[#out + 1] = 0 else "
				   "    redis.call('SET', k, ARGV[1], 'EX', ARGV[2]) "
				   "    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) "
				   "    out[#out + 1] = 1 "
				   "  end "
				   "end "
				   "redis.call('EXPIRE', KEYS[1], 2 * ARGV[2]) "
				   "return out";

/* KEYS: heartbeat, member hash, node set of another node. ARGV: its id,
 * prefix. Alive: {1, nick...}. Its heartbeat gone: its names are freed, it
 * leaves the set, and {0}. */
static const char look_lua[] = "if redis.call('EXISTS', KEYS[1]) == 1 then "
			       "  local out = redis.call('HVALS', KEYS[2]) "
			       "  table.insert(out, 1, 1) "
			       "  return out "
			       "end "
			       "for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do "
			       "  local k = ARGV[2] .. ':nick:' .. f "
			       "  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end "
			       "end "
			       "redis.call('DEL', KEYS[2]) "
			       "redis.call('SREM', KEYS[3], ARGV[1]) "
			       "return {0}";

/* KEYS: sequence, history stream, epoch. ARGV: max length, channel, node id,
 * author's member id, MSG or ACTION, nick, text, Unix ms, an epoch to use if
 * there is none (Redis lost its data). The message's offset is the next
 * number of the sequence; it is kept and published (M, with the epoch) in one
 * step, so every node sees every message in the same order with the same
 * offset, and notices when the epoch is not the one it holds. */
static const char post_lua[] =
	"redis.call('SET', KEYS[3], ARGV[9], 'NX') "
	"local epoch = redis.call('GET', KEYS[3]) "
	"local seq = redis.call('INCR', KEYS[1]) "
	"redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', "
	"  'w', ARGV[5], 'n', ARGV[6], 'ms', ARGV[8], 't', ARGV[7]) "
	"redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' M ' .. epoch .. ' ' .. seq .. ' ' .. "
	"  ARGV[8] .. ' ' .. "
	"  ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. ARGV[7]) "
	"return seq";

/* KEYS: epoch, history stream. ARGV: an epoch to use if there is none yet,
 * how many messages to read back. {epoch, newest messages first}. */
static const char init_lua[] = "redis.call('SET', KEYS[1], ARGV[1], 'NX') "
			       "return {redis.call('GET', KEYS[1]), "
			       "  redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])}";

/* ---- state ---- */

/* A numbered message that came before the history was read back. */
struct held_post {
	struct held_post *next;
	size_t len;
	char data[];
};

struct remote_node;

/* A member of another node, as this room sees it. */
struct remote_member {
	struct member m; /* in the room while shown */
	struct remote_node *node;
	struct remote_member *prev, *next; /* the node's members */
	char nick[NICK_MAX_BYTES + 1];     /* its name there (m.nick is empty while hidden) */
	bool seen;                         /* in the member list just read */
};

struct remote_node {
	struct remote_node *next;
	struct cluster *cl;
	char id[CLUSTER_NODE_ID_MAX + 1];
	char name[CLUSTER_NAME_MAX + 1];
	uint64_t last_seen; /* loop time of its last event */
	unsigned changes;   /* membership events: a member list read meanwhile is stale */
	bool looking;       /* a LOOK is on its way */
	struct remote_member *members;
	size_t count, hidden; /* hidden: a member here holds their name */
};

/* A claim waiting for Redis. */
struct claim {
	struct cluster *cl;
	struct claim *prev, *next;
	uint64_t member_id;
	uint64_t deadline;
	cluster_claim_fn *done; /* NULL: a member's current name (the clash rule) */
	char nick[NICK_MAX_BYTES + 1];
	size_t len;
	bool answered; /* timed out: the reply, when it comes, changes nothing */
};

/* What a reply about a node needs: the node is looked up again by id. */
struct node_ask {
	struct cluster *cl;
	char id[CLUSTER_NODE_ID_MAX + 1];
	unsigned changes;
};

/* The members one ANNOUNCE claimed, in order. */
struct announce {
	struct cluster *cl;
	size_t n;
	uint64_t *ids;
	char (*folds)[NICK_MAX_BYTES + 1];
};

struct cluster {
	struct loop *loop;
	struct room *room;
	struct cluster_url url;
	char addr[INET6_ADDRSTRLEN];
	char id[CLUSTER_NODE_ID_MAX + 1];
	char name[CLUSTER_NAME_MAX + 1];
	char ttl[12]; /* as text, for the scripts */
	unsigned ttl_s;
	char channel[96];
	redisAsyncContext *cmd, *sub; /* NULL once hiredis has let go of them */
	bool cmd_up, sub_up;          /* connected */
	bool linked;                  /* both up and subscribed: events cross */
	bool ever_linked, down_logged, guests_taken, closing;
	unsigned retry_ms, attempts; /* attempts: since the link was last up */
	char why[160];               /* the last link error */
	uint64_t linked_at;
	struct loop_timer retry, connect_timeout, down, beat, check;
	struct member uplink;   /* the other nodes, for the room */
	struct member inbound;  /* remote: the `except` of FILE news from elsewhere */
	struct member stranger; /* the sender of a private message we have no stand-in for */
	struct remote_node *nodes;
	size_t hidden; /* stand-ins kept out of the room by a name held here (0: none) */
	struct claim *claims;
	unsigned long bad_events;
	char history_max[24];                /* messages kept in the stream (and the ring) */
	bool history_ready;                  /* read back since the link came up */
	bool replaying;                      /* on_init hands the held messages on */
	struct held_post *held, **held_tail; /* numbered messages meanwhile */
	char *buf;                           /* an event being published */
	size_t bufcap;
};

static uint64_t now_ms(const struct cluster *cl) { return loop_now(cl->loop); }

static bool span_is(struct cluster_span s, const char *str)
{
	return s.len == strlen(str) && memcmp(s.p, str, s.len) == 0;
}

static void key_of(const struct cluster *cl, char out[KEY_MAX], const char *what, const char *id)
{
	snprintf(out, KEY_MAX, "%s:%s:%s", cl->url.prefix, what, id);
}

static void nick_key(const struct cluster *cl, char out[KEY_MAX], const char *fold)
{
	key_of(cl, out, "nick", fold);
}

static void fold_of(const char *nick, size_t len, char out[NICK_MAX_BYTES + 1])
{
	nick_fold(nick, len, out);
}

/* ---- commands ---- */

/* An EVAL with KEYS then ARGV. false when the link could not take it. The
 * scripts are a few hundred bytes: Redis caches them by digest, so EVAL
 * costs their bytes on the wire, not a compile (EVALSHA would save those and
 * add a NOSCRIPT path after every Redis restart). */
static bool eval(struct cluster *cl, redisCallbackFn *fn, void *priv, const char *script, int nkeys,
                 int nargs, const char **args, const size_t *lens)
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
static void publish(struct cluster *cl, const char *a, size_t alen, const char *b, size_t blen,
                    const char *c, size_t clen)
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

static void publish_word(struct cluster *cl, const char *word)
{
	publish(cl, word, strlen(word), "", 0, "", 0);
}

/* ---- members ---- */

/* A local member in the room by id: replies never keep pointers to members. */
static struct member *member_by_id(struct cluster *cl, uint64_t id)
{
	size_t n = room_count(cl->room);
	for (size_t i = 0; i < n; i++) {
		struct member *m = room_member(cl->room, i);
		if (!m->remote && m->id == id)
			return m;
	}
	return NULL;
}

static bool same_name(const char *a, const char *b)
{
	char fa[NICK_MAX_BYTES + 1], fb[NICK_MAX_BYTES + 1];
	fold_of(a, strlen(a), fa);
	fold_of(b, strlen(b), fb);
	return strcmp(fa, fb) == 0;
}

static void on_claim(redisAsyncContext *ac, void *reply, void *priv);

static void unlink_claim(struct cluster *cl, struct claim *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else if (cl->claims == k)
		cl->claims = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

static bool send_claim(struct cluster *cl, const struct member *m, const char *nick, size_t len,
                       cluster_claim_fn *done)
{
	char fold[NICK_MAX_BYTES + 1], key[KEY_MAX], hash[KEY_MAX];
	fold_of(nick, len, fold);
	if (!fold[0])
		return false;
	nick_key(cl, key, fold);
	key_of(cl, hash, "members", cl->id);
	struct claim *k = xcalloc(1, sizeof *k);
	k->cl = cl;
	k->member_id = m->id;
	k->done = done;
	k->deadline = now_ms(cl) + CLUSTER_CLAIM_TIMEOUT_MS;
	memcpy(k->nick, nick, len);
	k->len = len;
	const char *args[] = { key, hash, cl->id, cl->ttl, fold, k->nick };
	if (!eval(cl, on_claim, k, claim_lua, 2, 6, args, NULL)) {
		free(k);
		return false;
	}
	k->next = cl->claims;
	if (cl->claims)
		cl->claims->prev = k;
	cl->claims = k;
	return true;
}

/* Gives a name back in Redis, unless a member here still holds it. */
static void release_name(struct cluster *cl, const char *nick, size_t len)
{
	struct member *holder = room_holder(cl->room, nick, len);
	if (holder && !holder->remote)
		return;
	char fold[NICK_MAX_BYTES + 1], key[KEY_MAX], hash[KEY_MAX];
	fold_of(nick, len, fold);
	if (!fold[0])
		return;
	nick_key(cl, key, fold);
	key_of(cl, hash, "members", cl->id);
	const char *args[] = { key, hash, cl->id, fold };
	(void)eval(cl, NULL, NULL, release_lua, 2, 4, args, NULL);
}

/* The clash rule: whoever holds the claim in Redis keeps the name; a member
 * here that could not claim its own is renamed to a fresh GuestN, and told. */
static void lose_name(struct cluster *cl, uint64_t id, const char *nick)
{
	struct member *m = member_by_id(cl, id);
	if (!m || !same_name(m->nick, nick))
		return;
	log_info("cluster: %s is held on another node; renaming the one here", m->nick);
	room_rename_guest(cl->room, m);
}

static void on_claim(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct claim *k = priv;
	struct cluster *cl = k->cl;
	redisReply *r = reply;

	unlink_claim(cl, k);
	if (!cl->closing && !k->answered) {
		enum cluster_claim_result res = CLUSTER_NO_ANSWER;
		if (r && r->type == REDIS_REPLY_INTEGER)
			res = r->integer == 1 ? CLUSTER_CLAIMED : CLUSTER_TAKEN;
		else if (r)
			log_warn("cluster: a name claim failed: %s",
			         r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
		struct member *m = member_by_id(cl, k->member_id);
		if (k->done && m)
			k->done(m, res, k->nick, k->len);
		else if (k->done && res == CLUSTER_CLAIMED)
			release_name(cl, k->nick, k->len); /* its member left meanwhile */
		else if (!k->done && res == CLUSTER_TAKEN)
			lose_name(cl, k->member_id, k->nick);
	}
	free(k);
}

bool cluster_claim(struct cluster *cl, struct member *m, const char *nick, size_t len,
                   cluster_claim_fn *done)
{
	return cl->linked && send_claim(cl, m, nick, len, done);
}

void cluster_unclaim(struct cluster *cl, const char *nick, size_t len)
{
	release_name(cl, nick, len);
}

static void expire_claims(struct cluster *cl)
{
	uint64_t now = now_ms(cl);
	for (struct claim *k = cl->claims; k; k = k->next) {
		if (k->answered || now < k->deadline)
			continue;
		k->answered = true; /* hiredis still owns it: freed with its reply */
		struct member *m = member_by_id(cl, k->member_id);
		if (k->done && m)
			k->done(m, CLUSTER_NO_ANSWER, k->nick, k->len);
	}
}

/* ---- the other nodes' members ---- */

static void remote_deliver(struct member *m, struct room_msg *msg);
static const struct member_ops remote_ops = { .deliver = remote_deliver };

static struct remote_node *node_find(struct cluster *cl, const char *id, size_t len)
{
	for (struct remote_node *n = cl->nodes; n; n = n->next)
		if (strlen(n->id) == len && memcmp(n->id, id, len) == 0)
			return n;
	return NULL;
}

static void look(struct cluster *cl, struct remote_node *n);

static struct remote_node *node_get(struct cluster *cl, const char *id, size_t len)
{
	struct remote_node *n = node_find(cl, id, len);
	if (n)
		return n;
	n = xcalloc(1, sizeof *n);
	n->cl = cl;
	memcpy(n->id, id, len);
	n->last_seen = now_ms(cl);
	n->next = cl->nodes;
	cl->nodes = n;
	log_info("cluster: node %s joined the cluster", n->id);
	look(cl, n); /* who is there already */
	return n;
}

static struct remote_member *proxy_of(struct member *m)
{
	return container_of(m, struct remote_member, m);
}

static struct remote_member *proxy_find(struct cluster *cl, struct remote_node *n, const char *nick,
                                        size_t len)
{
	struct member *m = room_holder(cl->room, nick, len);
	if (m && m->remote && m->ops == &remote_ops && proxy_of(m)->node == n)
		return proxy_of(m);
	if (!cl->hidden)
		return NULL;
	char fold[NICK_MAX_BYTES + 1], other[NICK_MAX_BYTES + 1];
	fold_of(nick, len, fold);
	for (struct remote_member *p = n->members; p; p = p->next) {
		if (room_has(&p->m))
			continue;
		fold_of(p->nick, strlen(p->nick), other);
		if (strcmp(fold, other) == 0)
			return p;
	}
	return NULL;
}

static void check_holder(struct cluster *cl, struct member *holder)
{
	if (!holder->remote)
		(void)send_claim(cl, holder, holder->nick, strlen(holder->nick), NULL);
}

/* Into the room under its name, or hidden while someone here holds that name
 * (one of the two claims failed: its owner is renamed and shows it, or the
 * member here is, once Redis says so). */
static void proxy_show(struct cluster *cl, struct remote_member *p)
{
	size_t len = strlen(p->nick);
	struct member *holder = room_holder(cl->room, p->nick, len);

	if (holder && holder != &p->m) {
		if (p->m.nick[0])
			room_leave(cl->room, &p->m, "closed");
		cl->hidden++; /* counted exactly by retry_hidden */
		check_holder(cl, holder);
		return;
	}
	if (room_rename(cl->room, &p->m, p->nick, len) != NICK_OK)
		return;
	room_enter(cl->room, &p->m, false);
}

static void count_hidden(struct cluster *cl)
{
	cl->hidden = 0;
	for (struct remote_node *n = cl->nodes; n; n = n->next) {
		n->hidden = 0;
		for (struct remote_member *p = n->members; p; p = p->next)
			if (!room_has(&p->m))
				n->hidden++;
		cl->hidden += n->hidden;
	}
}

/* A name was given back here: a hidden member may show now. */
static void retry_hidden(struct cluster *cl)
{
	if (!cl->hidden)
		return;
	for (struct remote_node *n = cl->nodes; n; n = n->next)
		for (struct remote_member *p = n->members; p; p = p->next)
			if (!room_has(&p->m))
				proxy_show(cl, p);
	count_hidden(cl);
}

static struct remote_member *proxy_new(struct cluster *cl, struct remote_node *n, const char *nick,
                                       size_t len)
{
	struct remote_member *p = xcalloc(1, sizeof *p);
	p->m.ops = &remote_ops;
	p->m.remote = true;
	p->node = n;
	memcpy(p->nick, nick, len);
	p->next = n->members;
	if (n->members)
		n->members->prev = p;
	n->members = p;
	n->count++;
	proxy_show(cl, p);
	return p;
}

static void proxy_drop(struct cluster *cl, struct remote_member *p, const char *reason)
{
	struct remote_node *n = p->node;
	room_leave(cl->room, &p->m, reason);
	if (n->members == p)
		n->members = p->next;
	else if (p->prev)
		p->prev->next = p->next;
	if (p->next)
		p->next->prev = p->prev;
	n->count--;
	free(p);
}

/* Every member of n leaves the room (room_leave never calls back here). */
static void drop_all(struct cluster *cl, struct remote_node *n, const char *reason)
{
	struct remote_member *p = n->members;
	n->members = NULL;
	n->count = n->hidden = 0;
	while (p) {
		struct remote_member *next = p->next;
		room_leave(cl->room, &p->m, reason);
		free(p);
		p = next;
	}
}

static void proxy_rename(struct cluster *cl, struct remote_member *p, const char *nick, size_t len)
{
	memcpy(p->nick, nick, len);
	p->nick[len] = '\0';
	if (room_has(&p->m) && room_rename(cl->room, &p->m, nick, len) == NICK_OK)
		return;
	proxy_show(cl, p); /* leaves the room while the name is held here */
}

static void node_lost(struct cluster *cl, struct remote_node *n)
{
	log_info("cluster: node %s lost: its %zu member%s leave", n->id, n->count,
	         n->count == 1 ? "" : "s");
	drop_all(cl, n, "node lost");
	for (struct remote_node **pp = &cl->nodes; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	free(n);
	retry_hidden(cl);
}

/* A member of ours was told a private message for a member of another node. */
static void remote_deliver(struct member *m, struct room_msg *msg)
{
	struct remote_member *p = proxy_of(m);
	if (msg->hlen < 8 || memcmp(msg->head, "PRIVATE ", 8) != 0 || !msg->about ||
	    msg->about->remote)
		return; /* room events: its own node tells it */
	char head[2 * NICK_MAX_BYTES + 8];
	int n = snprintf(head, sizeof head, "P %s %s ", p->nick, msg->about->nick);
	publish(p->node->cl, head, (size_t)n, msg->body, msg->blen, "", 0);
}

/* ---- looking at a node: is it alive, who is there ---- */

static void on_look(redisAsyncContext *ac, void *reply, void *priv);

static void look(struct cluster *cl, struct remote_node *n)
{
	if (n->looking || !cl->linked)
		return;
	struct node_ask *a = xcalloc(1, sizeof *a);
	a->cl = cl;
	memcpy(a->id, n->id, sizeof a->id);
	a->changes = n->changes;
	char beat[KEY_MAX], hash[KEY_MAX], nodes[KEY_MAX];
	key_of(cl, beat, "node", n->id);
	key_of(cl, hash, "members", n->id);
	snprintf(nodes, sizeof nodes, "%s:nodes", cl->url.prefix);
	const char *args[] = { beat, hash, nodes, n->id, cl->url.prefix };
	if (eval(cl, on_look, a, look_lua, 3, 5, args, NULL))
		n->looking = true;
	else
		free(a);
}

static void apply_members(struct cluster *cl, struct remote_node *n, const redisReply *r)
{
	for (struct remote_member *p = n->members; p; p = p->next)
		p->seen = false;
	for (size_t i = 1; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING || nick_check(e->str, e->len) != NICK_OK)
			continue;
		struct remote_member *p = proxy_find(cl, n, e->str, e->len);
		if (!p)
			p = proxy_new(cl, n, e->str, e->len);
		p->seen = true;
	}
	for (struct remote_member *p = n->members, *next; p; p = next) {
		next = p->next;
		if (!p->seen)
			proxy_drop(cl, p, "closed");
	}
	retry_hidden(cl);
}

static void on_look(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct node_ask *a = priv;
	struct cluster *cl = a->cl;
	const redisReply *r = reply;
	struct remote_node *n = cl->closing ? NULL : node_find(cl, a->id, strlen(a->id));

	if (n)
		n->looking = false;
	if (!n || !r) {
		free(a);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		log_warn("cluster: odd reply looking at node %s%s%s", n->id,
		         r->type == REDIS_REPLY_ERROR ? ": " : "",
		         r->type == REDIS_REPLY_ERROR ? r->str : "");
		free(a);
		return;
	}
	if (r->element[0]->integer == 0) {
		node_lost(cl, n);
	} else {
		n->last_seen = now_ms(cl);
		if (n->changes != a->changes)
			look(cl, n); /* it changed while we read: read again */
		else
			apply_members(cl, n, r);
	}
	free(a);
}

/* ---- events from the other nodes ---- */

static void on_room_event(struct cluster *cl, struct remote_node *n, const struct cluster_event *ev)
{
	struct remote_member *p = proxy_find(cl, n, ev->nick.p, ev->nick.len);

	switch (ev->verb) {
	case CLUSTER_MSG:
	case CLUSTER_ACTION:
		/* Messages travel numbered (M): one unnumbered would take an
		 * offset of this node's own and split the cluster's history. */
		log_debug("cluster: ignored an unnumbered message from %s", n->id);
		break;
	case CLUSTER_JOIN:
		n->changes++;
		if (!p)
			(void)proxy_new(cl, n, ev->nick.p, ev->nick.len);
		break;
	case CLUSTER_LEAVE: {
		n->changes++;
		if (!p)
			break;
		char reason[CLUSTER_REASON_MAX + 1];
		memcpy(reason, ev->text.p, ev->text.len);
		reason[ev->text.len] = '\0';
		proxy_drop(cl, p, reason);
		retry_hidden(cl);
		break;
	}
	case CLUSTER_NICK:
		n->changes++;
		if (!p)
			(void)proxy_new(cl, n, ev->to.p, ev->to.len);
		else
			proxy_rename(cl, p, ev->to.p, ev->to.len);
		retry_hidden(cl);
		break;
	case CLUSTER_FILE:
		room_broadcast(cl->room, &cl->inbound, ev->text.p, ev->text.len, "", 0);
		break;
	}
}

static void on_private(struct cluster *cl, struct remote_node *n, const struct cluster_event *ev)
{
	struct member *to = room_find(cl->room, ev->to.p, ev->to.len);
	if (!to || to->remote)
		return; /* not ours */
	struct remote_member *p = proxy_find(cl, n, ev->nick.p, ev->nick.len);
	struct member *from = &cl->stranger;
	if (p && room_has(&p->m)) {
		from = &p->m;
	} else {
		memcpy(cl->stranger.nick, ev->nick.p, ev->nick.len);
		cl->stranger.nick[ev->nick.len] = '\0';
	}
	(void)room_tell(cl->room, from, ev->to.p, ev->to.len, ev->text.p, ev->text.len);
}

static void on_post(struct cluster *cl, const struct cluster_event *ev)
{
	char nick[NICK_MAX_BYTES + 1];
	bool ours = span_is(ev->node, cl->id);

	if (!ours) {
		struct remote_node *n = node_get(cl, ev->node.p, ev->node.len);
		n->last_seen = now_ms(cl);
		if (!proxy_find(cl, n, ev->nick.p, ev->nick.len))
			(void)proxy_new(cl, n, ev->nick.p, ev->nick.len); /* its JOIN was missed */
	}
	memcpy(nick, ev->nick.p, ev->nick.len);
	nick[ev->nick.len] = '\0';
	struct timespec when = { .tv_sec = (time_t)(ev->when_ms / 1000),
		                 .tv_nsec = (long)(ev->when_ms % 1000) * 1000000 };
	room_post_at(cl->room, ours ? ev->author : 0, ev->verb == CLUSTER_ACTION ? "ACTION" : "MSG",
	             nick, ev->text.p, ev->text.len, ev->offset, &when);
}

static void hold_post(struct cluster *cl, const char *data, size_t len)
{
	struct held_post *h = xmalloc(sizeof *h + len);
	h->next = NULL;
	h->len = len;
	memcpy(h->data, data, len);
	*cl->held_tail = h;
	cl->held_tail = &h->next;
}

static void drop_held(struct cluster *cl)
{
	while (cl->held) {
		struct held_post *h = cl->held;
		cl->held = h->next;
		free(h);
	}
	cl->held_tail = &cl->held;
}

static void read_history(struct cluster *cl);

static void on_event(struct cluster *cl, const char *data, size_t len)
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
		bool same = ev.to.len == 16 && memcmp(ev.to.p, room_epoch(cl->room), 16) == 0;
		if (!same && cl->replaying)
			return; /* said in an epoch Redis no longer holds */
		if (cl->history_ready && !same) {
			/* Redis started a new history: read it, then go on in order. */
			log_info("cluster: the history has a new epoch, %.16s", ev.to.p);
			read_history(cl);
		}
		if (cl->history_ready)
			on_post(cl, &ev);
		else
			hold_post(cl, data, len);
		return;
	}
	if (span_is(ev.node, cl->id))
		return; /* our own, back from Redis */
	struct remote_node *n = node_get(cl, ev.node.p, ev.node.len);
	n->last_seen = now_ms(cl);
	switch (ev.type) {
	case CLUSTER_EV_HEARTBEAT:
		memcpy(n->name, ev.text.p, ev.text.len);
		n->name[ev.text.len] = '\0';
		break;
	case CLUSTER_EV_SYNC: look(cl, n); break;
	case CLUSTER_EV_PRIVATE: on_private(cl, n, &ev); break;
	case CLUSTER_EV_ROOM: on_room_event(cl, n, &ev); break;
	case CLUSTER_EV_POST: break; /* above */
	}
}

/* ---- what happens here, for the others: the uplink ---- */

static void uplink_deliver(struct member *m, struct room_msg *msg)
{
	struct cluster *cl = container_of(m, struct cluster, uplink);
	const char *head = msg->head;
	size_t hlen = msg->hlen;

	if (cl->closing)
		return;
	publish(cl, "E ", 2, head, hlen, msg->body, msg->blen);
	if (!msg->about)
		return;
	struct member *who = msg->about;
	if (hlen > 5 && memcmp(head, "JOIN ", 5) == 0) {
		(void)send_claim(cl, who, who->nick, strlen(who->nick), NULL);
	} else if (hlen > 6 && memcmp(head, "LEAVE ", 6) == 0) {
		/* room_step_out tells before the name goes: give it back then */
		if (cl->linked) {
			char fold[NICK_MAX_BYTES + 1], key[KEY_MAX], hash[KEY_MAX];
			fold_of(who->nick, strlen(who->nick), fold);
			nick_key(cl, key, fold);
			key_of(cl, hash, "members", cl->id);
			const char *args[] = { key, hash, cl->id, fold };
			(void)eval(cl, NULL, NULL, release_lua, 2, 4, args, NULL);
		}
		retry_hidden(cl);
	} else if (hlen > 5 && memcmp(head, "NICK ", 5) == 0) {
		const char *old = head + 5, *sp = memchr(old, ' ', hlen - 5);
		size_t olen = sp ? (size_t)(sp - old) : 0;
		(void)send_claim(cl, who, who->nick, strlen(who->nick), NULL);
		char fo[NICK_MAX_BYTES + 1], fn[NICK_MAX_BYTES + 1];
		fold_of(old, olen, fo);
		fold_of(who->nick, strlen(who->nick), fn);
		if (olen && strcmp(fo, fn) != 0)
			release_name(cl, old, olen);
		retry_hidden(cl);
	}
}

static void on_posted(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct cluster *cl = priv;
	const redisReply *r = reply;
	if (!cl->closing && r && r->type == REDIS_REPLY_ERROR)
		log_warn("cluster: a message could not be posted: %s", r->str);
}

/* A local member's message: numbered by Redis, which sends it back to every
 * node (this one too, to deliver it here) in one order. */
static int uplink_post(struct member *m, struct member *from, const char *word, const char *text,
                       size_t len)
{
	struct cluster *cl = container_of(m, struct cluster, uplink);
	char seq[KEY_MAX], stream[KEY_MAX], epoch_key[KEY_MAX], author[24], ms[24], fresh[17];
	unsigned char r[8];
	struct timespec now;

	if (cl->closing)
		return ROOM_POST_HERE;
	if (!cl->linked)
		return ROOM_POST_LOCAL; /* Redis is away: this room only, unnumbered */
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(seq, sizeof seq, "%s:seq", cl->url.prefix);
	snprintf(stream, sizeof stream, "%s:history", cl->url.prefix);
	snprintf(epoch_key, sizeof epoch_key, "%s:epoch", cl->url.prefix);
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		memset(r, 0xa5, sizeof r);
	hex_encode(r, sizeof r, fresh);
	snprintf(author, sizeof author, "%llu", (unsigned long long)from->id);
	snprintf(ms, sizeof ms, "%llu",
	         (unsigned long long)now.tv_sec * 1000ull +
	                 (unsigned long long)now.tv_nsec / 1000000);
	const char *args[] = { seq,         stream, epoch_key, cl->history_max,
		               cl->channel, cl->id, author,    word,
		               from->nick,  text,   ms,        fresh };
	size_t lens[12];
	for (int i = 0; i < 12; i++)
		lens[i] = args[i] == text ? len : strlen(args[i]);
	return eval(cl, on_posted, cl, post_lua, 3, 12, args, lens) ? ROOM_POST_TAKEN
	                                                            : ROOM_POST_LOCAL;
}

static const struct member_ops uplink_ops = { .deliver = uplink_deliver, .post = uplink_post };

/* ---- the history, read back on linking ---- */

static bool field(const redisReply *fields, const char *name, const redisReply **out)
{
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[i]->str, name) == 0 &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING) {
			*out = fields->element[i + 1];
			return true;
		}
	return false;
}

/* One stream entry [id, [w, MSG, n, nick, ms, 123, t, text]] into the ring. */
static void keep_entry(struct cluster *cl, const redisReply *e)
{
	const redisReply *w, *n, *ms, *t;
	char *end;
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
		return;
	unsigned long long offset = strtoull(e->element[0]->str, &end, 10);
	if (end == e->element[0]->str || !field(e->element[1], "w", &w) ||
	    !field(e->element[1], "n", &n) || !field(e->element[1], "ms", &ms) ||
	    !field(e->element[1], "t", &t) || nick_check(n->str, n->len) != NICK_OK ||
	    t->len > WIRE_SAY_MAX)
		return;
	const char *word = strcmp(w->str, "ACTION") == 0 ? "ACTION" : "MSG";
	unsigned long long when = strtoull(ms->str, NULL, 10);
	struct timespec ts = { .tv_sec = (time_t)(when / 1000),
		               .tv_nsec = (long)(when % 1000) * 1000000 };
	room_keep_at(cl->room, offset, word, n->str, t->str, t->len, &ts);
}

static void on_init(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct cluster *cl = priv;
	const redisReply *r = reply;

	if (cl->closing || !r)
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->len != 16) {
		log_warn("cluster: reading the history back failed%s%s",
		         r->type == REDIS_REPLY_ERROR ? ": " : "",
		         r->type == REDIS_REPLY_ERROR ? r->str : "");
	} else {
		room_set_epoch(cl->room, r->element[0]->str);
		const redisReply *entries = r->element[1];
		for (size_t i = entries->elements; i-- > 0;)
			keep_entry(cl, entries->element[i]);
	}
	cl->history_ready = true;
	struct held_post *h = cl->held;
	cl->held = NULL;
	cl->held_tail = &cl->held;
	cl->replaying = true;
	while (h) {
		struct held_post *next = h->next;
		on_event(cl, h->data, h->len);
		free(h);
		h = next;
	}
	cl->replaying = false;
}

static void read_history(struct cluster *cl)
{
	unsigned char r[8];
	char epoch[17], key[KEY_MAX], stream[KEY_MAX];
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		memset(r, 0x5a, sizeof r);
	hex_encode(r, sizeof r, epoch);
	snprintf(key, sizeof key, "%s:epoch", cl->url.prefix);
	snprintf(stream, sizeof stream, "%s:history", cl->url.prefix);
	const char *args[] = { key, stream, epoch, cl->history_max };
	cl->history_ready = false;
	if (!eval(cl, on_init, cl, init_lua, 2, 4, args, NULL))
		cl->history_ready = true;
}

/* ---- the links ---- */

static void on_sub(redisAsyncContext *ac, void *reply, void *priv);
static void on_nodes(redisAsyncContext *ac, void *reply, void *priv);
static void on_guests(redisAsyncContext *ac, void *reply, void *priv);
static void on_announced(redisAsyncContext *ac, void *reply, void *priv);
static void on_beat(struct loop *loop, struct loop_timer *t, void *data);
static void on_check(struct loop *loop, struct loop_timer *t, void *data);
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
	cl->history_ready = false;
	drop_held(cl);
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

/* Our members' names claimed again and our list written anew, then the others
 * are told to read it (S) and we read theirs. */
static void announce(struct cluster *cl)
{
	size_t count = room_count(cl->room), n = 0;
	struct announce *a = xcalloc(1, sizeof *a);
	a->cl = cl;
	a->ids = xcalloc(count + 1, sizeof *a->ids);
	a->folds = xcalloc(count + 1, sizeof *a->folds);
	const char **args = xcalloc(3 + 2 * count + 1, sizeof *args);
	char hash[KEY_MAX];
	key_of(cl, hash, "members", cl->id);
	args[0] = hash;
	args[1] = cl->id;
	args[2] = cl->ttl;
	args[3] = cl->url.prefix;
	for (size_t i = 0; i < count; i++) {
		struct member *m = room_member(cl->room, i);
		if (m->remote)
			continue;
		fold_of(m->nick, strlen(m->nick), a->folds[n]);
		a->ids[n] = m->id;
		args[4 + 2 * n] = a->folds[n];
		args[5 + 2 * n] = m->nick;
		n++;
	}
	a->n = n;
	if (!eval(cl, on_announced, a, announce_lua, 1, 4 + 2 * (int)n, args, NULL)) {
		free(a->ids);
		free(a->folds);
		free(a);
	}
	free(args);
	publish_word(cl, "S");
}

static void on_announced(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct announce *a = priv;
	struct cluster *cl = a->cl;
	const redisReply *r = reply;

	if (!cl->closing && r && r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements && i < a->n; i++)
			if (r->element[i]->type == REDIS_REPLY_INTEGER &&
			    r->element[i]->integer == 0)
				lose_name(cl, a->ids[i], a->folds[i]);
	} else if (!cl->closing && r) {
		log_warn("cluster: announcing the members failed: %s",
		         r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
	}
	free(a->ids);
	free(a->folds);
	free(a);
}

static void beat(struct cluster *cl)
{
	char key[KEY_MAX], hash[KEY_MAX], nodes[KEY_MAX];
	key_of(cl, key, "node", cl->id);
	key_of(cl, hash, "members", cl->id);
	snprintf(nodes, sizeof nodes, "%s:nodes", cl->url.prefix);
	const char *args[] = { key, hash, nodes, cl->id, cl->ttl, cl->name, cl->url.prefix };
	(void)eval(cl, NULL, NULL, beat_lua, 3, 7, args, NULL);
	char h[CLUSTER_NAME_MAX + 3];
	int n = snprintf(h, sizeof h, "H %s", cl->name);
	publish(cl, h, (size_t)n, "", 0, "", 0);
}

static void became_linked(struct cluster *cl)
{
	cl->linked = true;
	cl->ever_linked = true;
	cl->down_logged = false;
	cl->retry_ms = RETRY_FIRST_MS;
	cl->attempts = 0;
	cl->linked_at = now_ms(cl);
	log_info("cluster: linked to redis at %s:%d as node %s", cl->url.host, cl->url.port,
	         cl->id);
	if (!cl->guests_taken)
		(void)redisAsyncCommand(cl->cmd, on_guests, cl, "INCRBY %s:guests %d",
		                        cl->url.prefix, GUEST_RANGE);
	read_history(cl);
	beat(cl);
	announce(cl);
	/* Nodes we knew keep their members: they get a heartbeat's time to come back. */
	for (struct remote_node *n = cl->nodes; n; n = n->next)
		n->last_seen = cl->linked_at;
	(void)redisAsyncCommand(cl->cmd, on_nodes, cl, "SMEMBERS %s:nodes", cl->url.prefix);
	if (!loop_timer_pending(&cl->beat))
		loop_timer_start(cl->loop, &cl->beat, cl->ttl_s * 1000 / 3, on_beat, cl);
}

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
		became_linked(cl);
	else if (strcmp(kind->str, "message") == 0 && payload->type == REDIS_REPLY_STRING)
		on_event(cl, payload->str, payload->len);
}

static void on_nodes(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct cluster *cl = priv;
	const redisReply *r = reply;

	if (!r || cl->closing || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING || !cluster_node_id_valid(e->str, e->len) ||
		    (e->len == strlen(cl->id) && memcmp(e->str, cl->id, e->len) == 0))
			continue;
		(void)node_get(cl, e->str, e->len);
	}
}

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

static void on_beat(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)t;
	struct cluster *cl = data;
	if (cl->linked)
		beat(cl);
	loop_timer_start(loop, &cl->beat, cl->ttl_s * 1000 / 3, on_beat, cl);
}

/* A node silent for a TTL is looked at: alive, or lost and its names freed. */
static void on_check(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)t;
	struct cluster *cl = data;
	uint64_t now = now_ms(cl);

	expire_claims(cl);
	if (cl->linked)
		for (struct remote_node *n = cl->nodes; n; n = n->next)
			if (now - n->last_seen > cl->ttl_s * 1000u)
				look(cl, n);
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
	cl->retry_ms = RETRY_FIRST_MS;
	cl->held_tail = &cl->held;
	snprintf(cl->history_max, sizeof cl->history_max, "%zu", cfg->history ? cfg->history : 1);
	cl->uplink.ops = &uplink_ops;
	cl->inbound.remote = true;
	cl->stranger.ops = &remote_ops;
	cl->stranger.remote = true;
	room_set_uplink(room, &cl->uplink);
	log_info("cluster: node %s, redis at %s:%d (%s), prefix %s, ttl %u s", cl->id, cl->url.host,
	         cl->url.port, cl->addr, cl->url.prefix, cl->ttl_s);
	connect_links(cl);
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
	loop_timer_stop(cl->loop, &cl->retry);
	loop_timer_stop(cl->loop, &cl->connect_timeout);
	loop_timer_stop(cl->loop, &cl->down);
	loop_timer_stop(cl->loop, &cl->beat);
	loop_timer_stop(cl->loop, &cl->check);
	while (cl->nodes) {
		struct remote_node *n = cl->nodes;
		drop_all(cl, n, "shutdown");
		cl->nodes = n->next;
		free(n);
	}
	/* Pending replies run now with NULL (closing: they only free themselves). */
	if (cl->cmd)
		redisAsyncFree(cl->cmd);
	if (cl->sub)
		redisAsyncFree(cl->sub);
	drop_held(cl);
	free(cl->buf);
	free(cl);
}

bool cluster_linked(const struct cluster *cl) { return cl->linked; }
const char *cluster_node_id(const struct cluster *cl) { return cl->id; }
