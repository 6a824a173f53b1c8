/* bench-fanout - chat fan-out: 1 publisher, N subscribers, every delivery
 * checked.
 *
 *   bench-fanout --port P --proto tpkt|line|redis -n N [--size 64]
 *                [--inflight 64] [--seconds 5] [--max-msgs M] [--pid PID]
 *                [--host 127.0.0.1] [--setup-timeout 120] [--batch 256]
 *                [--port2 P2]
 *
 * bottled (tpkt, line): every subscriber connects and is greeted; then the
 * publisher connects and SAYs; each subscriber takes "MSG <publisher> <payload>"
 * and skips anything else (JOIN, LEAVE, NICK, replies, new event words).
 * redis: SUBSCRIBE bench / PUBLISH bench <payload>; PUBLISH must report N
 * receivers.
 *
 * With --port2, every other subscriber connects there instead (another node of
 * a bottled cluster): half of the deliveries then cross from the publisher's
 * node through Redis to the other node.
 *
 * At most --inflight messages are published and not yet delivered to every
 * subscriber. Each payload carries a sequence number, its send time and a
 * checksum (bench.h): any lost, duplicated, reordered or corrupted delivery
 * ends the run with "FAIL: ..." and exit status 1.
 *
 * Output, one line: deliveries= msgs= seconds= rate= (deliveries/s)
 * p50_us= p99_us= max_us= (publish to delivery) cpu_s= cpu_ns_per_delivery=
 * (utime+stime of --pid over the measured time).
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

enum { ST_IDLE, ST_CONNECTING, ST_HELLO, ST_READY };

struct peer {
	int fd;
	int state;
	struct bbuf in, out;
	uint64_t next; /* subscriber: next sequence number expected */
};

static struct {
	const char *host;
	int port;
	int proto; /* enum bench_proto */
	long n, size, inflight, seconds_ms, max_msgs, setup_ms, batch;
	long pid;
	int port2; /* 0: every subscriber on port */
} opt = { "127.0.0.1", 0, BP_TPKT, 1, 64, 64, 5000, 1000000000L, 120000, 256, 0, 0 };

static struct peer *subs, pub;
static int ep;
static long connected, ready; /* subscribers */
static char pubnick[160];
static size_t pubnick_len;
static uint64_t pub_seq, done, acks, deliveries, last_delivery_ns;
static int skip_acks; /* replies to the hello, not to a SAY */
static uint32_t *got; /* per ring slot: subscribers that have it */
static struct hist lat;
static char *msgbuf;

static void usage(void)
{
	fputs("usage: bench-fanout --port P --proto tpkt|line|redis -n N [--size 64]\n"
	      "       [--inflight 64] [--seconds S | --ms MS] [--max-msgs M] [--pid PID]\n"
	      "       [--port2 P2]\n",
	      stderr);
	exit(2);
}

static const struct bench_num nums[] = {
	{ "-n", &opt.n, 1, 100000, 0 },
	{ "--size", &opt.size, BENCH_PAYLOAD_MIN, 65000, 0 },
	{ "--inflight", &opt.inflight, 1, 65536, 0 },
	{ "--seconds", &opt.seconds_ms, 0, 3600, 1000 },
	{ "--ms", &opt.seconds_ms, 0, 3600000, 0 },
	{ "--max-msgs", &opt.max_msgs, 1, 1000000000L, 0 },
	{ "--pid", &opt.pid, 1, 1 << 30, 0 },
	{ "--setup-timeout", &opt.setup_ms, 1, 3600, 1000 },
	{ "--batch", &opt.batch, 1, 100000, 0 },
	{ NULL, NULL, 0, 0, 0 },
};

static void args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--port2"))
			opt.port2 = (int)bench_arg_long(a, v, 1, 65535);
		else if (!bench_target_arg(a, v, &opt.host, &opt.port, &opt.proto) &&
		         !bench_num_arg(nums, a, v))
			usage();
	}
	if (!opt.port)
		usage();
}

/* ---- connections ---- */

static void peer_open(struct peer *p, int port, uint64_t id, size_t incap, size_t outcap)
{
	p->fd = bench_connect(opt.host, port);
	if (p->fd < 0)
		bench_fail("connect to %s:%d: %s", opt.host, port, strerror(errno));
	bbuf_init(&p->in, incap);
	bbuf_init(&p->out, outcap);
	p->state = ST_CONNECTING;
	bench_ep_add(ep, p->fd, EPOLLIN | EPOLLOUT, id);
}

