/* Unit tests for the TPKT framing module. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tpkt.h"

/* Builds header + payload (bytes i*7+seed) into a fresh heap buffer of *total bytes. */
static unsigned char *make_frame(size_t payload_len, unsigned seed, size_t *total)
{
	unsigned char *f = malloc(payload_len + TPKT_HDR_LEN);
	size_t i;

	assert_non_null(f);
	tpkt_encode_header(f, payload_len);
	for (i = 0; i < payload_len; i++)
		f[TPKT_HDR_LEN + i] = (unsigned char)(i * 7 + seed);
	*total = payload_len + TPKT_HDR_LEN;
	return f;
}

static void assert_payload(const unsigned char *got, size_t got_len, const unsigned char *frame,
                           size_t total)
{
	assert_int_equal(got_len, total - TPKT_HDR_LEN);
	if (got_len)
		assert_memory_equal(got, frame + TPKT_HDR_LEN, got_len);
}

static bool points_into(const unsigned char *p, const unsigned char *buf, size_t n)
{
	return p >= buf && p <= buf + n;
}

static void test_roundtrip(void **state)
{
	struct tpkt_decoder d;
	unsigned char f[TPKT_HDR_LEN + 5];
	const unsigned char *pl;
	size_t used, len;

	(void)state;
	tpkt_encode_header(f, 5);
	assert_memory_equal(f, "\x03\x00\x00\x09", 4);
	memcpy(f + TPKT_HDR_LEN, "hello", 5);
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, f, sizeof(f), &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(used, sizeof(f));
	assert_int_equal(len, 5);
	assert_memory_equal(pl, "hello", 5);
	tpkt_decoder_free(&d);
}

/* Feeds the frame as two pieces split at offset `cut` and checks the result. */
static void decode_split(const unsigned char *f, size_t total, size_t cut)
{
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t used, len;

	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	if (cut == total) {
		assert_int_equal(tpkt_decode(&d, f, cut, &used, &pl, &len), TPKT_FRAME);
	} else {
		assert_int_equal(tpkt_decode(&d, f, cut, &used, &pl, &len), TPKT_NEED_MORE);
		assert_int_equal(used, cut);
		assert_null(pl);
		assert_int_equal(tpkt_decode(&d, f + cut, total - cut, &used, &pl, &len),
		                 TPKT_FRAME);
		assert_int_equal(used, total - cut);
	}
	assert_payload(pl, len, f, total);
	tpkt_decoder_free(&d);
}

static void test_split_every_position(void **state)
{
	size_t total, cut;
	unsigned char *f = make_frame(37, 1, &total);

	(void)state;
	for (cut = 0; cut <= total; cut++)
		decode_split(f, total, cut);
	free(f);
}

static void test_split_every_position_large(void **state)
{
	size_t total, cut;
	unsigned char *f = make_frame(5000, 3, &total);

	(void)state;
	for (cut = 0; cut <= total; cut += 1 + cut / 64)
		decode_split(f, total, cut);
	decode_split(f, total, total - 1);
	free(f);
}

static void test_one_byte_at_a_time(void **state)
{
	struct tpkt_decoder d;
	const unsigned char *pl = NULL;
	size_t total, used, len = 0, i, round;
	unsigned char *f = make_frame(300, 5, &total);

	(void)state;
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	for (round = 0; round < 2; round++) { /* the decoder must reset between frames */
		for (i = 0; i < total; i++) {
			enum tpkt_status st = tpkt_decode(&d, f + i, 1, &used, &pl, &len);

			assert_int_equal(used, 1);
			assert_int_equal(st, i + 1 == total ? TPKT_FRAME : TPKT_NEED_MORE);
		}
		assert_payload(pl, len, f, total);
	}
	tpkt_decoder_free(&d);
	free(f);
}

