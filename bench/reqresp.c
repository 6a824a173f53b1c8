/* bench-reqresp - pipelined request/response, every reply checked.
 *
 *   bench-reqresp --port P --proto tpkt|line|redis [--cmd echo|ping] [-c 50]
 *                 [-d 16] [--seconds S | --ms MS] [--size 40] [--max-reqs M]
 *                 [--stall-ms 5000] [--host 127.0.0.1]
 *
 * -c connections each keep -d requests in flight for the measured time, then
 * drain. bottled: "ECHO <payload>" must come back as "OK <payload>" (events
 * between replies are skipped); redis: ECHO <payload> as the same bulk string,
 * or PING as +PONG. A payload carries the connection, a sequence number and a
 * checksum (bench.h), so a lost, duplicated, reordered or corrupted reply ends
 * the run with "FAIL: ..." and exit status 1; so does a reply missing for
 * --stall-ms.
 *
 * Output, one line: reqs= seconds= rate= (replies/s) p50_us= p99_us= max_us=
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/bench.h"
#include "lib/hist.h"
#include "lib/proto.h"

enum { ST_CONNECTING, ST_HELLO, ST_READY };

struct conn {
	int fd;
	int state;
	int hello_left; /* replies to the hello still to skip */
	struct bbuf in, out;
	uint64_t sent, recvd;
	uint64_t *t; /* send time per ring slot */
};

static struct {
	const char *host;
	int port;
	int proto; /* enum bench_proto */
	int ping;
	long c, d, ms, size, max_reqs, stall_ms;
} opt = { "127.0.0.1", 0, BP_TPKT, 0, 50, 16, 5000, 40, 1000000000L, 5000 };

static struct conn *conns;
static int ep;
static long ready;
static int measuring;
static uint64_t replies, last_reply_ns;
static struct hist lat;
static char *pbuf;

static void usage(void)
{
	fputs("usage: bench-reqresp --port P --proto tpkt|line|redis [--cmd echo|ping]\n"
	      "       [-c 50] [-d 16] [--seconds S | --ms MS] [--size 40] [--max-reqs M]\n",
	      stderr);
	exit(2);
}

static const struct bench_num nums[] = {
	{ "-c", &opt.c, 1, 10000, 0 },
	{ "-d", &opt.d, 1, 1024, 0 },
	{ "--seconds", &opt.ms, 0, 3600, 1000 },
	{ "--ms", &opt.ms, 0, 3600000, 0 },
	{ "--size", &opt.size, BENCH_PAYLOAD_MIN, 60000, 0 },
	{ "--max-reqs", &opt.max_reqs, 1, 1000000000L, 0 },
	{ "--stall-ms", &opt.stall_ms, 10, 600000, 0 },
	{ NULL, NULL, 0, 0, 0 },
};

static void args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--cmd") && v && (!strcmp(v, "echo") || !strcmp(v, "ping")))
			opt.ping = !strcmp(v, "ping");
		else if (!bench_target_arg(a, v, &opt.host, &opt.port, &opt.proto) &&
		         !bench_num_arg(nums, a, v))
			usage();
	}
	if (!opt.port || (opt.ping && opt.proto != BP_RESP))
		usage();
}

static void conn_flush(struct conn *c, long id)
{
	if (bbuf_flush(c->fd, &c->out) < 0)
		bench_fail("connection %ld: write: %s", id, strerror(errno));
	bench_ep_mod(ep, c->fd, EPOLLIN | (bbuf_used(&c->out) ? EPOLLOUT : 0u), (uint64_t)id);
}

static void send_request(struct conn *c, long id)
{
	if (opt.ping) {
		static const char *const argv[] = { "PING" };
		static const size_t lens[] = { 4 };

		proto_resp_put(&c->out, 1, argv, lens);
	} else {
		bench_payload_make(pbuf, (size_t)opt.size, c->sent, (uint64_t)id);
		if (opt.proto == BP_RESP) {
			const char *argv[] = { "ECHO", pbuf };
			size_t lens[] = { 4, (size_t)opt.size };

			proto_resp_put(&c->out, 2, argv, lens);
		} else {
			proto_bottle_put(opt.proto, &c->out, "ECHO", pbuf, (size_t)opt.size);
		}
	}
	c->t[c->sent % (uint64_t)opt.d] = bench_now_ns();
	c->sent++;
}

