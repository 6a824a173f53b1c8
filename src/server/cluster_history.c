/* cluster_history.c - the cluster's one history (docs/cluster.md, "Messages
 * and the history"): a local member's message is numbered by the POST
 * script (P:seq, the stream P:history, published as M), every node's M
 * events go into the room's ring under the same offsets and reach the local
 * members, and on linking (or a new epoch) the newest messages are read back
 * from the stream (INIT); M events that come meanwhile are held and follow
 * in order. */
#include "cluster_priv.h"
#include "log.h"
#include "sha256.h"
#include "wire.h"
#include "xmalloc.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* KEYS: sequence, history stream, epoch. ARGV: max length, channel, node id,
 * author's member id, MSG or ACTION, nick, text, Unix ms, an epoch to use if
 * there is none (Redis lost its data). The message's offset is the next
 * number of the sequence; it is kept and published (M, with the epoch) in one
 * step, so every node sees every message in the same order with the same
 * offset, and notices when the epoch is not the one it holds. */
static const char post_lua[] =
	"redis.call('SET', KEYS[3], ARGV[9], 'NX') "
	"local epoch = redis.call('GET', KEYS[3]) "
	"local seq = redis.call('INCR', KEYS[1]) "
	"redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', "
	"  'w', ARGV[5], 'n', ARGV[6], 'ms', ARGV[8], 't', ARGV[7]) "
	"redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' M ' .. epoch .. ' ' .. seq .. ' ' .. "
	"  ARGV[8] .. ' ' .. "
	"  ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. ARGV[7]) "
	"return seq";

/* KEYS: epoch, history stream. ARGV: an epoch to use if there is none yet,
 * how many messages to read back. {epoch, newest messages first}. */
static const char init_lua[] = "redis.call('SET', KEYS[1], ARGV[1], 'NX') "
			       "return {redis.call('GET', KEYS[1]), "
			       "  redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])}";

/* A numbered message that came before the history was read back. */
struct held_post {
	struct held_post *next;
	size_t len;
	char data[];
};

/* ---- numbering a message ---- */

static void on_posted(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct cluster *cl = priv;
	const redisReply *r = reply;
	if (!cl->closing && r && r->type == REDIS_REPLY_ERROR)
		log_warn("cluster: a message could not be posted: %s", r->str);
}

/* A local member's MSG or ACTION to the POST script: ROOM_POST_TAKEN, it
 * comes back as an M event; ROOM_POST_LOCAL, it could not be sent. */
int cluster_history_post(struct cluster *cl, const struct member *from, const char *word,
                         const char *text, size_t len)
{
	char seq[KEY_MAX], stream[KEY_MAX], epoch_key[KEY_MAX], author[24], ms[24], fresh[17];
	unsigned char r[8];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(seq, sizeof seq, "%s:seq", cl->url.prefix);
	snprintf(stream, sizeof stream, "%s:history", cl->url.prefix);
	snprintf(epoch_key, sizeof epoch_key, "%s:epoch", cl->url.prefix);
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		memset(r, 0xa5, sizeof r);
	hex_encode(r, sizeof r, fresh);
	snprintf(author, sizeof author, "%llu", (unsigned long long)from->id);
	snprintf(ms, sizeof ms, "%llu",
	         (unsigned long long)now.tv_sec * 1000ull +
	                 (unsigned long long)now.tv_nsec / 1000000);
	const char *args[] = { seq,         stream, epoch_key, cl->history_max,
		               cl->channel, cl->id, author,    word,
		               from->nick,  text,   ms,        fresh };
	size_t lens[12];
	for (int i = 0; i < 12; i++)
		lens[i] = args[i] == text ? len : strlen(args[i]);
	return cluster_link_eval(cl, on_posted, cl, post_lua, 3, 12, args, lens) ? ROOM_POST_TAKEN
	                                                                         : ROOM_POST_LOCAL;
}

/* ---- numbered messages coming in ---- */

static void on_post(struct cluster *cl, const struct cluster_event *ev)
{
	char nick[NICK_MAX_BYTES + 1];
	bool ours = cluster_span_is(ev->node, cl->id);

	if (!ours)
		cluster_peers_heard_post(cl, ev);
	memcpy(nick, ev->nick.p, ev->nick.len);
	nick[ev->nick.len] = '\0';
	struct timespec when = { .tv_sec = (time_t)(ev->when_ms / 1000),
		                 .tv_nsec = (long)(ev->when_ms % 1000) * 1000000 };
	room_post_at(cl->room, ours ? ev->author : 0, ev->verb == CLUSTER_ACTION ? "ACTION" : "MSG",
	             nick, ev->text.p, ev->text.len, ev->offset, &when);
}

