/* Unit tests for buf.c: blob reference counts and the output queue, flushed
 * over a non-blocking AF_UNIX socketpair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"

/* sv[0] is written by the queue, sv[1] is the peer we read from. */
static void make_pair(int sv[2], int bufsize)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(sv[i], F_GETFL);
		assert_true(fl >= 0);
		assert_int_equal(fcntl(sv[i], F_SETFL, fl | O_NONBLOCK), 0);
		if (bufsize > 0) {
			assert_int_equal(
				setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize),
				0);
			assert_int_equal(
				setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize),
				0);
		}
	}
}

static void close_pair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* Reads whatever the peer has into out (appending at *have); returns bytes read. */
static size_t drain(int fd, unsigned char *out, size_t cap, size_t *have)
{
	size_t got = 0;

	for (;;) {
		if (*have == cap) {
			/* Nothing more should be waiting. */
			unsigned char extra;
			assert_int_equal(read(fd, &extra, 1), -1);
			return got;
		}
		ssize_t r = read(fd, out + *have, cap - *have);
		if (r < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			return got;
		}
		if (r == 0)
			return got;
		*have += (size_t)r;
		got += (size_t)r;
	}
}

static unsigned char pattern(size_t i) { return (unsigned char)((i * 131 + i / 251) & 0xff); }

/* ---- blobs ---- */

static void test_blob_refs(void **state)
{
	struct blob *b;

	(void)state;
	b = blob_new(10);
	assert_non_null(b);
	assert_int_equal(b->refs, 1);
	assert_int_equal(b->len, 0);
	assert_int_equal(b->cap, 10);
	blob_append(b, "hello", 5);
	blob_append(b, "world", 5);
	assert_int_equal(b->len, 10);
	assert_memory_equal(b->data, "helloworld", 10);
	assert_ptr_equal(blob_ref(b), b);
	assert_int_equal(b->refs, 2);
	assert_ptr_equal(blob_ref(b), b);
	assert_int_equal(b->refs, 3);
	blob_unref(b);
	assert_int_equal(b->refs, 2);
	blob_unref(b);
	assert_int_equal(b->refs, 1);
	assert_memory_equal(b->data, "helloworld", 10);
	blob_unref(b);    /* freed; ASan reports a leak otherwise */
	blob_unref(NULL); /* allowed */
}

static void test_blob_from(void **state)
{
	char src[] = "abc\0def";
	struct blob *b = blob_from(src, 7);

	(void)state;
	src[0] = 'X'; /* a copy, not a view */
	assert_int_equal(b->refs, 1);
	assert_int_equal(b->len, 7);
	assert_int_equal(b->cap, 7);
	assert_memory_equal(b->data, "abc\0def", 7);
	blob_unref(b);

	b = blob_new(0);
	assert_int_equal(b->len, 0);
	blob_unref(b);
	b = blob_from("", 0);
	assert_int_equal(b->len, 0);
	blob_unref(b);
}

/* ---- queue bookkeeping ---- */

static void test_outq_empty(void **state)
{
	struct outq q;
	int sv[2];

	(void)state;
	outq_init(&q);
	assert_int_equal(outq_bytes(&q), 0);
	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q, sv[0]), 0);
	outq_free(&q);
	outq_free(&q); /* twice is fine */
	close_pair(sv);
}

