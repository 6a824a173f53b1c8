/* auth.h - who a connection is and what it may do: AUTH <name> <token>, the
 * permission check every command passes (cmd_execute), account names as
 * nicknames, failed attempts slowed per address, and resume tokens bound to
 * their account. The accounts come from the users file (users.h); without
 * one, every connection is a guest with --anonymous's permissions (all). */
#ifndef BOTTLE_AUTH_H
#define BOTTLE_AUTH_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct auth;
struct cmd_def;
struct conn;

/* Failed attempts: the reply to the n-th failure from an address waits
 * AUTH_DELAY_FIRST_MS * 2^(n-1), at most AUTH_DELAY_MAX_MS (and so does any
 * AUTH from that address meanwhile); an address quiet for AUTH_FORGET_MS is
 * forgotten. At most AUTH_STRIKES addresses are remembered: a full table
 * forgets the one that failed longest ago. */
#define AUTH_DELAY_FIRST_MS 100
#define AUTH_DELAY_MAX_MS 3000
#define AUTH_FORGET_MS (60 * 1000)
#define AUTH_STRIKES 512

/* users_path NULL: no accounts. Exits with a one-line error when the file
 * can't be read (a startup failure). */
struct auth *auth_new(const char *users_path, unsigned anonymous, bool plaintext_ok);
void auth_free(struct auth *a);
/* SIGHUP: reads the users file again. On an error the old accounts stay (and
 * the log says why). Then auth_refresh each connection. */
void auth_reload(struct auth *a);
/* After a reload: an account's connection gets its new permissions, or is
 * closed if the account is gone. */
void auth_refresh(struct conn *c);

/* A new connection: a guest's permissions, and whether its peer is local. */
void auth_adopt(struct auth *a, struct conn *c, const struct sockaddr_storage *peer);

/* The AUTH command. */
void auth_cmd(struct conn *c, const char *arg, size_t len);
/* True if c may run the command; if not, replies "ERR permission denied: ...". */
bool auth_permits(struct conn *c, const struct cmd_def *d);
/* The same for one permission (PERM_*), `what` naming the action refused. */
bool auth_may(struct conn *c, unsigned perm, const char *what);
/* NICK: false (and an ERR reply) when c may not take nick: an account's name
 * belongs to it, and an account keeps its own. */
bool auth_nick_allowed(struct conn *c, const char *nick, size_t len);
/* True if nick is an account's name (ignoring case), which only that account
 * may have; for the seed dialect's /nick, which answers its own way. */
bool auth_name_reserved(const struct conn *c, const char *nick, size_t len);
/* conn_env.entering: an account's connection about to enter the room takes
 * its account's name (from a guest, who becomes a fresh GuestN, or from an
 * older connection of the same account, which is superseded). */
void auth_entering(struct conn *c);
/* UPLOAD: an authenticated connection's resume token becomes one of its
 * account's own (a digest of account and token), so another account with the
 * same token reaches another partial. */
void auth_partial_id(const struct conn *c, char token[WIRE_TOKEN_MAX + 1]);

#endif
