/* room.c - members in an array (O(1) join and leave), nicknames in a hash
 * table keyed by their case-folded form, one encoding per framing per message. */
#include "room.h"
#include "escape.h"
#include "log.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nick_entry {
	struct nick_entry *next;
	struct member *member;
	char key[NICK_MAX_BYTES + 1];
};

struct room {
	struct member **members;
	size_t count, cap;
	struct nick_entry **buckets; /* folded nick -> member */
	size_t nbuckets;
	unsigned long next_guest;
};

struct blob *room_msg_encoded(struct room_msg *msg, enum framing_kind kind)
{
	if (!msg->encoded[kind])
		msg->encoded[kind] =
			framing_encode(kind, msg->head, msg->hlen, msg->body, msg->blen);
	return msg->encoded[kind];
}

static void room_msg_release(struct room_msg *msg)
{
	for (int k = 0; k < FRAMING_COUNT; k++)
		blob_unref(msg->encoded[k]);
}

struct room *room_new(void)
{
	struct room *room = xcalloc(1, sizeof *room);
	room->nbuckets = 1024;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of chain heads (pointers) */
	room->buckets = xcalloc(room->nbuckets, sizeof *room->buckets);
	room->next_guest = 1;
	return room;
}

void room_free(struct room *room)
{
	if (!room)
		return;
	for (size_t i = 0; i < room->nbuckets; i++)
		for (struct nick_entry *e = room->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(room->buckets);
	free(room->members);
	free(room);
}

size_t room_count(const struct room *room) { return room->count; }
struct member *room_member(const struct room *room, size_t i) { return room->members[i]; }

/* ---- nickname table ---- */

static size_t key_hash(const char *key)
{
	size_t h = 5381; /* djb2: short keys, not attacker-sized */
	for (; *key; key++)
		h = h * 33 + (unsigned char)*key;
	return h;
}

static struct nick_entry **nick_slot(struct room *room, const char *key)
{
	struct nick_entry **p = &room->buckets[key_hash(key) % room->nbuckets];
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

static void nick_table_grow(struct room *room)
{
	size_t n = room->nbuckets * 2;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of chain heads (pointers) */
	struct nick_entry **b = xcalloc(n, sizeof *b);
	for (size_t i = 0; i < room->nbuckets; i++)
		for (struct nick_entry *e = room->buckets[i], *next; e; e = next) {
			next = e->next;
			size_t h = key_hash(e->key) % n;
			e->next = b[h];
			b[h] = e;
		}
	free(room->buckets);
	room->buckets = b;
	room->nbuckets = n;
}

static bool nick_taken(struct room *room, const char *nick, size_t len, struct member *self)
{
	char key[NICK_MAX_BYTES + 1];
	nick_fold(nick, len, key);
	struct nick_entry *e = *nick_slot(room, key);
	return e && e->member != self;
}

static void nick_claim(struct room *room, struct member *m, const char *nick, size_t len)
{
	struct nick_entry *e = xcalloc(1, sizeof *e);
	nick_fold(nick, len, e->key);
	e->member = m;
	*nick_slot(room, e->key) = e; /* the end of its chain: the key is new */
	memcpy(m->nick, nick, len);
	m->nick[len] = '\0';
	if (room->count > room->nbuckets)
		nick_table_grow(room);
}

static void nick_release(struct room *room, struct member *m)
{
	char key[NICK_MAX_BYTES + 1];
	nick_fold(m->nick, strlen(m->nick), key);
	struct nick_entry **slot = nick_slot(room, key);
	if (*slot && (*slot)->member == m) {
		struct nick_entry *e = *slot;
		*slot = e->next;
		free(e);
	}
}

/* ---- membership ---- */

void room_broadcast(struct room *room, struct member *except, const char *head, size_t hlen,
                    const char *body, size_t blen)
{
	struct room_msg msg = { .head = head, .hlen = hlen, .body = body, .blen = blen };
	for (size_t i = 0; i < room->count; i++) {
		struct member *m = room->members[i];
		if (m != except)
			m->ops->deliver(m, &msg);
	}
	room_msg_release(&msg);
}

static void broadcast_event(struct room *room, struct member *except, const char *fmt,
                            const char *a, const char *b)
{
	char head[2 * NICK_MAX_BYTES + 64];
	int n = snprintf(head, sizeof head, fmt, a, b);
	room_broadcast(room, except, head, (size_t)n, "", 0);
}

void room_join(struct room *room, struct member *m)
{
	char guest[32];
	int n;

	do {
		n = snprintf(guest, sizeof guest, "Guest%lu", room->next_guest++);
	} while (nick_taken(room, guest, (size_t)n, NULL));
	nick_claim(room, m, guest, (size_t)n);
	if (room->count == room->cap) {
		room->cap = room->cap ? room->cap * 2 : 64;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of member pointers */
		room->members = xrealloc(room->members, room->cap * sizeof *room->members);
	}
	room->members[room->count++] = m;
	m->slot = room->count;
	broadcast_event(room, m, "JOIN %s%s", m->nick, "");
	log_info("%s joined (%zu in the room)", m->nick, room->count);
}

void room_leave(struct room *room, struct member *m, const char *reason)
{
	if (!m->slot)
		return;
	size_t i = m->slot - 1;
	room->members[i] = room->members[--room->count];
	room->members[i]->slot = i + 1;
	m->slot = 0;
	nick_release(room, m);
	broadcast_event(room, NULL, "LEAVE %s %s", m->nick, reason);
	log_info("%s left: %s (%zu in the room)", m->nick, reason, room->count);
}

int room_rename(struct room *room, struct member *m, const char *nick, size_t len)
{
	enum nick_status st = nick_check(nick, len);
	if (st != NICK_OK)
		return (int)st;
	if (nick_taken(room, nick, len, m))
		return ROOM_NICK_TAKEN;
	char old[NICK_MAX_BYTES + 1];
	memcpy(old, m->nick, sizeof old);
	nick_release(room, m);
	nick_claim(room, m, nick, len);
	if (strcmp(old, m->nick) != 0) {
		broadcast_event(room, m, "NICK %s %s", old, m->nick);
		log_info("%s is now known as %s", old, m->nick);
	}
	return NICK_OK;
}

void room_say(struct room *room, struct member *from, const char *text, size_t len)
{
	char head[NICK_MAX_BYTES + 8];
	char shown[1024];
	int n = snprintf(head, sizeof head, "MSG %s ", from->nick);
	room_broadcast(room, from, head, (size_t)n, text, len);
	log_info("%s: %s", from->nick, escape_text(shown, sizeof shown, text, len));
}
