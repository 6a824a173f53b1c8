/* Unit tests for sha256.c: known digests, a file hashed in small budgets
 * against one-shot EVP, short files, and the hex helpers. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_digests),
		cmocka_unit_test(test_3mib_in_small_budgets_equals_one_shot),
		cmocka_unit_test(test_short_file_is_eio),
		cmocka_unit_test(test_read_error_keeps_errno),
		cmocka_unit_test(test_abort_on_zeroed),
		cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
