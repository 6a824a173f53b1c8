/* Unit tests for userfiles.c: paths under an XDG folder or HOME (relative XDG
 * values ignored, too long refused), parents made with mode 0700 (and an error
 * where a folder can't be made), and the words of a line. */
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

#include "userfiles.h"
#include "tmpdir.h"

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof dir, "test_userfiles");
}

static int remove_dir(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static void path_takes_an_absolute_xdg_else_home(void **state)
{
	char out[64];
	(void)state;

	assert_true(userfiles_path("/x/st", "/home/u", ".local/state", "key", out, sizeof out));
	assert_string_equal(out, "/x/st/bottle/key");
	assert_true(userfiles_path("rel", "/home/u", ".local/state", "key", out, sizeof out));
	assert_string_equal(out, "/home/u/.local/state/bottle/key");
	assert_true(userfiles_path(NULL, "/home/u", ".config", "tokens", out, sizeof out));
	assert_string_equal(out, "/home/u/.config/bottle/tokens");
	assert_false(userfiles_path("", "", ".config", "tokens", out, sizeof out));
	assert_false(userfiles_path(NULL, NULL, ".config", "tokens", out, sizeof out));
	assert_false(userfiles_path("/x", NULL, ".config", "tokens", out, 8)); /* too long */
}

static void config_path_reads_the_environment(void **state)
{
	char out[64];
	(void)state;

	setenv("XDG_CONFIG_HOME", "/x/conf", 1);
	setenv("HOME", "/home/u", 1);
	assert_true(userfiles_config_path("tokens", out, sizeof out));
	assert_string_equal(out, "/x/conf/bottle/tokens");
	unsetenv("XDG_CONFIG_HOME");
	assert_true(userfiles_config_path("known_servers", out, sizeof out));
	assert_string_equal(out, "/home/u/.config/bottle/known_servers");
	unsetenv("HOME");
	assert_false(userfiles_config_path("tokens", out, sizeof out));
}

static void parents_are_made_0700(void **state)
{
	char path[128], made[128];
	struct stat sb;
	(void)state;

	snprintf(path, sizeof path, "%s/a/b/file", dir);
	assert_int_equal(userfiles_make_parents(path), 0);
	snprintf(made, sizeof made, "%s/a/b", dir);
	assert_int_equal(stat(made, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(userfiles_make_parents(path), 0); /* there already: fine */
	assert_int_equal(stat(path, &sb), -1);             /* the file itself is not made */
}

static void a_parent_that_is_a_file_fails(void **state)
{
	char path[128], file[128];
	(void)state;

	snprintf(file, sizeof file, "%s/plain", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof path, "%s/plain/sub/file", dir);
	errno = 0;
	assert_int_equal(userfiles_make_parents(path), -1);
	assert_int_equal(errno, ENOTDIR);
}

static void words_of_a_line(void **state)
{
	const char *p = "  one\ttwo  three\r\nnext";
	char w[8];
	(void)state;

	assert_true(userfiles_next_word(&p, w, sizeof w));
	assert_string_equal(w, "one");
	assert_true(userfiles_next_word(&p, w, sizeof w));
	assert_string_equal(w, "two");
	assert_true(userfiles_next_word(&p, w, sizeof w));
	assert_string_equal(w, "three");
	assert_false(userfiles_next_word(&p, w, sizeof w)); /* the line ends here */
	assert_string_equal(p, "\r\nnext");

	p = "toolongword x";
	assert_false(userfiles_next_word(&p, w, sizeof w));
	assert_string_equal(p, " x"); /* past the word it refused */
	p = "";
	assert_false(userfiles_next_word(&p, w, sizeof w));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(path_takes_an_absolute_xdg_else_home),
		cmocka_unit_test(config_path_reads_the_environment),
		cmocka_unit_test(parents_are_made_0700),
		cmocka_unit_test(a_parent_that_is_a_file_fails),
		cmocka_unit_test(words_of_a_line),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
