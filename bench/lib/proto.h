/* proto.h - the wire formats the generators speak: TPKT (RFC 1006) and lines
 * for bottled, RESP for redis. Decoders are pure: given the bytes held, they
 * return how many make one message (0: need more, -1: malformed). */
#ifndef BENCH_PROTO_H
#define BENCH_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct bbuf;

enum bench_proto { BP_TPKT, BP_LINE, BP_RESP };
int bench_proto_parse(const char *name); /* "tpkt", "line", "redis"; fails else */

/* One message of bottled: TPKT payload or one line without its "\r\n". */
long proto_bottle_next(enum bench_proto p, const char *b, size_t n, const char **msg, size_t *mlen);
/* Append a command "<verb> <arg>" (arg may be NULL) as a TPKT frame or a line. */
void proto_bottle_put(enum bench_proto p, struct bbuf *out, const char *verb, const char *arg,
                      size_t alen);

/* One RESP value: simple/error/integer/bulk, or an array of up to 4 of those. */
#define RESP_MAX_ELEMS 4
struct resp_str {
	char type; /* '+', '-', ':', '$' (NULL bulk: len -1) */
	const char *p;
	long len;
	long long num;
};
struct resp_val {
	char type;         /* '*' for an array, else as resp_str */
	int count;         /* array elements */
	struct resp_str s; /* the value when not an array */
	struct resp_str e[RESP_MAX_ELEMS];
};
long proto_resp_next(const char *b, size_t n, struct resp_val *v);
/* Append a RESP command of argc bulk strings. */
void proto_resp_put(struct bbuf *out, int argc, const char *const *argv, const size_t *lens);

#endif
