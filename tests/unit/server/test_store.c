/* Unit tests for store.c on a temporary folder: the folder lock, what
 * store_open_file and store_list take for a file, partial uploads (open,
 * resume, restart on other metadata, publish, remove, expire), a hard link
 * planted at a partial's path, and the cached digest. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "tmpdir.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define TOKEN "token-0001"

struct fixture {
	char root[64]; /* mkdtemp: the store folder and a file outside it */
	char dir[80];  /* root/data, the store folder */
	struct store *st;
};

static char *path_in(const struct fixture *fx, const char *rel)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, sizeof buf[0], "%s/%s", fx->dir, rel);
	return p;
}

static void write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
	assert_int_equal(fclose(f), 0);
}

/* The whole contents of a small file ("" if missing), in a static buffer. */
static const char *read_file(const char *path)
{
	static char buf[1024];
	int fd = open(path, O_RDONLY);
	buf[0] = '\0';
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static bool exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

static int setup(void **state)
{
	static struct fixture fixture;
	struct fixture *fx = &fixture;
	memset(fx, 0, sizeof *fx);
	if (tmpdir_make(fx->root, sizeof fx->root, "test_store") < 0)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "%.63s/data", fx->root);
	struct storelock_holder holder;
	fx->st = store_open(fx->dir, NULL, &holder);
	if (!fx->st)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	store_close(fx->st);
	return tmpdir_remove(fx->root);
}

/* ---- the folder lock ---- */

static void test_open_makes_the_folder_and_names_the_holder(void **state)
{
	struct fixture *fx = *state;
	struct stat sb;
	assert_int_equal(stat(path_in(fx, ".bottle/partial"), &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	long pid = strtol(read_file(path_in(fx, ".bottle/lock")), NULL, 10);
	assert_int_equal(pid, (long)getpid());
}

static void test_second_open_is_busy(void **state)
{
	struct fixture *fx = *state;
	struct storelock_holder holder;
	/* The lock belongs to the open file description: the same process conflicts too. */
	errno = 0;
	assert_null(store_open(fx->dir, NULL, &holder));
	assert_int_equal(errno, EBUSY);
	assert_int_equal(holder.pid, (long)getpid());
	/* Closed, the folder can be opened again. */
	store_close(fx->st);
	fx->st = store_open(fx->dir, NULL, &holder);
	assert_non_null(fx->st);
	assert_int_equal(holder.pid, 0);
}

static void test_lock_held_by_another_process(void **state)
{
	struct fixture *fx = *state;
	char other[sizeof fx->dir + 8];
	snprintf(other, sizeof other, "%s/other", fx->dir);
	int ready[2], quit[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(quit), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* Holds `other` until the parent closes the quit pipe (or dies). */
		struct storelock_holder h;
		close(ready[0]);
		close(quit[1]);
		struct store *st = store_open(other, NULL, &h);
		char c = st ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(2);
		alarm(10); /* bounded whatever the parent does */
		while (read(quit[0], &c, 1) > 0)
			;
		store_close(st);
		_exit(0);
	}
	close(ready[1]);
	close(quit[0]);
	char c = 0;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	struct storelock_holder holder;
	errno = 0;
	struct store *st = store_open(other, NULL, &holder);
	int saved = errno;
	close(quit[1]);
	int status = 0;
	assert_int_equal(waitpid(child, &status, 0), child);
	close(ready[0]);
	assert_null(st);
	assert_int_equal(saved, EBUSY);
	assert_int_equal(holder.pid, (long)child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Its holder gone, the folder is free, and the lock names us now. */
	st = store_open(other, NULL, &holder);
	assert_non_null(st);
	assert_int_equal(strtol(read_file(path_in(fx, "other/.bottle/lock")), NULL, 10),
	                 (long)getpid());
	store_close(st);
}

/* ---- published files ---- */

static void test_open_file_takes_regular_files_only(void **state)
{
	struct fixture *fx = *state;
	struct stat sb;
	write_file(path_in(fx, "notes.txt"), "hello");
	int fd = store_open_file(fx->st, "notes.txt", &sb);
	assert_true(fd >= 0);
	assert_int_equal(sb.st_size, 5);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);

	write_file(path_in(fx, "../outside"), "secret");
	assert_int_equal(symlink(path_in(fx, "../outside"), path_in(fx, "link")), 0);
	assert_int_equal(symlink("notes.txt", path_in(fx, "inner-link")), 0);
	assert_int_equal(mkfifo(path_in(fx, "fifo"), 0600), 0);
	assert_int_equal(mkdir(path_in(fx, "subdir"), 0700), 0);
	static const char *refused[] = { "link",   "inner-link", "fifo",
		                         "subdir", "missing",    "../outside" };
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		errno = 0;
		assert_int_equal(store_open_file(fx->st, refused[i], &sb), -1);
		assert_int_not_equal(errno, 0);
	}
	errno = 0;
	store_open_file(fx->st, "subdir", &sb);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	store_open_file(fx->st, "fifo", &sb); /* and it did not block */
	assert_int_equal(errno, ENOENT);
	assert_string_equal(read_file(path_in(fx, "../outside")), "secret");
}

static void test_list_shows_valid_regular_files_sorted(void **state)
{
	struct fixture *fx = *state;
	write_file(path_in(fx, "b"), "12345");
	write_file(path_in(fx, "a b"), "");
	write_file(path_in(fx, "A"), "x");
	write_file(path_in(fx, "ctl\x01name"), "hidden: not a valid name");
	assert_int_equal(symlink("b", path_in(fx, "link")), 0);
	assert_int_equal(mkfifo(path_in(fx, "fifo"), 0600), 0);
	assert_int_equal(mkdir(path_in(fx, "subdir"), 0700), 0);
	struct store_file *files = NULL;
	ssize_t n = store_list(fx->st, &files);
	assert_int_equal(n, 3);
	assert_string_equal(files[0].name, "A");
	assert_int_equal(files[0].size, 1);
	assert_string_equal(files[1].name, "a b");
	assert_int_equal(files[1].size, 0);
	assert_string_equal(files[2].name, "b");
	assert_int_equal(files[2].size, 5);
	free(files);
}

static void test_list_of_an_empty_folder(void **state)
{
	struct fixture *fx = *state;
	struct store_file *files = (struct store_file *)1;
	assert_int_equal(store_list(fx->st, &files), 0);
	free(files);
}

/* ---- partial uploads ---- */

static void put(struct store_partial *p, const char *data, off_t at)
{
	assert_int_equal(pwrite(p->fd, data, strlen(data), at), (ssize_t)strlen(data));
}

static void test_partial_resumes_with_the_same_metadata(void **state)
{
	struct fixture *fx = *state;
	struct store_partial p;
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 10, SHA_A, &p), 0);
	assert_int_equal(p.have, 0);
	assert_string_equal(p.id, TOKEN);
	put(&p, "01234", 0);
	close(p.fd);
	assert_true(exists(path_in(fx, ".bottle/partial/" TOKEN ".data")));
	assert_true(exists(path_in(fx, ".bottle/partial/" TOKEN ".meta")));
	assert_false(exists(path_in(fx, "f.bin")));

	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 10, SHA_A, &p), 0);
	assert_int_equal(p.have, 5);
	put(&p, "56789", 5);
	assert_int_equal(store_partial_publish(fx->st, &p, "f.bin"), 0);
	close(p.fd);
	assert_string_equal(read_file(path_in(fx, "f.bin")), "0123456789");
	assert_false(exists(path_in(fx, ".bottle/partial/" TOKEN ".data")));
	assert_false(exists(path_in(fx, ".bottle/partial/" TOKEN ".meta")));
}

