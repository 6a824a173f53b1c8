/* cluster_event.h - what one node tells the others, as the text of one Redis
 * PUBLISH (docs/cluster.md, "Events"). Every event starts with the sender's
 * node id, so a node knows its own and the others know who to blame:
 *   "<node> E <event>"            a room event as members see it: JOIN, LEAVE,
 *                                 NICK, FILE (MSG and ACTION decode too, but
 *                                 nodes send messages as M and ignore these)
 *   "<node> M <epoch> <offset> <ms> <author> <MSG|ACTION> <nick> <text>"
 *                                 a room message numbered by Redis (its
 *                                 offset in the history of that epoch), said at
 *                                 <ms> (Unix time) by the member whose id on
 *                                 <node> is <author>; published by the POST
 *                                 script, so the sender gets its own too
 *   "<node> P <to> <from> <text>" a private message for <to>, wherever it is
 *   "<node> H <name>"             heartbeat: the node lives (every TTL/3)
 *   "<node> S"                    the node (re)wrote its member list: re-read it
 * Pure: the decoder takes whatever Redis hands over, from anyone who can
 * publish there, and refuses what a node could not have sent. */
#ifndef BOTTLE_CLUSTER_EVENT_H
#define BOTTLE_CLUSTER_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A node id: its name, '~', 16 hex digits of a random run id. */
#define CLUSTER_NAME_MAX 64
#define CLUSTER_NODE_ID_MAX (CLUSTER_NAME_MAX + 17)
#define CLUSTER_REASON_MAX 64 /* a LEAVE's reason */

enum cluster_event_type {
	CLUSTER_EV_ROOM,      /* E */
	CLUSTER_EV_PRIVATE,   /* P */
	CLUSTER_EV_HEARTBEAT, /* H */
	CLUSTER_EV_SYNC,      /* S */
	CLUSTER_EV_POST,      /* M */
};

enum cluster_verb {
	CLUSTER_MSG,
	CLUSTER_ACTION,
	CLUSTER_JOIN,
	CLUSTER_LEAVE,
	CLUSTER_NICK,
	CLUSTER_FILE
};

struct cluster_span {
	const char *p; /* into the decoded payload, not NUL-terminated */
	size_t len;
};

struct cluster_event {
	enum cluster_event_type type;
	struct cluster_span node; /* the sender's node id */
	enum cluster_verb verb;   /* CLUSTER_EV_ROOM */
	/* ROOM: whose event (FILE: who is credited); PRIVATE: the sender */
	struct cluster_span nick;
	/* NICK: the new name; PRIVATE: the addressee; POST: the epoch */
	struct cluster_span to;
	/* POST: the message's offset, when it was said, its author's member id */
	uint64_t offset, when_ms, author;
	/* MSG, ACTION, PRIVATE: the text; LEAVE: the reason; FILE: the whole event
	 * ("FILE ..."); HEARTBEAT: the node's name */
	struct cluster_span text;
};

/* 0 and *ev filled, or -1 when the payload is not an event a node sends. */
int cluster_event_decode(const char *data, size_t len, struct cluster_event *ev);

/* Valid node names (--node-name) and ids. */
bool cluster_name_valid(const char *s, size_t len);
bool cluster_node_id_valid(const char *s, size_t len);

#endif