static void hold_post(struct cluster *cl, const char *data, size_t len)
{
	struct held_post *h = xmalloc(sizeof *h + len);
	h->next = NULL;
	h->len = len;
	memcpy(h->data, data, len);
	*cl->held_tail = h;
	cl->held_tail = &h->next;
}

static void drop_held(struct cluster *cl)
{
	while (cl->held) {
		struct held_post *h = cl->held;
		cl->held = h->next;
		free(h);
	}
	cl->held_tail = &cl->held;
}

/* An M event (our own too: numbered messages come back to all); data and len
 * are its text, kept if it has to wait for the read-back. */
void cluster_history_event(struct cluster *cl, const struct cluster_event *ev, const char *data,
                           size_t len)
{
	bool same = ev->to.len == 16 && memcmp(ev->to.p, room_epoch(cl->room), 16) == 0;
	if (!same && cl->replaying)
		return; /* said in an epoch Redis no longer holds */
	if (cl->history_ready && !same) {
		/* Redis started a new history: read it, then go on in order. */
		log_info("cluster: the history has a new epoch, %.16s", ev->to.p);
		cluster_history_read(cl);
	}
	if (cl->history_ready)
		on_post(cl, ev);
	else
		hold_post(cl, data, len);
}

/* ---- the history, read back on linking ---- */

static bool field(const redisReply *fields, const char *name, const redisReply **out)
{
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[i]->str, name) == 0 &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING) {
			*out = fields->element[i + 1];
			return true;
		}
	return false;
}

/* One stream entry [id, [w, MSG, n, nick, ms, 123, t, text]] into the ring. */
static void keep_entry(struct cluster *cl, const redisReply *e)
{
	const redisReply *w, *n, *ms, *t;
	char *end;
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
		return;
	unsigned long long offset = strtoull(e->element[0]->str, &end, 10);
	if (end == e->element[0]->str || !field(e->element[1], "w", &w) ||
	    !field(e->element[1], "n", &n) || !field(e->element[1], "ms", &ms) ||
	    !field(e->element[1], "t", &t) || nick_check(n->str, n->len) != NICK_OK ||
	    t->len > WIRE_SAY_MAX)
		return;
	const char *word = strcmp(w->str, "ACTION") == 0 ? "ACTION" : "MSG";
	unsigned long long when = strtoull(ms->str, NULL, 10);
	struct timespec ts = { .tv_sec = (time_t)(when / 1000),
		               .tv_nsec = (long)(when % 1000) * 1000000 };
	room_keep_at(cl->room, offset, word, n->str, t->str, t->len, &ts);
}

static void on_init(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	struct cluster *cl = priv;
	const redisReply *r = reply;

	if (cl->closing || !r)
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->len != 16) {
		log_warn("cluster: reading the history back failed%s%s",
		         r->type == REDIS_REPLY_ERROR ? ": " : "",
		         r->type == REDIS_REPLY_ERROR ? r->str : "");
	} else {
		room_set_epoch(cl->room, r->element[0]->str);
		const redisReply *entries = r->element[1];
		for (size_t i = entries->elements; i-- > 0;)
			keep_entry(cl, entries->element[i]);
	}
	cl->history_ready = true;
	struct held_post *h = cl->held;
	cl->held = NULL;
	cl->held_tail = &cl->held;
	cl->replaying = true;
	while (h) {
		struct held_post *next = h->next;
		cluster_on_event(cl, h->data, h->len);
		free(h);
		h = next;
	}
	cl->replaying = false;
}

/* The epoch (set now if Redis has none) and the newest messages, into the
 * ring; M events wait until then. */
void cluster_history_read(struct cluster *cl)
{
	unsigned char r[8];
	char epoch[17], key[KEY_MAX], stream[KEY_MAX];
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		memset(r, 0x5a, sizeof r);
	hex_encode(r, sizeof r, epoch);
	snprintf(key, sizeof key, "%s:epoch", cl->url.prefix);
	snprintf(stream, sizeof stream, "%s:history", cl->url.prefix);
	const char *args[] = { key, stream, epoch, cl->history_max };
	cl->history_ready = false;
	if (!cluster_link_eval(cl, on_init, cl, init_lua, 2, 4, args, NULL))
		cl->history_ready = true;
}

/* ---- life ---- */

void cluster_history_init(struct cluster *cl, size_t history)
{
	cl->held_tail = &cl->held;
	snprintf(cl->history_max, sizeof cl->history_max, "%zu", history ? history : 1);
}

/* The link went: no read-back is coming, and what waited for it goes. */
void cluster_history_forget(struct cluster *cl)
{
	cl->history_ready = false;
	drop_held(cl);
}
