/* auth.c - AUTH, permissions, account names, and the slowing of failures. */
#include "auth.h"
#include "cmd.h"
#include "conn.h"
#include "escape.h"
#include "log.h"
#include "perms.h"
#include "protect.h"
#include "room.h"
#include "sha256.h"
#include "users.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Failures remembered for one address (its host part, without the port). */
struct auth_strike {
	char host[NET_ADDR_LEN]; /* "" : a free slot */
	unsigned fails;
	uint64_t last; /* loop time of the last failure */
};

struct auth {
	const char *path; /* NULL: no accounts */
	struct users users;
	unsigned anonymous;
	bool plaintext_ok;
	struct auth_strike strikes[AUTH_STRIKES];
};

struct auth *auth_new(const char *users_path, unsigned anonymous, bool plaintext_ok)
{
	struct auth *a = xcalloc(1, sizeof *a);
	a->path = users_path;
	a->anonymous = anonymous;
	a->plaintext_ok = plaintext_ok;
	if (users_path) {
		char err[USERS_ERR_LEN];
		if (users_load(users_path, &a->users, err) < 0)
			fatalx(1, "--users: %s%s", err,
			       errno == ENOENT ? " (--add-user NAME creates it)" : "");
		log_info("%zu account%s from %s", a->users.n, a->users.n == 1 ? "" : "s",
		         users_path);
	}
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	users_free(&a->users);
	free(a);
}

void auth_reload(struct auth *a)
{
	struct users fresh;
	char err[USERS_ERR_LEN];

	if (!a->path) {
		log_info("SIGHUP: no --users file to read again");
		return;
	}
	if (users_load(a->path, &fresh, err) < 0) {
		log_warn("SIGHUP: %s; keeping the %zu accounts read before", err, a->users.n);
		return;
	}
	users_free(&a->users);
	a->users = fresh;
	log_info("SIGHUP: %zu account%s from %s", a->users.n, a->users.n == 1 ? "" : "s", a->path);
}

void auth_refresh(struct conn *c)
{
	struct auth *a = c->env->auth;
	if (!c->account || !conn_alive(c))
		return;
	const struct user *u = users_find(&a->users, c->account, strlen(c->account));
	if (!u) {
		log_info("%s: account %s removed; closing its connection", c->peer, c->account);
		if (!conn_streaming(c))
			conn_err(c, "account %s removed", c->account);
		conn_close_after_flush(c, END_ERROR);
		return;
	}
	c->perms = u->perms;
	if (!(c->perms & PERM_CHAT) && conn_in_chat(c))
		conn_leave_chat(c);
}

void auth_adopt(struct auth *a, struct conn *c, const struct sockaddr_storage *peer)
{
	c->perms = a->anonymous;
	c->loopback = protect_is_loopback((const struct sockaddr *)peer);
}

/* ---- permissions ---- */

static const struct {
	unsigned flag, perm;
} needs[] = {
	{ CMD_CHATS, PERM_CHAT },
	{ CMD_READS, PERM_READ },
	{ CMD_WRITES, PERM_WRITE },
};

bool auth_may(struct conn *c, unsigned perm, const char *what)
{
	if ((c->perms & perm) == perm)
		return true;
	conn_err(c, "permission denied: %s needs %s%s", what, perms_name(perm),
	         c->account ? "" : " (AUTH <name> <token> first)");
	return false;
}

bool auth_permits(struct conn *c, const struct cmd_def *d)
{
	for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++)
		if ((d->flags & needs[i].flag) && !auth_may(c, needs[i].perm, d->name))
			return false;
	return true;
}

/* ---- names ---- */

bool auth_name_reserved(const struct conn *c, const char *nick, size_t len)
{
	return users_find(&c->env->auth->users, nick, len) != NULL;
}

bool auth_nick_allowed(struct conn *c, const char *nick, size_t len)
{
	if (c->account) {
		conn_err(c, "your nickname is your account's name, %s", c->account);
		return false;
	}
	if (auth_name_reserved(c, nick, len)) {
		conn_err(c, "nickname in use: it is an account's name");
		return false;
	}
	return true;
}