static void test_many_frames_one_buffer(void **state)
{
	unsigned char buf[1024];
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t n = 0, off = 0, used, len, k;

	(void)state;
	for (k = 0; k < 10; k++) {
		tpkt_encode_header(buf + n, k);
		memset(buf + n + TPKT_HDR_LEN, (int)('a' + k), k);
		n += TPKT_HDR_LEN + k;
	}
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	for (k = 0; k < 10; k++) {
		assert_int_equal(tpkt_decode(&d, buf + off, n - off, &used, &pl, &len), TPKT_FRAME);
		assert_int_equal(used, TPKT_HDR_LEN + k);
		assert_int_equal(len, k);
		assert_true(points_into(pl, buf + off, n - off));
		for (size_t j = 0; j < k; j++)
			assert_int_equal(pl[j], 'a' + k);
		off += used;
	}
	assert_int_equal(tpkt_decode(&d, buf + off, n - off, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(used, 0);
	tpkt_decoder_free(&d);
}

static void test_min_length(void **state)
{
	static const unsigned char f[] = { 3, 0, 0, 4 };
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t used, len;

	(void)state;
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, f, sizeof(f), &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(used, 4);
	assert_int_equal(len, 0);
	assert_non_null(pl);
	/* Header split, empty payload: frame completes on the last header byte. */
	assert_int_equal(tpkt_decode(&d, f, 3, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(tpkt_decode(&d, f + 3, 1, &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(used, 1);
	assert_int_equal(len, 0);
	tpkt_decoder_free(&d);
}

static void test_max_length(void **state)
{
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t total, used, len;
	unsigned char *f = make_frame(TPKT_MAX_PAYLOAD, 9, &total);

	(void)state;
	assert_int_equal(total, 65535);
	assert_memory_equal(f, "\x03\x00\xff\xff", 4);
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, f, total, &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(used, total);
	assert_payload(pl, len, f, total);
	/* Split, so it goes through the internal buffer; then a small frame after it. */
	assert_int_equal(tpkt_decode(&d, f, 40000, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(tpkt_decode(&d, f + 40000, total - 40000, &used, &pl, &len), TPKT_FRAME);
	assert_false(points_into(pl, f, total));
	assert_payload(pl, len, f, total);
	/* The big buffer is released; a later split small frame must still work. */
	assert_int_equal(tpkt_decode(&d, f, 2, &used, &pl, &len), TPKT_NEED_MORE);
	f[2] = 0;
	f[3] = 10;
	assert_int_equal(tpkt_decode(&d, f + 2, 7, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(tpkt_decode(&d, f + 9, 100, &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(used, 1);
	assert_payload(pl, len, f, 10);
	tpkt_decoder_free(&d);
	free(f);
}

static void test_max_len_lowered(void **state)
{
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t total, used, len;
	unsigned char *ok = make_frame(96, 2, &total);
	unsigned char *big = make_frame(97, 2, &total);

	(void)state;
	tpkt_decoder_init(&d, 100);
	assert_int_equal(tpkt_decode(&d, ok, 100, &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(len, 96);
	assert_int_equal(tpkt_decode(&d, big, 101, &used, &pl, &len), TPKT_TOO_LONG);
	assert_int_equal(used, TPKT_HDR_LEN);
	assert_null(pl);
	assert_int_equal(tpkt_decode(&d, ok, 100, &used, &pl, &len), TPKT_TOO_LONG);
	assert_int_equal(used, 0);
	tpkt_decoder_free(&d);
	free(ok);
	free(big);
}

static void test_max_len_clamped(void **state)
{
	static const unsigned char empty[] = { 3, 0, 0, 4 }, one[] = { 3, 0, 0, 5, 'x' };
	static const unsigned char huge[] = { 3, 0, 0xff, 0xff };
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t used, len;

	(void)state;
	tpkt_decoder_init(&d, 0);
	assert_int_equal(tpkt_decode(&d, empty, 4, &used, &pl, &len), TPKT_FRAME);
	assert_int_equal(tpkt_decode(&d, one, 5, &used, &pl, &len), TPKT_TOO_LONG);
	tpkt_decoder_free(&d);
	tpkt_decoder_init(&d, 1000000);
	assert_int_equal(tpkt_decode(&d, huge, 4, &used, &pl, &len), TPKT_NEED_MORE);
	tpkt_decoder_free(&d);
}

/* Feeds `bad` byte by byte; expects `want` exactly when byte `at` arrives, then stickiness. */
static void expect_header_error(const unsigned char *bad, size_t at, enum tpkt_status want)
{
	static const unsigned char good[] = { 3, 0, 0, 4 };
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t used, len, i;

	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	for (i = 0; i < at; i++)
		assert_int_equal(tpkt_decode(&d, bad + i, 1, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(tpkt_decode(&d, bad + at, 1, &used, &pl, &len), want);
	assert_int_equal(used, 1);
	assert_int_equal(tpkt_decode(&d, good, sizeof(good), &used, &pl, &len), want);
	assert_int_equal(used, 0);
	assert_null(pl);
	assert_int_equal(len, 0);
	tpkt_decoder_free(&d);
	/* Whole header at once: consumed up to and including the offending byte. */
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, bad, TPKT_HDR_LEN, &used, &pl, &len), want);
	assert_int_equal(used, at + 1);
	tpkt_decoder_free(&d);
}

static void test_bad_version(void **state)
{
	static const unsigned char v0[] = { 0, 0, 0, 4 }, v5[] = { 5, 0, 0, 4 };

	(void)state;
	expect_header_error(v0, 0, TPKT_BAD_VERSION);
	expect_header_error(v5, 0, TPKT_BAD_VERSION);
}

static void test_bad_reserved(void **state)
{
	static const unsigned char r1[] = { 3, 1, 0, 4 }, rff[] = { 3, 0xff, 0, 4 };

	(void)state;
	expect_header_error(r1, 1, TPKT_BAD_RESERVED);
	expect_header_error(rff, 1, TPKT_BAD_RESERVED);
}

static void test_bad_length(void **state)
{
	unsigned char h[] = { 3, 0, 0, 0 };
	unsigned char l;

	(void)state;
	for (l = 0; l < 4; l++) {
		h[3] = l;
		expect_header_error(h, 3, TPKT_BAD_LENGTH);
	}
}

static void test_zero_copy(void **state)
{
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t total, used, len;
	unsigned char *f = make_frame(64, 4, &total);

	(void)state;
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, f, total, &used, &pl, &len), TPKT_FRAME);
	assert_ptr_equal(pl, f + TPKT_HDR_LEN);
	/* Split payload must be copied out of the caller's buffer. */
	assert_int_equal(tpkt_decode(&d, f, 10, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(tpkt_decode(&d, f + 10, total - 10, &used, &pl, &len), TPKT_FRAME);
	assert_false(points_into(pl, f, total));
	assert_payload(pl, len, f, total);
	tpkt_decoder_free(&d);
	tpkt_decoder_free(&d); /* twice is safe */
	free(f);
}

/* An idle decoder holds no memory: the buffer exists only while a frame spans calls
 * (and until tpkt_decoder_trim after the frame that needed it). */
static void test_trim_frees_when_idle(void **state)
{
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t total, used, len;
	unsigned char *f = make_frame(64, 4, &total);

	(void)state;
	assert_true(sizeof d <= 32);
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, f, total, &used, &pl, &len), TPKT_FRAME);
	assert_null(d.buf); /* in place */
	assert_int_equal(tpkt_decode(&d, f, 2, &used, &pl, &len), TPKT_NEED_MORE);
	tpkt_decoder_trim(&d);
	assert_null(d.buf); /* half a header needs no buffer */
	assert_int_equal(tpkt_decode(&d, f + 2, 8, &used, &pl, &len), TPKT_NEED_MORE);
	assert_non_null(d.buf);
	tpkt_decoder_trim(&d);
	assert_non_null(d.buf); /* holds part of the payload: kept */
	assert_int_equal(tpkt_decode(&d, f + 10, total - 10, &used, &pl, &len), TPKT_FRAME);
	assert_payload(pl, len, f, total);
	tpkt_decoder_trim(&d);
	assert_null(d.buf);
	tpkt_decoder_trim(&d); /* twice is fine */
	/* Sticky errors survive a trim. */
	assert_int_equal(tpkt_decode(&d, "\x04", 1, &used, &pl, &len), TPKT_BAD_VERSION);
	tpkt_decoder_trim(&d);
	assert_int_equal(tpkt_decode(&d, f, total, &used, &pl, &len), TPKT_BAD_VERSION);
	tpkt_decoder_free(&d);
	free(f);
}

static void test_empty_input(void **state)
{
	struct tpkt_decoder d;
	const unsigned char *pl;
	size_t used = 99, len;

	(void)state;
	tpkt_decoder_init(&d, TPKT_MAX_LEN);
	assert_int_equal(tpkt_decode(&d, NULL, 0, &used, &pl, &len), TPKT_NEED_MORE);
	assert_int_equal(used, 0);
	tpkt_decoder_free(&d);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(tpkt_strerror(TPKT_NEED_MORE), "ok");
	assert_string_equal(tpkt_strerror(TPKT_FRAME), "ok");
	assert_string_equal(tpkt_strerror(TPKT_BAD_VERSION), "bad TPKT version");
	assert_string_equal(tpkt_strerror(TPKT_BAD_RESERVED), "bad TPKT reserved byte");
	assert_string_equal(tpkt_strerror(TPKT_BAD_LENGTH), "bad TPKT length");
	assert_string_equal(tpkt_strerror(TPKT_TOO_LONG), "TPKT frame too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_split_every_position),
		cmocka_unit_test(test_split_every_position_large),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_many_frames_one_buffer),
		cmocka_unit_test(test_min_length),
		cmocka_unit_test(test_max_length),
		cmocka_unit_test(test_max_len_lowered),
		cmocka_unit_test(test_max_len_clamped),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_bad_reserved),
		cmocka_unit_test(test_bad_length),
		cmocka_unit_test(test_zero_copy),
		cmocka_unit_test(test_trim_frees_when_idle),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