static void test_outq_push_shared(void **state)
{
	struct outq q1, q2;
	struct blob *b = blob_from("broadcast\n", 10);
	int sv[2];
	unsigned char got[32];
	size_t have = 0;

	(void)state;
	outq_init(&q1);
	outq_init(&q2);
	outq_push(&q1, b);
	outq_push(&q2, b);
	assert_int_equal(b->refs, 3);
	assert_int_equal(outq_bytes(&q1), 10);
	assert_int_equal(outq_bytes(&q2), 10);

	/* Appending to a queue must not write into the shared block. */
	outq_append(&q1, "more", 4);
	assert_int_equal(b->len, 10);
	assert_memory_equal(b->data, "broadcast\n", 10);
	assert_int_equal(outq_bytes(&q1), 14);
	assert_int_equal(q1.count, 2);

	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q1, sv[0]), 14);
	assert_int_equal(outq_bytes(&q1), 0);
	assert_int_equal(b->refs, 2); /* q1 dropped its reference */
	drain(sv[1], got, 14, &have);
	assert_int_equal(have, 14);
	assert_memory_equal(got, "broadcast\nmore", 14);

	outq_free(&q2); /* unsent: the reference goes */
	assert_int_equal(b->refs, 1);
	assert_int_equal(outq_bytes(&q2), 0);
	blob_unref(b);
	outq_free(&q1);
	close_pair(sv);
}

static void test_outq_push_empty_blob(void **state)
{
	struct outq q;
	struct blob *b = blob_new(16);

	(void)state;
	outq_init(&q);
	outq_push(&q, b);
	assert_int_equal(outq_bytes(&q), 0);
	assert_int_equal(q.count, 0);
	assert_int_equal(b->refs, 1);
	outq_append(&q, "x", 0);
	assert_int_equal(q.count, 0);
	blob_unref(b);
	outq_free(&q);
}

static void test_outq_append_coalesces(void **state)
{
	struct outq q;
	int sv[2];
	unsigned char got[64];
	size_t have = 0;

	(void)state;
	outq_init(&q);
	outq_append(&q, "OK ", 3);
	outq_append(&q, "one\n", 4);
	outq_append(&q, "OK two\n", 7);
	assert_int_equal(q.count, 1);
	assert_int_equal(outq_bytes(&q), 14);
	struct blob *tail = q.u.one; /* one block: no ring */
	assert_int_equal(tail->refs, 1);
	assert_int_equal(tail->len, 14);
	assert_memory_equal(tail->data, "OK one\nOK two\n", 14);

	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q, sv[0]), 14);
	drain(sv[1], got, 14, &have);
	assert_memory_equal(got, "OK one\nOK two\n", 14);
	outq_free(&q);
	close_pair(sv);
}

static void test_outq_append_large_and_full_block(void **state)
{
	struct outq q;
	char *big = malloc(10000);

	(void)state;
	assert_non_null(big);
	memset(big, 'b', 10000);
	outq_init(&q);
	outq_append(&q, "small", 5);
	outq_append(&q, big, 10000); /* does not fit the first block */
	assert_int_equal(q.count, 2);
	assert_int_equal(outq_bytes(&q), 10005);
	outq_append(&q, "s", 1); /* the big block is exactly full */
	assert_int_equal(q.count, 3);
	assert_int_equal(outq_bytes(&q), 10006);

	/* Fill a block to the last byte, then one more. */
	struct outq q2;
	outq_init(&q2);
	for (int i = 0; i < 4096; i++)
		outq_append(&q2, "z", 1);
	assert_int_equal(q2.count, 1);
	outq_append(&q2, "y", 1);
	assert_int_equal(q2.count, 2);
	assert_int_equal(outq_bytes(&q2), 4097);
	outq_free(&q2);
	outq_free(&q);
	free(big);
}

static void test_outq_append_after_own_push(void **state)
{
	/* A pushed blob that only the queue references may take appended bytes,
	 * which must still come out in order. */
	struct outq q;
	struct blob *b = blob_new(64);
	int sv[2];
	unsigned char got[64];
	size_t have = 0;

	(void)state;
	blob_append(b, "first ", 6);
	outq_init(&q);
	outq_push(&q, b);
	blob_unref(b);
	outq_append(&q, "second", 6);
	assert_int_equal(outq_bytes(&q), 12);
	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q, sv[0]), 12);
	drain(sv[1], got, 12, &have);
	assert_memory_equal(got, "first second", 12);
	outq_free(&q);
	close_pair(sv);
}

/* ---- flushing ---- */

