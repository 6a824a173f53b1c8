/* line.c - incremental line decoder with telnet IAC removal. */
#include "line.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* Buffers up to this size stay between lines; bigger ones are released. */
#define LINE_KEEP_CAP 4096

enum { IAC = 255, SB = 250, SE = 240, WILL = 251, DONT = 254 };

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
	d->max = max;
}

void line_decoder_free(struct line_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

bool line_decoder_pending(const struct line_decoder *d)
{
	return d->len > 0 || d->telnet != TN_DATA;
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
		d->telnet = c >= WILL && c <= DONT ? TN_OPTION : c == SB ? TN_SUB : TN_DATA;
		return c == IAC; /* IAC IAC is a literal 0xFF */
	case TN_OPTION: d->telnet = TN_DATA; return 0;
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
	const char *nl = memchr(in, '\n', n < d->max + 2 ? n : d->max + 2);
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
		line_decoder_free(d);
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
