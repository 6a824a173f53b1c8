/* bench.h - what the load generators share: clock, failure, sockets and
 * epoll, bounded buffers, /proc readings, checked payloads.
 *
 * Every generator is one thread on one epoll set. Any check that fails ends
 * the program through bench_fail(): "FAIL: <why>" on stderr, exit 1, so a
 * broken server can never score.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- clock and failure ---- */
uint64_t bench_now_ns(void);
_Noreturn void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_raise_nofile(void);
/* argv helpers: the number after a flag, or fail */
long bench_arg_long(const char *flag, const char *val, long lo, long hi);
/* A generator's numeric options as a table ending with { NULL }: the value of
 * flag, times scale (0 counts as 1), in lo..hi before scaling. False when flag
 * is none of them. */
struct bench_num {
	const char *flag;
	long *out;
	long lo, hi, scale;
};
int bench_num_arg(const struct bench_num *table, const char *flag, const char *val);
/* --host, --port and --proto (bench_proto_parse), the same for every
 * generator; false for any other flag. */
int bench_target_arg(const char *flag, const char *val, const char **host, int *port, int *proto);

/* ---- sockets and epoll ---- */
/* Non-blocking TCP connect to host:port (connect may still be in progress);
 * TCP_NODELAY set. -1 with errno on failure. */
int bench_connect(const char *host, int port);
/* The connect's outcome once writable: 0 connected, else the errno. */
int bench_connect_result(int fd);
void bench_ep_add(int ep, int fd, uint32_t events, uint64_t data);
void bench_ep_mod(int ep, int fd, uint32_t events, uint64_t data);

/* ---- bounded buffers ---- */
struct bbuf {
	char *data;
	size_t off; /* consumed from the front */
	size_t len; /* bytes held, data[off..len) */
	size_t cap;
};

void bbuf_init(struct bbuf *b, size_t cap);
void bbuf_free(struct bbuf *b);
size_t bbuf_room(struct bbuf *b);                       /* free space at the end (compacts) */
char *bbuf_tail(struct bbuf *b);                        /* where bbuf_room bytes may be written */
void bbuf_put(struct bbuf *b, const void *p, size_t n); /* fails if no room */
/* read() once into the free space: >0 bytes, 0 EOF, -1 would block;
 * fails the program on other errors (names what). */
ssize_t bbuf_read(int fd, struct bbuf *b, const char *what);
/* write() what is held: 0 all written, 1 some left, -1 error (errno) */
int bbuf_flush(int fd, struct bbuf *b);
static inline size_t bbuf_used(const struct bbuf *b) { return b->len - b->off; }
static inline const char *bbuf_head(const struct bbuf *b) { return b->data + b->off; }
static inline void bbuf_eat(struct bbuf *b, size_t n) { b->off += n; }

/* ---- /proc readings of another process (the server) ---- */
long bench_proc_rss_kib(pid_t pid); /* VmRSS, -1 if unreadable */
int bench_proc_fd_count(pid_t pid); /* entries of /proc/PID/fd, -1 if none */
double bench_proc_cpu_s(pid_t pid); /* utime+stime in seconds, -1 if none */

/* ---- checked payloads ----
 * A payload of exactly `size` bytes (28..65000) of printable ASCII:
 *   "<seq:10 decimal>:<tag:16 hex>:<filler>:<fnv1a32 of the rest:8 hex>"
 * The tag is a timestamp (fan-out) or anything the caller wants to check. */
#define BENCH_PAYLOAD_MIN 38
uint32_t bench_fnv1a(const void *p, size_t n);
void bench_payload_make(char *out, size_t size, uint64_t seq, uint64_t tag);
/* 0 and *seq, *tag when p[0..n) is an intact payload of `size` bytes, else -1 */
int bench_payload_check(const char *p, size_t n, size_t size, uint64_t *seq, uint64_t *tag);

#endif
