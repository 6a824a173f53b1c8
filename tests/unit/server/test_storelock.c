/* Unit tests for storelock.c through store.c: the folder shared by the nodes
 * of one cluster and refused to anyone else, and the lock on each partial
 * with its owner record, its hand-over within a process, expiry that leaves
 * held partials alone, and a takeover once the holder's process is gone.
 * Locks on open file descriptions conflict within one process too, so one
 * test program plays several nodes. */
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
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "tmpdir.h"

#define TOKEN "token-0001"

struct fixture {
	char dir[80];
};

static int setup(void **state)
{
	static struct fixture fixture;
	if (tmpdir_make(fixture.dir, sizeof fixture.dir, "test_storelock") < 0)
		return -1;
	*state = &fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	return tmpdir_remove(fx->dir);
}

static struct store *open_as(const struct fixture *fx, const char *cluster, const char *node)
{
	struct storelock_holder h;
	struct store *st = store_open(fx->dir, cluster, &h);
	assert_non_null(st);
	if (node)
		store_set_node(st, node);
	return st;
}

static void assert_refused(const struct fixture *fx, const char *cluster, const char *by_cluster,
                           long by_pid)
{
	struct storelock_holder h;
	errno = 0;
	assert_null(store_open(fx->dir, cluster, &h));
	assert_int_equal(errno, EBUSY);
	assert_string_equal(h.cluster, by_cluster);
	assert_int_equal(h.pid, by_pid);
}

/* ---- the folder ---- */

static void test_nodes_of_one_cluster_share_the_folder(void **state)
{
	struct fixture *fx = *state;
	struct store *a = open_as(fx, "blue", NULL), *b = open_as(fx, "blue", NULL);
	assert_refused(fx, NULL, "blue", 0);    /* a stray single server */
	assert_refused(fx, "green", "blue", 0); /* another cluster */
	store_close(a);
	assert_refused(fx, NULL, "blue", 0); /* one node is enough to keep it */
	store_close(b);
	/* All gone: anyone may take it, and then it is theirs. */
	struct store *green = open_as(fx, "green", NULL);
	assert_refused(fx, "blue", "green", 0);
	store_close(green);
}

static void test_a_single_server_keeps_nodes_out(void **state)
{
	struct fixture *fx = *state;
	struct store *alone = open_as(fx, NULL, NULL);
	assert_refused(fx, "blue", "", (long)getpid());
	assert_refused(fx, NULL, "", (long)getpid());
	store_close(alone);
	store_close(open_as(fx, "blue", NULL));
}

/* ---- partials ---- */

static void put(struct store_partial *p, const char *data, off_t at)
{
	assert_int_equal(pwrite(p->fd, data, strlen(data), at), (ssize_t)strlen(data));
}

static void test_a_held_partial_is_refused_naming_its_owner(void **state)
{
	struct fixture *fx = *state;
	struct store *a = open_as(fx, "blue", "alpha"), *b = open_as(fx, "blue", "beta");
	struct store_partial p, q;
	assert_int_equal(store_partial_open(a, TOKEN, "f.bin", 10, "", &p), 0);
	put(&p, "0123", 0);
	errno = 0;
	assert_int_equal(store_partial_open(b, TOKEN, "f.bin", 10, "", &q), -1);
	assert_int_equal(errno, EBUSY);
	assert_non_null(strstr(q.owner, "node alpha (host "));
	assert_int_equal(q.fd, -1);
	/* Its holder lets go: the other node goes on from what the file holds. */
	close(p.fd);
	assert_int_equal(store_partial_open(b, TOKEN, "f.bin", 10, "", &q), 0);
	assert_int_equal(q.have, 4);
	assert_int_equal(store_partial_open(a, TOKEN, "f.bin", 10, "", &p), -1);
	assert_non_null(strstr(p.owner, "node beta"));
	put(&q, "456789", 4);
	assert_int_equal(store_partial_publish(b, &q, "f.bin"), 0);
	close(q.fd);
	store_close(a);
	store_close(b);
}

static void test_hand_over_within_a_process(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_as(fx, NULL, NULL);
	struct store_partial p, q;
	assert_int_equal(store_partial_open(st, TOKEN, "f.bin", 10, "", &p), 0);
	put(&p, "abc", 0);
	assert_int_equal(store_partial_take_over(st, p.fd, TOKEN, "f.bin", 10, "", &q), 0);
	assert_int_equal(q.fd, p.fd); /* the same open file, so the same lock */
	assert_int_equal(q.have, 3);
	close(q.fd);
	/* A held fd that no longer is the partial (published meanwhile) is
	 * dropped for a fresh partial. */
	assert_int_equal(store_partial_open(st, TOKEN, "f.bin", 3, "", &p), 0);
	put(&p, "xyz", 0);
	assert_int_equal(store_partial_publish(st, &p, "f.bin"), 0);
	assert_int_equal(store_partial_take_over(st, p.fd, TOKEN, "f.bin", 3, "", &q), 0);
	assert_true(q.fd >= 0);
	assert_int_equal(q.have, 0);
	store_partial_remove(st, &q);
	close(q.fd);
	store_close(st);
}

static void test_expiry_leaves_held_partials_alone(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_as(fx, "blue", NULL);
	struct store_partial p;
	char path[256];
	assert_int_equal(store_partial_open(st, TOKEN, "f.bin", 10, "", &p), 0);
	snprintf(path, sizeof path, "%s/.bottle/partial/" TOKEN ".data", fx->dir);
	time_t then = time(NULL) - 7200;
	struct timespec old[2] = { { .tv_sec = then }, { .tv_sec = then } };
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	assert_int_equal(store_expire_partials(st, 3600), 0);
	close(p.fd);
	assert_int_equal(store_expire_partials(st, 3600), 1);
	struct stat sb;
	assert_int_equal(stat(path, &sb), -1);
	store_close(st);
}

/* A node killed in the middle of an upload: the kernel drops its lock, and
 * the next one reads what reached the file. */
static void test_takeover_after_the_holder_died(void **state)
{
	struct fixture *fx = *state;
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct store *st = open_as(fx, "blue", "doomed");
		struct store_partial p;
		char c = 'n';
		close(ready[0]);
		if (store_partial_open(st, TOKEN, "f.bin", 10, "", &p) == 0 &&
		    pwrite(p.fd, "012345", 6, 0) == 6)
			c = 'y';
		if (write(ready[1], &c, 1) != 1)
			_exit(2);
		alarm(10); /* bounded whatever the parent does */
		pause();
		_exit(0);
	}
	close(ready[1]);
	char c = 0;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(c, 'y');
	struct store *st = open_as(fx, "blue", "heir");
	struct store_partial p;
	assert_int_equal(store_partial_open(st, TOKEN, "f.bin", 10, "", &p), -1);
	assert_non_null(strstr(p.owner, "node doomed"));
	kill(child, SIGKILL);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(store_partial_open(st, TOKEN, "f.bin", 10, "", &p), 0);
	assert_int_equal(p.have, 6);
	store_partial_remove(st, &p);
	close(p.fd);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodes_of_one_cluster_share_the_folder, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_single_server_keeps_nodes_out, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_held_partial_is_refused_naming_its_owner,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_hand_over_within_a_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_leaves_held_partials_alone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_takeover_after_the_holder_died, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
