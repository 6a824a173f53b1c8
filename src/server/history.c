/* history.c - a ring of the room's last messages, bounded in count and bytes. */
#include "history.h"
#include "timefmt.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct history {
	struct history_entry **ring;
	size_t cap;   /* max_count */
	size_t head;  /* index of the oldest */
	size_t count; /* kept now */
	size_t bytes, max_bytes;
	uint64_t last; /* the last offset given */
};

struct history *history_new(size_t max_count, size_t max_bytes)
{
	struct history *h = xcalloc(1, sizeof *h);
	h->cap = max_bytes ? max_count : 0;
	h->max_bytes = max_bytes;
	if (h->cap)
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of entry pointers */
		h->ring = xcalloc(h->cap, sizeof *h->ring);
	return h;
}

static void entry_free(struct history_entry *e)
{
	for (int k = 0; k < FRAMING_COUNT; k++)
		blob_unref(e->encoded[k]);
	free(e);
}

static void drop_oldest(struct history *h)
{
	struct history_entry *e = h->ring[h->head];
	h->ring[h->head] = NULL;
	h->head = (h->head + 1) % h->cap;
	h->count--;
	h->bytes -= e->cost;
	entry_free(e);
}

void history_free(struct history *h)
{
	if (!h)
		return;
	while (h->count)
		drop_oldest(h);
	free(h->ring);
	free(h);
}

uint64_t history_add(struct history *h, const char *word, const char *nick, const char *text,
                     size_t len, const struct timespec *when)
{
	return history_add_at(h, h->last + 1, word, nick, text, len, when);
}

void history_reset(struct history *h)
{
	while (h->count)
		drop_oldest(h);
	h->last = 0;
}

uint64_t history_add_at(struct history *h, uint64_t offset, const char *word, const char *nick,
                        const char *text, size_t len, const struct timespec *when)
{
	/* Kept offsets stay consecutive (history_since counts on it): after a
	 * gap, what came before cannot look complete. */
	if (offset != h->last + 1)
		while (h->count)
			drop_oldest(h);
	h->last = offset;
	size_t nlen = strlen(nick);
	/* What its replay costs at most: line mode repeats the head on every line
	 * ("HISTORY <offset> <time> <word> <nick> "), plus the entry itself. */
	char digits[24];
	size_t head = sizeof "HISTORY     " - 1 +
	              (size_t)snprintf(digits, sizeof digits, "%llu", (unsigned long long)offset) +
	              TIMEFMT_RFC3339_LEN + strlen(word) + nlen;
	size_t lines = 1;
	for (const char *p = text; (p = memchr(p, '\n', (size_t)(text + len - p))); p++)
		lines++;
	size_t cost = sizeof(struct history_entry) + nlen + len + lines * head;

	if (!h->cap)
		return offset;
	if (cost > h->max_bytes) {
		/* Not kept, so nothing before it may look complete: forget it all. */
		while (h->count)
			drop_oldest(h);
		return offset;
	}
	while (h->count && (h->count == h->cap || h->bytes + cost > h->max_bytes))
		drop_oldest(h);
	struct history_entry *e = xcalloc(1, sizeof *e + nlen + 1 + len + 1); /* both NUL-ended */
	char *nick_copy = (char *)(e + 1), *text_copy = nick_copy + nlen + 1;
	memcpy(nick_copy, nick, nlen + 1);
	memcpy(text_copy, text, len);
	*e = (struct history_entry){
		.offset = offset,
		.when = *when,
		.word = word,
		.nick = nick_copy,
		.text = text_copy,
		.len = len,
		.cost = cost,
	};
	h->ring[(h->head + h->count) % h->cap] = e;
	h->count++;
	h->bytes += cost;
	return offset;
}

uint64_t history_last(const struct history *h) { return h->last; }
size_t history_count(const struct history *h) { return h->count; }

struct history_entry *history_at(const struct history *h, size_t i)
{
	return h->ring[(h->head + i) % h->cap];
}

bool history_since(const struct history *h, uint64_t after, size_t *first)
{
	uint64_t oldest = h->count ? history_at(h, 0)->offset : h->last + 1;

	*first = 0;
	if (after > h->last)
		return false; /* an offset this run never gave */
	if (after + 1 < oldest)
		return false; /* some of what came after it is gone */
	*first = (size_t)(after + 1 - oldest);
	return true;
}

struct blob *history_encoded(struct history_entry *e, enum framing_kind kind)
{
	if (!e->encoded[kind]) {
		char when[TIMEFMT_RFC3339_LEN], head[TIMEFMT_RFC3339_LEN + 2 * 64 + 40];
		timefmt_rfc3339(when, &e->when);
		int n = snprintf(head, sizeof head, "HISTORY %llu %s %s %s ",
		                 (unsigned long long)e->offset, when, e->word, e->nick);
		e->encoded[kind] = framing_encode(kind, head, (size_t)n, e->text, e->len);
	}
	return e->encoded[kind];
}
