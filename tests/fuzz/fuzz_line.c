/* fuzz_line - line_decode against a reference, whole and in chunks.
 *
 * Input: a mode byte picking max (bit 0..1: 0 -> 16, 1 -> 65536, 2/3 -> 1..64
 * from the next byte), a chunk spec (fuzz.h), then the byte stream. The
 * reference follows line.h and the telnet rules (RFC 854/855): IAC IAC is a
 * data 0xff; IAC WILL/WONT/DO/DONT takes one option byte; IAC SB runs to IAC
 * SE; any other IAC x is a two-byte command, and IAC IP/BRK/AO/EL drop the line
 * so far (even one being skipped as too long). The answers: DO TIMING-MARK gets
 * WILL TIMING-MARK, DO x WONT x, WILL x DONT x, AYT LINE_AYT_ANSWER; the
 * decoder's, taken after every call, must be the reference's (when they fit
 * LINE_REPLY_MAX). A line ends at a data "\n"; one
 * "\r" right before it is dropped; a line whose content passes max is
 * reported once, as soon as that is certain, and skipped up to its newline.
 * Both decoders must give the reference's events; lines never hold "\n" and
 * never pass max; line_decoder_pending matches at the end. */
#include "fuzz.h"
#include "line.h"

#include <stdbool.h>
#include <string.h>

enum { EV_LINE, EV_TOO_LONG };

/* The events of one decoding: kinds, lengths, and the lines' bytes. */
struct llog {
	size_t nev;
	unsigned char *kind;
	size_t *lens;
	unsigned char *bytes;
	size_t nbytes;
	bool pending;
	unsigned char *reply; /* telnet answers, in order */
	size_t nreply, reply_cap;
};

static void llog_init(struct llog *lg, size_t n)
{
	memset(lg, 0, sizeof *lg);
	lg->kind = malloc(n + 1);
	lg->lens = malloc((n + 1) * sizeof *lg->lens);
	lg->bytes = malloc(n + 1);
	CHECK(lg->kind && lg->lens && lg->bytes);
}

static void llog_free(struct llog *lg)
{
	free(lg->reply);
	free(lg->kind);
	free(lg->lens);
	free(lg->bytes);
}

static void llog_add(struct llog *lg, int kind, const void *p, size_t len)
{
	lg->kind[lg->nev] = (unsigned char)kind;
	lg->lens[lg->nev++] = len;
	if (len)
		memcpy(lg->bytes + lg->nbytes, p, len);
	lg->nbytes += len;
}

static void llog_reply(struct llog *lg, const void *p, size_t n)
{
	if (lg->nreply + n > lg->reply_cap) {
		lg->reply_cap = (lg->nreply + n) * 2;
		lg->reply = realloc(lg->reply, lg->reply_cap);
		CHECK(lg->reply != NULL);
	}
	memcpy(lg->reply + lg->nreply, p, n);
	lg->nreply += n;
}

static void llog_same(const struct llog *a, const struct llog *b)
{
	if (a->nreply <= LINE_REPLY_MAX)
		CHECK(a->nreply == b->nreply &&
		      (a->nreply == 0 || memcmp(a->reply, b->reply, a->nreply) == 0));
	CHECK(a->nev == b->nev);
	CHECK(a->nbytes == b->nbytes);
	CHECK(a->pending == b->pending);
	for (size_t i = 0; i < a->nev; i++)
		CHECK(a->kind[i] == b->kind[i] && a->lens[i] == b->lens[i]);
	CHECK(a->nbytes == 0 || memcmp(a->bytes, b->bytes, a->nbytes) == 0);
}

/* ---- the reference ---- */

enum { T_DATA, T_CMD, T_OPT, T_SB, T_SB_IAC };

struct ref {
	size_t max;
	int tn;
	unsigned char verb;
	struct llog *lg;
	unsigned char *cur; /* the line so far (unbounded) */
	size_t len;
	bool skipping;
};

/* The telnet layer: returns true when c is a data byte. */
static bool ref_telnet(struct ref *r, unsigned char c)
{
	switch (r->tn) {
	case T_DATA:
		if (c == 0xff) {
			r->tn = T_CMD;
			return false;
		}
		return true;
	case T_CMD:
		r->tn = T_DATA;
		if (c == 0xff)
			return true; /* escaped 0xff */
		if (c == 250)
			r->tn = T_SB;
		else if (c >= 251)
			r->tn = T_OPT; /* WILL WONT DO DONT + option */
		if (c >= 251)
			r->verb = c;
		if (c == 244 || c == 243 || c == 245 || c == 248) { /* IP BRK AO EL */
			r->len = 0;
			r->skipping = false;
		}
		if (c == 246) /* AYT */
			llog_reply(r->lg, LINE_AYT_ANSWER, sizeof LINE_AYT_ANSWER - 1);
		return false;
	case T_OPT: {
		unsigned char ans[3] = { 0xff, 0, c };
		r->tn = T_DATA;
		if (r->verb == 253)                  /* DO */
			ans[1] = c == 6 ? 251 : 252; /* WILL TIMING-MARK, WONT */
		else if (r->verb == 251)             /* WILL */
			ans[1] = 254;                /* DONT */
		if (ans[1])
			llog_reply(r->lg, ans, 3);
		return false;
	}
	case T_SB:
		if (c == 0xff)
			r->tn = T_SB_IAC;
		return false;
	default: r->tn = c == 240 ? T_DATA : T_SB; return false;
	}
}