static void peer_want_out(struct peer *p, uint64_t id)
{
	bench_ep_mod(ep, p->fd, EPOLLIN | (bbuf_used(&p->out) ? EPOLLOUT : 0u), id);
}

static void peer_flush(struct peer *p, uint64_t id, const char *who)
{
	int r = bbuf_flush(p->fd, &p->out);

	if (r < 0)
		bench_fail("%s: write: %s", who, strerror(errno));
	peer_want_out(p, id);
}

/* The first bytes: select the framing and get greeted, or subscribe. */
static void peer_hello(struct peer *p, int is_pub)
{
	if (opt.proto == BP_RESP) {
		static const char *const sub[] = { "SUBSCRIBE", "bench" };
		static const size_t sublen[] = { 9, 5 };

		if (!is_pub)
			proto_resp_put(&p->out, 2, sub, sublen);
	} else if (opt.proto == BP_TPKT) {
		proto_bottle_put(BP_TPKT, &p->out, "ECHO", "hello", 5);
	} else {
		bbuf_put(&p->out, "\n", 1); /* an empty line: ignored, but greets */
	}
	p->state = ST_HELLO;
}

/* ---- what arrives ---- */

static void delivered(long i, const char *p, size_t n)
{
	struct peer *s = &subs[i];
	uint64_t seq, tag, now = bench_now_ns();

	if (bench_payload_check(p, n, (size_t)opt.size, &seq, &tag) < 0)
		bench_fail("subscriber %ld: corrupted delivery (%zu bytes): %.*s", i, n,
		           (int)(n > 80 ? 80 : n), p);
	if (seq < s->next)
		bench_fail("subscriber %ld: duplicated or reordered delivery: got #%llu, "
		           "expected #%llu",
		           i, (unsigned long long)seq, (unsigned long long)s->next);
	if (seq > s->next)
		bench_fail("subscriber %ld: lost or reordered delivery: got #%llu, expected #%llu",
		           i, (unsigned long long)seq, (unsigned long long)s->next);
	if (seq >= pub_seq)
		bench_fail("subscriber %ld: got #%llu, never published", i,
		           (unsigned long long)seq);
	s->next++;
	deliveries++;
	last_delivery_ns = now;
	hist_add(&lat, now > tag ? now - tag : 0);
	got[seq % (uint64_t)opt.inflight]++;
	while (done < pub_seq && got[done % (uint64_t)opt.inflight] == (uint32_t)opt.n) {
		got[done % (uint64_t)opt.inflight] = 0;
		done++;
	}
}

static void sub_bottle_msg(long i, const char *m, size_t n)
{
	struct peer *s = &subs[i];

	if (s->state == ST_HELLO) {
		if (n >= 3 && !memcmp(m, "ERR", 3))
			bench_fail("subscriber %ld: refused: %.*s", i, (int)n, m);
		if (n < 3 || memcmp(m, "OK ", 3))
			return; /* not the greeting yet */
		s->state = ST_READY;
		ready++;
		return;
	}
	if (pubnick_len && n >= 4 + pubnick_len + 1 && !memcmp(m, "MSG ", 4) &&
	    !memcmp(m + 4, pubnick, pubnick_len) && m[4 + pubnick_len] == ' ') {
		size_t skip = 4 + pubnick_len + 1;

		delivered(i, m + skip, n - skip);
	}
	/* anything else (JOIN, LEAVE, NICK, replies, new events): skipped */
}

static void sub_resp_msg(long i, const struct resp_val *v)
{
	struct peer *s = &subs[i];

	if (v->type == '-')
		bench_fail("subscriber %ld: redis error: %.*s", i, (int)v->s.len, v->s.p);
	if (v->type != '*' || v->count != 3 || v->e[0].type != '$')
		return;
	if (v->e[0].len == 9 && !memcmp(v->e[0].p, "subscribe", 9) && s->state == ST_HELLO) {
		s->state = ST_READY;
		ready++;
	} else if (v->e[0].len == 7 && !memcmp(v->e[0].p, "message", 7) && v->e[2].type == '$' &&
	           v->e[2].len >= 0) {
		delivered(i, v->e[2].p, (size_t)v->e[2].len);
	}
}

