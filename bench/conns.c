/* bench-conns - many connections: the idle-memory, connect-storm and
 * latency-probe workloads.
 *
 *   bench-conns --port P --proto tpkt|line|redis|http [-n N] [--pid PID]...
 *               [--chatter-ms MS] [--seconds S] [--batch 256]
 *               [--timeout-ms 60000] [--quiet-ms 500] [--host 127.0.0.1]
 *
 * -n N connections are opened, at most --batch not yet greeted at a time, and
 * stay open. A connection counts once greeted: tpkt sends an ECHO frame and
 * waits for "OK ..." (bottled's greeting), line sends nothing and waits for
 * the greeting line (it comes after --greeting-delay), redis sends PING and
 * waits for +PONG, http (nginx) counts once connected. Later input (JOIN
 * events...) is read and dropped. Then, with --pid (repeatable: their sum),
 * the generator waits until the processes hold N more descriptors than before
 * (all accepted), until no byte arrived for --quiet-ms, and reads VmRSS.
 *
 * --chatter-ms MS: one more connection (tpkt ECHO for bottled, redis ECHO)
 * does a round trip every MS ms (0: back to back) from before the first
 * connection until the end; each reply is checked. With -n 0 that is the
 * latency probe: it prints "ready" once greeted, then runs for --seconds or
 * until SIGTERM/SIGINT.
 *
 * Output, one line: conns= greet_s= (until all greeted) fds= rss0_kib=
 * rss1_kib= per_conn_kib= chat_n= chat_p50_us= chat_p99_us= chat_max_us=
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/bench.h"
#include "lib/hist.h"
#include "lib/proto.h"

#define MAX_PIDS 8
#define CHATTER_ID UINT64_MAX

enum { ST_CONNECTING, ST_HELLO, ST_READY };

struct conn {
	int fd;
	unsigned char state;
	unsigned char headlen;
	char head[8]; /* the first bytes, for the greeting check */
};

static struct {
	const char *host;
	int port;
	int proto; /* BP_TPKT, BP_LINE, BP_RESP, or PROTO_HTTP */
	long n, chatter_ms, seconds, batch, timeout_ms, quiet_ms;
	pid_t pids[MAX_PIDS];
	int npids;
} opt = { "127.0.0.1", 0, BP_TPKT, 0, -1, 0, 256, 60000, 500, { 0 }, 0 };

#define PROTO_HTTP 100

static struct conn *conns;
static int ep;
static long greeted;
static uint64_t last_input_ns;
static char scratch[65536];
static volatile sig_atomic_t stop;

/* the chatter */
static struct {
	int fd, state, hello_left, waiting;
	struct bbuf in, out;
	uint64_t seq, sent_ns, next_ns;
	struct hist rtt;
} ch = { .fd = -1 };

static void usage(void)
{
	fputs("usage: bench-conns --port P --proto tpkt|line|redis|http [-n N] [--pid PID]...\n"
	      "       [--chatter-ms MS] [--seconds S] [--batch B] [--timeout-ms MS]\n",
	      stderr);
	exit(2);
}

static const struct bench_num nums[] = {
	{ "-n", &opt.n, 0, 1000000, 0 },
	{ "--chatter-ms", &opt.chatter_ms, 0, 60000, 0 },
	{ "--seconds", &opt.seconds, 0, 3600, 0 },
	{ "--batch", &opt.batch, 1, 1000000, 0 },
	{ "--timeout-ms", &opt.timeout_ms, 100, 3600000, 0 },
	{ "--quiet-ms", &opt.quiet_ms, 0, 60000, 0 },
	{ NULL, NULL, 0, 0, 0 },
};

static void args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--proto") && v && !strcmp(v, "http"))
			opt.proto = PROTO_HTTP;
		else if (!strcmp(a, "--pid") && opt.npids < MAX_PIDS)
			opt.pids[opt.npids++] = (pid_t)bench_arg_long(a, v, 1, 1 << 30);
		else if (!bench_target_arg(a, v, &opt.host, &opt.port, &opt.proto) &&
		         !bench_num_arg(nums, a, v))
			usage();
	}
	if (!opt.port || (opt.chatter_ms >= 0 && opt.proto == PROTO_HTTP))
		usage();
}

