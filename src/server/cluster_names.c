/* cluster_names.c - names unique across the cluster (docs/cluster.md,
 * "Names"): a local member's name is claimed in Redis (P:nick:<folded>, and
 * the node's member hash), given back with a compare-and-delete, claimed
 * again all at once after linking (ANNOUNCE), and the clash rule: whoever
 * holds the claim keeps the name, a member here that lost it becomes a fresh
 * GuestN. A claim waiting for Redis holds its member's id, never the member. */
#include "cluster_priv.h"
#include "log.h"
#include "xmalloc.h"

#include <hiredis/hiredis.h>

#include <stdlib.h>
#include <string.h>

/* KEYS: claim, member hash. ARGV: node id, ttl, folded nick, nick. 1: ours. */
static const char claim_lua[] = "local v = redis.call('GET', KEYS[1]) "
				"if v and v ~= ARGV[1] then return 0 end "
				"redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
				"redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) "
				"redis.call('EXPIRE', KEYS[2], 2 * ARGV[2]) "
				"return 1";

/* KEYS: claim, member hash. ARGV: node id, folded nick. Compare and delete. */
static const char release_lua[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end "
	"redis.call('HDEL', KEYS[2], ARGV[2]) "
	"return 1";

/* KEYS: member hash. ARGV: node id, ttl, prefix, then folded nick and nick
 * for each member. The node's list written anew; one 0/1 per member. */
static const char announce_lua[] = "redis.call('DEL', KEYS[1]) "
				   "local out = {} "
				   "for i = 4, #ARGV, 2 do "
				   "  local k = ARGV[3] .. ':nick:' .. ARGV[i] "
				   "  local v = redis.call('GET', k) "
				   "  if v and v ~= ARGV[1] then out[#out + 1] = 0 else "
				   "    redis.call('SET', k, ARGV[1], 'EX', ARGV[2]) "
				   "    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) "
				   "    out[#out + 1] = 1 "
				   "  end "
				   "end "
				   "redis.call('EXPIRE', KEYS[1], 2 * ARGV[2]) "
				   "return out";

/* A claim waiting for Redis. */
struct claim {
	struct cluster *cl;
	struct claim *prev, *next;
	uint64_t member_id;
	uint64_t deadline;
	cluster_claim_fn *done; /* NULL: a member's current name (the clash rule) */
	char nick[NICK_MAX_BYTES + 1];
	size_t len;
	bool answered; /* timed out: the reply, when it comes, changes nothing */
};

/* The members one ANNOUNCE claimed, in order. */
struct announce {
	struct cluster *cl;
	size_t n;
	uint64_t *ids;
	char (*folds)[NICK_MAX_BYTES + 1];
};

/* A local member in the room by id: replies never keep pointers to members. */
static struct member *member_by_id(struct cluster *cl, uint64_t id)
{
	size_t n = room_count(cl->room);
	for (size_t i = 0; i < n; i++) {
		struct member *m = room_member(cl->room, i);
		if (!m->remote && m->id == id)
			return m;
	}
	return NULL;
}

static bool same_name(const char *a, const char *b)
{
	char fa[NICK_MAX_BYTES + 1], fb[NICK_MAX_BYTES + 1];
	nick_fold(a, strlen(a), fa);
	nick_fold(b, strlen(b), fb);
	return strcmp(fa, fb) == 0;
}

/* The clash rule: whoever holds the claim in Redis keeps the name; a member
 * here that could not claim its own is renamed to a fresh GuestN, and told. */
static void lose_name(struct cluster *cl, uint64_t id, const char *nick)
{
	struct member *m = member_by_id(cl, id);
	if (!m || !same_name(m->nick, nick))
		return;
	log_info("cluster: %s is held on another node; renaming the one here", m->nick);
	room_rename_guest(cl->room, m);
}

/* ---- claims ---- */

static void unlink_claim(struct cluster *cl, struct claim *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else if (cl->claims == k)
		cl->claims = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

static void on_claim(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct claim *k = priv;
	struct cluster *cl = k->cl;
	redisReply *r = reply;

	unlink_claim(cl, k);
	if (!cl->closing) {
		enum cluster_claim_result res = CLUSTER_NO_ANSWER;
		if (r && r->type == REDIS_REPLY_INTEGER)
			res = r->integer == 1 ? CLUSTER_CLAIMED : CLUSTER_TAKEN;
		else if (r)
			log_warn("cluster: a name claim failed: %s",
			         r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
		struct member *m = member_by_id(cl, k->member_id);
		if (k->answered) {
			/* Too late: the name was decided here meanwhile (the uplink
			 * claims it again, and a loss gets the clash rule there), or
			 * its member left: a name won now would be held by nobody, so
			 * it goes back unless someone here holds it. */
			if (res == CLUSTER_CLAIMED)
				cluster_names_release(cl, k->nick, k->len);
		} else if (k->done && m)
			k->done(m, res, k->nick, k->len);
		else if (k->done && res == CLUSTER_CLAIMED)
			cluster_names_release(cl, k->nick, k->len); /* its member left meanwhile */
		else if (!k->done && res == CLUSTER_TAKEN)
			lose_name(cl, k->member_id, k->nick);
	}
	free(k);
}

/* Claims nick for the local member m; done (NULL: m's current name, the clash
 * rule settles a refusal) gets the answer. false when it could not be sent. */
bool cluster_names_claim(struct cluster *cl, const struct member *m, const char *nick, size_t len,
                         cluster_claim_fn *done)
{
	char fold[NICK_MAX_BYTES + 1], key[KEY_MAX], hash[KEY_MAX];
	nick_fold(nick, len, fold);
	if (!fold[0])
		return false;
	cluster_key(cl, key, "nick", fold);
	cluster_key(cl, hash, "members", cl->id);
	struct claim *k = xcalloc(1, sizeof *k);
	k->cl = cl;
	k->member_id = m->id;
	k->done = done;
	k->deadline = cluster_now(cl) + CLUSTER_CLAIM_TIMEOUT_MS;
	memcpy(k->nick, nick, len);
	k->len = len;
	const char *args[] = { key, hash, cl->id, cl->ttl, fold, k->nick };
	if (!cluster_link_eval(cl, on_claim, k, claim_lua, 2, 6, args, NULL)) {
		free(k);
		return false;
	}
	k->next = cl->claims;
	if (cl->claims)
		cl->claims->prev = k;
	cl->claims = k;
	return true;
}

/* Claims unanswered for CLUSTER_CLAIM_TIMEOUT_MS are answered "no answer". */
void cluster_names_expire(struct cluster *cl)
{
	uint64_t now = cluster_now(cl);
	for (struct claim *k = cl->claims; k; k = k->next) {
		if (k->answered || now < k->deadline)
			continue;
		k->answered = true; /* hiredis still owns it: freed with its reply */
		struct member *m = member_by_id(cl, k->member_id);
		if (k->done && m)
			k->done(m, CLUSTER_NO_ANSWER, k->nick, k->len);
	}
}

bool cluster_claim(struct cluster *cl, struct member *m, const char *nick, size_t len,
                   cluster_claim_fn *done)
{
	return cl->linked && cluster_names_claim(cl, m, nick, len, done);
}

/* ---- giving names back ---- */

static void send_release(struct cluster *cl, const char *fold)
{
	char key[KEY_MAX], hash[KEY_MAX];
	cluster_key(cl, key, "nick", fold);
	cluster_key(cl, hash, "members", cl->id);
	const char *args[] = { key, hash, cl->id, fold };
	(void)cluster_link_eval(cl, NULL, NULL, release_lua, 2, 4, args, NULL);
}

/* Gives a name back in Redis, unless a member here still holds it. */
void cluster_names_release(struct cluster *cl, const char *nick, size_t len)
{
	struct member *holder = room_holder(cl->room, nick, len);
	if (holder && !holder->remote)
		return;
	char fold[NICK_MAX_BYTES + 1];
	nick_fold(nick, len, fold);
	if (!fold[0])
		return;
	send_release(cl, fold);
}

/* A local member leaving: room_step_out tells before the name goes, so it is
 * still held here and goes back without asking. */
void cluster_names_leaving(struct cluster *cl, const struct member *who)
{
	if (!cl->linked)
		return;
	char fold[NICK_MAX_BYTES + 1];
	nick_fold(who->nick, strlen(who->nick), fold);
	send_release(cl, fold);
}

void cluster_unclaim(struct cluster *cl, const char *nick, size_t len)
{
	cluster_names_release(cl, nick, len);
}

/* ---- after linking: every name claimed again ---- */

static void on_announced(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct announce *a = priv;
	struct cluster *cl = a->cl;
	const redisReply *r = reply;

	if (!cl->closing && r && r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements && i < a->n; i++)
			if (r->element[i]->type == REDIS_REPLY_INTEGER &&
			    r->element[i]->integer == 0)
				lose_name(cl, a->ids[i], a->folds[i]);
	} else if (!cl->closing && r) {
		log_warn("cluster: announcing the members failed: %s",
		         r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
	}
	free(a->ids);
	free(a->folds);
	free(a);
}

/* Our members' names claimed again and our list written anew, then the others
 * are told to read it (S). */
void cluster_names_announce(struct cluster *cl)
{
	size_t count = room_count(cl->room), n = 0;
	struct announce *a = xcalloc(1, sizeof *a);
	a->cl = cl;
	a->ids = xcalloc(count + 1, sizeof *a->ids);
	a->folds = xcalloc(count + 1, sizeof *a->folds);
	const char **args = xcalloc(3 + 2 * count + 1, sizeof *args);
	char hash[KEY_MAX];
	cluster_key(cl, hash, "members", cl->id);
	args[0] = hash;
	args[1] = cl->id;
	args[2] = cl->ttl;
	args[3] = cl->url.prefix;
	for (size_t i = 0; i < count; i++) {
		struct member *m = room_member(cl->room, i);
		if (m->remote)
			continue;
		nick_fold(m->nick, strlen(m->nick), a->folds[n]);
		a->ids[n] = m->id;
		args[4 + 2 * n] = a->folds[n];
		args[5 + 2 * n] = m->nick;
		n++;
	}
	a->n = n;
	if (!cluster_link_eval(cl, on_announced, a, announce_lua, 1, 4 + 2 * (int)n, args, NULL)) {
		free(a->ids);
		free(a->folds);
		free(a);
	}
	free(args);
	cluster_link_publish(cl, "S", 1, "", 0, "", 0);
}
