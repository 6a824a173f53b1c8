/* buf.h - reference-counted byte blocks and a per-connection output queue.
 * No sockets here except the one writev in outq_flush. */
#ifndef BOTTLE_BUF_H
#define BOTTLE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* An immutable-once-shared block of bytes. A broadcast encodes a message into one
 * blob and every receiver's queue holds a reference to it. */
struct blob {
	unsigned int refs; /* a block with one reference may still grow */
	size_t len, cap;
	unsigned char data[];
};

struct blob *blob_new(size_t cap); /* refs = 1, len = 0 */
struct blob *blob_from(const void *data, size_t len);
void blob_append(struct blob *b, const void *data, size_t len); /* must fit in cap */
struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b);

/* Output queue: a ring of blob references, the first one partly sent. An empty queue
 * holds no memory; one block needs no ring (it sits in `one`); the ring is allocated
 * when a second block is queued and freed when the queue is empty again. */
struct outq {
	union {
		struct blob *one;   /* cap <= 1 */
		struct blob **ring; /* cap > 1 */
	} u;
	size_t head, count, cap;
	size_t head_off; /* bytes of the first block already written */
	size_t bytes;    /* unsent bytes in the queue */
};

void outq_init(struct outq *q);
void outq_free(struct outq *q);
/* Queues a reference to b (the caller keeps its own). */
void outq_push(struct outq *q, struct blob *b);
/* Copies bytes in, reusing the private tail block when it has room (or can grow to
 * OUTQ_BLOCK); a first block is only as big as it needs to be. */
void outq_append(struct outq *q, const void *data, size_t len);
static inline size_t outq_bytes(const struct outq *q) { return q->bytes; }
/* Frees the ring of a queue that is empty (its owner calls this for idle
 * connections now and then): an idle connection holds no memory for output. */
void outq_trim(struct outq *q);
/* Writes as much as the socket takes with writev. Returns bytes written (0 when the
 * socket is full or the queue empty) or -1 with errno on a real error. */
ssize_t outq_flush(struct outq *q, int fd);
/* For writers other than writev (TLS, tlsio.h): the unsent front of the queue
 * as up to max iovecs (returns how many), and dropping the n bytes written. */
struct iovec;
int outq_peek(struct outq *q, struct iovec *iov, int max);
void outq_consume(struct outq *q, size_t n);

#endif
