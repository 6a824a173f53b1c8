/* Unit tests for cmd.c: splitting, lookup and dispatch. The program brings its
 * own command table and conn_err, so cmd.c is tested without the server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

/* cmd.c only passes the connection through. */
struct conn {
	int dummy;
};

/* What the fakes saw. */
static struct {
	int calls;
	const char *verb; /* the table entry's name */
	struct conn *conn;
	char arg[512];
	size_t alen;
	int errs;
	char err[1024];
	int firsts;       /* conn_first_command calls */
	const char *deny; /* auth_permits refuses this verb */
	int checks;       /* auth_permits calls */
} rec;

static void record(const char *verb, struct conn *c, const char *arg, size_t len)
{
	rec.calls++;
	rec.verb = verb;
	rec.conn = c;
	assert_true(len < sizeof rec.arg);
	memcpy(rec.arg, arg, len);
	rec.arg[len] = '\0';
	rec.alen = len;
}

static void fake_echo(struct conn *c, const char *arg, size_t len) { record("ECHO", c, arg, len); }
static void fake_time(struct conn *c, const char *arg, size_t len) { record("TIME", c, arg, len); }
static void fake_nick(struct conn *c, const char *arg, size_t len) { record("NICK", c, arg, len); }
static void fake_msg(struct conn *c, const char *arg, size_t len) { record("MSG", c, arg, len); }
static void fake_role(struct conn *c, const char *arg, size_t len) { record("ROLE", c, arg, len); }

const struct cmd_def cmd_table[] = {
	{ "ECHO", "ECHO <text>", "reply with the text", fake_echo, 0 },
	{ "TIME", "TIME", "the server's time", fake_time, 0 },
	{ "NICK", "NICK <name>", "change nick", fake_nick, 0 },
	{ "MSG", "MSG <text>", "say something", fake_msg, 0 },
	{ "ROLE", "ROLE chat|files", "which role", fake_role, CMD_BEFORE_JOIN },
	{ NULL, NULL, NULL, NULL, 0 },
};

/* Every command but those flagged CMD_BEFORE_JOIN tells the connection first. */
void conn_first_command(struct conn *c); /* conn.h's, which this test leaves out */
void conn_first_command(struct conn *c)
{
	(void)c;
	rec.firsts++;
}

/* auth.h's permission check, which this test leaves out: it refuses
 * rec.deny, as the real one does, with its own ERR. */
bool auth_permits(struct conn *c, const struct cmd_def *d);
void conn_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool auth_permits(struct conn *c, const struct cmd_def *d)
{
	rec.checks++;
	if (rec.deny && strcmp(d->name, rec.deny) == 0) {
		conn_err(c, "permission denied: %s needs chat", d->name);
		return false;
	}
	return true;
}

void conn_err(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	rec.errs++;
	rec.conn = c;
	va_start(ap, fmt);
	vsnprintf(rec.err, sizeof rec.err, fmt, ap);
	va_end(ap);
}

static int reset(void **state)
{
	(void)state;
	memset(&rec, 0, sizeof rec);
	return 0;
}

/* ---- cmd_split ---- */

static void check_split(const char *line, const char *verb, const char *arg)
{
	const char *v, *a;
	size_t vlen, alen;

	cmd_split(line, strlen(line), &v, &vlen, &a, &alen);
	assert_int_equal(vlen, strlen(verb));
	assert_memory_equal(v, verb, vlen);
	assert_ptr_equal(v, line);
	assert_int_equal(alen, strlen(arg));
	assert_memory_equal(a, arg, alen);
	/* Both point into the line. */
	assert_true(a >= line && a + alen <= line + strlen(line));
}

static void test_split(void **state)
{
	(void)state;
	check_split("ECHO hi there", "ECHO", "hi there");
	check_split("TIME", "TIME", "");
	check_split("ECHO ", "ECHO", "");
	check_split("ECHO  x", "ECHO", " x"); /* only one space is eaten */
	check_split("ECHO x ", "ECHO", "x ");
	check_split("MSG line one\nline two", "MSG", "line one\nline two");
	check_split("MSG \n", "MSG", "\n");
	check_split("", "", "");
	check_split(" ECHO", "", "ECHO");
	check_split("ECHO\tx", "ECHO\tx", ""); /* only a space separates */
}

static void test_split_binary(void **state)
{
	const char line[] = "EC\0O a\0b";
	const char *v, *a;
	size_t vlen, alen;

	(void)state;
	cmd_split(line, sizeof line - 1, &v, &vlen, &a, &alen);
	assert_int_equal(vlen, 4);
	assert_memory_equal(v, "EC\0O", 4);
	assert_int_equal(alen, 3);
	assert_memory_equal(a, "a\0b", 3);
}

