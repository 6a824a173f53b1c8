/* sha256.h - SHA-256 of a file in bounded steps, so a loop can go on serving
 * between them (a 1 GiB file never stalls it), and the hex text of digests. */
#ifndef BOTTLE_SHA256_H
#define BOTTLE_SHA256_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hashing the first `size` bytes of fd; `done` of them are in so far. */
struct sha256_steps {
	void *md; /* private: the OpenSSL context */
	int fd;
	uint64_t size, done;
};

/* 0, or -1 when OpenSSL can't hash SHA-256. */
int sha256_steps_begin(struct sha256_steps *h, int fd, uint64_t size);
/* Hashes up to `budget` more bytes, reading them with pread through buf. 1
 * when all `size` bytes are in, 0 when more remain, -1 with errno on a read
 * error (EIO when the file is shorter than `size`). */
int sha256_steps_run(struct sha256_steps *h, unsigned char *buf, size_t bufsz, size_t budget);
/* Hashes bytes the owner has at hand that are the file's bytes at off (a
 * download's data as it arrives, an upload's as it is written), so they need
 * no reading back. Only bytes that go on where the hash is (off == done) are
 * taken; any others are left for sha256_steps_run. True when taken. */
bool sha256_steps_feed(struct sha256_steps *h, uint64_t off, const void *data, size_t len);
/* The digest, in lowercase hex; frees the context. */
void sha256_steps_finish(struct sha256_steps *h, char hex[WIRE_SHA_HEX + 1]);
/* Drops an unfinished hash; safe on a zeroed or finished struct. */
void sha256_steps_abort(struct sha256_steps *h);

/* Lowercase hex of in[0..n) into out, which holds 2n + 1 bytes. */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* True for exactly 64 lowercase hex digits: a digest as the protocol writes it. */
bool sha256_hex_valid(const char *s);

#endif