static void test_partial_restarts_when_anything_differs(void **state)
{
	struct fixture *fx = *state;
	struct {
		const char *name;
		uint64_t size;
		const char *sha;
	} other[] = {
		{ "g.bin", 10, SHA_A }, /* another name */
		{ "f.bin", 11, SHA_A }, /* another size */
		{ "f.bin", 10, SHA_B }, /* another digest */
		{ "f.bin", 10, "" },    /* no digest */
	};
	for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
		struct store_partial p;
		assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 10, SHA_A, &p), 0);
		put(&p, "0123", 0);
		close(p.fd);
		assert_int_equal(store_partial_open(fx->st, TOKEN, other[i].name, other[i].size,
		                                    other[i].sha, &p),
		                 0);
		assert_int_equal(p.have, 0);
		struct stat sb;
		assert_int_equal(fstat(p.fd, &sb), 0);
		assert_int_equal(sb.st_size, 0); /* never spliced: truncated */
		close(p.fd);
		/* The new metadata is the one remembered now. */
		assert_int_equal(store_partial_open(fx->st, TOKEN, other[i].name, other[i].size,
		                                    other[i].sha, &p),
		                 0);
		put(&p, "ab", 0);
		close(p.fd);
		assert_int_equal(store_partial_open(fx->st, TOKEN, other[i].name, other[i].size,
		                                    other[i].sha, &p),
		                 0);
		assert_int_equal(p.have, 2);
		store_partial_remove(fx->st, &p);
		close(p.fd);
	}
}

static void test_partial_longer_than_the_file_restarts(void **state)
{
	struct fixture *fx = *state;
	struct store_partial p;
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 4, SHA_A, &p), 0);
	put(&p, "0123456", 0); /* more than the size */
	close(p.fd);
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 4, SHA_A, &p), 0);
	assert_int_equal(p.have, 0);
	close(p.fd);
}

static void test_partials_of_two_tokens_are_apart(void **state)
{
	struct fixture *fx = *state;
	struct store_partial p, q;
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 10, SHA_A, &p), 0);
	assert_int_equal(store_partial_open(fx->st, "token-0002", "f.bin", 10, SHA_A, &q), 0);
	put(&p, "pp", 0);
	put(&q, "qqq", 0);
	close(p.fd);
	close(q.fd);
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 10, SHA_A, &p), 0);
	assert_int_equal(p.have, 2);
	assert_int_equal(store_partial_open(fx->st, "token-0002", "f.bin", 10, SHA_A, &q), 0);
	assert_int_equal(q.have, 3);
	store_partial_remove(fx->st, &p);
	close(p.fd);
	assert_false(exists(path_in(fx, ".bottle/partial/" TOKEN ".data")));
	assert_false(exists(path_in(fx, ".bottle/partial/" TOKEN ".meta")));
	assert_true(exists(path_in(fx, ".bottle/partial/token-0002.data")));
	store_partial_remove(fx->st, &q);
	close(q.fd);
}

