/* room.h - the chat room: members, nicknames, and broadcast.
 * The room never touches sockets. It talks to a member only through the
 * member's ops, so a local connection, a bot, or (later) a member on another
 * node behind a pub/sub bridge are all just members. */
#ifndef BOTTLE_ROOM_H
#define BOTTLE_ROOM_H

#include "buf.h"
#include "framing.h"
#include "history.h"
#include "nick.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message to many members, encoded at most once per framing (and form)
 * and shared. */
struct room_msg {
	const char *head; /* "MSG Guest1 ", "JOIN Guest1", ... */
	size_t hlen;
	const char *body; /* the user's text, may hold newlines */
	size_t blen;
	uint64_t offset;               /* a room message's place in history; 0 for others */
	struct history_entry *history; /* a replayed one: its encodings are the entry's */
	struct member *about;          /* whose event (author, newcomer...); NULL: nobody's */
	struct blob *encoded[FRAMING_COUNT][2];
};
/* The bytes for a member of this framing; `offsets`: the member asked for
 * room messages as "@<offset> MSG ..." (OFFSETS on). */
struct blob *room_msg_encoded(struct room_msg *msg, enum framing_kind kind, bool offsets);

struct member;
struct member_ops {
	/* Queue msg for this member. Must not call back into the room: a member that
	 * can't take it marks itself for removal and leaves later. */
	void (*deliver)(struct member *m, struct room_msg *msg);
	/* The uplink's only (may be NULL): a local member's room message, before
	 * the room numbers it. ROOM_POST_TAKEN: the cluster numbers it and it
	 * comes back through room_post_at; ROOM_POST_LOCAL: delivered here only,
	 * neither numbered nor kept (Redis is away); ROOM_POST_HERE: as alone. */
	int (*post)(struct member *uplink, struct member *from, const char *word, const char *text,
	            size_t len);
};
enum { ROOM_POST_HERE, ROOM_POST_TAKEN, ROOM_POST_LOCAL };

struct member {
	const struct member_ops *ops;
	char nick[NICK_MAX_BYTES + 1];
	bool offsets; /* room messages come as "@<offset> MSG ..." */
	bool remote;  /* stands for a member of another node (cluster_peers.c) */
	uint64_t id;  /* unique in this run, from the first reserve: replies that
	               * come later (the cluster's) find their member by it */
	size_t slot;  /* private: index + 1 in the room, 0 when outside */
};

struct room;

struct room *room_new(void);
void room_free(struct room *room); /* members must have left */

/* Membership comes in two steps: reserve gives m a fresh GuestN name (held,
 * so nobody else takes it, but m is not in the room yet), enter puts it in the
 * room and tells the others. join does both. leave takes m out (telling the
 * others if it had entered) and gives its name back; it does nothing the
 * second time. A reserved name is unique like a member's, and not in WHO. */
void room_reserve(struct room *room, struct member *m);
/* replay: give m the kept history first, as any newcomer gets it. */
void room_enter(struct room *room, struct member *m, bool replay);
void room_join(struct room *room, struct member *m);
void room_leave(struct room *room, struct member *m, const char *reason);
/* Leaves the room (telling the others) but keeps the name reserved. */
void room_step_out(struct room *room, struct member *m, const char *reason);
/* The member in the room called nick (ignoring case), or NULL. */
struct member *room_find(struct room *room, const char *nick, size_t nlen);
/* Whoever holds nick, in the room or only reserving it, or NULL. */
struct member *room_holder(struct room *room, const char *nick, size_t nlen);
/* Gives m a fresh GuestN name; if m is in the room, everyone (m too) gets
 * "NICK <old> <new>". For a guest whose name an account takes (auth.c). */
void room_rename_guest(struct room *room, struct member *m);
static inline bool room_has(const struct member *m) { return m->slot != 0; }

/* Presence at scale. While the room holds at most `max` members, each JOIN and
 * LEAVE is told as it happens; above that they are only counted, and
 * room_presence_flush (the server calls it once a second) tells everyone one
 * "PRESENCE <members> +<joined> -<left>" instead. Default ROOM_ANNOUNCE_MAX. */
#define ROOM_ANNOUNCE_MAX 100
void room_set_announce_max(struct room *room, size_t max);
void room_presence_flush(struct room *room);
size_t room_count(const struct room *room);
struct member *room_member(const struct room *room, size_t i); /* 0 <= i < count */

/* Chat. Results are nick_status values, plus ROOM_NICK_TAKEN. */
#define ROOM_NICK_TAKEN (-1)
int room_rename(struct room *room, struct member *m, const char *nick, size_t len);
/* Room messages, numbered and kept in history: SAY (MSG) and ME (ACTION). */
void room_say(struct room *room, struct member *from, const char *text, size_t len);
void room_action(struct room *room, struct member *from, const char *text, size_t len);
/* A private message (PRIVATE <from> <text>) to the member called nick;
 * false when nobody in the room is. Not kept. */
bool room_tell(struct room *room, struct member *from, const char *nick, size_t nlen,
               const char *text, size_t len);

/* History (history.h). The epoch names this run of the server: offsets from
 * another epoch mean nothing here. */
#define ROOM_HISTORY_COUNT 100
#define ROOM_HISTORY_BYTES (256 * 1024)
void room_set_history(struct room *room, size_t max_count, size_t max_bytes);
const char *room_epoch(const struct room *room);
uint64_t room_last_offset(const struct room *room);
/* Gives m the last n kept messages (all if n is larger). */
void room_replay_last(struct room *room, struct member *m, size_t n);
/* Gives m what came after offset `after` of epoch `epoch`; false when some of
 * it is gone or the epoch is another run's (then m gets all that is kept). */
bool room_replay_since(struct room *room, struct member *m, const char *epoch, uint64_t after);
/* Sends head+body to every member but `except` (may be NULL), and to the
 * uplink unless `except` is remote (an event that came from another node). */
void room_broadcast(struct room *room, struct member *except, const char *head, size_t hlen,
                    const char *body, size_t blen);

/* Cluster (cluster_uplink.c): the other nodes, seen as one member. The uplink is
 * told once of every event about a local member (MSG, ACTION, JOIN and LEAVE
 * whatever the room's size, NICK, FILE news) and never of one about a remote
 * member: that came from the other nodes. PRESENCE stays local. NULL: none. */
void room_set_uplink(struct room *room, struct member *uplink);
/* A message the cluster numbered (offset > room_last_offset, or it is
 * dropped as a duplicate): kept and sent to every member but the local one
 * whose id is except_id (its author; 0: none), never to the uplink. */
void room_post_at(struct room *room, uint64_t except_id, const char *word, const char *nick,
                  const char *text, size_t len, uint64_t offset, const struct timespec *when);
/* The same, only kept (history a node missed, read back from Redis). */
void room_keep_at(struct room *room, uint64_t offset, const char *word, const char *nick,
                  const char *text, size_t len, const struct timespec *when);
/* The cluster's epoch (16 hex digits): a different one forgets the history. */
void room_set_epoch(struct room *room, const char *epoch);
/* The next GuestN is at least n (the cluster gives each node its own range). */
void room_set_next_guest(struct room *room, unsigned long n);

#endif