void auth_entering(struct conn *c)
{
	struct room *room = c->env->room;
	if (!c->account)
		return;
	size_t len = strlen(c->account);
	struct member *holder = room_holder(room, c->account, len);
	if (holder && holder != &c->member) {
		struct conn *other = conn_of_member(holder);
		if (room_has(holder) && other && other->account &&
		    strcmp(other->account, c->account) == 0) {
			/* The same account again: most often a client back over a new
			 * link while its old one is not known dead yet. The newer wins. */
			log_info("%s: %s signed in again; dropping the older connection %s",
			         c->peer, c->account, other->peer);
			conn_close(other, END_SUPERSEDED);
			room_leave(room, holder, conn_leave_text(END_SUPERSEDED));
		} else {
			/* A guest had taken the name, or a connection out of the
			 * room (ROLE files) still reserves it: it gets another. */
			room_rename_guest(room, holder);
		}
	}
	if (room_rename(room, &c->member, c->account, len) != NICK_OK)
		log_warn("%s: could not take the name %s", c->peer, c->account);
}

/* ---- AUTH ---- */

/* Whom failures count against: the host part of "host:port", and of
 * "[v6]:port" its /64, which one machine usually has whole. */
static void peer_host(const char *peer, char out[NET_ADDR_LEN])
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
	char v6[NET_ADDR_LEN];
	struct in6_addr a;
	if (n > 2 && peer[0] == '[' && peer[n - 1] == ']' && n - 2 < sizeof v6) {
		memcpy(v6, peer + 1, n - 2);
		v6[n - 2] = '\0';
		if (inet_pton(AF_INET6, v6, &a) == 1 && !IN6_IS_ADDR_V4MAPPED(&a)) {
			memset(a.s6_addr + 8, 0, 8);
			char net[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, &a, net, sizeof net);
			snprintf(out, NET_ADDR_LEN, "%s/64", net);
			return;
		}
	}
	snprintf(out, NET_ADDR_LEN, "%.*s", (int)n, peer);
}

/* The address's entry, forgotten (fails 0) when quiet long enough; with
 * `make`, a new one in a free slot or the stalest. NULL: none. */
static struct auth_strike *strike_find(struct auth *a, const char *host, uint64_t now, bool make)
{
	struct auth_strike *free_slot = NULL, *stalest = NULL;
	for (size_t i = 0; i < AUTH_STRIKES; i++) {
		struct auth_strike *s = &a->strikes[i];
		if (s->host[0] && now - s->last > AUTH_FORGET_MS)
			s->host[0] = '\0';
		if (s->host[0] && strcmp(s->host, host) == 0)
			return s;
		if (!s->host[0] && !free_slot)
			free_slot = s;
		if (s->host[0] && (!stalest || s->last < stalest->last))
			stalest = s;
	}
	if (!make)
		return NULL;
	struct auth_strike *s = free_slot ? free_slot : stalest;
	snprintf(s->host, sizeof s->host, "%s", host);
	s->fails = 0;
	return s;
}

static uint64_t strike_delay(const struct auth_strike *s)
{
	if (!s || !s->fails)
		return 0;
	unsigned shift = s->fails - 1 > 16 ? 16 : s->fails - 1;
	uint64_t ms = (uint64_t)AUTH_DELAY_FIRST_MS << shift;
	return ms > AUTH_DELAY_MAX_MS ? AUTH_DELAY_MAX_MS : ms;
}

/* The outcome, told once the delay (if any) is over. */
static void auth_finish(struct conn *c)
{
	struct auth *a = c->env->auth;
	char *name = c->auth_wait;
	c->auth_wait = NULL;
	const struct user *u = name ? users_find(&a->users, name, strlen(name)) : NULL;
	if (!u) { /* wrong, or removed by a reload meanwhile */
		free(name);
		conn_err(c, "authentication failed");
		return;
	}
	c->account = name;
	c->perms = u->perms;
	log_info("%s: signed in as %s", c->peer, name);
	conn_ok(c, "%s", name);
	if (conn_in_chat(c)) {
		if (c->perms & PERM_CHAT)
			auth_entering(c);
		else
			conn_leave_chat(c);
	} else if (c->join_pending && c->framer.kind == FRAMING_LINE) {
		conn_enter_chat(c, true); /* telnet users wait for the server */
	}
}

