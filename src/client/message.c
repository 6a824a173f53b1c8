/* message.c - the server's messages for the client: parsing a payload into a
 * struct client_msg, rendering events as escaped lines, the reply of OFFSETS
 * and HISTORY, times and sizes for people, and the draft of a message typed
 * over several lines. Pure. */
#include "message.h"
#include "args.h"
#include "escape.h"
#include "utf8.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== parsing ==== */

/* Splits p[0..len) at the first space: *word gets the part before it, the
 * return value the rest (NULL when there is no space). */
static const char *split_word(const char *p, size_t len, size_t *word, size_t *rest)
{
	const char *sp = memchr(p, ' ', len);

	if (!sp) {
		*word = len;
		*rest = 0;
		return NULL;
	}
	*word = (size_t)(sp - p);
	*rest = len - *word - 1;
	return sp + 1;
}

static bool word_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(p, word, len) == 0;
}

static enum client_kind kind_of(const char *p, size_t len)
{
	static const struct {
		const char *word;
		enum client_kind kind;
	} words[] = {
		{ "OK", CLIENT_OK },           { "ERR", CLIENT_ERR },
		{ "MSG", CLIENT_MSG },         { "JOIN", CLIENT_JOIN },
		{ "LEAVE", CLIENT_LEAVE },     { "NICK", CLIENT_NICK },
		{ "ACTION", CLIENT_ACTION },   { "PRIVATE", CLIENT_PRIVATE },
		{ "HISTORY", CLIENT_HISTORY }, { "PRESENCE", CLIENT_PRESENCE },
		{ "FILE", CLIENT_FILE },
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (word_is(p, len, words[i].word))
			return words[i].kind;
	return CLIENT_UNKNOWN;
}

/* Decimal digits only, 1..19 of them (below 2^63 is all a server sends). */
static bool parse_u64(const char *p, size_t len, uint64_t *v)
{
	if (len == 0 || len > 19)
		return false;
	*v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return true;
}

/* "<nick> <rest>": the nick first, what follows it is the argument. */
static void split_nick(struct client_msg *m, const char *p, size_t len)
{
	m->nick = p;
	const char *after = split_word(p, len, &m->nick_len, &m->arg_len);
	m->arg = after ? after : p + m->nick_len;
}

/* "HISTORY <offset> <time> <KIND> <nick> <text>": of says what is kept;
 * CLIENT_UNKNOWN (shown raw) when the head is malformed. */
static void parse_history(struct client_msg *m, const char *p, size_t len)
{
	size_t wlen, rlen, tlen, klen, klen_rest;
	const char *t = split_word(p, len, &wlen, &rlen);

	m->of = CLIENT_UNKNOWN;
	if (!t || !parse_u64(p, wlen, &m->offset)) {
		m->offset = 0;
		return;
	}
	const char *k = split_word(t, rlen, &tlen, &klen_rest);
	if (!k)
		return;
	m->time = t;
	m->time_len = tlen;
	const char *rest = split_word(k, klen_rest, &klen, &rlen);
	enum client_kind of = kind_of(k, klen);
	if (!rest || (of != CLIENT_MSG && of != CLIENT_ACTION))
		return;
	m->of = of;
	split_nick(m, rest, rlen);
}

/* "@<offset> ": the tag of a room message for a connection that said
 * OFFSETS on. Returns the bytes it takes, 0 when p does not start with one. */
static size_t parse_tag(const char *p, size_t len, uint64_t *offset)
{
	size_t wlen, rlen;

	if (len < 3 || p[0] != '@' || !split_word(p, len, &wlen, &rlen) ||
	    !parse_u64(p + 1, wlen - 1, offset))
		return 0;
	return wlen + 1;
}

void client_parse(const char *p, size_t len, struct client_msg *m)
{
	uint64_t offset = 0;
	size_t tag = parse_tag(p, len, &offset);
	const char *q = p + tag;
	size_t qlen = len - tag, wlen, rlen;
	const char *rest = split_word(q, qlen, &wlen, &rlen);

	memset(m, 0, sizeof *m);
	m->text = p;
	m->len = len;
	m->kind = kind_of(q, wlen);
	if (tag && m->kind != CLIENT_MSG && m->kind != CLIENT_ACTION) {
		m->kind = CLIENT_UNKNOWN; /* only room messages carry a tag */
		rest = split_word(p, len, &wlen, &rlen);
	} else {
		m->offset = offset;
	}
	m->role = client_is_event(m->kind) ? CLIENT_EVENT : CLIENT_REPLY;
	m->arg = rest ? rest : m->text + len;
	m->arg_len = rlen;
	switch (m->kind) {
	case CLIENT_OK:
	case CLIENT_ERR:
	case CLIENT_UNKNOWN:
	case CLIENT_PRESENCE: break;
	case CLIENT_HISTORY: parse_history(m, m->arg, m->arg_len); break;
	default: split_nick(m, m->arg, m->arg_len); break;
	}
}

bool client_is_event(enum client_kind kind) { return kind != CLIENT_OK && kind != CLIENT_ERR; }

static bool epoch_valid(const char *p, size_t len)
{
	if (len == 0 || len > CLIENT_EPOCH_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= 'A' && p[i] <= 'Z')))
			return false;
	return true;
}