static void test_flush_in_order(void **state)
{
	struct outq q;
	int sv[2];
	enum { NBLOBS = 300 }; /* more than one writev's worth */
	struct blob *blobs[NBLOBS];
	unsigned char want[NBLOBS * 16], got[NBLOBS * 16];
	size_t wlen = 0, have = 0;

	(void)state;
	outq_init(&q);
	for (int i = 0; i < NBLOBS; i++) {
		unsigned char tmp[16];
		size_t n = 1 + (size_t)i % 15;
		for (size_t k = 0; k < n; k++)
			tmp[k] = pattern(wlen + k);
		memcpy(want + wlen, tmp, n);
		wlen += n;
		if (i % 4 == 3) {
			outq_append(&q, tmp, n);
			blobs[i] = NULL;
		} else {
			blobs[i] = blob_from(tmp, n);
			outq_push(&q, blobs[i]);
		}
	}
	assert_int_equal(outq_bytes(&q), wlen);
	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q, sv[0]), (ssize_t)wlen);
	assert_int_equal(outq_bytes(&q), 0);
	assert_int_equal(q.count, 0);
	drain(sv[1], got, wlen, &have);
	assert_int_equal(have, wlen);
	assert_memory_equal(got, want, wlen);
	for (int i = 0; i < NBLOBS; i++) {
		if (blobs[i]) {
			assert_int_equal(blobs[i]->refs, 1);
			blob_unref(blobs[i]);
		}
	}
	outq_free(&q);
	close_pair(sv);
}

static void test_ring_wraps_and_grows(void **state)
{
	struct outq q;
	int sv[2];
	unsigned char want[256], got[256];
	size_t wlen = 0, have = 0;
	char c = 'a';

	(void)state;
	outq_init(&q);
	make_pair(sv, 0);
	/* Move the ring's head forward: 6 blocks sent. */
	for (int i = 0; i < 6; i++) {
		struct blob *b = blob_from(&c, 1);
		want[wlen++] = (unsigned char)c++;
		outq_push(&q, b);
		blob_unref(b);
	}
	assert_int_equal(outq_flush(&q, sv[0]), 6);
	assert_int_equal(q.count, 0);
	/* Now fill past the end of the ring and make it grow while wrapped. */
	for (int i = 0; i < 20; i++) {
		struct blob *b = blob_from(&c, 1);
		want[wlen++] = (unsigned char)c++;
		outq_push(&q, b);
		blob_unref(b);
	}
	assert_int_equal(q.count, 20);
	assert_int_equal(outq_bytes(&q), 20);
	assert_int_equal(outq_flush(&q, sv[0]), 20);
	drain(sv[1], got, wlen, &have);
	assert_int_equal(have, wlen);
	assert_memory_equal(got, want, wlen);
	outq_free(&q);
	close_pair(sv);
}

/* Queues `total` pattern bytes as a mix of shared blobs and appended copies. */
static void queue_pattern(struct outq *q, size_t total)
{
	size_t off = 0, i = 0;

	while (off < total) {
		size_t n = 1 + (i * 7919) % 9000;
		if (n > total - off)
			n = total - off;
		unsigned char *tmp = malloc(n);
		assert_non_null(tmp);
		for (size_t k = 0; k < n; k++)
			tmp[k] = pattern(off + k);
		if (i % 3 == 0) {
			outq_append(q, tmp, n);
		} else {
			struct blob *b = blob_from(tmp, n);
			outq_push(q, b);
			blob_unref(b);
		}
		free(tmp);
		off += n;
		i++;
	}
	assert_int_equal(outq_bytes(q), total);
}

