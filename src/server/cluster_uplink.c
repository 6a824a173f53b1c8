/* cluster_uplink.c - the other nodes, seen by the room as one member (the
 * uplink, room.h). The room tells it every event about a local member: each
 * is published as "E <event>" and keeps the names in Redis in step (a JOIN or
 * NICK claims, a LEAVE or the old name of a NICK gives back). A local
 * member's message is not delivered here first: the uplink has it numbered
 * (cluster_history.c), and it comes back to every node in one order. */
#include "cluster_priv.h"

#include <string.h>

static void uplink_deliver(struct member *m, struct room_msg *msg)
{
	struct cluster *cl = container_of(m, struct cluster, uplink);
	const char *head = msg->head;
	size_t hlen = msg->hlen;

	if (cl->closing)
		return;
	cluster_link_publish(cl, "E ", 2, head, hlen, msg->body, msg->blen);
	if (!msg->about)
		return;
	struct member *who = msg->about;
	if (hlen > 5 && memcmp(head, "JOIN ", 5) == 0) {
		(void)cluster_names_claim(cl, who, who->nick, strlen(who->nick), NULL);
	} else if (hlen > 6 && memcmp(head, "LEAVE ", 6) == 0) {
		cluster_names_leaving(cl, who);
		cluster_peers_retry_hidden(cl);
	} else if (hlen > 5 && memcmp(head, "NICK ", 5) == 0) {
		const char *old = head + 5, *sp = memchr(old, ' ', hlen - 5);
		size_t olen = sp ? (size_t)(sp - old) : 0;
		(void)cluster_names_claim(cl, who, who->nick, strlen(who->nick), NULL);
		char fo[NICK_MAX_BYTES + 1], fn[NICK_MAX_BYTES + 1];
		nick_fold(old, olen, fo);
		nick_fold(who->nick, strlen(who->nick), fn);
		if (olen && strcmp(fo, fn) != 0)
			cluster_names_release(cl, old, olen);
		cluster_peers_retry_hidden(cl);
	}
}

/* A local member's message: numbered by Redis, which sends it back to every
 * node (this one too, to deliver it here) in one order. */
static int uplink_post(struct member *m, struct member *from, const char *word, const char *text,
                       size_t len)
{
	struct cluster *cl = container_of(m, struct cluster, uplink);

	if (cl->closing)
		return ROOM_POST_HERE;
	if (!cl->linked)
		return ROOM_POST_LOCAL; /* Redis is away: this room only, unnumbered */
	return cluster_history_post(cl, from, word, text, len);
}

static const struct member_ops uplink_ops = { .deliver = uplink_deliver, .post = uplink_post };

void cluster_uplink_init(struct cluster *cl) { cl->uplink.ops = &uplink_ops; }
