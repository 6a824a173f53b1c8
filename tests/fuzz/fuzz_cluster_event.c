/* fuzz_cluster_event - the decoder of the events nodes publish through Redis
 * (cluster_event.c): anyone who can reach Redis can publish, so whatever a
 * payload holds must decode into spans inside it, or be refused.
 *  - every span of an accepted event lies inside the input;
 *  - the node id passes cluster_node_id_valid; names a member would see pass
 *    nick_check; a LEAVE reason and FILE news hold no control character;
 *  - texts fit in a SAY (WIRE_SAY_MAX). */
#include "cluster_event.h"
#include "fuzz.h"
#include "nick.h"
#include "wire.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void inside(const uint8_t *data, size_t size, struct cluster_span s)
{
	if (!s.len)
		return;
	CHECK((const uint8_t *)s.p >= data && (const uint8_t *)s.p + s.len <= data + size);
}

static void no_controls(struct cluster_span s)
{
	for (size_t i = 0; i < s.len; i++)
		CHECK((unsigned char)s.p[i] >= 0x20 && s.p[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cluster_event ev;
	if (cluster_event_decode((const char *)data, size, &ev) < 0)
		return 0;
	inside(data, size, ev.node);
	inside(data, size, ev.nick);
	inside(data, size, ev.to);
	inside(data, size, ev.text);
	CHECK(cluster_node_id_valid(ev.node.p, ev.node.len));
	switch (ev.type) {
	case CLUSTER_EV_ROOM:
		CHECK(nick_check(ev.nick.p, ev.nick.len) == NICK_OK);
		if (ev.verb == CLUSTER_NICK)
			CHECK(nick_check(ev.to.p, ev.to.len) == NICK_OK);
		if (ev.verb == CLUSTER_LEAVE || ev.verb == CLUSTER_FILE)
			no_controls(ev.text);
		if (ev.verb == CLUSTER_MSG || ev.verb == CLUSTER_ACTION)
			CHECK(ev.text.len <= WIRE_SAY_MAX);
		break;
	case CLUSTER_EV_PRIVATE:
		CHECK(nick_check(ev.nick.p, ev.nick.len) == NICK_OK);
		CHECK(nick_check(ev.to.p, ev.to.len) == NICK_OK);
		CHECK(ev.text.len <= WIRE_SAY_MAX);
		break;
	case CLUSTER_EV_HEARTBEAT: CHECK(cluster_name_valid(ev.text.p, ev.text.len)); break;
	case CLUSTER_EV_SYNC: break;
	case CLUSTER_EV_POST:
		CHECK(ev.offset > 0);
		CHECK(ev.verb == CLUSTER_MSG || ev.verb == CLUSTER_ACTION);
		CHECK(nick_check(ev.nick.p, ev.nick.len) == NICK_OK);
		CHECK(ev.text.len <= WIRE_SAY_MAX);
		break;
	}
	return 0;
}
