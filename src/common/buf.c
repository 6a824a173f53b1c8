/* buf.c - blobs and the output queue. */
#include "buf.h"
#include "xmalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define OUTQ_BLOCK 4096 /* private tail blocks are at least this big */
#define OUTQ_IOV_MAX 64 /* blocks per writev */

struct blob *blob_new(size_t cap)
{
	struct blob *b = xmalloc(sizeof *b + cap);
	b->refs = 1;
	b->len = 0;
	b->cap = cap;
	return b;
}

struct blob *blob_from(const void *data, size_t len)
{
	struct blob *b = blob_new(len);
	blob_append(b, data, len);
	return b;
}

void blob_append(struct blob *b, const void *data, size_t len)
{
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

struct blob *blob_ref(struct blob *b)
{
	b->refs++;
	return b;
}

void blob_unref(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

void outq_init(struct outq *q) { memset(q, 0, sizeof *q); }

void outq_free(struct outq *q)
{
	for (size_t i = 0; i < q->count; i++)
		blob_unref(q->ring[(q->head + i) % q->cap]);
	free(q->ring);
	outq_init(q);
}

static void ring_grow(struct outq *q)
{
	size_t ncap = q->cap ? q->cap * 2 : 8;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): the ring holds pointers */
	struct blob **ring = xmalloc(ncap * sizeof *ring);
	for (size_t i = 0; i < q->count; i++)
		ring[i] = q->ring[(q->head + i) % q->cap];
	free(q->ring);
	q->ring = ring;
	q->cap = ncap;
	q->head = 0;
}

void outq_push(struct outq *q, struct blob *b)
{
	if (b->len == 0)
		return;
	if (q->count == q->cap)
		ring_grow(q);
	q->ring[(q->head + q->count++) % q->cap] = blob_ref(b);
	q->bytes += b->len;
}

void outq_append(struct outq *q, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (q->count) {
		struct blob *tail = q->ring[(q->head + q->count - 1) % q->cap];
		/* Only a block this queue alone owns may grow. */
		if (tail->refs == 1 && tail->cap - tail->len >= len) {
			blob_append(tail, data, len);
			q->bytes += len;
			return;
		}
	}
	struct blob *b = blob_new(len > OUTQ_BLOCK ? len : OUTQ_BLOCK);
	blob_append(b, data, len);
	outq_push(q, b);
	blob_unref(b);
}

/* Drops n written bytes from the front of the queue. */
static void outq_consume(struct outq *q, size_t n)
{
	q->bytes -= n;
	while (n > 0) {
		struct blob *b = q->ring[q->head];
		size_t left = b->len - q->head_off;
		if (n < left) {
			q->head_off += n;
			return;
		}
		n -= left;
		blob_unref(b);
		q->head = (q->head + 1) % q->cap;
		q->count--;
		q->head_off = 0;
	}
}

ssize_t outq_flush(struct outq *q, int fd)
{
	ssize_t total = 0;

	while (q->count) {
		struct iovec iov[OUTQ_IOV_MAX];
		int n = 0;
		size_t want = 0;
		for (size_t i = 0; i < q->count && n < OUTQ_IOV_MAX; i++, n++) {
			struct blob *b = q->ring[(q->head + i) % q->cap];
			size_t off = i == 0 ? q->head_off : 0;
			iov[n].iov_base = b->data + off;
			iov[n].iov_len = b->len - off;
			want += iov[n].iov_len;
		}
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			if (errno == EINTR)
				continue;
			return -1;
		}
		outq_consume(q, (size_t)w);
		total += w;
		if ((size_t)w < want) /* the socket buffer is full */
			break;
	}
	return total;
}