static void ref_decode(const uint8_t *s, size_t n, size_t max, struct llog *lg)
{
	struct ref r = { .max = max, .tn = T_DATA, .cur = malloc(n + 1), .lg = lg };

	CHECK(r.cur != NULL);
	for (size_t i = 0; i < n; i++) {
		if (!ref_telnet(&r, s[i]))
			continue;
		if (s[i] == '\n') {
			if (!r.skipping) {
				size_t l = r.len && r.cur[r.len - 1] == '\r' ? r.len - 1 : r.len;
				llog_add(lg, EV_LINE, r.cur, l);
			}
			r.skipping = false;
			r.len = 0;
			continue;
		}
		if (r.skipping)
			continue;
		r.cur[r.len++] = s[i];
		/* A final "\r" may still be dropped by the newline: it doesn't count yet. */
		size_t content = r.cur[r.len - 1] == '\r' ? r.len - 1 : r.len;
		if (content > max) {
			llog_add(lg, EV_TOO_LONG, NULL, 0);
			r.skipping = true;
			r.len = 0;
		}
	}
	lg->pending = r.len > 0 || r.tn != T_DATA;
	free(r.cur);
}

/* ---- the decoder under test ---- */

static enum line_status checked_decode(struct line_decoder *d, const uint8_t *in, size_t n,
                                       size_t *used, struct llog *lg)
{
	const char *line = "junk";
	size_t len = 12345;
	enum line_status st = line_decode(d, in, n, used, &line, &len);

	CHECK(*used <= n);
	switch (st) {
	case LINE_FRAME:
		CHECK(*used > 0);
		CHECK(line != NULL);
		CHECK(len <= d->max);
		CHECK(len == 0 || memchr(line, '\n', len) == NULL);
		/* In place: the line and its ending are what this call used. */
		if (line >= (const char *)in && line < (const char *)in + n)
			CHECK(line + len < (const char *)in + *used);
		llog_add(lg, EV_LINE, line, len);
		break;
	case LINE_TOO_LONG:
		CHECK(*used > 0);
		CHECK(line == NULL && len == 0);
		llog_add(lg, EV_TOO_LONG, NULL, 0);
		break;
	case LINE_NEED_MORE:
		CHECK(*used == n);
		CHECK(line == NULL && len == 0);
		break;
	default: CHECK(!"unknown line_status");
	}
	return st;
}

static void run_decoder(size_t max, const uint8_t *s, size_t n, struct fuzz_chunks *ch,
                        struct llog *lg)
{
	struct line_decoder d;
	size_t pos = 0, used;

	line_decoder_init(&d, max);
	while (pos < n) {
		size_t len = ch ? fuzz_chunks_next(ch, n - pos) : n - pos;
		if (len == 0) {
			CHECK(checked_decode(&d, s + pos, 0, &used, lg) == LINE_NEED_MORE);
			len = 1;
		}
		for (size_t off = 0; off < len; off += used) {
			unsigned char *reply;
			checked_decode(&d, s + pos + off, len - off, &used, lg);
			size_t rn = line_decoder_take_reply(&d, &reply);
			CHECK(rn <= LINE_REPLY_MAX && (rn == 0) == (reply == NULL));
			if (rn)
				llog_reply(lg, reply, rn);
			free(reply);
		}
		pos += len;
	}
	lg->pending = line_decoder_pending(&d);
	line_decoder_free(&d);
	line_decoder_free(&d); /* safe twice */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t mode = fuzz_byte(&in);
	size_t max = (mode & 3) == 0 ? 16 : (mode & 3) == 1 ? 65536 : fuzz_byte(&in) % 64 + 1;
	struct fuzz_chunks ch;
	struct llog ref, lw, ls;

	fuzz_chunks_init(&ch, &in);
	llog_init(&ref, in.n);
	llog_init(&lw, in.n);
	llog_init(&ls, in.n);
	ref_decode(in.p, in.n, max, &ref);
	run_decoder(max, in.p, in.n, NULL, &lw);
	run_decoder(max, in.p, in.n, &ch, &ls);
	llog_same(&ref, &lw);
	llog_same(&ref, &ls);
	llog_free(&ref);
	llog_free(&lw);
	llog_free(&ls);
	return 0;
}
