/* fuzz_client - how the client reads the server (client.c).
 *
 * Input: a flags byte (low 3 bits: commands sent before reading, so replies
 * are owed; the rest picks client_next or client_next_frame per call), a chunk
 * spec (fuzz.h), then bytes "from the server".
 *  1. The pure helpers on the whole stream taken as one payload, and on every
 *     payload decoded from it: client_parse splits at the documented spaces
 *     and stays inside the payload; client_render_event/_lines put out only
 *     safe text (no C0 byte but the "\n" between lines, no DEL, well-formed
 *     UTF-8 with no C1 controls) with one output line per input line;
 *     client_greeting_nick names the text after the last "you are ".
 *  2. A struct client on one end of a socketpair; the stream is written into
 *     the other end chunk by chunk, each followed by client_read and
 *     client_next/client_next_frame until nothing is complete. The messages
 *     must be exactly the frames a plain tpkt_decode finds in the stream, the
 *     first message read with client_next is the greeting, OK/ERR pair with
 *     the owed commands in order (then are notices), a broken frame is
 *     reported once with c->error set, and the end of the stream reads as the
 *     server closing. */
#include "fuzz.h"
#include "client.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_STREAM 65536 /* what one socketpair holds unread with room */

/* Safe for a terminal: no C0 but '\n' (when allowed), no DEL, no C1, and
 * well-formed UTF-8. Returns the number of newlines. */
static size_t check_safe(const char *s, bool newlines)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), lines = 0;
	unsigned cp;

	for (size_t i = 0; i < n;) {
		size_t l = fuzz_utf8(p + i, n - i, &cp);
		CHECK(l > 0);
		CHECK(cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f));
		CHECK(cp >= 0x20 || (cp == '\n' && newlines));
		/* Bidirectional overrides and isolates are shown escaped ("Trojan Source"). */
		CHECK(!(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069));
		lines += cp == '\n';
		i += l;
	}
	return lines;
}

static size_t count_nl(const char *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

static enum client_kind oracle_kind(const char *p, size_t len)
{
	/* In the order of enum client_kind. */
	static const char *const words[] = { "OK",      "ERR",      "MSG",    "JOIN",
		                             "LEAVE",   "NICK",     "ACTION", "PRIVATE",
		                             "HISTORY", "PRESENCE", "FILE" };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strlen(words[i]) == len && memcmp(p, words[i], len) == 0)
			return (enum client_kind)i;
	return CLIENT_UNKNOWN;
}

static const char *find(const char *p, const char *end, const char *what, size_t wlen)
{
	for (; p + wlen <= end; p++)
		if (memcmp(p, what, wlen) == 0)
			return p;
	return NULL;
}

static void check_render_lines(const char *prefix, const char *text, size_t len)
{
	char *out = client_render_lines(prefix, text, len);
	size_t plen = strlen(prefix);

	CHECK(out != NULL && strncmp(out, prefix, plen) == 0);
	CHECK(check_safe(out, true) == count_nl(text, len));
	/* Later lines are indented by the prefix's width (ASCII here). */
	for (const char *nl = strchr(out, '\n'); nl; nl = strchr(nl + 1, '\n'))
		for (size_t i = 1; i <= plen; i++)
			CHECK(nl[i] == ' ');
	free(out);
}

