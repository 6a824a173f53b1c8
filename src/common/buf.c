/* buf.c - blobs and the output queue. */
#include "buf.h"
#include "xmalloc.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define OUTQ_BLOCK 4096 /* private tail blocks grow to this size, later ones start at it */
#define OUTQ_FIRST 256  /* a private block queued alone starts this small */
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

/* The slot of the i-th queued block. */
static struct blob **outq_slot(struct outq *q, size_t i)
{
	assert(q->cap > 1 || i == 0); /* without a ring there is only slot 0 */
	/* The ring's size is a power of two: a mask, not a division, per slot. */
	return q->cap <= 1 ? &q->u.one : &q->u.ring[(q->head + i) & (q->cap - 1)];
}

/* Back to the empty state that holds no memory (the blocks are gone already). */
static void outq_reset(struct outq *q)
{
	if (q->cap > 1)
		free(q->u.ring);
	outq_init(q);
}

void outq_free(struct outq *q)
{
	for (size_t i = 0; i < q->count; i++)
		blob_unref(*outq_slot(q, i));
	outq_reset(q);
}

static void ring_grow(struct outq *q)
{
	size_t ncap = q->cap > 1 ? q->cap * 2 : 8;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): the ring holds pointers */
	struct blob **ring = xmalloc(ncap * sizeof *ring);
	for (size_t i = 0; i < q->count; i++)
		ring[i] = *outq_slot(q, i);
	if (q->cap > 1)
		free(q->u.ring);
	q->u.ring = ring;
	q->cap = ncap;
	q->head = 0;
}

void outq_push(struct outq *q, struct blob *b)
{
	if (b->len == 0)
		return;
	if (q->count == 0 && q->cap <= 1)
		q->cap = 1; /* the one block sits in the queue itself */
	else if (q->count == q->cap)
		ring_grow(q);
	*outq_slot(q, q->count++) = blob_ref(b);
	q->bytes += b->len;
}

/* Room for len more bytes in the private tail block, growing it up to OUTQ_BLOCK; NULL
 * when it is shared or would grow past that. */
static struct blob *outq_tail_room(struct outq *q, size_t len)
{
	struct blob **slot = outq_slot(q, q->count - 1);
	struct blob *tail = *slot;

	/* Only a block this queue alone owns may grow. */
	if (tail->refs != 1)
		return NULL;
	if (tail->cap - tail->len >= len)
		return tail;
	if (tail->len + len > OUTQ_BLOCK)
		return NULL;
	tail = xrealloc(tail, sizeof *tail + OUTQ_BLOCK);
	tail->cap = OUTQ_BLOCK;
	*slot = tail;
	return tail;
}

void outq_append(struct outq *q, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (q->count) {
		struct blob *tail = outq_tail_room(q, len);
		if (tail) {
			blob_append(tail, data, len);
			q->bytes += len;
			return;
		}
	}
	/* A lone reply gets a block its size; a burst grows it (outq_tail_room). */
	size_t least = q->count ? OUTQ_BLOCK : OUTQ_FIRST;
	struct blob *b = blob_new(len > least ? len : least);
	blob_append(b, data, len);
	outq_push(q, b);
	blob_unref(b);
}

/* Drops n written bytes from the front of the queue. */
void outq_consume(struct outq *q, size_t n)
{
	q->bytes -= n;
	while (n > 0 && q->count) {
		struct blob *b = *outq_slot(q, 0);
		/* Each turn reads the next slot. Seeing outq_flush's gather as a bare call,
		 * the analyzer can't tell masked ring slots apart (count <= cap, each slot
		 * its own block) and takes this for the block freed last turn. */
		/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): see above */
		size_t left = b->len - q->head_off;
		if (n < left) {
			q->head_off += n;
			return;
		}
		n -= left;
		blob_unref(b);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
		q->head_off = 0;
	}
	/* A drained ring stays for the next turn's output (a busy member would
	 * otherwise allocate and grow it every turn); outq_trim frees it once the
	 * connection is idle. A lone block is gone with its slot. */
	if (q->count == 0) {
		q->head = 0;
		if (q->cap == 1)
			q->cap = 0;
	}
}

void outq_trim(struct outq *q)
{
	if (q->count == 0)
		outq_reset(q);
}

/* The unsent front of the queue as up to max iovecs (how many), and in *bytes
 * their total; outq_flush needs that to tell a short write. */
static int outq_gather(struct outq *q, struct iovec *iov, int max, size_t *bytes)
{
	int n = 0;
	size_t sum = 0; /* a local: no store through bytes per block */
	for (size_t i = 0; i < q->count && n < max; i++, n++) {
		struct blob *b = *outq_slot(q, i);
		size_t off = i == 0 ? q->head_off : 0;
		iov[n].iov_base = b->data + off;
		iov[n].iov_len = b->len - off;
		sum += iov[n].iov_len;
	}
	*bytes = sum;
	return n;
}

int outq_peek(struct outq *q, struct iovec *iov, int max)
{
	size_t bytes;
	return outq_gather(q, iov, max, &bytes);
}

ssize_t outq_flush(struct outq *q, int fd)
{
	ssize_t total = 0;

	while (q->count) {
		struct iovec iov[OUTQ_IOV_MAX];
		size_t want;
		int n = outq_gather(q, iov, OUTQ_IOV_MAX, &want);
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
