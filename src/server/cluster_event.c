/* cluster_event.c - the decoder of the events nodes publish. Anything that
 * could reach a member (names, texts) is checked here as the room would check
 * it from a local client, so a hostile payload is refused, not delivered. */
#include "cluster_event.h"
#include "nick.h"
#include "wire.h"

#include <string.h>

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == ':';
}

bool cluster_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CLUSTER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool cluster_node_id_valid(const char *s, size_t len)
{
	if (len < 18 || len > CLUSTER_NODE_ID_MAX || s[len - 17] != '~')
		return false;
	for (size_t i = len - 16; i < len; i++)
		if (!strchr("0123456789abcdef", s[i]) || !s[i])
			return false;
	return cluster_name_valid(s, len - 17);
}

/* Cuts the next word (up to a space, or the end) off *p. */
static struct cluster_span word(const char **p, const char *end)
{
	struct cluster_span w = { *p, 0 };
	const char *sp = memchr(*p, ' ', (size_t)(end - *p));
	w.len = (size_t)((sp ? sp : end) - *p);
	*p = sp ? sp + 1 : end;
	return w;
}

static bool nick_ok(struct cluster_span s) { return nick_check(s.p, s.len) == NICK_OK; }

static bool span_is(struct cluster_span s, const char *w)
{
	return s.len == strlen(w) && memcmp(s.p, w, s.len) == 0;
}

/* Text that goes into an event's head: no control characters. */
static bool head_text_ok(struct cluster_span s, size_t max)
{
	if (s.len == 0 || s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
			return false;
	return true;
}

/* "<nick> <text>", the text possibly empty; p is past a space. */
static int nick_and_text(const char *p, const char *end, struct cluster_event *ev)
{
	ev->nick = word(&p, end);
	if (!nick_ok(ev->nick) || p[-1] != ' ')
		return -1;
	ev->text = (struct cluster_span){ p, (size_t)(end - p) };
	return ev->text.len <= WIRE_SAY_MAX ? 0 : -1;
}

static int decode_room(const char *p, const char *end, struct cluster_event *ev)
{
	const char *start = p;
	struct cluster_span verb = word(&p, end);
	bool more = p < end && p[-1] == ' '; /* something after the verb */

	if (span_is(verb, "MSG") || span_is(verb, "ACTION")) {
		ev->verb = span_is(verb, "MSG") ? CLUSTER_MSG : CLUSTER_ACTION;
		return more ? nick_and_text(p, end, ev) : -1;
	}
	if (span_is(verb, "JOIN")) {
		ev->verb = CLUSTER_JOIN;
		ev->nick = (struct cluster_span){ p, (size_t)(end - p) };
		return more && nick_ok(ev->nick) ? 0 : -1;
	}
	if (span_is(verb, "LEAVE")) {
		ev->verb = CLUSTER_LEAVE;
		ev->nick = word(&p, end);
		ev->text = (struct cluster_span){ p, (size_t)(end - p) };
		return nick_ok(ev->nick) && head_text_ok(ev->text, CLUSTER_REASON_MAX) ? 0 : -1;
	}
	if (span_is(verb, "NICK")) {
		ev->verb = CLUSTER_NICK;
		ev->nick = word(&p, end);
		ev->to = (struct cluster_span){ p, (size_t)(end - p) };
		return nick_ok(ev->nick) && nick_ok(ev->to) ? 0 : -1;
	}
	if (!span_is(verb, "FILE"))
		return -1;
	ev->verb = CLUSTER_FILE;
	ev->nick = word(&p, end);
	if (!nick_ok(ev->nick) || p >= end)
		return -1;
	ev->text = (struct cluster_span){ start, (size_t)(end - start) }; /* "FILE ..." */
	return head_text_ok(ev->text, WIRE_EVENT_HEAD_MAX + 600) ? 0 : -1;
}

/* Digits only, below 2^63, no leading zero but "0". */
static bool number(struct cluster_span s, uint64_t *out)
{
	if (s.len == 0 || s.len > 18 || (s.len > 1 && s.p[0] == '0'))
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	*out = v;
	return true;
}

static bool epoch_ok(struct cluster_span s)
{
	if (s.len != 16)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
			return false;
	return true;
}

static int decode_post(const char *p, const char *end, struct cluster_event *ev)
{
	ev->to = word(&p, end); /* the epoch */
	if (!epoch_ok(ev->to) || !number(word(&p, end), &ev->offset) || ev->offset == 0 ||
	    !number(word(&p, end), &ev->when_ms) || !number(word(&p, end), &ev->author) || p == end)
		return -1;
	struct cluster_span verb = word(&p, end);
	if (span_is(verb, "MSG"))
		ev->verb = CLUSTER_MSG;
	else if (span_is(verb, "ACTION"))
		ev->verb = CLUSTER_ACTION;
	else
		return -1;
	return p < end && p[-1] == ' ' ? nick_and_text(p, end, ev) : -1;
}

int cluster_event_decode(const char *data, size_t len, struct cluster_event *ev)
{
	const char *p = data, *end = data + len;

	memset(ev, 0, sizeof *ev);
	ev->node = word(&p, end);
	if (!cluster_node_id_valid(ev->node.p, ev->node.len) || p == end)
		return -1;
	struct cluster_span type = word(&p, end);
	if (type.len != 1)
		return -1;
	switch (type.p[0]) {
	case 'E': ev->type = CLUSTER_EV_ROOM; return p < end ? decode_room(p, end, ev) : -1;
	case 'P':
		ev->type = CLUSTER_EV_PRIVATE;
		ev->to = word(&p, end);
		ev->nick = word(&p, end);
		if (!nick_ok(ev->to) || !nick_ok(ev->nick) || p[-1] != ' ')
			return -1;
		ev->text = (struct cluster_span){ p, (size_t)(end - p) };
		return ev->text.len <= WIRE_SAY_MAX ? 0 : -1;
	case 'H':
		ev->type = CLUSTER_EV_HEARTBEAT;
		ev->text = (struct cluster_span){ p, (size_t)(end - p) };
		return cluster_name_valid(p, ev->text.len) ? 0 : -1;
	case 'M': ev->type = CLUSTER_EV_POST; return p < end ? decode_post(p, end, ev) : -1;
	case 'S': ev->type = CLUSTER_EV_SYNC; return p == end && type.p + 1 == end ? 0 : -1;
	default: return -1;
	}
}