static long pids_rss(void)
{
	long sum = 0;

	for (int i = 0; i < opt.npids; i++) {
		long r = bench_proc_rss_kib(opt.pids[i]);

		if (r < 0)
			bench_fail("no VmRSS for pid %d (gone?)", (int)opt.pids[i]);
		sum += r;
	}
	return sum;
}

static long pids_fds(void)
{
	long sum = 0;

	for (int i = 0; i < opt.npids; i++) {
		int r = bench_proc_fd_count(opt.pids[i]);

		if (r < 0)
			bench_fail("cannot list /proc/%d/fd", (int)opt.pids[i]);
		sum += r;
	}
	return sum;
}

/* ---- the many connections ---- */

static void conn_open(long i)
{
	struct conn *c = &conns[i];

	c->fd = bench_connect(opt.host, opt.port);
	if (c->fd < 0)
		bench_fail("connection %ld: connect: %s", i, strerror(errno));
	c->state = ST_CONNECTING;
	bench_ep_add(ep, c->fd, EPOLLOUT, (uint64_t)i);
}

static void conn_greeted(struct conn *c)
{
	c->state = ST_READY;
	greeted++;
}

static void conn_send_hello(struct conn *c, long i)
{
	static const unsigned char tpkt[] = { 3,   0,   0,   14,  'E', 'C', 'H',
		                              'O', ' ', 'h', 'e', 'l', 'l', 'o' };
	const void *p = NULL;
	size_t n = 0;

	if (opt.proto == BP_TPKT) {
		p = tpkt;
		n = sizeof tpkt;
	} else if (opt.proto == BP_RESP) {
		p = "PING\r\n";
		n = 6;
	}
	if (n && write(c->fd, p, n) != (ssize_t)n)
		bench_fail("connection %ld: hello not sent: %s", i, strerror(errno));
}

/* The first bytes: bottled's greeting ("OK ...", in a frame for tpkt), +PONG. */
static void conn_check_head(struct conn *c, long i)
{
	const char *want = opt.proto == BP_TPKT   ? "\x03\x00"
	                   : opt.proto == BP_RESP ? "+PONG"
	                                          : "OK ";
	size_t wl = opt.proto == BP_TPKT ? 2 : strlen(want);
	size_t need = opt.proto == BP_TPKT ? 7 : wl;

	if (c->headlen < need)
		return;
	if (memcmp(c->head, want, wl) || (opt.proto == BP_TPKT && memcmp(c->head + 4, "OK ", 3)))
		bench_fail("connection %ld: not greeted: %.*s", i, (int)c->headlen, c->head);
	conn_greeted(c);
}

static void conn_event(long i, uint32_t events)
{
	struct conn *c = &conns[i];

	if (c->state == ST_CONNECTING) {
		int e = bench_connect_result(c->fd);

		if (e)
			bench_fail("connection %ld: connect: %s", i, strerror(e));
		if (opt.proto == PROTO_HTTP) {
			conn_greeted(c);
			bench_ep_mod(ep, c->fd, EPOLLIN, (uint64_t)i);
			return;
		}
		conn_send_hello(c, i);
		c->state = ST_HELLO;
		bench_ep_mod(ep, c->fd, EPOLLIN, (uint64_t)i);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (int k = 0; k < 8; k++) {
		ssize_t r = read(c->fd, scratch, sizeof scratch);

		if (r == 0)
			bench_fail("connection %ld: closed by the server%s", i,
			           c->state == ST_READY ? "" : " before the greeting");
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			bench_fail("connection %ld: read: %s", i, strerror(errno));
		}
		last_input_ns = bench_now_ns();
		if (c->state == ST_HELLO) {
			size_t take = sizeof c->head - c->headlen;

			if (take > (size_t)r)
				take = (size_t)r;
			memcpy(c->head + c->headlen, scratch, take);
			c->headlen = (unsigned char)(c->headlen + take);
			conn_check_head(c, i);
		}
		if ((size_t)r < sizeof scratch)
			break;
	}
}

/* ---- the chatter ---- */

