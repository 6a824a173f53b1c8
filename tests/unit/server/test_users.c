/* Unit tests for users.c and perms.c: permission sets both ways, the users
 * file read and written back (mode 0600 whatever the umask, atomically),
 * malformed lines named by number, names that may not be accounts, lookups
 * ignoring case, tokens matched by digest only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perms.h"
#include "users.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_users.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/users", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_perms_parse_and_text(void **state)
{
	(void)state;
	unsigned p;
	char text[PERMS_TEXT_MAX];
	assert_true(perms_parse("chat,read,write", &p));
	assert_int_equal(p, PERM_ALL);
	assert_true(perms_parse("write,chat", &p));
	assert_int_equal(p, PERM_WRITE | PERM_CHAT);
	assert_string_equal(perms_text(p, text), "chat,write");
	assert_true(perms_parse("none", &p));
	assert_int_equal(p, PERM_NONE);
	assert_string_equal(perms_text(p, text), "none");
	assert_true(perms_parse("all", &p));
	assert_int_equal(p, PERM_ALL);
	assert_false(perms_parse("", &p));
	assert_false(perms_parse("chat,", &p));
	assert_false(perms_parse("chat,chat", &p));
	assert_false(perms_parse("root", &p));
	assert_false(perms_parse("Chat", &p));
	assert_string_equal(perms_name(PERM_READ), "read");
}

static void test_add_save_load(void **state)
{
	(void)state;
	struct users u = { 0 }, back;
	char token[USERS_TOKEN_HEX + 1], token2[USERS_TOKEN_HEX + 1], err[USERS_ERR_LEN];

	assert_int_equal(users_add(&u, "alice", PERM_ALL, token, err), 0);
	assert_int_equal(strlen(token), USERS_TOKEN_HEX);
	assert_int_equal(users_add(&u, "bob", PERM_READ, token2, err), 0);
	assert_string_not_equal(token, token2);
	assert_int_equal(users_add(&u, "ALICE", PERM_READ, token2, err), -1);
	assert_non_null(strstr(err, "exists"));

	mode_t old = umask(0);
	assert_int_equal(users_save(path, &u, err), 0);
	umask(old);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(users_load(path, &back, err), 0);
	assert_int_equal(back.n, 2);
	const struct user *a = users_find(&back, "Alice", 5);
	assert_non_null(a);
	assert_string_equal(a->name, "alice");
	assert_int_equal(a->perms, PERM_ALL);
	assert_true(users_token_matches(a, token, strlen(token)));
	assert_false(users_token_matches(a, token2, strlen(token2)));
	assert_false(users_token_matches(a, token, strlen(token) - 1));
	assert_null(users_find(&back, "carol", 5));

	/* the file holds no token */
	FILE *f = fopen(path, "r");
	char text[4096];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_null(strstr(text, token));

	assert_true(users_remove(&back, "BOB"));
	assert_false(users_remove(&back, "bob"));
	assert_int_equal(back.n, 1);
	users_free(&back);
	users_free(&u);
}

static void test_malformed_lines(void **state)
{
	(void)state;
	static const char *bad[] = {
		"alice chat\n",
		"alice chat,read abc\n",
		"Guest12 chat " /* a guest's name */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"alice sudo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"al/ce chat aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"alice chat AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"alice chat aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa extra\n",
	};
	struct users u;
	char err[USERS_ERR_LEN];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[512];
		snprintf(text, sizeof text, "# comment\n\n%s", bad[i]);
		write_file(text);
		assert_int_equal(users_load(path, &u, err), -1);
		assert_non_null(strstr(err, ":3:"));
		assert_null(u.list);
	}
	write_file("a none aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	           "A chat bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
	assert_int_equal(users_load(path, &u, err), -1);
	assert_non_null(strstr(err, ":2: a second account"));

	unlink(path);
	assert_int_equal(users_load(path, &u, err), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(users_name_valid("alice", 5));
	assert_true(users_name_valid("Guest", 5));
	assert_true(users_name_valid("Guestbook", 9));
	assert_false(users_name_valid("Guest1", 6));
	assert_false(users_name_valid("guest42", 7));
	assert_false(users_name_valid("", 0));
	assert_false(users_name_valid("a b", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_perms_parse_and_text),
		cmocka_unit_test_setup_teardown(test_add_save_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines, setup, teardown),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