static void test_split_not_nul_terminated(void **state)
{
	/* The length rules, not a terminator: "ECHO hi" inside a longer buffer. */
	const char buf[] = "ECHO hi there";
	const char *v, *a;
	size_t vlen, alen;

	(void)state;
	cmd_split(buf, 7, &v, &vlen, &a, &alen);
	assert_int_equal(vlen, 4);
	assert_int_equal(alen, 2);
	assert_memory_equal(a, "hi", 2);
	cmd_split(buf, 4, &v, &vlen, &a, &alen);
	assert_int_equal(vlen, 4);
	assert_int_equal(alen, 0);
}

/* ---- cmd_find ---- */

static void test_find_case_insensitive(void **state)
{
	(void)state;
	assert_ptr_equal(cmd_find("ECHO", 4), &cmd_table[0]);
	assert_ptr_equal(cmd_find("echo", 4), &cmd_table[0]);
	assert_ptr_equal(cmd_find("EcHo", 4), &cmd_table[0]);
	assert_ptr_equal(cmd_find("time", 4), &cmd_table[1]);
	assert_ptr_equal(cmd_find("Msg", 3), &cmd_table[3]);
	/* Length-bounded: "ECHO" at the front of a longer buffer. */
	assert_ptr_equal(cmd_find("ECHOX", 4), &cmd_table[0]);
}

static void test_find_unknown(void **state)
{
	(void)state;
	assert_null(cmd_find("FOO", 3));
	assert_null(cmd_find("ECH", 3));
	assert_null(cmd_find("ECHOX", 5));
	assert_null(cmd_find("MS", 2));
	assert_null(cmd_find("MSGS", 4));
	assert_null(cmd_find("", 0));
	assert_null(cmd_find("EC\0O", 4));
	assert_null(cmd_find("ECHO\0", 5));
	assert_null(cmd_find("\xc5\xa0"
	                     "CHO",
	                     5));
}

/* ---- cmd_execute ---- */

static void test_execute_dispatch(void **state)
{
	struct conn c;
	const char line[] = "ECHO hi there";

	(void)state;
	cmd_execute(&c, line, sizeof line - 1);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.errs, 0);
	assert_string_equal(rec.verb, "ECHO");
	assert_ptr_equal(rec.conn, &c);
	assert_string_equal(rec.arg, "hi there");
	assert_int_equal(rec.alen, 8);

	cmd_execute(&c, "time", 4);
	assert_int_equal(rec.calls, 2);
	assert_string_equal(rec.verb, "TIME");
	assert_int_equal(rec.alen, 0);

	cmd_execute(&c, "nIcK bob", 8);
	assert_string_equal(rec.verb, "NICK");
	assert_string_equal(rec.arg, "bob");
	assert_int_equal(rec.errs, 0);
}

/* Every command makes a waiting TPKT connection join, but ROLE (and an
 * unknown verb joins too: only ROLE may come first without joining). */
static void test_execute_first_command_joins_but_role(void **state)
{
	(void)state;
	struct conn c;
	cmd_execute(&c, "ROLE files", 10);
	assert_int_equal(rec.firsts, 0);
	assert_string_equal(rec.verb, "ROLE");
	cmd_execute(&c, "ECHO x", 6);
	assert_int_equal(rec.firsts, 1);
	cmd_execute(&c, "BOGUS", 5);
	assert_int_equal(rec.firsts, 2);
}

/* The permission check comes before the handler, for every known verb. */
static void test_execute_checks_permissions(void **state)
{
	(void)state;
	struct conn c;
	rec.deny = "MSG";
	cmd_execute(&c, "MSG hello", 9);
	assert_int_equal(rec.calls, 0);
	assert_int_equal(rec.errs, 1);
	assert_string_equal(rec.err, "permission denied: MSG needs chat");
	cmd_execute(&c, "ECHO x", 6);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.checks, 2);
	cmd_execute(&c, "BOGUS", 5); /* unknown: nothing to check */
	assert_int_equal(rec.checks, 2);
}

static void test_execute_raw_argument(void **state)
{
	struct conn c;
	const char line[] = "MSG  two spaces\nand a line\r\x1b[31m ";

	(void)state;
	cmd_execute(&c, line, sizeof line - 1);
	assert_int_equal(rec.calls, 1);
	assert_string_equal(rec.verb, "MSG");
	assert_int_equal(rec.alen, sizeof line - 1 - 4);
	assert_memory_equal(rec.arg, line + 4, rec.alen);

	cmd_execute(&c, "ECHO ", 5);
	assert_string_equal(rec.verb, "ECHO");
	assert_int_equal(rec.alen, 0);
}