static void chat_flush(void)
{
	if (bbuf_flush(ch.fd, &ch.out) < 0)
		bench_fail("chatter: write: %s", strerror(errno));
	bench_ep_mod(ep, ch.fd, EPOLLIN | (bbuf_used(&ch.out) ? EPOLLOUT : 0u), CHATTER_ID);
}

static void chat_send(void)
{
	char text[32];
	int n = snprintf(text, sizeof text, "c%llu", (unsigned long long)ch.seq);

	if (opt.proto == BP_RESP) {
		const char *argv[] = { "ECHO", text };
		size_t lens[] = { 4, (size_t)n };

		proto_resp_put(&ch.out, 2, argv, lens);
	} else {
		proto_bottle_put(BP_TPKT, &ch.out, "ECHO", text, (size_t)n);
	}
	ch.sent_ns = bench_now_ns();
	ch.waiting = 1;
	chat_flush();
}

static void chat_reply(const char *p, size_t n)
{
	char text[32];
	int tl = snprintf(text, sizeof text, "c%llu", (unsigned long long)ch.seq);
	uint64_t now = bench_now_ns();

	if (!ch.waiting || n != (size_t)tl || memcmp(p, text, n))
		bench_fail("chatter: wrong reply %.*s, expected %s", (int)n, p, text);
	hist_add(&ch.rtt, now - ch.sent_ns);
	ch.waiting = 0;
	ch.seq++;
	ch.next_ns = now + (uint64_t)opt.chatter_ms * 1000000u;
}

static void chat_input(void)
{
	for (int guard = 0; guard < 100000; guard++) {
		long used;

		if (opt.proto == BP_RESP) {
			struct resp_val v;

			used = proto_resp_next(bbuf_head(&ch.in), bbuf_used(&ch.in), &v);
			if (used > 0) {
				if (v.type == '-')
					bench_fail("chatter: redis error");
				if (ch.state == ST_HELLO)
					ch.state = ST_READY;
				else if (v.type == '$' && v.s.len >= 0)
					chat_reply(v.s.p, (size_t)v.s.len);
				else
					bench_fail("chatter: unexpected reply type %c", v.type);
			}
		} else {
			const char *m;
			size_t n;

			used = proto_bottle_next(BP_TPKT, bbuf_head(&ch.in), bbuf_used(&ch.in), &m,
			                         &n);
			if (used > 0 && n >= 3 && !memcmp(m, "ERR", 3))
				bench_fail("chatter: %.*s", (int)n, m);
			if (used > 0 && n >= 2 && !memcmp(m, "OK", 2)) {
				if (ch.state == ST_HELLO) {
					if (--ch.hello_left == 0)
						ch.state = ST_READY;
				} else if (n >= 3) {
					chat_reply(m + 3, n - 3);
				}
			}
		}
		if (used < 0)
			bench_fail("chatter: malformed input");
		if (used == 0)
			return;
		bbuf_eat(&ch.in, (size_t)used);
	}
}

static void chat_event(uint32_t events)
{
	if (ch.state == ST_CONNECTING) {
		int e = bench_connect_result(ch.fd);

		if (e)
			bench_fail("chatter: connect: %s", strerror(e));
		ch.state = ST_HELLO;
		if (opt.proto == BP_RESP) {
			static const char *const argv[] = { "PING" };
			static const size_t lens[] = { 4 };

			proto_resp_put(&ch.out, 1, argv, lens);
		} else {
			proto_bottle_put(BP_TPKT, &ch.out, "ECHO", "hello", 5);
			ch.hello_left = 2;
		}
		chat_flush();
		return;
	}
	if (events & EPOLLOUT)
		chat_flush();
	for (int k = 0; k < 8 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)); k++) {
		ssize_t r = bbuf_read(ch.fd, &ch.in, "chatter");

		if (r == 0)
			bench_fail("chatter: closed by the server");
		if (r < 0)
			break;
		chat_input();
	}
}

/* ---- main ---- */

