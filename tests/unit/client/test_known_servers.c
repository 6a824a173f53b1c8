/* Unit tests for known_servers.c: the lines of the pinned certificates file,
 * looking a server up (match, changed with its line, unknown), appending with
 * mode 0600 and the folders made, and where the file is. */
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

#include "known_servers.h"
#include "tmpdir.h"

#define FP_A "SHA256:AA:BB"
#define FP_B "SHA256:CC:DD"

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof dir, "test_known_servers");
}

static int remove_dir(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void lines_are_two_words(void **state)
{
	char s[64], fp[64];
	(void)state;

	assert_true(known_servers_parse("127.0.0.1:4000 " FP_A "\n", s, sizeof s, fp, sizeof fp));
	assert_string_equal(s, "127.0.0.1:4000");
	assert_string_equal(fp, FP_A);
	assert_true(known_servers_parse("  [::1]:4000\t" FP_B "\r\n", s, sizeof s, fp, sizeof fp));
	assert_string_equal(s, "[::1]:4000");
	assert_false(known_servers_parse("# a comment\n", s, sizeof s, fp, sizeof fp));
	assert_false(known_servers_parse("\n", s, sizeof s, fp, sizeof fp));
	assert_false(known_servers_parse("", s, sizeof s, fp, sizeof fp));
	assert_false(known_servers_parse("host:1\n", s, sizeof s, fp, sizeof fp));
	assert_false(known_servers_parse("host:1 a b\n", s, sizeof s, fp, sizeof fp));
	assert_false(known_servers_parse("host:1 " FP_A, s, 4, fp, sizeof fp)); /* too long */
}

static void lookup_says_match_changed_or_unknown(void **state)
{
	char path[128];
	int line = 0;
	(void)state;

	snprintf(path, sizeof path, "%s/ks", dir);
	assert_int_equal(known_servers_check(path, "h:1", FP_A, &line), KNOWN_UNKNOWN);
	write_file(path, "# pinned\n\nh:1 " FP_A "\nbroken line with words\nh:2 " FP_B "\n");
	assert_int_equal(known_servers_check(path, "h:1", FP_A, &line), KNOWN_MATCH);
	assert_int_equal(line, 3);
	assert_int_equal(known_servers_check(path, "h:2", FP_A, &line), KNOWN_CHANGED);
	assert_int_equal(line, 5);
	assert_int_equal(known_servers_check(path, "h:3", FP_A, &line), KNOWN_UNKNOWN);
	assert_int_equal(known_servers_check(path, "h", FP_A, &line), KNOWN_UNKNOWN);
}

static void adding_makes_the_folders_and_mode_0600(void **state)
{
	char path[128];
	struct stat st;
	int line = 0;
	(void)state;

	snprintf(path, sizeof path, "%s/a/b/known_servers", dir);
	mode_t old = umask(0);
	assert_int_equal(known_servers_add(path, "h:1", FP_A, &line), 0);
	umask(old);
	assert_int_equal(line, 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(known_servers_add(path, "h:2", FP_B, &line), 0);
	assert_int_equal(line, 2);
	assert_int_equal(known_servers_check(path, "h:2", FP_B, &line), KNOWN_MATCH);
	assert_int_equal(line, 2);
}

static void adding_after_a_last_line_without_newline(void **state)
{
	char path[128];
	int line = 0;
	(void)state;

	snprintf(path, sizeof path, "%s/nonl", dir);
	write_file(path, "h:1 " FP_A);
	assert_int_equal(known_servers_add(path, "h:2", FP_B, &line), 0);
	assert_int_equal(line, 2);
	assert_int_equal(known_servers_check(path, "h:1", FP_A, &line), KNOWN_MATCH);
	assert_int_equal(known_servers_check(path, "h:2", FP_B, &line), KNOWN_MATCH);
	assert_int_equal(line, 2);
}

static void path_follows_xdg_config_home_then_home(void **state)
{
	char path[256];
	(void)state;

	setenv("XDG_CONFIG_HOME", "/x/conf", 1);
	setenv("HOME", "/home/u", 1);
	assert_true(known_servers_path(path, sizeof path));
	assert_string_equal(path, "/x/conf/bottle/known_servers");
	setenv("XDG_CONFIG_HOME", "relative", 1); /* not absolute: ignored, as the spec says */
	assert_true(known_servers_path(path, sizeof path));
	assert_string_equal(path, "/home/u/.config/bottle/known_servers");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("HOME");
	assert_false(known_servers_path(path, sizeof path));
	assert_false(known_servers_path(path, 4) && 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_are_two_words),
		cmocka_unit_test(lookup_says_match_changed_or_unknown),
		cmocka_unit_test(adding_makes_the_folders_and_mode_0600),
		cmocka_unit_test(adding_after_a_last_line_without_newline),
		cmocka_unit_test(path_follows_xdg_config_home_then_home),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