static void check_payload(const char *p, size_t len)
{
	struct client_msg m;
	const char *end = p + len;
	const char *sp = memchr(p, ' ', len);
	size_t wlen = sp ? (size_t)(sp - p) : len;

	client_parse(p, len, &m);
	CHECK(m.text == p && m.len == len);
	CHECK(client_is_event(m.kind) == (m.kind != CLIENT_OK && m.kind != CLIENT_ERR));
	CHECK(m.role == (client_is_event(m.kind) ? CLIENT_EVENT : CLIENT_REPLY));
	CHECK(m.arg >= p && m.arg <= end && m.arg_len <= (size_t)(end - m.arg));
	/* A tagged "@<offset> MSG ...", HISTORY and PRESENCE have heads of their
	 * own: only what holds for every message is checked for them. */
	bool plain = len == 0 || p[0] != '@';
	if (plain)
		CHECK(m.kind == oracle_kind(p, wlen));
	if (!plain || m.kind == CLIENT_HISTORY || m.kind == CLIENT_PRESENCE) {
		char *shown = client_render_event(&m);
		CHECK(shown != NULL);
		check_safe(shown, true);
		free(shown);
	} else if (m.kind == CLIENT_OK || m.kind == CLIENT_ERR || m.kind == CLIENT_UNKNOWN) {
		CHECK(m.arg == (sp ? sp + 1 : end) && m.arg_len == (size_t)(end - m.arg));
	} else {
		/* Events: the nick is the second word, the argument the rest. */
		const char *nick = sp ? sp + 1 : end;
		const char *sp2 = memchr(nick, ' ', (size_t)(end - nick));
		CHECK(m.nick == nick && m.nick_len == (size_t)((sp2 ? sp2 : end) - nick));
		CHECK(m.arg == (sp2 ? sp2 + 1 : end) && m.arg_len == (size_t)(end - m.arg));
	}

	char *ev = client_render_event(&m);
	CHECK(ev != NULL);
	switch (plain ? m.kind : CLIENT_PRESENCE) { /* tagged: only safe */
	case CLIENT_MSG:
		CHECK(check_safe(ev, true) == count_nl(m.arg, m.arg_len));
		CHECK(strstr(ev, ": ") != NULL);
		break;
	case CLIENT_JOIN:
	case CLIENT_LEAVE:
	case CLIENT_NICK:
		check_safe(ev, false);
		CHECK(strncmp(ev, "* ", 2) == 0);
		break;
	case CLIENT_OK:
	case CLIENT_ERR:
	case CLIENT_UNKNOWN: CHECK(check_safe(ev, true) == count_nl(p, len)); break;
	default: check_safe(ev, true); break; /* ACTION, PRIVATE, HISTORY, PRESENCE, FILE */
	}
	free(ev);
	check_render_lines("", p, len);
	check_render_lines("Guest1: ", p, len);

	const char *nick;
	size_t nlen;
	static const char marker[] = "you are ";
	const char *aend = m.arg + m.arg_len;
	if (client_greeting_nick(&m, &nick, &nlen)) {
		CHECK(nick >= m.arg + 8 && nick <= aend && nlen == (size_t)(aend - nick));
		CHECK(memcmp(nick - 8, marker, 8) == 0);
		CHECK(find(nick - 7, aend, marker, 8) == NULL); /* the last one */
	} else {
		CHECK(nick == NULL && nlen == 0);
		CHECK(find(m.arg, aend, marker, 8) == NULL);
	}
}

/* What a plain decoder finds in the whole stream. */
struct frames {
	size_t n;
	size_t *off, *len; /* payload offsets into the stream */
	bool broken;
};

static void ref_frames(const uint8_t *s, size_t n, struct frames *fr)
{
	struct tpkt_decoder d;
	size_t pos = 0, used, len;
	const unsigned char *payload;

	memset(fr, 0, sizeof *fr);
	fr->off = malloc((n / 4 + 1) * sizeof *fr->off);
	fr->len = malloc((n / 4 + 1) * sizeof *fr->len);
	CHECK(fr->off && fr->len);
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	while (pos < n) {
		enum tpkt_status st = tpkt_decode(&d, s + pos, n - pos, &used, &payload, &len);
		pos += used;
		if (st == TPKT_NEED_MORE)
			break;
		if (st != TPKT_FRAME) {
			fr->broken = true;
			break;
		}
		fr->off[fr->n] = (size_t)(payload - s);
		fr->len[fr->n++] = len;
	}
	tpkt_decoder_free(&d);
}

/* The client's side of the model: what the next message must be. */
struct model {
	bool greeted;
	int next_tag;
	int tags;   /* sent */
	size_t got; /* frames seen */
	bool broken;
};

