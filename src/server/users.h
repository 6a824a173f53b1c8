/* users.h - the accounts file (--users FILE): one line per account,
 * "NAME PERMS SHA256HEX", where the digest is that of the account's token (a
 * random secret the server made and printed once). Lines starting with '#'
 * and empty lines are ignored. Written whole to a temporary file, synced and
 * renamed over the old one, always mode 0600. No I/O on the event loop
 * beyond SIGHUP's reload (a small file read once). */
#ifndef BOTTLE_USERS_H
#define BOTTLE_USERS_H

#include "nick.h"

#include <stdbool.h>
#include <stddef.h>

#define USERS_TOKEN_BYTES 32                    /* 256 random bits */
#define USERS_TOKEN_HEX (2 * USERS_TOKEN_BYTES) /* as the user types it */
#define USERS_ERR_LEN 4608                      /* room for a path */

struct user {
	char name[NICK_MAX_BYTES + 1];
	unsigned perms;           /* PERM_* (perms.h) */
	unsigned char digest[32]; /* SHA-256 of the token's text */
};

struct users {
	struct user *list;
	size_t n;
};

/* Reading and writing. load: 0, or -1 with err saying which line is wrong
 * (or why the file can't be read; errno ENOENT when it does not exist). */
int users_load(const char *path, struct users *out, char err[USERS_ERR_LEN]);
int users_save(const char *path, const struct users *u, char err[USERS_ERR_LEN]);
void users_free(struct users *u);

/* Names: a valid nickname (they become one), never "Guest<digits>", which
 * guests get. */
bool users_name_valid(const char *name, size_t len);
/* The account called name, ignoring case as nicknames do; NULL if none. */
const struct user *users_find(const struct users *u, const char *name, size_t len);

/* Adds an account with a fresh token, written into token (USERS_TOKEN_HEX
 * + 1 bytes): 0, or -1 with err (bad name, exists, no randomness). */
int users_add(struct users *u, const char *name, unsigned perms, char *token,
              char err[USERS_ERR_LEN]);
/* Removes an account: false if there was none. */
bool users_remove(struct users *u, const char *name);

/* True if token is the account's, in time independent of where it differs. */
bool users_token_matches(const struct user *user, const char *token, size_t len);

#endif