bool client_offsets_reply(const struct client_msg *m, char epoch[CLIENT_EPOCH_MAX + 1],
                          uint64_t *last, int *complete)
{
	size_t elen, rlen, llen, clen, crest;
	const char *l = split_word(m->arg, m->arg_len, &elen, &rlen);

	if (m->kind != CLIENT_OK || !l || !epoch_valid(m->arg, elen))
		return false;
	const char *c = split_word(l, rlen, &llen, &crest);
	if (!parse_u64(l, llen, last))
		return false;
	*complete = -1;
	if (c) {
		if (split_word(c, crest, &clen, &rlen))
			return false;
		if (word_is(c, clen, "complete"))
			*complete = 1;
		else if (word_is(c, clen, "incomplete"))
			*complete = 0;
		else
			return false;
	}
	memcpy(epoch, m->arg, elen);
	epoch[elen] = '\0';
	return true;
}

/* ==== display ==== */

/* A growing NUL-terminated string. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void text_adds(struct text *t, const char *s) { text_add(t, s, strlen(s)); }

/* escape_text output for n untrusted bytes: at most "\xNN" for each. */
static char *escape_dup(const char *s, size_t n)
{
	size_t cap = n * 4 + 4;
	return escape_text(xmalloc(cap), cap, s, n);
}

static void text_add_escaped(struct text *t, const char *s, size_t n)
{
	char *safe = escape_dup(s, n);
	text_adds(t, safe);
	free(safe);
}

char *client_render_lines(const char *prefix, const char *text, size_t len)
{
	struct text out = { 0 };
	size_t indent = utf8_columns(prefix);
	const char *p = text, *end = text + len;

	text_adds(&out, prefix);
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		text_add_escaped(&out, p, n);
		if (!nl)
			break;
		text_add(&out, "\n", 1);
		for (size_t i = 0; i < indent; i++)
			text_add(&out, " ", 1);
		p = nl + 1;
	}
	return out.s;
}

/* stamp, before, the nick escaped, after; then the text line by line. */
static char *render_text(const struct client_msg *m, const char *stamp, const char *before,
                         const char *after)
{
	struct text prefix = { 0 };

	text_adds(&prefix, stamp);
	text_adds(&prefix, before);
	text_add_escaped(&prefix, m->nick, m->nick_len);
	text_adds(&prefix, after);
	char *out = client_render_lines(prefix.s, m->arg, m->arg_len);
	free(prefix.s);
	return out;
}

/* "<stamp>* <nick><middle><arg><end>" with nick and arg escaped. */
static char *render_notice(const struct client_msg *m, const char *stamp, const char *middle,
                           bool with_arg, const char *end)
{
	struct text out = { 0 };

	text_adds(&out, stamp);
	text_adds(&out, "* ");
	text_add_escaped(&out, m->nick, m->nick_len);
	text_adds(&out, middle);
	text_add_escaped(&out, m->arg, with_arg ? m->arg_len : 0);
	text_adds(&out, end);
	return out.s;
}

