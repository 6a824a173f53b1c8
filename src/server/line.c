/* line.c - incremental line decoder with telnet IAC removal and answers. */
#include "line.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* Buffers up to this size stay between lines of one read; bigger ones are
 * released at once, and line_decoder_trim releases any. */
#define LINE_KEEP_CAP 4096

/* Telnet commands (RFC 854) and the one option we agree to (RFC 860). */
enum {
	IAC = 255,
	DONT = 254,
	DO = 253,
	WONT = 252,
	WILL = 251,
	SB = 250,
	EL = 248,  /* erase line */
	AYT = 246, /* are you there */
	AO = 245,  /* abort output */
	IP = 244,  /* interrupt process: Ctrl-C */
	BRK = 243, /* break: Ctrl-\ in inetutils telnet */
	SE = 240,
	OPT_TIMING_MARK = 6,
};

enum telnet_state {
	TN_DATA,    /* ordinary bytes */
	TN_IAC,     /* after IAC */
	TN_OPTION,  /* after IAC WILL/WONT/DO/DONT: one option byte follows */
	TN_SUB,     /* inside IAC SB ... IAC SE */
	TN_SUB_IAC, /* IAC inside a subnegotiation */
};

void line_decoder_init(struct line_decoder *d, size_t max)
{
	memset(d, 0, sizeof *d);
	d->max = (uint32_t)(max < LINE_MAX_MAX ? max : LINE_MAX_MAX);
}

static void release_line_buf(struct line_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

void line_decoder_free(struct line_decoder *d)
{
	release_line_buf(d);
	free(d->reply);
	d->reply = NULL;
	d->reply_len = d->reply_cap = 0;
}

bool line_decoder_pending(const struct line_decoder *d)
{
	return d->len > 0 || d->telnet != TN_DATA;
}

size_t line_decoder_take_reply(struct line_decoder *d, unsigned char **out)
{
	size_t n = d->reply_len;

	*out = d->reply;
	d->reply = NULL;
	d->reply_len = d->reply_cap = 0;
	return n;
}

void line_decoder_trim(struct line_decoder *d)
{
	if (d->len == 0 && d->buf)
		release_line_buf(d);
}

static void push_byte(struct line_decoder *d, unsigned char c)
{
	if (d->len == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 256;
		if (d->cap > d->max + 1)
			d->cap = d->max + 1;
		d->buf = xrealloc(d->buf, d->cap);
	}
	d->buf[d->len++] = (char)c;
}

/* Queues an answer for the peer; past LINE_REPLY_MAX untaken bytes it is dropped. */
static void add_reply(struct line_decoder *d, const void *data, size_t n)
{
	if (d->reply_len + n > LINE_REPLY_MAX)
		return;
	if (d->reply_len + n > d->reply_cap) {
		size_t cap = d->reply_cap ? (size_t)d->reply_cap * 2 : 16;
		while (cap < d->reply_len + n)
			cap *= 2;
		d->reply = xrealloc(d->reply, cap);
		d->reply_cap = (uint32_t)cap;
	}
	memcpy(d->reply + d->reply_len, data, n);
	d->reply_len += (uint32_t)n;
}

/* We perform no option and want none from the peer, except that a timing mark is
 * always answered (RFC 860: after the data before it, which has been decoded). A
 * refusal (WONT, DONT) needs no answer: we are already there (RFC 854, RFC 1143). */
static void answer_option(struct line_decoder *d, unsigned char verb, unsigned char opt)
{
	unsigned char ans[3] = { IAC, 0, opt };

	if (verb == DO)
		ans[1] = opt == OPT_TIMING_MARK ? WILL : WONT;
	else if (verb == WILL)
		ans[1] = DONT;
	else
		return;
	add_reply(d, ans, sizeof ans);
}

/* The user gave up the line typed so far (Ctrl-C, Ctrl-\, erase line). */
static void drop_line(struct line_decoder *d)
{
	d->len = 0;
	d->discarding = false;
}

static void telnet_command(struct line_decoder *d, unsigned char c)
{
	switch (c) {
	case WILL:
	case WONT:
	case DO:
	case DONT:
		d->verb = c;
		d->telnet = TN_OPTION;
		return;
	case SB: d->telnet = TN_SUB; return;
	case IP:
	case BRK:
	case AO:
	case EL: drop_line(d); break;
	case AYT: add_reply(d, LINE_AYT_ANSWER, sizeof LINE_AYT_ANSWER - 1); break;
	default: break; /* NOP, DM, GA, EC: nothing to do */
	}
	d->telnet = TN_DATA;
}

/* Feeds one byte through the telnet filter; returns 1 when it is line data. */
static int telnet_filter(struct line_decoder *d, unsigned char c)
{
	switch (d->telnet) {
	case TN_DATA:
		if (c != IAC)
			return 1;
		d->telnet = TN_IAC;
		return 0;
	case TN_IAC:
		if (c == IAC) { /* IAC IAC is a literal 0xFF */
			d->telnet = TN_DATA;
			return 1;
		}
		telnet_command(d, c);
		return 0;
	case TN_OPTION:
		d->telnet = TN_DATA;
		answer_option(d, d->verb, c);
		return 0;
	case TN_SUB:
		if (c == IAC)
			d->telnet = TN_SUB_IAC;
		return 0;
	default:
		/* TN_SUB_IAC */
		d->telnet = c == SE ? TN_DATA : TN_SUB;
		return 0;
	}
}

static enum line_status finish_line(struct line_decoder *d, const char **line, size_t *len)
{
	if (d->len && d->buf[d->len - 1] == '\r')
		d->len--;
	*line = d->buf ? d->buf : "";
	*len = d->len;
	d->len = 0; /* the bytes stay readable until the next call */
	return LINE_FRAME;
}

/* Fast path: a whole line at the front of `in` with no buffered prefix and no
 * telnet bytes is returned in place, without copying. */
static bool decode_in_place(struct line_decoder *d, const char *in, size_t n, size_t *used,
                            const char **line, size_t *len)
{
	size_t scan = (size_t)d->max + 2;
	const char *nl = memchr(in, '\n', n < scan ? n : scan);
	if (!nl)
		return false;
	size_t l = (size_t)(nl - in);
	if (memchr(in, IAC, l))
		return false;
	*used = l + 1;
	if (l && in[l - 1] == '\r')
		l--;
	if (l > d->max)
		return false;
	*line = in;
	*len = l;
	return true;
}

enum line_status line_decode(struct line_decoder *d, const void *input, size_t n, size_t *used,
                             const char **line, size_t *len)
{
	const unsigned char *in = input;

	*line = NULL;
	*len = 0;
	if (d->len == 0 && d->cap > LINE_KEEP_CAP) {
		/* The last long line has been handed out: don't pin its buffer. */
		release_line_buf(d);
	}
	if (d->len == 0 && d->telnet == TN_DATA && !d->discarding &&
	    decode_in_place(d, input, n, used, line, len))
		return LINE_FRAME;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (!telnet_filter(d, c))
			continue;
		if (c == '\n') {
			*used = i + 1;
			if (d->discarding) {
				d->discarding = false;
				continue;
			}
			return finish_line(d, line, len);
		}
		if (d->discarding)
			continue;
		/* One byte of slack for a '\r' that the newline may still drop. */
		if (d->len >= d->max + 1 || (d->len == d->max && c != '\r')) {
			d->discarding = true;
			d->len = 0;
			*used = i + 1;
			return LINE_TOO_LONG;
		}
		push_byte(d, c);
	}
	*used = n;
	return LINE_NEED_MORE;
}
