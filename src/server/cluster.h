/* cluster.h - several bottled nodes share one chat through Redis
 * (docs/cluster.md). The other nodes are one member of the room (the uplink):
 * what happens here is published once; what the others publish comes back in
 * through the room, with a stand-in member for each member of another node.
 * Names are claimed in Redis, each node keeps a heartbeat there, and a node
 * whose heartbeat stops is reported gone ("LEAVE <nick> node lost"). Without
 * Redis the room goes on alone and the node reconnects by itself. */
#ifndef BOTTLE_CLUSTER_H
#define BOTTLE_CLUSTER_H

#include "loop.h"
#include "room.h"

#include <stdbool.h>
#include <stddef.h>

#define CLUSTER_TTL_DEFAULT 5 /* seconds: heartbeat and name claims */
#define CLUSTER_TTL_DEFAULT_TEXT "5"

struct cluster_config {
	const char *url;       /* redis://HOST:PORT[/PREFIX], checked already */
	const char *node_name; /* NULL: host name and the port of listen_fd */
	int listen_fd;         /* for the default name; -1: none */
	unsigned ttl_s;        /* heartbeat and claims live this long unrefreshed */
	size_t history;        /* messages the cluster's history keeps (--history) */
};

struct cluster;

/* Starts connecting (in the loop; nothing blocks but resolving a host name,
 * once, here). Exits with a one-line error on a bad name or an unknown host. */
struct cluster *cluster_new(struct loop *loop, struct room *room, const struct cluster_config *cfg);
/* The other nodes' members leave the room; the Redis links close. Call after
 * the local members have left and before room_free. */
void cluster_free(struct cluster *cl);
/* Both Redis links are up: events cross nodes. */
bool cluster_linked(const struct cluster *cl);
const char *cluster_node_id(const struct cluster *cl);

/* Names across nodes. cluster_claim asks Redis whether the local member m may
 * take nick; `done` is called later, from the Redis reply, with m looked up
 * again by its id (never called if m has left the room meanwhile), and at
 * most CLUSTER_CLAIM_TIMEOUT_MS later. false when not linked: the caller
 * decides alone (the name is claimed when the link is back). */
enum cluster_claim_result { CLUSTER_CLAIMED, CLUSTER_TAKEN, CLUSTER_NO_ANSWER };
#define CLUSTER_CLAIM_TIMEOUT_MS 5000
typedef void cluster_claim_fn(struct member *m, enum cluster_claim_result r, const char *nick,
                              size_t len);
bool cluster_claim(struct cluster *cl, struct member *m, const char *nick, size_t len,
                   cluster_claim_fn *done);
/* A name claimed for nothing (the rename failed here after all): given back
 * unless a member here holds it. */
void cluster_unclaim(struct cluster *cl, const char *nick, size_t len);

#endif
