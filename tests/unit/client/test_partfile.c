/* Unit tests for partfile.c in a fresh temporary folder: naming PATH.part,
 * resuming one with its size and digest, verifying (good, bad, short), the
 * rename into place, and hashing as data is written (fresh, resumed, across
 * reconnects). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "partfile.h"

/* sha256("hello world\n") */
#define SHA_HELLO "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
#define SHA_OTHER "0000000000000000000000000000000000000000000000000000000000000000"

static char dir[64];
static char path[128];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_partfile.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/notes.txt", dir);
	return 0;
}

static int remove_dir(void **state)
{
	char part[160];
	(void)state;
	snprintf(part, sizeof part, "%s.part", path);
	unlink(part);
	unlink(path);
	return rmdir(dir);
}

/* A .part holding "hello world\n" (len bytes of it), tagged with sha. */
static void make_part(struct partfile *pf, size_t len, const char *sha)
{
	assert_int_equal(partfile_open(pf, path), 0);
	assert_int_equal(partfile_create(pf), 0);
	assert_int_equal(partfile_write(pf, 0, (const unsigned char *)"hello world\n", len), 0);
	partfile_tag(pf, sha);
}

static enum partfile_check verify_all(struct partfile *pf, uint64_t size, char got[65])
{
	enum partfile_check c;
	assert_int_equal(partfile_verify_begin(pf, size), 0);
	while ((c = partfile_verify_step(pf, got)) == PARTFILE_MORE)
		;
	return c;
}

static void open_names_part_and_finds_none(void **state)
{
	struct partfile pf;
	char want[160];
	(void)state;

	snprintf(want, sizeof want, "%s.part", path);
	assert_int_equal(partfile_open(&pf, path), 0);
	assert_string_equal(pf.part, want);
	assert_string_equal(pf.path, path);
	assert_int_equal(pf.fd, -1);
	assert_int_equal(pf.size, 0);
	assert_string_equal(pf.sha, "");
	partfile_close(&pf);
}

static void reopen_finds_size_and_digest(void **state)
{
	struct partfile pf;
	char sha[65] = "";
	(void)state;

	make_part(&pf, 5, SHA_HELLO);
	/* The xattr is best effort: a file system without user xattrs keeps none. */
	bool tagged = fgetxattr(pf.fd, WIRE_SHA_XATTR, sha, 64) == 64;
	partfile_close(&pf);
	assert_int_equal(partfile_open(&pf, path), 0);
	assert_true(pf.fd >= 0);
	assert_int_equal(pf.size, 5);
	assert_string_equal(pf.sha, tagged ? SHA_HELLO : "");
	assert_int_equal(partfile_truncate(&pf, 2), 0);
	partfile_close(&pf);
	assert_int_equal(partfile_open(&pf, path), 0);
	assert_int_equal(pf.size, 2);
	partfile_close(&pf);
}

static void good_part_is_published(void **state)
{
	struct partfile pf;
	char got[65], buf[32] = "";
	struct stat sb;
	(void)state;

	make_part(&pf, 12, SHA_HELLO);
	assert_int_equal(verify_all(&pf, 12, got), PARTFILE_GOOD);
	assert_string_equal(got, SHA_HELLO);
	assert_int_equal(partfile_publish(&pf), 0);
	assert_int_equal(stat(pf.part, &sb), -1);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 12);
	close(fd);
	assert_string_equal(buf, "hello world\n");
	partfile_close(&pf);
}

static void bad_part_is_deleted(void **state)
{
	struct partfile pf;
	char got[65];
	struct stat sb;
	(void)state;

	make_part(&pf, 12, SHA_OTHER);
	assert_int_equal(verify_all(&pf, 12, got), PARTFILE_BAD);
	assert_string_equal(got, SHA_HELLO);
	assert_int_equal(stat(pf.part, &sb), -1);
	partfile_close(&pf);
}

static void short_part_is_a_read_error(void **state)
{
	struct partfile pf;
	char got[65];
	(void)state;

	make_part(&pf, 5, SHA_HELLO);
	assert_int_equal(verify_all(&pf, 12, got), PARTFILE_ERROR);
	assert_int_equal(errno, EIO);
	partfile_close(&pf);
}

