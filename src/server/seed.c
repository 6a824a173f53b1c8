/* seed.c - the seed's dialect: what a seed member sees of the room, and what
 * its frames mean. The room's events are rendered from their head (the words
 * every other member gets: "MSG Bob ", "JOIN Bob", ...), so the room needs no
 * second vocabulary. Texts are exact bytes, as for every TPKT member. */
#include "seed.h"
#include "args.h"
#include "auth.h"
#include "conn.h"
#include "framing.h"
#include "nick.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- rendering ---- */

/* The next space-separated word of s[*pos..len): its start and length. */
static size_t word_at(const char *s, size_t len, size_t *pos, const char **w)
{
	while (*pos < len && s[*pos] == ' ')
		(*pos)++;
	*w = s + *pos;
	size_t start = *pos;
	while (*pos < len && s[*pos] != ' ')
		(*pos)++;
	return *pos - start;
}

/* The raw span of the next argument word (a quoted file name stays quoted). */
static size_t arg_at(const char *s, size_t len, size_t *pos, const char **w)
{
	char scratch[2 * WIRE_NAME_MAX + 3];
	struct args a;

	while (*pos < len && s[*pos] == ' ')
		(*pos)++;
	args_init(&a, s + *pos, len - *pos);
	*w = s + *pos;
	if (args_next(&a, scratch, sizeof scratch) < 0)
		return word_at(s, len, pos, w);
	size_t n = (size_t)(a.p - *w);
	*pos += n;
	return n;
}

/* "FILE <nick> uploaded <size> <name>", "... deleted <name>",
 * "... renamed <name> <new>" as a sentence. */
static int render_file(char *out, size_t cap, const char *h, size_t hlen, size_t pos)
{
	const char *nick, *verb, *a, *b;
	size_t nl = word_at(h, hlen, &pos, &nick), vl = word_at(h, hlen, &pos, &verb);

	if (vl == 8 && memcmp(verb, "uploaded", 8) == 0) {
		size_t al = word_at(h, hlen, &pos, &a), bl = arg_at(h, hlen, &pos, &b);
		return snprintf(out, cap, "%.*s uploaded %.*s (%.*s bytes)", (int)nl, nick, (int)bl,
		                b, (int)al, a);
	}
	if (vl == 7 && memcmp(verb, "renamed", 7) == 0) {
		size_t al = arg_at(h, hlen, &pos, &a), bl = arg_at(h, hlen, &pos, &b);
		return snprintf(out, cap, "%.*s renamed %.*s to %.*s", (int)nl, nick, (int)al, a,
		                (int)bl, b);
	}
	return snprintf(out, cap, "%.*s %.*s", (int)nl, nick, (int)(hlen - (verb - h)), verb);
}

/* "PRESENCE <members> +<joined> -<left>" as a sentence. */
static int render_presence(char *out, size_t cap, const char *h, size_t hlen, size_t pos)
{
	const char *n, *j, *l;
	size_t nl = word_at(h, hlen, &pos, &n), jl = word_at(h, hlen, &pos, &j),
	       ll = word_at(h, hlen, &pos, &l);

	if (jl < 2 || ll < 2)
		return snprintf(out, cap, "%.*s", (int)hlen, h);
	return snprintf(out, cap, "%.*s in the room (%.*s joined, %.*s left)", (int)nl, n,
	                (int)jl - 1, j + 1, (int)ll - 1, l + 1);
}

static bool is_word(const char *w, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(w, word, len) == 0;
}

/* The text before the body: "Bob: ", "* Bob ", "Bob joined", ... */
static int render_head(char *out, size_t cap, const char *h, size_t hlen)
{
	const char *verb, *nick;
	size_t pos = 0, vl = word_at(h, hlen, &pos, &verb);
	size_t nl = word_at(h, hlen, &pos, &nick);
	const char *rest = h + pos + (pos < hlen); /* after the nick and one space */
	int rl = (int)(h + hlen - rest);
	rl = rl < 0 ? 0 : rl;

	if (is_word(verb, vl, "MSG"))
		return snprintf(out, cap, "%.*s: ", (int)nl, nick);
	if (is_word(verb, vl, "ACTION"))
		return snprintf(out, cap, "* %.*s ", (int)nl, nick);
	if (is_word(verb, vl, "PRIVATE"))
		return snprintf(out, cap, "%.*s (private): ", (int)nl, nick);
	if (is_word(verb, vl, "JOIN"))
		return snprintf(out, cap, "%.*s joined", (int)nl, nick);
	if (is_word(verb, vl, "LEAVE"))
		return snprintf(out, cap, "%.*s left (%.*s)", (int)nl, nick, rl, rest);
	if (is_word(verb, vl, "NICK"))
		return snprintf(out, cap, "%.*s is now known as %.*s", (int)nl, nick, rl, rest);
	if (is_word(verb, vl, "PRESENCE"))
		return render_presence(out, cap, h, hlen, vl);
	if (is_word(verb, vl, "FILE"))
		return render_file(out, cap, h, hlen, vl);
	return snprintf(out, cap, "%.*s", (int)hlen, h); /* an event we don't know: as is */
}