static void loop_once(int timeout_ms)
{
	struct epoll_event evs[512];
	int k;

	if (ch.fd >= 0 && ch.state == ST_READY && !ch.waiting) {
		uint64_t now = bench_now_ns();

		if (now >= ch.next_ns)
			chat_send();
		else if ((ch.next_ns - now) / 1000000u < (uint64_t)timeout_ms)
			timeout_ms = (int)((ch.next_ns - now) / 1000000u);
	}
	k = epoll_wait(ep, evs, 512, timeout_ms);
	if (k < 0 && errno != EINTR)
		bench_fail("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < k; i++) {
		if (evs[i].data.u64 == CHATTER_ID)
			chat_event(evs[i].events);
		else
			conn_event((long)evs[i].data.u64, evs[i].events);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	uint64_t t0, t_greeted = 0, deadline;
	long opened = 0, rss0 = -1, rss1 = -1, fds0 = 0, fds1 = -1;

	args(argc, argv);
	bench_raise_nofile();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)(opt.n ? opt.n : 1), sizeof *conns);
	if (ep < 0 || !conns)
		bench_fail("setup: %s", strerror(errno));
	deadline = bench_now_ns() + (uint64_t)opt.timeout_ms * 1000000u;

	if (opt.chatter_ms >= 0) {
		ch.fd = bench_connect(opt.host, opt.port);
		if (ch.fd < 0)
			bench_fail("chatter: connect: %s", strerror(errno));
		bbuf_init(&ch.in, 65536 + 8);
		bbuf_init(&ch.out, 4096);
		ch.state = ST_CONNECTING;
		bench_ep_add(ep, ch.fd, EPOLLOUT, CHATTER_ID);
		while (ch.state != ST_READY && !stop) {
			loop_once(50);
			if (bench_now_ns() > deadline)
				bench_fail("chatter not greeted");
		}
	}
	if (opt.npids) {
		rss0 = pids_rss();
		fds0 = pids_fds();
	}
	if (opt.n == 0) {
		printf("ready\n");
		fflush(stdout);
	}

	/* The storm: at most --batch connecting or waiting for the greeting. */
	t0 = bench_now_ns();
	while (greeted < opt.n && !stop) {
		while (opened < opt.n && opened - greeted < opt.batch)
			conn_open(opened++);
		loop_once(20);
		if (bench_now_ns() > deadline)
			bench_fail("%ld of %ld connections greeted in %ld ms", greeted, opt.n,
			           opt.timeout_ms);
	}
	t_greeted = bench_now_ns();

	/* All accepted: the server holds n more descriptors. Then quiet. */
	if (opt.npids && opt.n) {
		for (;;) {
			fds1 = pids_fds();
			if (fds1 - fds0 >= opt.n)
				break;
			loop_once(20);
			if (bench_now_ns() > deadline)
				bench_fail("the server holds %ld descriptors more, not %ld",
				           fds1 - fds0, opt.n);
		}
	}
	if (opt.n) {
		while (!stop &&
		       bench_now_ns() - last_input_ns < (uint64_t)opt.quiet_ms * 1000000u) {
			loop_once(20);
			if (bench_now_ns() > deadline)
				bench_fail("input did not stop within %ld ms", opt.timeout_ms);
		}
	}
	if (opt.npids)
		rss1 = pids_rss();
	if (opt.n == 0 && opt.seconds) {
		uint64_t end = bench_now_ns() + (uint64_t)opt.seconds * 1000000000u;

		while (!stop && bench_now_ns() < end)
			loop_once(50);
	} else if (opt.n == 0) {
		while (!stop && bench_now_ns() < deadline)
			loop_once(50);
	}
	printf("conns=%ld greet_s=%.3f fds=%ld rss0_kib=%ld rss1_kib=%ld per_conn_kib=%.3f "
	       "chat_n=%llu chat_p50_us=%.1f chat_p99_us=%.1f chat_max_us=%.1f\n",
	       opt.n, (double)(t_greeted - t0) / 1e9, fds1 - fds0, rss0, rss1,
	       opt.n && opt.npids ? (double)(rss1 - rss0) / (double)opt.n : -1.0,
	       (unsigned long long)ch.rtt.count, (double)hist_pct(&ch.rtt, 50) / 1e3,
	       (double)hist_pct(&ch.rtt, 99) / 1e3, (double)ch.rtt.max / 1e3);
	return 0;
}