static void test_flush_partial(void **state)
{
	struct outq q;
	int sv[2];
	const size_t total = 1 << 20;
	unsigned char *got = malloc(total);
	size_t have = 0;

	(void)state;
	assert_non_null(got);
	make_pair(sv, 4096);
	outq_init(&q);
	queue_pattern(&q, total);

	ssize_t w = outq_flush(&q, sv[0]);
	assert_true(w > 0);
	assert_true((size_t)w < total);
	assert_int_equal(outq_bytes(&q), total - (size_t)w);
	/* The socket is full: a second flush writes nothing and is no error. */
	assert_int_equal(outq_flush(&q, sv[0]), 0);
	assert_int_equal(outq_bytes(&q), total - (size_t)w);

	size_t sent = (size_t)w;
	int rounds = 1;
	while (outq_bytes(&q) > 0) {
		assert_true(drain(sv[1], got, total, &have) > 0);
		w = outq_flush(&q, sv[0]);
		assert_true(w > 0);
		sent += (size_t)w;
		assert_int_equal(outq_bytes(&q), total - sent);
		assert_true(++rounds < 100000);
	}
	assert_true(rounds >= 2);
	drain(sv[1], got, total, &have);
	assert_int_equal(have, total);
	for (size_t i = 0; i < total; i++)
		if (got[i] != pattern(i))
			fail_msg("byte %zu: got 0x%02x want 0x%02x", i, got[i], pattern(i));
	assert_int_equal(q.count, 0);
	outq_free(&q);
	close_pair(sv);
	free(got);
}

static void test_flush_partial_then_complete(void **state)
{
	/* A little more than fits: one drain of the peer lets a second flush finish. */
	struct outq q;
	int sv[2];
	unsigned char *got;
	size_t have = 0, fits = 0;

	(void)state;
	/* Measure what the pair holds. */
	make_pair(sv, 4096);
	{
		struct outq m;
		outq_init(&m);
		queue_pattern(&m, 1 << 20);
		ssize_t w = outq_flush(&m, sv[0]);
		assert_true(w > 0);
		fits = (size_t)w;
		outq_free(&m);
	}
	close_pair(sv);

	size_t total = fits + fits / 2;
	got = malloc(total);
	assert_non_null(got);
	make_pair(sv, 4096);
	outq_init(&q);
	queue_pattern(&q, total);
	ssize_t w1 = outq_flush(&q, sv[0]);
	assert_true(w1 > 0 && (size_t)w1 < total);
	assert_int_equal(outq_bytes(&q), total - (size_t)w1);
	assert_int_equal(drain(sv[1], got, total, &have), (size_t)w1);
	ssize_t w2 = outq_flush(&q, sv[0]);
	assert_int_equal((size_t)w1 + (size_t)w2, total);
	assert_int_equal(outq_bytes(&q), 0);
	drain(sv[1], got, total, &have);
	assert_int_equal(have, total);
	for (size_t i = 0; i < total; i++)
		if (got[i] != pattern(i))
			fail_msg("byte %zu: got 0x%02x want 0x%02x", i, got[i], pattern(i));
	outq_free(&q);
	close_pair(sv);
	free(got);
}