struct blob *seed_encode(const struct room_msg *msg)
{
	char text[2 * WIRE_NAME_MAX + WIRE_EVENT_HEAD_MAX + 512];

	if (msg->history)
		return NULL;
	int n = render_head(text, sizeof text, msg->head, msg->hlen);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
	return framing_encode(FRAMING_TPKT, text, len, msg->body, msg->blen);
}

void seed_deliver(struct conn *c, const struct room_msg *msg)
{
	struct blob *b = seed_encode(msg);
	if (b) {
		conn_send_blob(c, b);
		blob_unref(b);
	}
}

/* ---- the member's frames ---- */

/* One frame to the member: head, then body (exact bytes). */
static void answer(struct conn *c, const char *head, const char *body, size_t blen)
{
	struct blob *b = framing_encode(FRAMING_TPKT, head, strlen(head), body, blen);
	conn_send_blob(c, b);
	blob_unref(b);
}

void seed_greet(struct conn *c)
{
	answer(c, SEED_GREETING, c->member.nick, strlen(c->member.nick));
	conn_enter_chat(c, false); /* the seed has no history to replay */
}

/* Ruby's String#strip: ASCII whitespace and NUL, both ends. */
static bool strip_space(char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r') || ch == '\0'; }

static void strip(const char **s, size_t *len)
{
	while (*len && strip_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && strip_space((*s)[*len - 1]))
		(*len)--;
}

/* "/nick NAME": the room's rename, answered the seed's way. */
static void seed_rename(struct conn *c, const char *name, size_t len)
{
	char text[NICK_MAX_BYTES + 64];

	strip(&name, &len);
	if (len == 0) {
		answer(c, "Nickname can not be empty.", "", 0);
		return;
	}
	/* An account's name is taken, whoever holds it now. */
	int st = auth_name_reserved(c, name, len)
	                 ? ROOM_NICK_TAKEN
	                 : room_rename(c->env->room, &c->member, name, len);
	switch (st) {
	case NICK_OK: answer(c, "You are now: ", c->member.nick, strlen(c->member.nick)); break;
	case ROOM_NICK_TAKEN:
		snprintf(text, sizeof text, "Nickname %.*s is taken; pick another.", (int)len,
		         name);
		answer(c, text, "", 0);
		break;
	default:
		snprintf(text, sizeof text, "Invalid nickname: 1-%d letters, digits or _-.[]",
		         NICK_MAX_CHARS);
		answer(c, text, "", 0);
		break;
	}
}

void seed_frame(struct conn *c, const char *text, size_t len)
{
	const char *t = text;
	size_t n = len;

	strip(&t, &n);
	if (!conn_in_chat(c) && !(n == 4 && strncasecmp(t, "exit", 4) == 0)) {
		/* Guests may not chat here (--users), and the dialect cannot AUTH. */
		answer(c, "Not sent: this server lets only accounts chat.", "", 0);
	} else if (n == 4 && strncasecmp(t, "exit", 4) == 0) {
		char bye[NICK_MAX_BYTES + 8];
		snprintf(bye, sizeof bye, "Bye, %s.", c->member.nick);
		answer(c, bye, "", 0);
		conn_close_after_flush(c, END_QUIT);
	} else if (n >= 5 && strncasecmp(t, "/nick", 5) == 0 && (n == 5 || strip_space(t[5]))) {
		seed_rename(c, t + 5, n - 5);
	} else if (n == 0) {
		answer(c, "Nothing sent: the message is empty.", "", 0);
	} else if (len > WIRE_SAY_MAX) {
		char why[96];
		snprintf(why, sizeof why, "Not sent: a message is at most %zu bytes.",
		         (size_t)WIRE_SAY_MAX);
		answer(c, why, "", 0);
	} else {
		room_say(c->env->room, &c->member, text, len);
		answer(c, "Ok: ", text, len);
	}
}