static void check_msg(struct client *c, struct model *md, const struct client_msg *m)
{
	if (!md->greeted) {
		md->greeted = true;
		CHECK(m->role == CLIENT_GREETING);
		return;
	}
	if (client_is_event(m->kind)) {
		CHECK(m->role == CLIENT_EVENT);
	} else if (md->next_tag < md->tags) {
		CHECK(m->role == CLIENT_REPLY && m->tag == 100 + md->next_tag);
		md->next_tag++;
	} else {
		CHECK(m->role == CLIENT_NOTICE);
	}
	CHECK(client_owed(c) == (size_t)(md->tags - md->next_tag));
}

/* Takes every complete message out of what the client has read. */
static void drain_client(struct client *c, struct model *md, uint8_t *pick, const uint8_t *s,
                         const struct frames *fr)
{
	for (;;) {
		const unsigned char *payload;
		size_t len;
		struct client_msg m;
		enum client_next st;
		bool framed = *pick & 1;

		*pick = (uint8_t)(*pick >> 1 | *pick << 7);
		if (framed) {
			st = client_next_frame(c, &payload, &len);
		} else {
			st = client_next(c, &m);
			payload = (const unsigned char *)m.text;
			len = m.len;
		}
		if (st == CLIENT_NEXT_NONE)
			return;
		if (st == CLIENT_NEXT_BROKEN) {
			CHECK(fr->broken && !md->broken && md->got == fr->n);
			CHECK(strncmp(c->error, "bad frame from server: ", 23) == 0);
			md->broken = true;
			return;
		}
		CHECK(md->got < fr->n);
		CHECK(len == fr->len[md->got]);
		CHECK(len == 0 || memcmp(payload, s + fr->off[md->got], len) == 0);
		md->got++;
		if (!framed)
			check_msg(c, md, &m);
	}
}

static void check_connection(uint8_t flags, struct fuzz_chunks *ch, const uint8_t *s, size_t n)
{
	int sv[2];
	struct client c;
	struct model md = { 0 };
	struct frames fr;
	uint8_t pick = flags >> 3;

	ref_frames(s, n, &fr);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	client_attach(&c, sv[0], NULL);
	md.tags = flags & 7;
	for (int i = 0; i < md.tags; i++)
		CHECK(client_send(&c, "ECHO", "x", 1, 100 + i) == 0);
	CHECK(client_owed(&c) == (size_t)md.tags);
	CHECK(client_flush(&c) == 0 && !client_wants_write(&c));

	for (size_t pos = 0; pos < n && !md.broken;) {
		size_t len = fuzz_chunks_next(ch, n - pos);
		if (len == 0)
			len = 1;
		CHECK(write(sv[1], s + pos, len) == (ssize_t)len);
		pos += len;
		CHECK(client_read(&c) == 1);
		drain_client(&c, &md, &pick, s, &fr);
	}
	if (!md.broken) {
		/* Everything read and decoded: the server hangs up. */
		CHECK(md.got == fr.n && !fr.broken);
		/* Read our commands first: closing with unread bytes would be a reset. */
		char junk[256];
		while (recv(sv[1], junk, sizeof junk, MSG_DONTWAIT) > 0)
			continue;
		close(sv[1]);
		sv[1] = -1;
		CHECK(client_read(&c) == 0);
		CHECK(strcmp(c.error, "connection closed by server") == 0);
	}
	client_close(&c);
	if (sv[1] >= 0)
		close(sv[1]);
	free(fr.off);
	free(fr.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags = fuzz_byte(&in);
	struct fuzz_chunks ch;

	fuzz_chunks_init(&ch, &in);
	if (in.n > MAX_STREAM)
		in.n = MAX_STREAM;
	/* The pure helpers on an exact heap copy, so reads past the end are caught. */
	char *copy = malloc(in.n ? in.n : 1);
	CHECK(copy != NULL);
	if (in.n)
		memcpy(copy, in.p, in.n);
	check_payload(copy, in.n);
	struct frames fr;
	ref_frames(in.p, in.n, &fr);
	for (size_t i = 0; i < fr.n; i++)
		check_payload(copy + fr.off[i], fr.len[i]);
	free(fr.off);
	free(fr.len);
	free(copy);

	check_connection(flags, &ch, in.p, in.n);
	return 0;
}