/* A pattern of len bytes and its digest, hashed by feeding (no file). */
static unsigned char *pattern(size_t len, char sha[65])
{
	unsigned char *data = malloc(len);
	struct sha256_steps h;

	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 11));
	assert_int_equal(sha256_steps_begin(&h, -1, len), 0);
	assert_true(sha256_steps_feed(&h, 0, data, len));
	sha256_steps_finish(&h, sha);
	return data;
}

/* Writes data[from..len) in frame-sized pieces. */
static void write_pieces(struct partfile *pf, const unsigned char *data, size_t from, size_t len)
{
	for (size_t at = from; at < len;) {
		size_t n = len - at < 65531 ? len - at : 65531;
		assert_int_equal(partfile_write(pf, at, data + at, n), 0);
		at += n;
	}
}

/* Data is hashed as it is written: when the last byte is in, so is the
 * digest, and the check reads nothing back. */
static void received_data_is_hashed_as_written(void **state)
{
	size_t len = 2 * 1024 * 1024 + 5;
	char sha[65], got[65];
	unsigned char *data = pattern(len, sha);
	struct partfile pf;
	(void)state;

	assert_int_equal(partfile_open(&pf, path), 0);
	assert_int_equal(partfile_create(&pf), 0);
	partfile_tag(&pf, sha);
	assert_int_equal(partfile_receive(&pf, 0, len), 0);
	write_pieces(&pf, data, 0, len);
	assert_int_equal(partfile_hashed(&pf), len);
	assert_int_equal(partfile_verify_begin(&pf, len), 0);
	assert_int_equal(partfile_verify_step(&pf, got), PARTFILE_GOOD);
	assert_string_equal(got, sha);
	partfile_close(&pf);
	free(data);
}

/* A resumed .part: its start is read back in bounded steps while the rest
 * arrives, and the hash catches up with the writes before the end. */
static void resumed_start_is_caught_up(void **state)
{
	size_t len = 4 * 1024 * 1024, first = 1024 * 1024 + 3;
	char sha[65], got[65];
	unsigned char *data = pattern(len, sha);
	struct partfile pf;
	(void)state;

	make_part(&pf, 0, sha);
	write_pieces(&pf, data, 0, first); /* no hash yet: an earlier run's bytes */
	partfile_close(&pf);
	assert_int_equal(partfile_open(&pf, path), 0);
	assert_int_equal(pf.size, first);
	assert_int_equal(partfile_receive(&pf, first, len), 0);
	assert_int_equal(partfile_hashed(&pf), 0);
	assert_int_equal(partfile_write(&pf, first, data + first, 65531), 0);
	assert_true(partfile_hashed(&pf) <= 1024 * 1024); /* one bounded step */
	write_pieces(&pf, data, first + 65531, len);
	assert_int_equal(partfile_hashed(&pf), len);
	assert_int_equal(verify_all(&pf, len, got), PARTFILE_GOOD);
	partfile_close(&pf);
	free(data);
}

/* A new connection that goes on where the last stopped keeps the hash; one
 * that starts over (the file changed) starts the hash over too. */
static void reconnect_keeps_or_restarts_the_hash(void **state)
{
	size_t len = 300000, half = 150000;
	char sha[65], got[65];
	unsigned char *data = pattern(len, sha);
	struct partfile pf;
	(void)state;

	make_part(&pf, 0, sha);
	assert_int_equal(partfile_receive(&pf, 0, len), 0);
	write_pieces(&pf, data, 0, half);
	assert_int_equal(partfile_receive(&pf, half, len), 0);
	assert_int_equal(partfile_hashed(&pf), half);
	write_pieces(&pf, data, half, len);
	assert_int_equal(partfile_hashed(&pf), len);
	assert_int_equal(partfile_truncate(&pf, 0), 0);
	assert_int_equal(partfile_receive(&pf, 0, len), 0);
	assert_int_equal(partfile_hashed(&pf), 0);
	write_pieces(&pf, data, 0, len);
	assert_int_equal(verify_all(&pf, len, got), PARTFILE_GOOD);
	partfile_close(&pf);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(open_names_part_and_finds_none, make_dir,
		                                remove_dir),
		cmocka_unit_test_setup_teardown(reopen_finds_size_and_digest, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(good_part_is_published, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(bad_part_is_deleted, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(short_part_is_a_read_error, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(received_data_is_hashed_as_written, make_dir,
		                                remove_dir),
		cmocka_unit_test_setup_teardown(resumed_start_is_caught_up, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(reconnect_keeps_or_restarts_the_hash, make_dir,
		                                remove_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
