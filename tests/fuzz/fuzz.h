/* fuzz.h - what every libFuzzer target in tests/fuzz shares: the entry points'
 * prototypes, a check that aborts with the failed condition (so an invariant
 * violation is a crash libFuzzer saves, with or without NDEBUG), and a reader
 * that takes parameters from the front of the input. */
#ifndef BOTTLE_FUZZ_H
#define BOTTLE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline _Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
	abort();
}

#define CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

/* Parameters taken from the front of the input; past its end they read as 0. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static inline unsigned fuzz_u16(struct fuzz_in *in)
{
	unsigned hi = fuzz_byte(in);
	return hi << 8 | fuzz_byte(in);
}

/* Chunk sizes for splitting a stream: a cycle of up to 8 size bytes read from
 * the input. 1..0xef are bytes, 0xf0..0xff are 256 << (b - 0xf0), and 0 asks for
 * an empty call (the caller then moves on by one byte). */
struct fuzz_chunks {
	uint8_t size[8];
	size_t count, next;
};

static inline void fuzz_chunks_init(struct fuzz_chunks *ch, struct fuzz_in *in)
{
	ch->count = (size_t)(fuzz_byte(in) % 8) + 1;
	ch->next = 0;
	for (size_t i = 0; i < ch->count; i++)
		ch->size[i] = fuzz_byte(in);
}

/* The next chunk's size (0: make one empty call), at most left. */
static inline size_t fuzz_chunks_next(struct fuzz_chunks *ch, size_t left)
{
	uint8_t b = ch->size[ch->next++ % ch->count];
	size_t s = b < 0xf0 ? b : (size_t)256 << (b - 0xf0);
	return s < left ? s : left;
}

/* Length of the well-formed UTF-8 sequence at s (Unicode section 3.9, table
 * 3-7: the second byte's range depends on the lead byte, later bytes are
 * 80..BF), with its code point in *cp; 0 if s[0..n) doesn't start with one. */
static inline size_t fuzz_utf8(const unsigned char *s, size_t n, unsigned *cp)
{
	static const struct {
		unsigned char lo, hi, len, lo2, hi2;
	} rows[] = {
		{ 0x00, 0x7f, 1, 0, 0 },       { 0xc2, 0xdf, 2, 0x80, 0xbf },
		{ 0xe0, 0xe0, 3, 0xa0, 0xbf }, { 0xe1, 0xec, 3, 0x80, 0xbf },
		{ 0xed, 0xed, 3, 0x80, 0x9f }, { 0xee, 0xef, 3, 0x80, 0xbf },
		{ 0xf0, 0xf0, 4, 0x90, 0xbf }, { 0xf1, 0xf3, 4, 0x80, 0xbf },
		{ 0xf4, 0xf4, 4, 0x80, 0x8f },
	};
	if (n == 0)
		return 0;
	for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		if (s[0] < rows[r].lo || s[0] > rows[r].hi)
			continue;
		size_t len = rows[r].len;
		if (len == 1) {
			*cp = s[0];
			return 1;
		}
		if (n < len || s[1] < rows[r].lo2 || s[1] > rows[r].hi2)
			return 0;
		for (size_t i = 2; i < len; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return 0;
		unsigned c = s[0] & (0xffu >> (len + 1));
		for (size_t i = 1; i < len; i++)
			c = c << 6 | (s[i] & 0x3f);
		*cp = c;
		return len;
	}
	return 0;
}

#endif
