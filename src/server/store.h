/* store.h - the storage folder: published files in DIR, partial uploads in
 * DIR/.bottle/partial. Nothing is opened outside DIR, and symlinks are never
 * followed. Names are a flat namespace (wire_name_valid); partials are keyed by
 * resume tokens (wire_token_valid). All calls are plain
 * local file operations; big reads and writes are the caller's, in chunks. */
#ifndef BOTTLE_STORE_H
#define BOTTLE_STORE_H

#include "storelock.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct store;

struct store_file {
	char name[WIRE_NAME_MAX + 1];
	uint64_t size;
};

/* Opens (creating if needed) DIR and DIR/.bottle/partial, and locks DIR
 * (DIR/.bottle/lock): cluster NULL, for this process alone; else shared with
 * the nodes of the cluster of that name, and them only (storelock.h). NULL
 * with errno; EBUSY when someone else holds the lock, *holder saying who. */
struct store *store_open(const char *dir, const char *cluster, struct storelock_holder *holder);
/* Who this server is in the owner records of its partials (storelock_whoami);
 * until called, its host and pid. */
void store_set_node(struct store *st, const char *node);
void store_close(struct store *st);

/* Published files. open gives a read-only fd of a regular file, -1 with errno
 * (ENOENT, or ELOOP for a symlink). */
int store_open_file(struct store *st, const char *name, struct stat *sb);
/* Lists published files, sorted by name; returns the count (free *files with
 * free()), or -1 with errno when the folder can't be read. */
ssize_t store_list(struct store *st, struct store_file **files);
/* Deletes a published file; -1 with errno (ENOENT also for anything that is
 * not a regular file). */
int store_delete(struct store *st, const char *name);
/* Renames a published file, atomically and never over another file: -1 with
 * errno (ENOENT, EEXIST when `to` exists). */
int store_rename(struct store *st, const char *name, const char *to);
/* What the folder holds: published files plus partial uploads, in bytes;
 * -1 with errno when it can't be read. */
int store_usage(struct store *st, uint64_t *bytes);
/* The cached SHA-256 of an open file, if it still matches its size and mtime. */
bool store_get_sha(int fd, const struct stat *sb, char hex[WIRE_SHA_HEX + 1]);
void store_set_sha(int fd, const char hex[WIRE_SHA_HEX + 1]);

/* Partial uploads, keyed by an id. A partial remembers what it is a part of
 * (name, size, sha256); resuming with anything different starts it over. */
struct store_partial {
	char id[WIRE_TOKEN_MAX + 1];
	int fd;        /* read-write, positioned nowhere: use pwrite */
	uint64_t have; /* bytes already stored */
	/* After EBUSY: who holds it ("node A (host h, pid 12)"), from ID.owner. */
	char owner[STORELOCK_OWNER_MAX];
};
/* Opens or creates the partial `id` for name/size/sha (sha may be ""), with
 * an exclusive lock on it that lasts until p->fd is closed; what it holds is
 * read from the files, never remembered. -1 with errno; EBUSY when another
 * open file holds the lock (another node, or another upload here): p->owner
 * says who. */
int store_partial_open(struct store *st, const char *id, const char *name, uint64_t size,
                       const char *sha, struct store_partial *p);
/* The same, taking over held: the locked fd of this partial that another
 * upload of this process opened (it must not use or close it any more).
 * The lock passes on without a moment in which a node could take it. */
int store_partial_take_over(struct store *st, int held, const char *id, const char *name,
                            uint64_t size, const char *sha, struct store_partial *p);
/* Moves the finished partial into place as `name` (atomically replacing any
 * older file of that name) and forgets its metadata. The data reaches the
 * disk before the rename, and the rename before this returns. */
int store_partial_publish(struct store *st, struct store_partial *p, const char *name);
/* Deletes a partial and its metadata. */
void store_partial_remove(struct store *st, struct store_partial *p);
/* Deletes partials untouched for ttl seconds that nobody holds; returns how many. */
int store_expire_partials(struct store *st, time_t ttl);

#endif
