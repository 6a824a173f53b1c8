/* history.h - the room's last messages, for latecomers and for clients that
 * reconnect: a ring bounded in count and in bytes, oldest dropped first. Every
 * message gets the next offset (1, 2, ...) whether or not it is kept, so a
 * client that knows the last offset it saw can ask for what came after, and
 * learns when some of that is gone. Pure: no I/O. */
#ifndef BOTTLE_HISTORY_H
#define BOTTLE_HISTORY_H

#include "buf.h"
#include "framing.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct history_entry {
	uint64_t offset;
	struct timespec when; /* wall clock when it was said */
	const char *word;     /* the event: "MSG" or "ACTION" */
	const char *nick;     /* point into the entry's own allocation */
	const char *text;     /* len bytes, then a NUL */
	size_t len;
	size_t cost;                         /* bytes it counts against the bound */
	struct blob *encoded[FRAMING_COUNT]; /* its HISTORY event, made once per framing */
};

struct history;

/* Keeps at most max_count messages and max_bytes of their text and names
 * (0 and 0: keeps none, still numbers them). */
struct history *history_new(size_t max_count, size_t max_bytes);
void history_free(struct history *h);

/* Numbers a message and keeps it (dropping the oldest to make room). A text
 * bigger than the whole byte bound is numbered, not kept. Returns its offset. */
uint64_t history_add(struct history *h, const char *word, const char *nick, const char *text,
                     size_t len, const struct timespec *when);
/* The same with an offset given by someone else (the cluster's, cluster_history.c):
 * offset > history_last; one that does not follow the last drops what is kept. */
uint64_t history_add_at(struct history *h, uint64_t offset, const char *word, const char *nick,
                        const char *text, size_t len, const struct timespec *when);
/* Forgets every message and offset: a new offset space (a new epoch). */
void history_reset(struct history *h);
uint64_t history_last(const struct history *h); /* the last offset given; 0 before any */
size_t history_count(const struct history *h);
/* The i-th kept message, 0 the oldest. */
struct history_entry *history_at(const struct history *h, size_t i);
/* Where the messages after `after` start among those kept (*first, count if
 * none). Returns false when some of them are no longer kept, or `after` was
 * never given (another run of the server): then *first is 0, the oldest. */
bool history_since(const struct history *h, uint64_t after, size_t *first);

/* The HISTORY event of an entry in one framing:
 * "HISTORY <offset> <time> <word> <nick> <text>". Made once and kept. */
struct blob *history_encoded(struct history_entry *e, enum framing_kind kind);

#endif
