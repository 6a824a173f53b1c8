/* cluster_peers.c - the other nodes, as this room sees them: each member of
 * another node is a stand-in member here (marked remote) that joins, leaves,
 * renames and speaks through the room's ordinary calls. A node's members are
 * learnt from its events and, when we first hear of it or it says S, from
 * its member hash (LOOK); a node silent for a TTL is looked at, and if its
 * heartbeat key is gone its members leave ("node lost"). A stand-in whose
 * name a local member holds is kept out of the room (hidden) until one of
 * the two is renamed. Replies about a node find it again by its id. */
#include "cluster_priv.h"
#include "log.h"
#include "xmalloc.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What a reply about a node needs: the node is looked up again by id. */
struct node_ask {
	struct cluster *cl;
	char id[CLUSTER_NODE_ID_MAX + 1];
	unsigned changes;
};

static void remote_deliver(struct member *m, struct room_msg *msg);
static const struct member_ops remote_ops = { .deliver = remote_deliver };

/* ---- nodes ---- */

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
	n->last_seen = cluster_now(cl);
	n->next = cl->nodes;
	cl->nodes = n;
	log_info("cluster: node %s joined the cluster", n->id);
	look(cl, n); /* who is there already */
	return n;
}

/* ---- stand-ins ---- */

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
	nick_fold(nick, len, fold);
	for (struct remote_member *p = n->members; p; p = p->next) {
		if (room_has(&p->m))
			continue;
		nick_fold(p->nick, strlen(p->nick), other);
		if (strcmp(fold, other) == 0)
			return p;
	}
	return NULL;
}

/* A local member holding a stand-in's name: its claim settles who keeps it. */
static void check_holder(struct cluster *cl, struct member *holder)
{
	if (!holder->remote)
		(void)cluster_names_claim(cl, holder, holder->nick, strlen(holder->nick), NULL);
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
		cl->hidden++; /* counted exactly by cluster_peers_retry_hidden */
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
void cluster_peers_retry_hidden(struct cluster *cl)
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
	cluster_peers_retry_hidden(cl);
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
	cluster_link_publish(p->node->cl, head, (size_t)n, msg->body, msg->blen, "", 0);
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
	cluster_key(cl, beat, "node", n->id);
	cluster_key(cl, hash, "members", n->id);
	snprintf(nodes, sizeof nodes, "%s:nodes", cl->url.prefix);
	const char *args[] = { beat, hash, nodes, n->id, cl->url.prefix };
	if (cluster_link_eval(cl, on_look, a, look_lua, 3, 5, args, NULL))
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
	cluster_peers_retry_hidden(cl);
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
		n->last_seen = cluster_now(cl);
		if (n->changes != a->changes)
			look(cl, n); /* it changed while we read: read again */
		else
			apply_members(cl, n, r);
	}
	free(a);
}

/* A node silent for a TTL is looked at: alive, or lost and its names freed. */
void cluster_peers_look_silent(struct cluster *cl, uint64_t now)
{
	for (struct remote_node *n = cl->nodes; n; n = n->next)
		if (now - n->last_seen > cl->ttl_s * 1000u)
			look(cl, n);
}

/* ---- linking: the node set read again ---- */

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

/* Linked (again): nodes we knew keep their members, they get a heartbeat's
 * time to come back; the node set says who else is there. */
void cluster_peers_relinked(struct cluster *cl)
{
	for (struct remote_node *n = cl->nodes; n; n = n->next)
		n->last_seen = cl->linked_at;
	(void)redisAsyncCommand(cl->cmd, on_nodes, cl, "SMEMBERS %s:nodes", cl->url.prefix);
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
		cluster_peers_retry_hidden(cl);
		break;
	}
	case CLUSTER_NICK:
		n->changes++;
		if (!p)
			(void)proxy_new(cl, n, ev->to.p, ev->to.len);
		else
			proxy_rename(cl, p, ev->to.p, ev->to.len);
		cluster_peers_retry_hidden(cl);
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

/* An event of another node (not M, not our own). */
void cluster_peers_event(struct cluster *cl, const struct cluster_event *ev)
{
	struct remote_node *n = node_get(cl, ev->node.p, ev->node.len);
	n->last_seen = cluster_now(cl);
	switch (ev->type) {
	case CLUSTER_EV_HEARTBEAT:
		memcpy(n->name, ev->text.p, ev->text.len);
		n->name[ev->text.len] = '\0';
		break;
	case CLUSTER_EV_SYNC: look(cl, n); break;
	case CLUSTER_EV_PRIVATE: on_private(cl, n, ev); break;
	case CLUSTER_EV_ROOM: on_room_event(cl, n, ev); break;
	case CLUSTER_EV_POST: break; /* cluster_history.c */
	}
}

/* Another node's numbered message: it lives, and its author is a member
 * there even if we missed the JOIN. */
void cluster_peers_heard_post(struct cluster *cl, const struct cluster_event *ev)
{
	struct remote_node *n = node_get(cl, ev->node.p, ev->node.len);
	n->last_seen = cluster_now(cl);
	if (!proxy_find(cl, n, ev->nick.p, ev->nick.len))
		(void)proxy_new(cl, n, ev->nick.p, ev->nick.len); /* its JOIN was missed */
}

/* ---- life ---- */

void cluster_peers_init(struct cluster *cl)
{
	cl->inbound.remote = true;
	cl->stranger.ops = &remote_ops;
	cl->stranger.remote = true;
}

/* At the end: every stand-in leaves the room. */
void cluster_peers_free(struct cluster *cl)
{
	while (cl->nodes) {
		struct remote_node *n = cl->nodes;
		drop_all(cl, n, "shutdown");
		cl->nodes = n->next;
		free(n);
	}
}
