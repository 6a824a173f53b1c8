/* room.c - members in an array (O(1) join and leave), nicknames in a hash
 * table keyed by their case-folded form, one encoding per framing per message. */
#include "room.h"
#include "escape.h"
#include "log.h"
#include "sha256.h"
#include "wire.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

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
	size_t announce_max;              /* JOIN/LEAVE one by one up to this size */
	size_t quiet_joins, quiet_leaves; /* counted above it, for PRESENCE */
	struct history *history;
	char epoch[17];        /* 16 hex digits, new each run */
	struct member *uplink; /* the other nodes (cluster_uplink.c), or NULL */
	uint64_t last_id;      /* members' ids */
};

struct blob *room_msg_encoded(struct room_msg *msg, enum framing_kind kind, bool offsets)
{
	if (msg->history)
		return history_encoded(msg->history, kind);
	int form = offsets && msg->offset;
	if (!msg->encoded[kind][form]) {
		char tagged[WIRE_EVENT_HEAD_MAX + 32];
		const char *head = msg->head;
		size_t hlen = msg->hlen;
		if (form) {
			int n = snprintf(tagged, sizeof tagged, "@%llu ",
			                 (unsigned long long)msg->offset);
			memcpy(tagged + n, msg->head, msg->hlen);
			head = tagged;
			hlen += (size_t)n;
		}
		msg->encoded[kind][form] = framing_encode(kind, head, hlen, msg->body, msg->blen);
	}
	return msg->encoded[kind][form];
}

static void room_msg_release(struct room_msg *msg)
{
	for (int k = 0; k < FRAMING_COUNT; k++)
		for (int form = 0; form < 2; form++)
			blob_unref(msg->encoded[k][form]);
}

/* Names this run: a client holding offsets of an earlier run must not take
 * them for ours. getrandom, else the clock and the pid. */
static void make_epoch(char out[17])
{
	unsigned char r[8];
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t v = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^
		             ((uint64_t)getpid() << 48);
		memcpy(r, &v, sizeof r);
	}
	hex_encode(r, sizeof r, out);
}