/* A reply to request c->recvd: its payload (NULL for PONG). */
static void got_reply(struct conn *c, long id, const char *p, size_t n)
{
	uint64_t seq, tag, now = bench_now_ns();

	if (c->recvd >= c->sent)
		bench_fail("connection %ld: a reply to a request never sent (duplicated?)", id);
	if (p) {
		if (bench_payload_check(p, n, (size_t)opt.size, &seq, &tag) < 0 ||
		    tag != (uint64_t)id)
			bench_fail("connection %ld: corrupted reply (%zu bytes): %.*s", id, n,
			           (int)(n > 80 ? 80 : n), p);
		if (seq < c->recvd)
			bench_fail(
				"connection %ld: duplicated or reordered reply: #%llu, expected #%llu",
				id, (unsigned long long)seq, (unsigned long long)c->recvd);
		if (seq > c->recvd)
			bench_fail("connection %ld: lost or reordered reply: #%llu, expected #%llu",
			           id, (unsigned long long)seq, (unsigned long long)c->recvd);
	}
	hist_add(&lat, now - c->t[c->recvd % (uint64_t)opt.d]);
	c->recvd++;
	replies++;
	last_reply_ns = now;
}

static void bottle_msg(struct conn *c, long id, const char *m, size_t n)
{
	if (n >= 3 && !memcmp(m, "ERR", 3))
		bench_fail("connection %ld: %.*s", id, (int)n, m);
	if (n < 2 || memcmp(m, "OK", 2))
		return; /* an event: skipped */
	if (c->state == ST_HELLO) {
		if (c->hello_left-- <= 0)
			bench_fail("connection %ld: unexpected reply before any request", id);
		if (!c->hello_left) {
			c->state = ST_READY;
			ready++;
		}
		return;
	}
	if (n < 3 || m[2] != ' ')
		bench_fail("connection %ld: reply without the echoed text: %.*s", id, (int)n, m);
	got_reply(c, id, m + 3, n - 3);
}

static void resp_msg(struct conn *c, long id, const struct resp_val *v)
{
	if (v->type == '-')
		bench_fail("connection %ld: redis error: %.*s", id, (int)v->s.len, v->s.p);
	if (c->state == ST_HELLO) {
		if (v->type != '+')
			bench_fail("connection %ld: no PONG to the hello", id);
		c->state = ST_READY;
		ready++;
		return;
	}
	if (opt.ping) {
		if (v->type != '+' || v->s.len != 4 || memcmp(v->s.p, "PONG", 4))
			bench_fail("connection %ld: expected +PONG", id);
		got_reply(c, id, NULL, 0);
	} else {
		if (v->type != '$' || v->s.len < 0)
			bench_fail("connection %ld: expected a bulk string", id);
		got_reply(c, id, v->s.p, (size_t)v->s.len);
	}
}

static void conn_input(struct conn *c, long id)
{
	for (int guard = 0; guard < 1000000; guard++) {
		long used;

		if (opt.proto == BP_RESP) {
			struct resp_val v;

			used = proto_resp_next(bbuf_head(&c->in), bbuf_used(&c->in), &v);
			if (used > 0)
				resp_msg(c, id, &v);
		} else {
			const char *m;
			size_t n;

			used = proto_bottle_next(opt.proto, bbuf_head(&c->in), bbuf_used(&c->in),
			                         &m, &n);
			if (used > 0)
				bottle_msg(c, id, m, n);
		}
		if (used < 0)
			bench_fail("connection %ld: malformed input from the server", id);
		if (used == 0)
			return;
		bbuf_eat(&c->in, (size_t)used);
	}
}

