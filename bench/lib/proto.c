/* proto.c - TPKT, lines and RESP for the generators (proto.h). */
#include "proto.h"

#include <stdio.h>
#include <string.h>

#include "bench.h"

int bench_proto_parse(const char *name)
{
	if (name && !strcmp(name, "tpkt"))
		return BP_TPKT;
	if (name && !strcmp(name, "line"))
		return BP_LINE;
	if (name && !strcmp(name, "redis"))
		return BP_RESP;
	bench_fail("unknown protocol %s (tpkt, line, redis)", name ? name : "(none)");
}

long proto_bottle_next(enum bench_proto p, const char *b, size_t n, const char **msg, size_t *mlen)
{
	if (p == BP_TPKT) {
		size_t len;

		if (n < 4)
			return 0;
		if ((unsigned char)b[0] != 3 || b[1] != 0)
			return -1;
		len = (size_t)(unsigned char)b[2] << 8 | (unsigned char)b[3];
		if (len < 4)
			return -1;
		if (n < len)
			return 0;
		*msg = b + 4;
		*mlen = len - 4;
		return (long)len;
	} else {
		const char *nl = memchr(b, '\n', n);
		size_t len;

		if (!nl)
			return 0;
		len = (size_t)(nl - b);
		*msg = b;
		*mlen = len && b[len - 1] == '\r' ? len - 1 : len;
		return (long)(len + 1);
	}
}

void proto_bottle_put(enum bench_proto p, struct bbuf *out, const char *verb, const char *arg,
                      size_t alen)
{
	size_t vlen = strlen(verb), body = vlen + (arg ? 1 + alen : 0);

	if (p == BP_TPKT) {
		unsigned char h[4] = { 3, 0, 0, 0 };

		if (body + 4 > 65535)
			bench_fail("command too long for one TPKT frame");
		h[2] = (unsigned char)((body + 4) >> 8);
		h[3] = (unsigned char)(body + 4);
		if (bbuf_room(out) < body + 4)
			bench_fail("output buffer full");
		bbuf_put(out, h, 4);
	} else if (bbuf_room(out) < body + 1) {
		bench_fail("output buffer full");
	}
	bbuf_put(out, verb, vlen);
	if (arg) {
		bbuf_put(out, " ", 1);
		bbuf_put(out, arg, alen);
	}
	if (p != BP_TPKT)
		bbuf_put(out, "\n", 1);
}

/* A "\r\n"-ended header line at b: its length without CRLF, or -2 need more. */
static long crlf_line(const char *b, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (b[i] == '\r' && b[i + 1] == '\n')
			return (long)i;
	return n > 65536 ? -1 : -2;
}

static int parse_ll(const char *p, long len, long long *v)
{
	int neg = 0;
	long i = 0;

	*v = 0;
	if (len > 0 && p[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i >= len || len > 20)
		return -1;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	if (neg)
		*v = -*v;
	return 0;
}

/* One non-array value at b: bytes it takes, 0 need more, -1 malformed. */
static long resp_scalar(const char *b, size_t n, struct resp_str *s)
{
	long hl;

	if (n < 1)
		return 0;
	hl = crlf_line(b, n);
	if (hl == -2)
		return 0;
	if (hl < 1)
		return -1;
	s->type = b[0];
	switch (b[0]) {
	case '+':
	case '-':
		s->p = b + 1;
		s->len = hl - 1;
		return hl + 2;
	case ':':
		s->p = b + 1;
		s->len = hl - 1;
		return parse_ll(b + 1, hl - 1, &s->num) < 0 ? -1 : hl + 2;
	case '$':
		if (parse_ll(b + 1, hl - 1, &s->num) < 0 || s->num < -1 ||
		    s->num > 512 * 1024 * 1024)
			return -1;
		if (s->num == -1) {
			s->p = NULL;
			s->len = -1;
			return hl + 2;
		}
		if (n < (size_t)hl + 2 + (size_t)s->num + 2)
			return 0;
		s->p = b + hl + 2;
		s->len = (long)s->num;
		if (s->p[s->len] != '\r' || s->p[s->len + 1] != '\n')
			return -1;
		return hl + 2 + s->len + 2;
	default: return -1;
	}
}

long proto_resp_next(const char *b, size_t n, struct resp_val *v)
{
	long long count;
	long hl, used;

	if (n < 1)
		return 0;
	if (b[0] != '*') {
		long r = resp_scalar(b, n, &v->s);

		v->type = v->s.type;
		v->count = 0;
		return r;
	}
	hl = crlf_line(b, n);
	if (hl == -2)
		return 0;
	if (hl < 1 || parse_ll(b + 1, hl - 1, &count) < 0 || count < 0 || count > RESP_MAX_ELEMS)
		return -1;
	v->type = '*';
	v->count = (int)count;
	used = hl + 2;
	for (int i = 0; i < v->count; i++) {
		long r = resp_scalar(b + used, n - (size_t)used, &v->e[i]);

		if (r <= 0)
			return r;
		used += r;
	}
	return used;
}

void proto_resp_put(struct bbuf *out, int argc, const char *const *argv, const size_t *lens)
{
	char h[32];
	int hn;

	hn = snprintf(h, sizeof h, "*%d\r\n", argc);
	bbuf_put(out, h, (size_t)hn);
	for (int i = 0; i < argc; i++) {
		hn = snprintf(h, sizeof h, "$%zu\r\n", lens[i]);
		bbuf_put(out, h, (size_t)hn);
		bbuf_put(out, argv[i], lens[i]);
		bbuf_put(out, "\r\n", 2);
	}
}