static void test_publish_replaces_an_older_file(void **state)
{
	struct fixture *fx = *state;
	write_file(path_in(fx, "f.bin"), "old version");
	struct store_partial p;
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 3, "", &p), 0);
	put(&p, "new", 0);
	assert_string_equal(read_file(path_in(fx, "f.bin")), "old version"); /* until publish */
	assert_int_equal(store_partial_publish(fx->st, &p, "f.bin"), 0);
	close(p.fd);
	assert_string_equal(read_file(path_in(fx, "f.bin")), "new");
}

/* Someone plants a hard link to a file of theirs at the partial's path: the
 * store drops that name and writes a file of its own. */
static void test_hard_link_at_a_partial_is_not_written_through(void **state)
{
	struct fixture *fx = *state;
	const char *victim = path_in(fx, "victim");
	write_file(victim, "do not touch");
	assert_int_equal(link(victim, path_in(fx, ".bottle/partial/" TOKEN ".data")), 0);
	struct store_partial p;
	assert_int_equal(store_partial_open(fx->st, TOKEN, "f.bin", 100, SHA_A, &p), 0);
	assert_int_equal(p.have, 0);
	put(&p, "XXXXXXXXXXXXXXXX", 0);
	struct stat sb, vb;
	assert_int_equal(fstat(p.fd, &sb), 0);
	assert_int_equal(stat(victim, &vb), 0);
	assert_true(sb.st_ino != vb.st_ino);
	assert_int_equal(sb.st_nlink, 1);
	assert_int_equal(vb.st_nlink, 1);
	assert_string_equal(read_file(victim), "do not touch");
	store_partial_remove(fx->st, &p);
	close(p.fd);
	assert_string_equal(read_file(victim), "do not touch");
}

static void set_mtime(const char *path, time_t when)
{
	struct timespec ts[2] = { { .tv_sec = when }, { .tv_sec = when } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_expire_deletes_old_partials_only(void **state)
{
	struct fixture *fx = *state;
	struct store_partial p;
	assert_int_equal(store_partial_open(fx->st, "old-token-1", "a", 10, "", &p), 0);
	close(p.fd);
	assert_int_equal(store_partial_open(fx->st, "new-token-1", "b", 10, "", &p), 0);
	close(p.fd);
	set_mtime(path_in(fx, ".bottle/partial/old-token-1.data"), time(NULL) - 7200);
	assert_int_equal(store_expire_partials(fx->st, 3600), 1);
	assert_false(exists(path_in(fx, ".bottle/partial/old-token-1.data")));
	assert_false(exists(path_in(fx, ".bottle/partial/old-token-1.meta")));
	assert_true(exists(path_in(fx, ".bottle/partial/new-token-1.data")));
	assert_true(exists(path_in(fx, ".bottle/partial/new-token-1.meta")));
	assert_int_equal(store_expire_partials(fx->st, 3600), 0);
}

/* ---- the cached digest ---- */

static void test_cached_digest_goes_stale(void **state)
{
	struct fixture *fx = *state;
	struct stat sb;
	char hex[WIRE_SHA_HEX + 1];
	write_file(path_in(fx, "f"), "version 1");
	int fd = store_open_file(fx->st, "f", &sb);
	assert_true(fd >= 0);
	assert_false(store_get_sha(fd, &sb, hex)); /* nothing cached yet */
	store_set_sha(fd, SHA_A);
	bool cached = store_get_sha(fd, &sb, hex);
	close(fd);
	if (!cached)
		skip(); /* this file system keeps no user xattrs: nothing is cached */
	assert_string_equal(hex, SHA_A);
	/* Another mtime (same size): stale. */
	set_mtime(path_in(fx, "f"), sb.st_mtim.tv_sec + 10);
	fd = store_open_file(fx->st, "f", &sb);
	assert_true(fd >= 0);
	assert_false(store_get_sha(fd, &sb, hex));
	close(fd);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_makes_the_folder_and_names_the_holder),
		T(test_second_open_is_busy),
		T(test_lock_held_by_another_process),
		T(test_open_file_takes_regular_files_only),
		T(test_list_shows_valid_regular_files_sorted),
		T(test_list_of_an_empty_folder),
		T(test_partial_resumes_with_the_same_metadata),
		T(test_partial_restarts_when_anything_differs),
		T(test_partial_longer_than_the_file_restarts),
		T(test_partials_of_two_tokens_are_apart),
		T(test_publish_replaces_an_older_file),
		T(test_hard_link_at_a_partial_is_not_written_through),
		T(test_expire_deletes_old_partials_only),
		T(test_cached_digest_goes_stale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