static void test_flush_closed_peer(void **state)
{
	struct outq q;
	int sv[2];

	(void)state;
	make_pair(sv, 0);
	close(sv[1]);
	outq_init(&q);
	outq_append(&q, "lost\n", 5);
	errno = 0;
	assert_int_equal(outq_flush(&q, sv[0]), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(outq_bytes(&q), 5); /* nothing was consumed */
	outq_free(&q);
	close(sv[0]);
}

static void test_flush_bad_fd(void **state)
{
	struct outq q;

	(void)state;
	outq_init(&q);
	outq_append(&q, "x", 1);
	errno = 0;
	assert_int_equal(outq_flush(&q, -1), -1);
	assert_int_equal(errno, EBADF);
	outq_free(&q);
}

/* ---- idle memory ---- */

/* One block needs no ring; a second one makes a ring, and an empty queue holds
 * nothing at all, whatever it held before. */
static void test_outq_empty_holds_nothing(void **state)
{
	struct outq q;
	int sv[2];
	unsigned char got[64];
	size_t have = 0;
	struct blob *shared = blob_from("JOIN x\n", 7);

	(void)state;
	outq_init(&q);
	outq_append(&q, "OK hi\n", 6);
	assert_int_equal(q.count, 1);
	assert_int_equal(q.cap, 1);          /* in the queue itself */
	assert_int_equal(q.u.one->cap, 256); /* a lone reply: a small block */
	outq_push(&q, shared);
	assert_int_equal(q.count, 2);
	assert_true(q.cap >= 2);
	outq_append(&q, "OK 2\n", 5);
	assert_int_equal(q.count, 3);

	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q, sv[0]), 18);
	drain(sv[1], got, 18, &have);
	assert_memory_equal(got, "OK hi\nJOIN x\nOK 2\n", 18);
	assert_int_equal(q.count, 0);
	assert_int_equal(shared->refs, 1);
	/* A drained ring stays for the next turn (a busy member reuses it) ... */
	assert_int_equal(q.cap, 8);
	struct blob **ring = q.u.ring;
	outq_push(&q, shared);
	outq_push(&q, shared);
	assert_ptr_equal(q.u.ring, ring);
	have = 0;
	assert_int_equal(outq_flush(&q, sv[0]), 14);
	drain(sv[1], got, 14, &have);
	/* ... until its owner trims an idle queue: then it holds nothing. */
	outq_trim(&q);
	assert_int_equal(q.cap, 0);
	assert_null(q.u.ring);
	/* And it works again from empty. */
	outq_push(&q, shared);
	assert_int_equal(q.cap, 1);
	have = 0;
	assert_int_equal(outq_flush(&q, sv[0]), 7);
	drain(sv[1], got, 7, &have);
	assert_int_equal(q.cap, 0);
	blob_unref(shared);
	outq_free(&q);
	close_pair(sv);
}

/* A burst of small replies grows the one private block up to OUTQ_BLOCK (4096)
 * instead of queuing a block each, in order. */
static void test_outq_first_block_grows(void **state)
{
	struct outq q;
	int sv[2];
	unsigned char got[5000], want[5000];
	size_t have = 0, n = 0;

	(void)state;
	outq_init(&q);
	for (int i = 0; n + 10 <= 4096; i++) {
		char line[16];
		int l = snprintf(line, sizeof line, "OK %05d\n", i);
		outq_append(&q, line, (size_t)l);
		memcpy(want + n, line, (size_t)l);
		n += (size_t)l;
	}
	assert_int_equal(q.count, 1);
	assert_int_equal(q.u.one->cap, 4096);
	outq_append(&q, "OK last\n", 8); /* past 4096: a second block */
	memcpy(want + n, "OK last\n", 8);
	n += 8;
	assert_int_equal(q.count, 2);
	make_pair(sv, 0);
	assert_int_equal(outq_flush(&q, sv[0]), (ssize_t)n);
	drain(sv[1], got, n, &have);
	assert_memory_equal(got, want, n);
	outq_trim(&q);
	assert_int_equal(q.cap, 0);
	outq_free(&q);
	close_pair(sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outq_empty_holds_nothing),
		cmocka_unit_test(test_outq_first_block_grows),
		cmocka_unit_test(test_blob_refs),
		cmocka_unit_test(test_blob_from),
		cmocka_unit_test(test_outq_empty),
		cmocka_unit_test(test_outq_push_shared),
		cmocka_unit_test(test_outq_push_empty_blob),
		cmocka_unit_test(test_outq_append_coalesces),
		cmocka_unit_test(test_outq_append_large_and_full_block),
		cmocka_unit_test(test_outq_append_after_own_push),
		cmocka_unit_test(test_flush_in_order),
		cmocka_unit_test(test_ring_wraps_and_grows),
		cmocka_unit_test(test_flush_partial),
		cmocka_unit_test(test_flush_partial_then_complete),
		cmocka_unit_test(test_flush_closed_peer),
		cmocka_unit_test(test_flush_bad_fd),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
