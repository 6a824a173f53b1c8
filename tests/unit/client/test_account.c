/* Unit tests for account.c: finding a token in a tokens file's text (a line
 * for the server address wins over one for any server, comments and odd
 * lines skipped), and account_setup's refusals: a file others may read,
 * BOTTLE_TOKEN without a user, no token anywhere. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"

static void test_find_token(void **state)
{
	(void)state;
	char tok[ACCOUNT_TOKEN_MAX + 1];
	const char *text = "# tokens\n"
			   "\n"
			   "alice generic\n"
			   "h:1 alice forh1\n"
			   "  bob   bobs\t\n"
			   "lonely\n"
			   "h:2 carol onlyh2";
	assert_true(account_find_token(text, "alice", "h:1", tok));
	assert_string_equal(tok, "forh1");
	assert_true(account_find_token(text, "alice", "h:9", tok));
	assert_string_equal(tok, "generic");
	assert_true(account_find_token(text, "bob", "h:1", tok));
	assert_string_equal(tok, "bobs");
	assert_true(account_find_token(text, "carol", "h:2", tok));
	assert_string_equal(tok, "onlyh2");
	assert_false(account_find_token(text, "carol", "h:1", tok));
	assert_false(account_find_token(text, "lonely", "h:1", tok));
	assert_false(account_find_token(text, "Alice", "h:1", tok));
	assert_false(account_find_token("", "alice", "h:1", tok));
}

static char home[64];
static char file[160];

static int setup(void **state)
{
	(void)state;
	snprintf(home, sizeof home, "/tmp/test_account.XXXXXX");
	if (!mkdtemp(home))
		return -1;
	char d[128];
	snprintf(d, sizeof d, "%s/.config", home);
	mkdir(d, 0700);
	snprintf(d, sizeof d, "%s/.config/bottle", home);
	mkdir(d, 0700);
	snprintf(file, sizeof file, "%s/.config/bottle/tokens", home);
	setenv("HOME", home, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("BOTTLE_TOKEN");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char d[128];
	unlink(file);
	snprintf(d, sizeof d, "%s/.config/bottle", home);
	rmdir(d);
	snprintf(d, sizeof d, "%s/.config", home);
	rmdir(d);
	rmdir(home);
	return 0;
}

static void write_tokens(const char *text, mode_t mode)
{
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(file, mode);
}

static void test_setup(void **state)
{
	(void)state;
	char err[ACCOUNT_ERR_LEN];

	assert_int_equal(account_setup(NULL, "h:1", err), 0);
	assert_null(account_name());
	setenv("BOTTLE_TOKEN", "t0k3n", 1);
	assert_int_equal(account_setup(NULL, "h:1", err), -1);
	assert_non_null(strstr(err, "BOTTLE_USER"));
	assert_int_equal(account_setup("alice", "h:1", err), 0);
	assert_string_equal(account_name(), "alice");
	setenv("BOTTLE_TOKEN", "two words", 1);
	assert_int_equal(account_setup("alice", "h:1", err), -1);
	unsetenv("BOTTLE_TOKEN");

	assert_int_equal(account_setup("alice", "h:1", err), -1); /* no file */
	assert_non_null(strstr(err, "no token for alice"));
	write_tokens("alice secret\n", 0644);
	assert_int_equal(account_setup("alice", "h:1", err), -1);
	assert_non_null(strstr(err, "mode 0644"));
	assert_non_null(strstr(err, "chmod 600"));
	write_tokens("alice secret\n", 0640);
	assert_int_equal(account_setup("alice", "h:1", err), -1);
	chmod(file, 0600);
	assert_int_equal(account_setup("alice", "h:1", err), 0);
	assert_string_equal(account_name(), "alice");
	assert_int_equal(account_setup("bob", "h:1", err), -1);
	assert_int_equal(account_setup("not a name", "h:1", err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_token),
		cmocka_unit_test_setup_teardown(test_setup, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
