/* bench.c - clock, failure, sockets, buffers, /proc and payloads (bench.h). */
#include "bench.h"
#include "proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void bench_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

long bench_arg_long(const char *flag, const char *val, long lo, long hi)
{
	char *end;
	long v;

	if (!val)
		bench_fail("%s needs a value", flag);
	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || end == val || *end || v < lo || v > hi)
		bench_fail("%s: %s is not a number in %ld..%ld", flag, val, lo, hi);
	return v;
}

int bench_num_arg(const struct bench_num *table, const char *flag, const char *val)
{
	for (const struct bench_num *t = table; t->flag; t++)
		if (!strcmp(t->flag, flag)) {
			*t->out =
				bench_arg_long(flag, val, t->lo, t->hi) * (t->scale ? t->scale : 1);
			return 1;
		}
	return 0;
}

int bench_target_arg(const char *flag, const char *val, const char **host, int *port, int *proto)
{
	if (!strcmp(flag, "--port"))
		*port = (int)bench_arg_long(flag, val, 1, 65535);
	else if (!strcmp(flag, "--host"))
		*host = val ? val : "";
	else if (!strcmp(flag, "--proto"))
		*proto = bench_proto_parse(val);
	else
		return 0;
	return 1;
}

/* ---- sockets ---- */

int bench_connect(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;
	int fd;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		bench_fail("not an IPv4 address: %s", host);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int bench_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

void bench_ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		bench_fail("epoll_ctl add: %s", strerror(errno));
}

void bench_ep_mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		bench_fail("epoll_ctl mod: %s", strerror(errno));
}

/* ---- buffers ---- */

void bbuf_init(struct bbuf *b, size_t cap)
{
	b->data = malloc(cap);
	if (!b->data)
		bench_fail("out of memory (%zu bytes)", cap);
	b->off = b->len = 0;
	b->cap = cap;
}

void bbuf_free(struct bbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

size_t bbuf_room(struct bbuf *b)
{
	if (b->off == b->len) {
		b->off = b->len = 0;
	} else if (b->off && b->cap - b->len < b->cap / 2) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	return b->cap - b->len;
}

char *bbuf_tail(struct bbuf *b) { return b->data + b->len; }

void bbuf_put(struct bbuf *b, const void *p, size_t n)
{
	if (bbuf_room(b) < n)
		bench_fail("output buffer full (%zu of %zu bytes): a bound was passed",
		           bbuf_used(b), b->cap);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

ssize_t bbuf_read(int fd, struct bbuf *b, const char *what)
{
	size_t room = bbuf_room(b);
	ssize_t r;

	if (!room)
		bench_fail("%s: input buffer full (%zu bytes) without a whole message", what,
		           b->cap);
	r = read(fd, b->data + b->len, room);
	if (r > 0) {
		b->len += (size_t)r;
		return r;
	}
	if (r == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR)
		return -1;
	bench_fail("%s: read: %s", what, strerror(errno));
}

int bbuf_flush(int fd, struct bbuf *b)
{
	while (bbuf_used(b)) {
		ssize_t w = write(fd, bbuf_head(b), bbuf_used(b));

		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 1;
			return -1;
		}
		b->off += (size_t)w;
	}
	b->off = b->len = 0;
	return 0;
}

/* ---- /proc ---- */

long bench_proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int bench_proc_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

double bench_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut, st;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime(14) stime(15) */
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- payloads ---- */

uint32_t bench_fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

void bench_payload_make(char *out, size_t size, uint64_t seq, uint64_t tag)
{
	char head[40];
	size_t body;

	if (size < BENCH_PAYLOAD_MIN)
		bench_fail("payload size %zu below %d", size, BENCH_PAYLOAD_MIN);
	snprintf(head, sizeof head, "%010llu:%016llx:", (unsigned long long)(seq % 10000000000ull),
	         (unsigned long long)tag);
	memcpy(out, head, 28);
	body = size - 9; /* ":" and 8 hex digits of the checksum end it */
	for (size_t i = 28; i < body; i++)
		out[i] = (char)('a' + (seq + i) % 26);
	snprintf(head, sizeof head, ":%08x", (unsigned)bench_fnv1a(out, body));
	memcpy(out + body, head, 9);
}

static int parse_hex(const char *p, size_t n, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		int c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		*v = *v << 4 | (uint64_t)d;
	}
	return 0;
}

int bench_payload_check(const char *p, size_t n, size_t size, uint64_t *seq, uint64_t *tag)
{
	uint64_t sum;
	size_t body;

	if (n != size || n < BENCH_PAYLOAD_MIN || p[10] != ':' || p[27] != ':')
		return -1;
	body = n - 9;
	if (p[body] != ':' || parse_hex(p + body + 1, 8, &sum) < 0 || sum != bench_fnv1a(p, body) ||
	    parse_hex(p + 11, 16, tag) < 0)
		return -1;
	*seq = 0;
	for (int i = 0; i < 10; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*seq = *seq * 10 + (uint64_t)(p[i] - '0');
	}
	return 0;
}
