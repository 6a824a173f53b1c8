/* cluster_priv.h - what the cluster's files share, for them only (server.c
 * sees cluster.h). One struct cluster, its fields grouped by the file that
 * owns them, and each file's calls into the others:
 *   cluster.c          the node's life, what linking sets going, the event
 *                      dispatch, the heartbeat and the periodic check
 *   cluster_link.c     the two Redis links, reconnecting, EVAL and PUBLISH
 *   cluster_names.c    name claims, giving names back, the clash rule
 *   cluster_peers.c    the other nodes: stand-ins, LOOK, node lost
 *   cluster_uplink.c   the room's member for the other nodes
 *   cluster_history.c  messages numbered by Redis, in order; the read-back
 *
 * Lifecycle, for every file: hiredis frees a context itself (after a failed
 * connect, a disconnect, or redisAsyncFree); redis_loop tells us just before,
 * and we only clear our pointer there (cluster_link.c). Tearing a link down
 * or reconnecting is done from timers, never inside a hiredis callback. No
 * reply callback holds a pointer to a member or a node: it holds an id and
 * looks it up, and does nothing but free itself when the reply is NULL (its
 * context went) or the node is closing. */
#ifndef BOTTLE_CLUSTER_PRIV_H
#define BOTTLE_CLUSTER_PRIV_H

#include "cluster.h"
#include "cluster_event.h"
#include "cluster_url.h"
#include "loop.h"
#include "nick.h"
#include "room.h"

#include <hiredis/async.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* clang-format 14 takes (p) for a cast. */
/* clang-format off */
#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))
/* clang-format on */

#define KEY_MAX (64 + 32 + NICK_MAX_BYTES + CLUSTER_NODE_ID_MAX)

struct claim;
struct remote_node;
struct held_post;

struct cluster {
	/* cluster.c: who we are */
	struct loop *loop;
	struct room *room;
	struct cluster_url url;
	char addr[INET6_ADDRSTRLEN];
	char id[CLUSTER_NODE_ID_MAX + 1];
	char name[CLUSTER_NAME_MAX + 1];
	char ttl[12]; /* as text, for the scripts */
	unsigned ttl_s;
	char channel[96];
	bool guests_taken, closing;
	unsigned long bad_events;
	struct loop_timer beat, check;
	/* cluster_link.c */
	redisAsyncContext *cmd, *sub; /* NULL once hiredis has let go of them */
	bool cmd_up, sub_up;          /* connected */
	bool linked;                  /* both up and subscribed: events cross */
	bool ever_linked, down_logged;
	unsigned retry_ms, attempts; /* attempts: since the link was last up */
	char why[160];               /* the last link error */
	uint64_t linked_at;
	struct loop_timer retry, connect_timeout, down;
	char *buf; /* an event being published */
	size_t bufcap;
	/* cluster_uplink.c */
	struct member uplink; /* the other nodes, for the room */
	/* cluster_peers.c */
	struct member inbound;  /* remote: the `except` of FILE news from elsewhere */
	struct member stranger; /* the sender of a private message we have no stand-in for */
	struct remote_node *nodes;
	size_t hidden; /* stand-ins kept out of the room by a name held here (0: none) */
	/* cluster_names.c */
	struct claim *claims;
	/* cluster_history.c */
	char history_max[24];                /* messages kept in the stream (and the ring) */
	bool history_ready;                  /* read back since the link came up */
	bool replaying;                      /* on_init hands the held messages on */
	struct held_post *held, **held_tail; /* numbered messages meanwhile */
};

static inline uint64_t cluster_now(const struct cluster *cl) { return loop_now(cl->loop); }

static inline bool cluster_span_is(struct cluster_span s, const char *str)
{
	return s.len == strlen(str) && memcmp(s.p, str, s.len) == 0;
}

/* "<prefix>:<what>:<id>" */
static inline void cluster_key(const struct cluster *cl, char out[KEY_MAX], const char *what,
                               const char *id)
{
	snprintf(out, KEY_MAX, "%s:%s:%s", cl->url.prefix, what, id);
}

/* cluster.c: what the links report */
void cluster_on_linked(struct cluster *cl);
void cluster_on_unlinked(struct cluster *cl);
void cluster_on_event(struct cluster *cl, const char *data, size_t len);

/* cluster_link.c: the links to Redis */
void cluster_link_start(struct cluster *cl);
void cluster_link_close(struct cluster *cl);
bool cluster_link_eval(struct cluster *cl, redisCallbackFn *fn, void *priv, const char *script,
                       int nkeys, int nargs, const char **args, const size_t *lens);
void cluster_link_publish(struct cluster *cl, const char *a, size_t alen, const char *b,
                          size_t blen, const char *c, size_t clen);

/* cluster_names.c: names across nodes */
bool cluster_names_claim(struct cluster *cl, const struct member *m, const char *nick, size_t len,
                         cluster_claim_fn *done);
void cluster_names_release(struct cluster *cl, const char *nick, size_t len);
void cluster_names_leaving(struct cluster *cl, const struct member *who);
void cluster_names_announce(struct cluster *cl);
void cluster_names_expire(struct cluster *cl);

/* cluster_peers.c: the other nodes and their members */
void cluster_peers_init(struct cluster *cl);
void cluster_peers_free(struct cluster *cl);
void cluster_peers_event(struct cluster *cl, const struct cluster_event *ev);
void cluster_peers_heard_post(struct cluster *cl, const struct cluster_event *ev);
void cluster_peers_relinked(struct cluster *cl);
void cluster_peers_look_silent(struct cluster *cl, uint64_t now);
void cluster_peers_retry_hidden(struct cluster *cl);

/* cluster_uplink.c: the room's member for the other nodes */
void cluster_uplink_init(struct cluster *cl);

/* cluster_history.c: the cluster's numbered messages */
void cluster_history_init(struct cluster *cl, size_t history);
int cluster_history_post(struct cluster *cl, const struct member *from, const char *word,
                         const char *text, size_t len);
void cluster_history_event(struct cluster *cl, const struct cluster_event *ev, const char *data,
                           size_t len);
void cluster_history_read(struct cluster *cl);
void cluster_history_forget(struct cluster *cl);

#endif
