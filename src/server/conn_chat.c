/* conn_chat.c - a connection as a member of the chat room: what the room
 * delivers to it, entering and leaving, and the member a file connection
 * works for (ROLE files <nick>). The room reaches a connection only through
 * conn_member_ops, and never frees one: a member that can't take a message
 * is marked closed and leaves from the reaper. */
#include "conn.h"
#include "perms.h"
#include "seed.h"
#include "xmalloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* clang-format 14 takes (p) for a cast. */
/* clang-format off */
#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))
/* clang-format on */

static void conn_deliver(struct member *m, struct room_msg *msg)
{
	struct conn *c = container_of(m, struct conn, member);
	if (c->state != CONN_OPEN)
		return;
	if (c->stream)
		return; /* chat never enters a transfer's byte stream (docs/protocol.md) */
	if (c->seed) {
		seed_deliver(c, msg); /* its own sentences: rendered for this member */
		return;
	}
	conn_send_shared(c, room_msg_encoded(msg, c->framer.kind, m->offsets));
}

const struct member_ops conn_member_ops = { .deliver = conn_deliver };

void conn_enter_chat(struct conn *c, bool replay)
{
	if (c->state != CONN_OPEN || room_has(&c->member) || !(c->perms & PERM_CHAT))
		return;
	if (!c->member.nick[0])
		room_reserve(c->env->room, &c->member);
	c->join_pending = false;
	if (c->env->entering)
		c->env->entering(c);
	room_enter(c->env->room, &c->member, replay);
}

void conn_leave_chat(struct conn *c)
{
	c->join_pending = false;
	room_step_out(c->env->room, &c->member, "quit");
}

/* The host part of "host:port" or "[v6]:port". */
static size_t host_len(const char *peer)
{
	const char *colon = strrchr(peer, ':');
	return colon ? (size_t)(colon - peer) : strlen(peer);
}

bool conn_speak_for(struct conn *c, const char *nick, size_t len)
{
	struct member *m = room_find(c->env->room, nick, len);
	if (!m || m->ops != &conn_member_ops)
		return false;
	const struct conn *chat = container_of(m, struct conn, member);
	size_t n = host_len(c->peer);
	if (n != host_len(chat->peer) || memcmp(c->peer, chat->peer, n) != 0)
		return false;
	free(c->credit);
	c->credit = xstrdup(m->nick);
	return true;
}

const char *conn_credit(const struct conn *c)
{
	return c->credit ? c->credit : c->member.nick[0] ? c->member.nick : "someone";
}

bool conn_in_chat(const struct conn *c) { return room_has(&c->member); }

struct conn *conn_of_member(struct member *m)
{
	return m->ops == &conn_member_ops ? container_of(m, struct conn, member) : NULL;
}

void conn_first_command(struct conn *c)
{
	if (c->join_pending)
		conn_enter_chat(c, true);
}