struct room *room_new(void)
{
	struct room *room = xcalloc(1, sizeof *room);
	room->nbuckets = 1024;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of chain heads (pointers) */
	room->buckets = xcalloc(room->nbuckets, sizeof *room->buckets);
	room->next_guest = 1;
	room->announce_max = ROOM_ANNOUNCE_MAX;
	room->history = history_new(ROOM_HISTORY_COUNT, ROOM_HISTORY_BYTES);
	make_epoch(room->epoch);
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
	history_free(room->history);
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

/* To the local members only. */
static void fan_out(struct room *room, struct member *except, const char *head, size_t hlen,
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

/* The other nodes hear of what happens here, once; not of what they said. */
static void tell_uplink(struct room *room, struct member *about, const char *head, size_t hlen,
                        const char *body, size_t blen)
{
	if (!room->uplink || (about && about->remote))
		return;
	struct room_msg msg = {
		.head = head, .hlen = hlen, .body = body, .blen = blen, .about = about
	};
	room->uplink->ops->deliver(room->uplink, &msg);
	room_msg_release(&msg);
}

void room_broadcast(struct room *room, struct member *except, const char *head, size_t hlen,
                    const char *body, size_t blen)
{
	fan_out(room, except, head, hlen, body, blen);
	tell_uplink(room, except, head, hlen, body, blen);
}

void room_set_uplink(struct room *room, struct member *uplink) { room->uplink = uplink; }

void room_set_next_guest(struct room *room, unsigned long n)
{
	if (n > room->next_guest)
		room->next_guest = n;
}

/* A presence event: to the room (but `except`), and to the uplink as `about`'s. */
static void presence_event(struct room *room, struct member *except, struct member *about,
                           bool local, const char *fmt, const char *a, const char *b)
{
	char head[2 * NICK_MAX_BYTES + 64];
	int n = snprintf(head, sizeof head, fmt, a, b);
	if (local)
		fan_out(room, except, head, (size_t)n, "", 0);
	tell_uplink(room, about, head, (size_t)n, "", 0);
}

void room_reserve(struct room *room, struct member *m)
{
	char guest[32];
	int n;

	do {
		n = snprintf(guest, sizeof guest, "Guest%lu", room->next_guest++);
	} while (nick_taken(room, guest, (size_t)n, NULL));
	nick_claim(room, m, guest, (size_t)n);
	if (!m->id)
		m->id = ++room->last_id;
}

void room_enter(struct room *room, struct member *m, bool replay)
{
	if (m->slot)
		return;
	if (room->count == room->cap) {
		room->cap = room->cap ? room->cap * 2 : 64;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of member pointers */
		room->members = xrealloc(room->members, room->cap * sizeof *room->members);
	}
	room->members[room->count++] = m;
	m->slot = room->count;
	bool told = room->count <= room->announce_max;
	if (!told)
		room->quiet_joins++;
	presence_event(room, m, m, told, "JOIN %s%s", m->nick, "");
	log_info("%s joined (%zu in the room)", m->nick, room->count);
	if (replay)
		room_replay_last(room, m, SIZE_MAX);
}

void room_join(struct room *room, struct member *m)
{
	room_reserve(room, m);
	room_enter(room, m, true);
}

void room_step_out(struct room *room, struct member *m, const char *reason)
{
	if (m->slot) {
		size_t i = m->slot - 1, before = room->count;
		room->members[i] = room->members[--room->count];
		room->members[i]->slot = i + 1;
		m->slot = 0;
		bool told = before <= room->announce_max;
		if (!told)
			room->quiet_leaves++;
		presence_event(room, NULL, m, told, "LEAVE %s %s", m->nick, reason);
		log_info("%s left: %s (%zu in the room)", m->nick, reason, room->count);
	}
}

void room_leave(struct room *room, struct member *m, const char *reason)
{
	if (!m->nick[0])
		return; /* never reserved, or gone already */
	room_step_out(room, m, reason);
	nick_release(room, m);
	m->nick[0] = '\0';
}

void room_set_announce_max(struct room *room, size_t max) { room->announce_max = max; }

void room_presence_flush(struct room *room)
{
	if (!room->quiet_joins && !room->quiet_leaves)
		return;
	char head[96];
	int n = snprintf(head, sizeof head, "PRESENCE %zu +%zu -%zu", room->count,
	                 room->quiet_joins, room->quiet_leaves);
	room->quiet_joins = room->quiet_leaves = 0;
	fan_out(room, NULL, head, (size_t)n, "", 0); /* each node counts its own */
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
	if (m->slot && strcmp(old, m->nick) != 0) { /* a reserved name changes unseen */
		presence_event(room, m, m, true, "NICK %s %s", old, m->nick);
		log_info("%s is now known as %s", old, m->nick);
	}
	return NICK_OK;
}

/* A room message: numbered, kept, and sent to everyone but its author. */
static void room_post(struct room *room, struct member *from, const char *word, const char *text,
                      size_t len)
{
	char head[WIRE_EVENT_HEAD_MAX];
	struct timespec now;
	int how = ROOM_POST_HERE;

	if (room->uplink && !from->remote && room->uplink->ops->post)
		how = room->uplink->ops->post(room->uplink, from, word, text, len);
	if (how == ROOM_POST_TAKEN)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	/* "MSG <nick> ": the only printf of a chat message's hot path is this one. */
	int n = snprintf(head, sizeof head, "%s %s ", word, from->nick);
	struct room_msg msg = {
		.head = head,
		.hlen = (size_t)n,
		.body = text,
		.blen = len,
		.offset = how == ROOM_POST_LOCAL
		                  ? 0
		                  : history_add(room->history, word, from->nick, text, len, &now),
		.about = from,
	};
	for (size_t i = 0; i < room->count; i++) {
		struct member *m = room->members[i];
		if (m != from)
			m->ops->deliver(m, &msg);
	}
	if (room->uplink && !from->remote && how == ROOM_POST_HERE)
		room->uplink->ops->deliver(room->uplink, &msg);
	room_msg_release(&msg);
	/* The console shows the chat (the seed's server prints every message);
	 * with -q it costs nothing. */
	if (log_get_level() >= LOG_INFO) {
		char shown[1024];
		escape_text(shown, sizeof shown, text, len);
		if (strcmp(word, "ACTION") == 0)
			log_info("* %s %s", from->nick, shown);
		else
			log_info("%s: %s", from->nick, shown);
	}
}

void room_post_at(struct room *room, uint64_t except_id, const char *word, const char *nick,
                  const char *text, size_t len, uint64_t offset, const struct timespec *when)
{
	char head[WIRE_EVENT_HEAD_MAX];

	if (offset <= history_last(room->history))
		return; /* had it already */
	int n = snprintf(head, sizeof head, "%s %s ", word, nick);
	struct room_msg msg = {
		.head = head,
		.hlen = (size_t)n,
		.body = text,
		.blen = len,
		.offset = history_add_at(room->history, offset, word, nick, text, len, when),
	};
	for (size_t i = 0; i < room->count; i++) {
		struct member *m = room->members[i];
		if (m->remote || !except_id || m->id != except_id)
			m->ops->deliver(m, &msg);
	}
	room_msg_release(&msg);
	if (log_get_level() >= LOG_INFO) {
		char shown[1024];
		escape_text(shown, sizeof shown, text, len);
		if (strcmp(word, "ACTION") == 0)
			log_info("* %s %s", nick, shown);
		else
			log_info("%s: %s", nick, shown);
	}
}

void room_keep_at(struct room *room, uint64_t offset, const char *word, const char *nick,
                  const char *text, size_t len, const struct timespec *when)
{
	if (offset > history_last(room->history))
		(void)history_add_at(room->history, offset, word, nick, text, len, when);
}

void room_set_epoch(struct room *room, const char *epoch)
{
	if (strcmp(room->epoch, epoch) == 0)
		return;
	snprintf(room->epoch, sizeof room->epoch, "%s", epoch);
	history_reset(room->history);
}

void room_say(struct room *room, struct member *from, const char *text, size_t len)
{
	room_post(room, from, "MSG", text, len);
}

void room_action(struct room *room, struct member *from, const char *text, size_t len)
{
	room_post(room, from, "ACTION", text, len);
}

struct member *room_holder(struct room *room, const char *nick, size_t nlen)
{
	char key[NICK_MAX_BYTES + 1];

	if (nick_check(nick, nlen) != NICK_OK)
		return NULL;
	nick_fold(nick, nlen, key);
	struct nick_entry *e = *nick_slot(room, key);
	return e ? e->member : NULL;
}

void room_rename_guest(struct room *room, struct member *m)
{
	char guest[32], old[NICK_MAX_BYTES + 1];
	int n;

	do {
		n = snprintf(guest, sizeof guest, "Guest%lu", room->next_guest++);
	} while (nick_taken(room, guest, (size_t)n, NULL));
	memcpy(old, m->nick, sizeof old);
	nick_release(room, m);
	nick_claim(room, m, guest, (size_t)n);
	if (m->slot) {
		/* m learns it too */
		presence_event(room, NULL, m, true, "NICK %s %s", old, m->nick);
		log_info("%s is now known as %s", old, m->nick);
	}
}

struct member *room_find(struct room *room, const char *nick, size_t nlen)
{
	char key[NICK_MAX_BYTES + 1];

	if (nlen == 0 || nlen > NICK_MAX_BYTES || memchr(nick, '\0', nlen))
		return NULL;
	nick_fold(nick, nlen, key);
	struct nick_entry *e = *nick_slot(room, key);
	return e && room_has(e->member) ? e->member : NULL;
}

bool room_tell(struct room *room, struct member *from, const char *nick, size_t nlen,
               const char *text, size_t len)
{
	char head[WIRE_EVENT_HEAD_MAX];
	struct member *to = room_find(room, nick, nlen);

	if (!to)
		return false;
	int n = snprintf(head, sizeof head, "PRIVATE %s ", from->nick);
	struct room_msg msg = {
		.head = head, .hlen = (size_t)n, .body = text, .blen = len, .about = from
	};
	to->ops->deliver(to, &msg); /* a remote member's goes to its node */
	room_msg_release(&msg);
	log_debug("%s told %s %zu bytes", from->nick, to->nick, len);
	return true;
}

/* ---- history ---- */

void room_set_history(struct room *room, size_t max_count, size_t max_bytes)
{
	history_free(room->history);
	room->history = history_new(max_count, max_bytes);
}

const char *room_epoch(const struct room *room) { return room->epoch; }
uint64_t room_last_offset(const struct room *room) { return history_last(room->history); }

static void replay_from(struct room *room, struct member *m, size_t first)
{
	for (size_t i = first; i < history_count(room->history); i++) {
		struct room_msg msg = { .history = history_at(room->history, i) };
		m->ops->deliver(m, &msg);
	}
}

void room_replay_last(struct room *room, struct member *m, size_t n)
{
	size_t count = history_count(room->history);
	replay_from(room, m, n < count ? count - n : 0);
}

bool room_replay_since(struct room *room, struct member *m, const char *epoch, uint64_t after)
{
	size_t first = 0;
	bool whole = strcmp(epoch, room->epoch) == 0 && history_since(room->history, after, &first);
	replay_from(room, m, whole ? first : 0);
	return whole;
}