static void pub_bottle_msg(const char *m, size_t n)
{
	if (pub.state == ST_HELLO) {
		const char *you;

		if (n < 3 || memcmp(m, "OK ", 3))
			bench_fail("publisher: expected the greeting, got: %.*s", (int)n, m);
		you = memmem(m, n, "you are ", 8);
		if (!you)
			bench_fail("publisher: no nick in the greeting: %.*s", (int)n, m);
		/* bench_fail does not return */
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck */
		you += 8;
		pubnick_len = 0;
		while (you < m + n && *you != ' ' && *you != ';' &&
		       pubnick_len < sizeof pubnick - 1)
			pubnick[pubnick_len++] = *you++;
		if (!pubnick_len)
			bench_fail("publisher: empty nick in the greeting");
		pub.state = ST_READY;
		skip_acks = opt.proto == BP_TPKT; /* the reply to the hello ECHO comes next */
		return;
	}
	if (n >= 3 && !memcmp(m, "ERR", 3))
		bench_fail("publisher: %.*s", (int)n, m);
	if (n >= 2 && !memcmp(m, "OK", 2)) {
		if (skip_acks) {
			skip_acks--;
			return;
		}
		if (++acks > pub_seq)
			bench_fail("publisher: more replies than SAYs");
	}
}

static void pub_resp_msg(const struct resp_val *v)
{
	if (v->type == '-')
		bench_fail("publisher: redis error: %.*s", (int)v->s.len, v->s.p);
	if (v->type != ':')
		bench_fail("publisher: unexpected reply type %c", v->type);
	if (v->s.num != opt.n)
		bench_fail("publisher: PUBLISH reached %lld of %ld subscribers", v->s.num, opt.n);
	if (++acks > pub_seq)
		bench_fail("publisher: more replies than PUBLISHes");
}

/* Decode every whole message held by peer id; fail on malformed input. */
static void peer_input(long id, struct peer *p, const char *who)
{
	for (int guard = 0; guard < 1000000; guard++) {
		const char *m;
		size_t n;
		long used;

		if (opt.proto == BP_RESP) {
			struct resp_val v;

			used = proto_resp_next(bbuf_head(&p->in), bbuf_used(&p->in), &v);
			if (used > 0) {
				if (id < 0)
					pub_resp_msg(&v);
				else
					sub_resp_msg(id, &v);
			}
		} else {
			used = proto_bottle_next(opt.proto, bbuf_head(&p->in), bbuf_used(&p->in),
			                         &m, &n);
			if (used > 0) {
				if (id < 0)
					pub_bottle_msg(m, n);
				else
					sub_bottle_msg(id, m, n);
			}
		}
		if (used < 0)
			bench_fail("%s: malformed input from the server", who);
		if (used == 0)
			return;
		bbuf_eat(&p->in, (size_t)used);
	}
}

static void peer_event(long id, uint32_t events)
{
	struct peer *p = id < 0 ? &pub : &subs[id];
	uint64_t key = id < 0 ? (uint64_t)opt.n : (uint64_t)id;
	char who[48];

	if (id < 0)
		snprintf(who, sizeof who, "publisher");
	else
		snprintf(who, sizeof who, "subscriber %ld", id);
	if (p->state == ST_CONNECTING) {
		int e = bench_connect_result(p->fd);

		if (e)
			bench_fail("%s: connect: %s", who, strerror(e));
		if (id >= 0)
			connected++;
		peer_hello(p, id < 0);
		if (id < 0 && opt.proto == BP_RESP)
			pub.state = ST_READY;
		peer_flush(p, key, who);
		return;
	}
	if (events & EPOLLOUT)
		peer_flush(p, key, who);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (int k = 0; k < 4; k++) {
			ssize_t r = bbuf_read(p->fd, &p->in, who);

			if (r == 0)
				bench_fail("%s: connection closed by the server", who);
			if (r < 0)
				break;
			peer_input(id, p, who);
		}
	}
}

/* ---- the publisher ---- */

static void publish_some(void)
{
	int sent = 0;

	while ((int64_t)(pub_seq - done) < opt.inflight && pub_seq < (uint64_t)opt.max_msgs &&
	       bbuf_room(&pub.out) > (size_t)opt.size + 64) {
		bench_payload_make(msgbuf, (size_t)opt.size, pub_seq, bench_now_ns());
		if (opt.proto == BP_RESP) {
			const char *argv[] = { "PUBLISH", "bench", msgbuf };
			size_t lens[] = { 7, 5, (size_t)opt.size };

			proto_resp_put(&pub.out, 3, argv, lens);
		} else {
			proto_bottle_put(opt.proto, &pub.out, "SAY", msgbuf, (size_t)opt.size);
		}
		pub_seq++;
		sent = 1;
	}
	if (sent)
		peer_flush(&pub, (uint64_t)opt.n, "publisher");
}