char *client_human_size(char *out, size_t outsz, uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(out, outsz, "%llu byte%s", (unsigned long long)bytes,
		         bytes == 1 ? "" : "s");
		return out;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	int n = snprintf(out, outsz, "%.1f", v);
	if (n >= 2 && (size_t)n < outsz && strcmp(out + n - 2, ".0") == 0)
		out[n - 2] = '\0'; /* "10 MiB", not "10.0 MiB" */
	snprintf(out + strlen(out), outsz - strlen(out), " %s", units[u]);
	return out;
}

/* The next word of a FILE event as its name (unquoted), escaped onto out;
 * false when there is none or it is malformed. */
static bool add_name_word(struct text *out, struct args *a)
{
	char name[1024];
	int n = args_next(a, name, sizeof name);

	if (n < 0)
		return false;
	text_add_escaped(out, name, (size_t)n);
	return true;
}

/* "uploaded <size> <name>", "deleted <name>", "renamed <old> <new>"; a form
 * this client does not know is shown as it came. */
static char *render_file(const struct client_msg *m, const char *stamp)
{
	struct text out = { 0 };
	struct args a;
	char word[32], size[32];
	uint64_t bytes = 0;
	bool ok = false;

	text_adds(&out, stamp);
	text_adds(&out, "* ");
	text_add_escaped(&out, m->nick, m->nick_len);
	args_init(&a, m->arg, m->arg_len);
	int n = args_next(&a, word, sizeof word);
	if (n > 0 && strcmp(word, "uploaded") == 0) {
		char num[24];
		ok = args_next(&a, num, sizeof num) > 0 && parse_u64(num, strlen(num), &bytes);
		text_adds(&out, " uploaded ");
		ok = ok && add_name_word(&out, &a);
		client_human_size(size, sizeof size, bytes);
		text_adds(&out, " (");
		text_adds(&out, size);
		text_adds(&out, ")");
	} else if (n > 0 && strcmp(word, "deleted") == 0) {
		text_adds(&out, " deleted ");
		ok = add_name_word(&out, &a);
	} else if (n > 0 && strcmp(word, "renamed") == 0) {
		text_adds(&out, " renamed ");
		ok = add_name_word(&out, &a);
		text_adds(&out, " to ");
		ok = ok && add_name_word(&out, &a);
	}
	if (ok && args_done(&a))
		return out.s;
	free(out.s);
	return client_render_lines(stamp, m->text, m->len);
}

/* "PRESENCE <members> +<joined> -<left>" as "* 380 joined, 7 left (5012 here)". */
static char *render_presence(const struct client_msg *m, const char *stamp)
{
	const char *w[3];
	size_t wl[3], rl = m->arg_len;
	const char *p = m->arg;
	uint64_t members, joined, left;
	int i;

	for (i = 0; i < 3 && p; i++) {
		w[i] = p;
		p = split_word(p, rl, &wl[i], &rl);
	}
	if (i < 3 || p || !parse_u64(w[0], wl[0], &members) || wl[1] < 2 || w[1][0] != '+' ||
	    !parse_u64(w[1] + 1, wl[1] - 1, &joined) || wl[2] < 2 || w[2][0] != '-' ||
	    !parse_u64(w[2] + 1, wl[2] - 1, &left))
		return client_render_lines(stamp, m->text, m->len);
	size_t n = strlen(stamp) + 96;
	char *out = xmalloc(n);
	snprintf(out, n, "%s* %llu joined, %llu left (%llu here)", stamp,
	         (unsigned long long)joined, (unsigned long long)left, (unsigned long long)members);
	return out;
}

static char *render_kind(const struct client_msg *m, enum client_kind kind, const char *stamp)
{
	switch (kind) {
	case CLIENT_MSG: return render_text(m, stamp, "", ": ");
	case CLIENT_ACTION: return render_text(m, stamp, "* ", " ");
	case CLIENT_PRIVATE: return render_text(m, stamp, "[private] ", ": ");
	case CLIENT_JOIN: return render_notice(m, stamp, " joined", false, "");
	case CLIENT_LEAVE: return render_notice(m, stamp, " left (", true, ")");
	case CLIENT_NICK: return render_notice(m, stamp, " is now ", true, "");
	case CLIENT_PRESENCE: return render_presence(m, stamp);
	case CLIENT_FILE: return render_file(m, stamp);
	default: return client_render_lines(stamp, m->text, m->len);
	}
}

