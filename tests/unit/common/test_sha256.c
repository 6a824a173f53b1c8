/* Unit tests for sha256.c: known digests, a file hashed in small budgets
 * against one-shot EVP, short files, the hex helpers, bytes fed in order
 * (a whole download's, and a resumed one's after its start is read back). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* An unlinked temporary file holding data[0..len). */
static int temp_file(const void *data, size_t len)
{
	char path[] = "/tmp/test_sha256.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* The digest of fd's first size bytes, `budget` bytes a step. */
static void hash_in_steps(int fd, uint64_t size, size_t budget, size_t bufsz,
                          char hex[WIRE_SHA_HEX + 1])
{
	struct sha256_steps h;
	unsigned char *buf = malloc(bufsz);
	int rc, steps = 0;

	assert_non_null(buf);
	assert_int_equal(sha256_steps_begin(&h, fd, size), 0);
	while ((rc = sha256_steps_run(&h, buf, bufsz, budget)) == 0) {
		assert_true(h.done <= size);
		steps++;
	}
	assert_int_equal(rc, 1);
	assert_int_equal(h.done, size);
	if (budget < size)
		assert_true(steps > 0);
	sha256_steps_finish(&h, hex);
	sha256_steps_abort(&h); /* finished: nothing left to free */
	free(buf);
}

static void test_known_digests(void **state)
{
	char hex[WIRE_SHA_HEX + 1];
	int fd = temp_file("abc", 3);

	(void)state;
	hash_in_steps(fd, 0, 1, 16, hex);
	assert_string_equal(hex, EMPTY_SHA);
	hash_in_steps(fd, 3, 1, 16, hex); /* a byte a step */
	assert_string_equal(hex, ABC_SHA);
	hash_in_steps(fd, 3, 1000, 2, hex); /* a buffer smaller than the step */
	assert_string_equal(hex, ABC_SHA);
	close(fd);
}

static void test_3mib_in_small_budgets_equals_one_shot(void **state)
{
	const size_t size = 3u << 20;
	unsigned char *data = malloc(size), digest[EVP_MAX_MD_SIZE];
	char want[WIRE_SHA_HEX + 1], got[WIRE_SHA_HEX + 1];
	unsigned int dlen = 0;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	assert_int_equal(EVP_Digest(data, size, digest, &dlen, EVP_sha256(), NULL), 1);
	hex_encode(digest, dlen, want);
	int fd = temp_file(data, size);
	hash_in_steps(fd, size, 4093, 1000, got); /* odd sizes: steps end mid-buffer */
	assert_string_equal(got, want);
	hash_in_steps(fd, size, 1u << 20, 64 * 1024, got); /* the server's step and buffer */
	assert_string_equal(got, want);
	hash_in_steps(fd, size, size, 1u << 22, got); /* one step */
	assert_string_equal(got, want);
	close(fd);
	free(data);
}

static void test_short_file_is_eio(void **state)
{
	struct sha256_steps h;
	unsigned char buf[8];
	int fd = temp_file("abc", 3);

	(void)state;
	assert_int_equal(sha256_steps_begin(&h, fd, 10), 0);
	errno = 0;
	assert_int_equal(sha256_steps_run(&h, buf, sizeof buf, 100), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(h.done, 3);
	sha256_steps_abort(&h);
	sha256_steps_abort(&h); /* twice is fine */
	close(fd);
}

static void test_read_error_keeps_errno(void **state)
{
	struct sha256_steps h;
	unsigned char buf[8];

	(void)state;
	assert_int_equal(sha256_steps_begin(&h, -1, 10), 0);
	assert_int_equal(sha256_steps_run(&h, buf, sizeof buf, 100), -1);
	assert_int_equal(errno, EBADF);
	sha256_steps_abort(&h);
}

static void test_abort_on_zeroed(void **state)
{
	struct sha256_steps h;

	(void)state;
	memset(&h, 0, sizeof h);
	sha256_steps_abort(&h);
	assert_null(h.md);
}

static void test_hex(void **state)
{
	static const unsigned char in[] = { 0x00, 0x0f, 0xa5, 0xff };
	char out[2 * sizeof in + 1];

	(void)state;
	memset(out, 'Q', sizeof out);
	hex_encode(in, sizeof in, out);
	assert_string_equal(out, "000fa5ff");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
	assert_true(sha256_hex_valid(EMPTY_SHA));
	assert_false(sha256_hex_valid(
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(sha256_hex_valid(EMPTY_SHA "0"));
	assert_false(sha256_hex_valid(EMPTY_SHA + 1));
	assert_false(sha256_hex_valid(
		"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(sha256_hex_valid(""));
}

/* The digest of data[0..len) in one go, for comparison. */
static void one_shot(const unsigned char *data, size_t len, char hex[WIRE_SHA_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
	hex_encode(md, n, hex);
}

static unsigned char *pattern(size_t len)
{
	unsigned char *data = malloc(len);

	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 11));
	return data;
}

/* Fed bytes in order are hashed; out-of-order ones are left to the steps,
 * which read from where the feeding stopped. */
static void test_feed_then_steps(void **state)
{
	size_t len = 300000;
	unsigned char *data = pattern(len), buf[4096];
	char want[WIRE_SHA_HEX + 1], got[WIRE_SHA_HEX + 1];
	int fd = temp_file(data, len);
	struct sha256_steps h;

	(void)state;
	one_shot(data, len, want);
	assert_int_equal(sha256_steps_begin(&h, fd, len), 0);
	assert_true(sha256_steps_feed(&h, 0, data, 1000));
	assert_false(sha256_steps_feed(&h, 5000, data + 5000, 10)); /* a gap */
	assert_true(sha256_steps_feed(&h, 1000, data + 1000, 99000));
	assert_false(sha256_steps_feed(&h, 100000, data, len)); /* past the size */
	assert_int_equal(h.done, 100000);
	while (sha256_steps_run(&h, buf, sizeof buf, 8192) == 0)
		;
	sha256_steps_finish(&h, got);
	assert_string_equal(got, want);
	close(fd);
	free(data);
}

/* Data fed as it arrives, in frame-sized pieces, needs no read at all (the
 * fd is not even valid): the digest is the one-shot one. */
static void test_feed_all_reads_nothing(void **state)
{
	size_t len = 3 * 1024 * 1024 + 77;
	unsigned char *data = pattern(len), buf[16];
	char want[WIRE_SHA_HEX + 1], got[WIRE_SHA_HEX + 1];
	struct sha256_steps h;

	(void)state;
	one_shot(data, len, want);
	assert_int_equal(sha256_steps_begin(&h, -1, len), 0);
	for (size_t at = 0; at < len;) {
		size_t n = len - at < 65531 ? len - at : 65531;
		assert_true(sha256_steps_feed(&h, at, data + at, n));
		at += n;
	}
	assert_int_equal(h.done, len);
	assert_int_equal(sha256_steps_run(&h, buf, sizeof buf, 1024), 1); /* nothing to read */
	sha256_steps_finish(&h, got);
	assert_string_equal(got, want);
	free(data);
}

/* A resumed file: its start is read in bounded steps, then what arrives is
 * fed; a step never reads more than its budget. */
static void test_steps_then_feed(void **state)
{
	size_t len = 1000000, first = 300001;
	unsigned char *data = pattern(len), buf[4096];
	char want[WIRE_SHA_HEX + 1], got[WIRE_SHA_HEX + 1];
	int fd = temp_file(data, first);
	struct sha256_steps h;

	(void)state;
	one_shot(data, len, want);
	assert_int_equal(sha256_steps_begin(&h, fd, len), 0);
	assert_false(sha256_steps_feed(&h, first, data + first, 10)); /* not up to it yet */
	for (uint64_t before = 0; h.done < first; before = h.done) {
		size_t budget = first - h.done < 50000 ? first - h.done : 50000;
		assert_int_equal(sha256_steps_run(&h, buf, sizeof buf, budget), 0);
		assert_true(h.done - before <= 50000);
	}
	assert_int_equal(h.done, first);
	assert_true(sha256_steps_feed(&h, first, data + first, len - first));
	sha256_steps_finish(&h, got);
	assert_string_equal(got, want);
	close(fd);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_digests),
		cmocka_unit_test(test_3mib_in_small_budgets_equals_one_shot),
		cmocka_unit_test(test_short_file_is_eio),
		cmocka_unit_test(test_read_error_keeps_errno),
		cmocka_unit_test(test_abort_on_zeroed),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_feed_then_steps),
		cmocka_unit_test(test_feed_all_reads_nothing),
		cmocka_unit_test(test_steps_then_feed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