static void conn_event(long id, uint32_t events)
{
	struct conn *c = &conns[id];
	char who[32];

	snprintf(who, sizeof who, "connection %ld", id);
	if (c->state == ST_CONNECTING) {
		int e = bench_connect_result(c->fd);

		if (e)
			bench_fail("%s: connect: %s", who, strerror(e));
		c->state = ST_HELLO;
		if (opt.proto == BP_RESP) {
			static const char *const argv[] = { "PING" };
			static const size_t lens[] = { 4 };

			proto_resp_put(&c->out, 1, argv, lens);
		} else if (opt.proto == BP_TPKT) {
			proto_bottle_put(BP_TPKT, &c->out, "ECHO", "hello", 5);
			c->hello_left = 2; /* the greeting, then OK hello */
		} else {
			bbuf_put(&c->out, "\n", 1);
			c->hello_left = 1;
		}
		conn_flush(c, id);
		return;
	}
	if (events & EPOLLOUT)
		conn_flush(c, id);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (int k = 0; k < 4; k++) {
			ssize_t r = bbuf_read(c->fd, &c->in, who);

			if (r == 0)
				bench_fail("%s: closed by the server", who);
			if (r < 0)
				break;
			conn_input(c, id);
		}
	}
}

static void loop_once(int timeout_ms)
{
	struct epoll_event evs[256];
	int k = epoll_wait(ep, evs, 256, timeout_ms);

	if (k < 0 && errno != EINTR)
		bench_fail("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < k; i++)
		conn_event((long)evs[i].data.u64, evs[i].events);
}

int main(int argc, char **argv)
{
	uint64_t t0, t_end, deadline, total = 0;
	double secs;

	args(argc, argv);
	bench_raise_nofile();
	ep = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)opt.c, sizeof *conns);
	pbuf = malloc((size_t)opt.size);
	if (ep < 0 || !conns || !pbuf)
		bench_fail("setup: %s", strerror(errno));
	for (long i = 0; i < opt.c; i++) {
		struct conn *c = &conns[i];

		c->fd = bench_connect(opt.host, opt.port);
		if (c->fd < 0)
			bench_fail("connect: %s", strerror(errno));
		bbuf_init(&c->in, 65536 + 8);
		bbuf_init(&c->out, (size_t)opt.d * ((size_t)opt.size + 64) + 256);
		c->t = calloc((size_t)opt.d, sizeof *c->t);
		if (!c->t)
			bench_fail("out of memory");
		bench_ep_add(ep, c->fd, EPOLLIN | EPOLLOUT, (uint64_t)i);
	}
	deadline = bench_now_ns() + 30000000000ull;
	while (ready < opt.c) {
		loop_once(50);
		if (bench_now_ns() > deadline)
			bench_fail("setup: %ld of %ld connections greeted in 30 s", ready, opt.c);
	}

	measuring = 1;
	t0 = last_reply_ns = bench_now_ns();
	t_end = t0 + (uint64_t)opt.ms * 1000000u;
	for (;;) {
		uint64_t now = bench_now_ns();
		int open = 0;

		for (long i = 0; i < opt.c; i++) {
			struct conn *c = &conns[i];
			int sent = 0;

			while (now < t_end && total < (uint64_t)opt.max_reqs &&
			       c->sent - c->recvd < (uint64_t)opt.d) {
				send_request(c, i);
				total++;
				sent = 1;
			}
			if (sent)
				conn_flush(c, i);
			open |= c->recvd != c->sent;
		}
		if (total >= (uint64_t)opt.max_reqs)
			t_end = now;
		if (now >= t_end && !open)
			break;
		loop_once(10);
		if (bench_now_ns() - last_reply_ns > (uint64_t)opt.stall_ms * 1000000u)
			bench_fail("stalled: no reply for %ld ms, %llu of %llu requests answered "
			           "(lost?)",
			           opt.stall_ms, (unsigned long long)replies,
			           (unsigned long long)total);
	}
	secs = (double)(last_reply_ns - t0) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	printf("reqs=%llu seconds=%.3f rate=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
	       (unsigned long long)replies, secs, (double)replies / secs,
	       (double)hist_pct(&lat, 50) / 1e3, (double)hist_pct(&lat, 99) / 1e3,
	       (double)lat.max / 1e3);
	return 0;
}
