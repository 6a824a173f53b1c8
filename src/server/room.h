/* room.h - the chat room: members, nicknames, and broadcast.
 * The room never touches sockets. It talks to a member only through the
 * member's ops, so a local connection, a bot, or (later) a member on another
 * node behind a pub/sub bridge are all just members. */
#ifndef BOTTLE_ROOM_H
#define BOTTLE_ROOM_H

#include "buf.h"
#include "framing.h"
#include "nick.h"

#include <stdbool.h>
#include <stddef.h>

/* One message to many members, encoded at most once per framing and shared. */
struct room_msg {
	const char *head; /* "MSG Guest1 ", "JOIN Guest1", ... */
	size_t hlen;
	const char *body; /* the user's text, may hold newlines */
	size_t blen;
	struct blob *encoded[FRAMING_COUNT];
};
struct blob *room_msg_encoded(struct room_msg *msg, enum framing_kind kind);

struct member;
struct member_ops {
	/* Queue msg for this member. Must not call back into the room: a member that
	 * can't take it marks itself for removal and leaves later. */
	void (*deliver)(struct member *m, struct room_msg *msg);
};

struct member {
	const struct member_ops *ops;
	char nick[NICK_MAX_BYTES + 1];
	size_t slot; /* private: index + 1 in the room, 0 when outside */
};

struct room;

struct room *room_new(void);
void room_free(struct room *room); /* members must have left */

/* Membership. join gives the member a fresh GuestN name and tells the others. */
void room_join(struct room *room, struct member *m);
void room_leave(struct room *room, struct member *m, const char *reason);
static inline bool room_has(const struct member *m) { return m->slot != 0; }
size_t room_count(const struct room *room);
struct member *room_member(const struct room *room, size_t i); /* 0 <= i < count */

/* Chat. Results are nick_status values, plus ROOM_NICK_TAKEN. */
#define ROOM_NICK_TAKEN (-1)
int room_rename(struct room *room, struct member *m, const char *nick, size_t len);
void room_say(struct room *room, struct member *from, const char *text, size_t len);
/* Sends head+body to every member but `except` (may be NULL). */
void room_broadcast(struct room *room, struct member *except, const char *head, size_t hlen,
                    const char *body, size_t blen);

#endif