static void test_execute_unknown(void **state)
{
	struct conn c;

	(void)state;
	cmd_execute(&c, "FOO bar", 7);
	assert_int_equal(rec.calls, 0);
	assert_int_equal(rec.errs, 1);
	assert_ptr_equal(rec.conn, &c);
	assert_string_equal(rec.err, "unknown command: FOO");

	cmd_execute(&c, "ECH", 3);
	assert_string_equal(rec.err, "unknown command: ECH");
	cmd_execute(&c, "ECHOX hi", 8);
	assert_string_equal(rec.err, "unknown command: ECHOX");
	cmd_execute(&c, "foo", 3);
	assert_string_equal(rec.err, "unknown command: foo");
	assert_int_equal(rec.calls, 0);
	assert_int_equal(rec.errs, 4);
}

static void test_execute_empty(void **state)
{
	struct conn c;

	(void)state;
	cmd_execute(&c, "", 0);
	assert_int_equal(rec.calls, 0);
	assert_int_equal(rec.errs, 1);
	assert_string_equal(rec.err, "empty command: start with a command's name; HELP lists them");
	/* A line of spaces is no verb either; spaces before a verb are skipped. */
	cmd_execute(&c, "   ", 3);
	assert_int_equal(rec.errs, 2);
	assert_string_equal(rec.err, "empty command: start with a command's name; HELP lists them");
	cmd_execute(&c, "  ECHO hi", 9);
	assert_int_equal(rec.calls, 1);
	assert_string_equal(rec.verb, "ECHO");
	assert_string_equal(rec.arg, "hi");
}

static void test_execute_unknown_escaped(void **state)
{
	struct conn c;

	(void)state;
	cmd_execute(&c, "F\x1b[31mOO x", 10);
	assert_string_equal(rec.err, "unknown command: F\\x1b[31mOO");
	cmd_execute(&c, "A\nB\rC\tD\\E", 9);
	assert_string_equal(rec.err, "unknown command: A\\nB\\rC\\tD\\\\E");
	cmd_execute(&c, "X\0Y\x7f\xff", 5);
	assert_string_equal(rec.err, "unknown command: X\\x00Y\\x7f\\xff");
	/* C1 control CSI (U+009B) is escaped; a Cyrillic verb is shown as is. */
	cmd_execute(&c,
	            "\xc2\x9b"
	            "2J",
	            4);
	assert_string_equal(rec.err, "unknown command: \\xc2\\x9b2J");
	cmd_execute(&c, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 12);
	assert_string_equal(rec.err,
	                    "unknown command: \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	assert_int_equal(rec.calls, 0);
}

static void test_execute_unknown_long(void **state)
{
	struct conn c;
	char line[1000];
	char want[128];

	(void)state;
	memset(line, 'Z', sizeof line);
	cmd_execute(&c, line, sizeof line);
	assert_int_equal(rec.errs, 1);
	/* The verb is cut to 64 bytes. */
	snprintf(want, sizeof want, "unknown command: %.64s", line);
	assert_string_equal(rec.err, want);
	assert_true(strlen(rec.err) < 100);

	/* 64 control bytes, each escaped to four characters, still fit. */
	memset(line, '\x01', 64);
	cmd_execute(&c, line, 64);
	assert_int_equal(strlen(rec.err), strlen("unknown command: ") + 64 * 4);
	assert_memory_equal(rec.err + strlen("unknown command: "), "\\x01\\x01", 8);
	assert_memory_equal(rec.err + strlen(rec.err) - 4, "\\x01", 4);

	/* A long run of control bytes is cut too, without overflowing. */
	memset(line, '\x1b', sizeof line);
	cmd_execute(&c, line, sizeof line);
	assert_true(strlen(rec.err) <= strlen("unknown command: ") + 64 * 4 + 3);
	assert_memory_equal(rec.err, "unknown command: \\x1b", 21);
	assert_int_equal(rec.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_split, reset),
		cmocka_unit_test_setup(test_split_binary, reset),
		cmocka_unit_test_setup(test_split_not_nul_terminated, reset),
		cmocka_unit_test_setup(test_find_case_insensitive, reset),
		cmocka_unit_test_setup(test_find_unknown, reset),
		cmocka_unit_test_setup(test_execute_dispatch, reset),
		cmocka_unit_test_setup(test_execute_checks_permissions, reset),
		cmocka_unit_test_setup(test_execute_raw_argument, reset),
		cmocka_unit_test_setup(test_execute_first_command_joins_but_role, reset),
		cmocka_unit_test_setup(test_execute_unknown, reset),
		cmocka_unit_test_setup(test_execute_empty, reset),
		cmocka_unit_test_setup(test_execute_unknown_escaped, reset),
		cmocka_unit_test_setup(test_execute_unknown_long, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