/* ---- main ---- */

static void loop_once(int timeout_ms)
{
	struct epoll_event evs[256];
	int k = epoll_wait(ep, evs, 256, timeout_ms);

	if (k < 0 && errno != EINTR)
		bench_fail("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < k; i++) {
		long id = (long)evs[i].data.u64;

		peer_event(id == opt.n ? -1 : id, evs[i].events);
	}
}

int main(int argc, char **argv)
{
	uint64_t t0, t_end, deadline, last_progress, last_done = 0;
	long opened = 0;
	double cpu0 = -1, cpu1 = -1, secs;

	args(argc, argv);
	bench_raise_nofile();
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		bench_fail("epoll_create1: %s", strerror(errno));
	subs = calloc((size_t)opt.n, sizeof *subs);
	got = calloc((size_t)opt.inflight, sizeof *got);
	msgbuf = malloc((size_t)opt.size);
	if (!subs || !got || !msgbuf)
		bench_fail("out of memory");

	/* Setup: subscribers, at most --batch connecting at once; then the
	 * publisher, once everyone is in the room (or subscribed). */
	deadline = bench_now_ns() + (uint64_t)opt.setup_ms * 1000000u;
	while (ready < opt.n) {
		while (opened < opt.n && opened - ready < opt.batch) {
			int port = opt.port2 && opened % 2 ? opt.port2 : opt.port;
			peer_open(&subs[opened], port, (uint64_t)opened, 16384, 256);
			opened++;
		}
		loop_once(50);
		if (bench_now_ns() > deadline)
			bench_fail("setup: %ld of %ld subscribers ready after %ld s", ready, opt.n,
			           opt.setup_ms / 1000);
	}
	peer_open(&pub, opt.port, (uint64_t)opt.n, 65536,
	          (size_t)opt.inflight * ((size_t)opt.size + 64) + 4096);
	while (pub.state != ST_READY) {
		loop_once(50);
		if (bench_now_ns() > deadline)
			bench_fail("setup: the publisher was not greeted");
	}

	/* Measure: publish for --seconds, then drain (bounded). */
	if (opt.pid)
		cpu0 = bench_proc_cpu_s((pid_t)opt.pid);
	t0 = last_progress = bench_now_ns();
	t_end = t0 + (uint64_t)opt.seconds_ms * 1000000u;
	for (;;) {
		uint64_t now = bench_now_ns();

		if (now < t_end)
			publish_some();
		else if (done == pub_seq && acks == pub_seq)
			break;
		loop_once(10);
		now = bench_now_ns();
		if (done != last_done) {
			last_done = done;
			last_progress = now;
		} else if (now - last_progress > 10000000000ull) {
			bench_fail("stalled: #%llu of %llu published not delivered to every "
			           "subscriber for 10 s (%llu replies)",
			           (unsigned long long)done, (unsigned long long)pub_seq,
			           (unsigned long long)acks);
		}
		if (pub_seq >= (uint64_t)opt.max_msgs && t_end > now)
			t_end = now; /* count reached */
	}
	if (opt.pid)
		cpu1 = bench_proc_cpu_s((pid_t)opt.pid);
	for (long i = 0; i < opt.n; i++)
		if (subs[i].next != pub_seq)
			bench_fail("subscriber %ld: %llu of %llu delivered", i,
			           (unsigned long long)subs[i].next, (unsigned long long)pub_seq);
	secs = (double)(last_delivery_ns > t0 ? last_delivery_ns - t0 : 1) / 1e9;
	printf("deliveries=%llu msgs=%llu seconds=%.3f rate=%.0f p50_us=%.1f p99_us=%.1f "
	       "max_us=%.1f cpu_s=%.3f cpu_ns_per_delivery=%.1f\n",
	       (unsigned long long)deliveries, (unsigned long long)pub_seq, secs,
	       (double)deliveries / secs, (double)hist_pct(&lat, 50) / 1e3,
	       (double)hist_pct(&lat, 99) / 1e3, (double)lat.max / 1e3,
	       cpu0 >= 0 ? cpu1 - cpu0 : -1.0,
	       cpu0 >= 0 && deliveries ? (cpu1 - cpu0) * 1e9 / (double)deliveries : -1.0);
	return 0;
}