char *client_render_stamped(const struct client_msg *m, const char *stamp)
{
	return render_kind(m, m->kind == CLIENT_HISTORY ? m->of : m->kind, stamp);
}

char *client_render_event(const struct client_msg *m) { return client_render_stamped(m, ""); }

/* ==== times ==== */

void client_stamp(char out[CLIENT_STAMP_LEN], time_t t, time_t now)
{
	struct tm tm, today;

	if (!localtime_r(&t, &tm) || !localtime_r(&now, &today)) {
		snprintf(out, CLIENT_STAMP_LEN, "--:-- ");
		return;
	}
	bool same_day = tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday;
	(void)strftime(out, CLIENT_STAMP_LEN, same_day ? "%H:%M " : "%Y-%m-%d %H:%M ", &tm);
}

/* n digits at p as a number; -1 when they are not all digits. */
static int digits(const char *p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

bool client_history_time(const struct client_msg *m, time_t *t)
{
	const char *p = m->time;
	size_t len = m->time_len, i = 19;
	struct tm tm = { 0 };

	/* "2026-11-22T13:22:05", then ".123" (optional), then "Z" or "+03:00" */
	if (m->kind != CLIENT_HISTORY || !p || len < 20 || p[4] != '-' || p[7] != '-' ||
	    p[10] != 'T' || p[13] != ':' || p[16] != ':')
		return false;
	tm.tm_year = digits(p, 4) - 1900;
	tm.tm_mon = digits(p + 5, 2) - 1;
	tm.tm_mday = digits(p + 8, 2);
	tm.tm_hour = digits(p + 11, 2);
	tm.tm_min = digits(p + 14, 2);
	tm.tm_sec = digits(p + 17, 2);
	if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
	    tm.tm_sec < 0)
		return false;
	if (p[i] == '.')
		for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++)
			;
	long off = 0;
	if (i + 1 == len && p[i] == 'Z') {
		off = 0;
	} else if (i + 6 == len && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
		int hh = digits(p + i + 1, 2), mm = digits(p + i + 4, 2);
		if (hh < 0 || mm < 0)
			return false;
		off = (p[i] == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
	} else {
		return false;
	}
	*t = timegm(&tm) - off;
	return true;
}

bool client_greeting_nick(const struct client_msg *m, const char **nick, size_t *len)
{
	static const char marker[] = "you are ";
	const char *end = m->arg + m->arg_len;

	*nick = NULL;
	*len = 0;
	for (const char *p = m->arg; p + sizeof marker - 1 <= end; p++)
		if (memcmp(p, marker, sizeof marker - 1) == 0)
			*nick = p + sizeof marker - 1; /* the last one counts */
	if (!*nick)
		return false;
	*len = (size_t)(end - *nick);
	return true;
}

/* ==== composing a message ==== */

void client_draft_init(struct client_draft *d) { memset(d, 0, sizeof *d); }

void client_draft_free(struct client_draft *d)
{
	free(d->text);
	client_draft_init(d);
}

static void draft_append(struct client_draft *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		d->cap = (d->len + n + 1) * 2;
		d->text = xrealloc(d->text, d->cap);
	}
	memcpy(d->text + d->len, s, n);
	d->len += n;
	d->text[d->len] = '\0';
}

bool client_draft_add(struct client_draft *d, const char *line, size_t len, bool more_follows)
{
	bool cont = len > 0 && line[len - 1] == '\\';

	if (cont)
		len--;
	if (d->open)
		draft_append(d, "\n", 1);
	draft_append(d, line, len);
	d->open = cont || more_follows;
	return !d->open;
}

char *client_draft_take(struct client_draft *d, size_t *len)
{
	char *text = d->text ? d->text : xstrdup("");
	size_t n = d->len;

	while (n > 0 && text[n - 1] == '\n') /* a paste's final newline ends it, no more */
		n--;
	text[n] = '\0';
	*len = n;
	client_draft_init(d);
	return text;
}