/* "AUTH <name> <token>": the two words, NUL-terminated in name and token. */
static bool parse_auth(const char *arg, size_t len, char name[NICK_MAX_BYTES + 1],
                       char token[USERS_TOKEN_HEX + 1])
{
	const char *sp = memchr(arg, ' ', len);
	if (!sp || sp == arg)
		return false;
	size_t nlen = (size_t)(sp - arg), tlen = len - nlen - 1;
	if (nlen > NICK_MAX_BYTES || tlen == 0 || tlen > USERS_TOKEN_HEX ||
	    memchr(arg, '\0', len) || memchr(sp + 1, ' ', tlen))
		return false;
	memcpy(name, arg, nlen);
	name[nlen] = '\0';
	memcpy(token, sp + 1, tlen);
	token[tlen] = '\0';
	return true;
}

static bool auth_allowed_here(struct conn *c)
{
	struct auth *a = c->env->auth;
	if (!a->path) {
		conn_err(c, "no accounts here: this server runs without --users");
		return false;
	}
	if (c->account) {
		conn_err(c, "already signed in as %s", c->account);
		return false;
	}
	if (!c->tls && !c->loopback && !a->plaintext_ok) {
		log_warn("%s: AUTH refused over plaintext from another host", c->peer);
		conn_err(c, "AUTH over plaintext from another host is refused (the token would "
		            "cross the network in clear): connect with TLS, or start bottled "
		            "with --allow-plaintext-auth");
		return false;
	}
	return true;
}

void auth_cmd(struct conn *c, const char *arg, size_t len)
{
	struct auth *a = c->env->auth;
	char name[NICK_MAX_BYTES + 1], token[USERS_TOKEN_HEX + 1], host[NET_ADDR_LEN];

	if (!parse_auth(arg, len, name, token)) {
		conn_err(c, "usage: AUTH <name> <token>");
		return;
	}
	if (!auth_allowed_here(c))
		return;
	const struct user *u = users_find(&a->users, name, strlen(name));
	/* A missing account costs the same digest and comparison as a wrong token. */
	static const struct user nobody;
	bool ok = users_token_matches(u ? u : &nobody, token, strlen(token)) && u;
	uint64_t now = loop_now(c->env->loop);
	peer_host(c->peer, host);
	struct auth_strike *s = strike_find(a, host, now, !ok);
	if (!ok) {
		s->fails++;
		s->last = now;
		char shown[4 * 64 + 8];
		escape_text(shown, sizeof shown, name, strlen(name) < 64 ? strlen(name) : 64);
		log_warn("%s: AUTH failed for '%s' (%u from %s; answered in %llu ms)", c->peer,
		         shown, s->fails, host, (unsigned long long)strike_delay(s));
	}
	uint64_t delay = strike_delay(s);
	free(c->auth_wait);
	c->auth_wait = ok ? xstrdup(u->name) : NULL;
	if (delay)
		conn_pause(c, delay, auth_finish); /* its further input waits too */
	else
		auth_finish(c);
}

/* ---- partials ---- */

void auth_partial_id(const struct conn *c, char token[WIRE_TOKEN_MAX + 1])
{
	if (!c->account || !token[0])
		return;
	unsigned char d[32];
	unsigned int n = sizeof d;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, c->account, strlen(c->account) + 1) ||
	    !EVP_DigestUpdate(md, token, strlen(token)) || !EVP_DigestFinal_ex(md, d, &n))
		fatalx(1, "SHA-256 is not available");
	EVP_MD_CTX_free(md);
	hex_encode(d, sizeof d, token);
}
