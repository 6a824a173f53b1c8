/* Unit tests for wire.c: the protocol's words, and the arguments of UPLOAD,
 * DOWNLOAD and LIST encoded by one side and parsed back by the other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "wire.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOKEN "Tok_en-0123456789"

/* Names that need quoting, and plain ones. */
static const char *const names[] = {
	"notes.txt",    "my notes.txt",     "say \"hi\"", "back\\slash",
	"\"\\ \" \\\\", " lead and trail ", "ünïcødé",
};

#define NNAMES (sizeof names / sizeof names[0])

/* Parses a literal argument (its length without the terminating NUL). */
#define UPLOAD(text, u) wire_upload_parse(text, sizeof(text) - 1, u)
#define DOWNLOAD(text, d) wire_download_parse(text, sizeof(text) - 1, d)
#define LIST(text, l) wire_list_parse(text, sizeof(text) - 1, l)

/* ---- words ---- */

static void test_say_max_fits_one_frame(void **state)
{
	(void)state;
	assert_int_equal(WIRE_SAY_MAX, 65336);
	/* The longest event head with the longest text fills a frame exactly. */
	assert_int_equal(
		strlen("HISTORY 18446744073709551615 2026-11-22T13:22:05.123+03:00 ACTION ") +
			NICK_MAX_BYTES + 1 + WIRE_SAY_MAX,
		TPKT_MAX_PAYLOAD);
}

static void test_names(void **state)
{
	char longest[WIRE_NAME_MAX + 1];

	(void)state;
	memset(longest, 'n', sizeof longest);
	assert_true(wire_name_valid("a", 1));
	assert_true(wire_name_valid("...", 3));
	assert_true(wire_name_valid(".bottlex", 8));
	assert_true(wire_name_valid(longest, WIRE_NAME_MAX));
	assert_false(wire_name_valid(longest, WIRE_NAME_MAX + 1));
	assert_false(wire_name_valid("", 0));
	assert_false(wire_name_valid(".", 1));
	assert_false(wire_name_valid("..", 2));
	assert_false(wire_name_valid(".bottle", 7));
	assert_false(wire_name_valid("a/b", 3));
	assert_false(wire_name_valid("a\nb", 3));
	assert_false(wire_name_valid("a\x7f", 2));
	assert_false(wire_name_valid("a\0b", 3));
	/* The length counts, not the NUL: "." followed by more is another name. */
	assert_true(wire_name_valid(".x", 2));
}

static void test_tokens(void **state)
{
	char longest[WIRE_TOKEN_MAX + 1];

	(void)state;
	memset(longest, 'A', sizeof longest);
	assert_true(wire_token_valid("abcdefgh", 8));
	assert_true(wire_token_valid("A-Z_a-z0", 8));
	assert_true(wire_token_valid(longest, WIRE_TOKEN_MAX));
	assert_false(wire_token_valid(longest, WIRE_TOKEN_MAX + 1));
	assert_false(wire_token_valid("abcdefg", 7));
	assert_false(wire_token_valid("abcdefg.", 8));
	assert_false(wire_token_valid("abcd efg", 8));
}

static void test_parse_u63(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_true(wire_parse_u63("0", &v));
	assert_int_equal(v, 0);
	assert_true(wire_parse_u63("000123", &v));
	assert_int_equal(v, 123);
	assert_true(wire_parse_u63("9223372036854775807", &v)); /* 2^63 - 1 */
	assert_int_equal(v, INT64_MAX);
	v = 7;
	assert_false(wire_parse_u63("9223372036854775808", &v)); /* 2^63 */
	assert_false(wire_parse_u63("18446744073709551616", &v));
	assert_false(wire_parse_u63("", &v));
	assert_false(wire_parse_u63("+1", &v));
	assert_false(wire_parse_u63("-1", &v));
	assert_false(wire_parse_u63(" 1", &v));
	assert_false(wire_parse_u63("1x", &v));
	assert_false(wire_parse_u63("0x10", &v));
	assert_int_equal(v, 7); /* untouched on failure */
}

/* ---- round trips ---- */

static void upload_round_trip(const struct wire_upload *in)
{
	char text[1024];
	struct wire_upload out;
	int n = wire_upload_encode(text, sizeof text, in);

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(text));
	assert_int_equal(wire_upload_parse(text, (size_t)n, &out), WIRE_OK);
	assert_string_equal(out.name, in->name);
	assert_int_equal(out.size, in->size);
	assert_string_equal(out.sha, in->sha);
	assert_string_equal(out.token, in->token);
}

static void test_upload_round_trips(void **state)
{
	(void)state;
	for (size_t i = 0; i < NNAMES; i++) {
		struct wire_upload u = { .size = i * 1000003 };
		snprintf(u.name, sizeof u.name, "%s", names[i]);
		upload_round_trip(&u);
		snprintf(u.sha, sizeof u.sha, "%s", SHA);
		snprintf(u.token, sizeof u.token, "%s", TOKEN);
		upload_round_trip(&u);
		u.size = INT64_MAX;
		upload_round_trip(&u);
	}
}

static void test_upload_encode_refuses(void **state)
{
	char text[1024], small[8];
	struct wire_upload u = { .name = "a", .size = 1, .sha = SHA };

	(void)state;
	assert_int_equal(wire_upload_encode(text, sizeof text, &u), -1); /* sha, no token */
	u.sha[0] = '\0';
	snprintf(u.token, sizeof u.token, "%s", TOKEN);
	assert_int_equal(wire_upload_encode(text, sizeof text, &u), -1); /* token, no sha */
	u.token[0] = '\0';
	u.size = 12345678;
	assert_int_equal(wire_upload_encode(small, sizeof small, &u), -1); /* "a 12345678" */
	assert_int_equal(wire_upload_encode(text, sizeof text, &u), 10);
	assert_string_equal(text, "a 12345678");
}

static void download_round_trip(const struct wire_download *in)
{
	char text[1024];
	struct wire_download out;
	int n = wire_download_encode(text, sizeof text, in);

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(text));
	assert_int_equal(wire_download_parse(text, (size_t)n, &out), WIRE_OK);
	assert_string_equal(out.name, in->name);
	assert_int_equal(out.offset, in->offset);
	assert_string_equal(out.sha, in->sha);
}

static void test_download_round_trips(void **state)
{
	(void)state;
	for (size_t i = 0; i < NNAMES; i++) {
		struct wire_download d = { 0 };
		snprintf(d.name, sizeof d.name, "%s", names[i]);
		download_round_trip(&d); /* no offset, no sha */
		d.offset = 42;
		download_round_trip(&d); /* offset only */
		snprintf(d.sha, sizeof d.sha, "%s", SHA);
		download_round_trip(&d); /* both */
		d.offset = 0;
		download_round_trip(&d); /* a sha after offset 0 */
	}
}

static void test_download_encodings(void **state)
{
	char text[1024];
	struct wire_download d = { .name = "my notes" };

	(void)state;
	assert_int_equal(wire_download_encode(text, sizeof text, &d), 10);
	assert_string_equal(text, "\"my notes\"");
	d.offset = 7;
	wire_download_encode(text, sizeof text, &d);
	assert_string_equal(text, "\"my notes\" 7");
	d.offset = 0;
	snprintf(d.sha, sizeof d.sha, "%s", SHA);
	wire_download_encode(text, sizeof text, &d);
	assert_string_equal(text, "\"my notes\" 0 " SHA);
	assert_int_equal(wire_download_encode(text, 12, &d), -1);
}

static void test_list_round_trips(void **state)
{
	static const uint64_t froms[] = { 0, 1, 600, INT64_MAX };
	char text[64];

	(void)state;
	for (size_t i = 0; i < sizeof froms / sizeof froms[0]; i++) {
		struct wire_list in = { froms[i] }, out = { 99 };
		int n = wire_list_encode(text, sizeof text, &in);
		assert_true(n >= 0);
		assert_int_equal(wire_list_parse(text, (size_t)n, &out), WIRE_OK);
		assert_int_equal(out.from, in.from);
	}
	struct wire_list none = { 0 };
	assert_int_equal(wire_list_encode(text, sizeof text, &none), 0); /* plain "LIST" */
}

/* ---- errors ---- */

static void test_upload_errors(void **state)
{
	struct wire_upload u;

	(void)state;
	assert_int_equal(UPLOAD("", &u), WIRE_NO_NAME);
	assert_int_equal(UPLOAD("   ", &u), WIRE_NO_NAME);
	assert_int_equal(UPLOAD(". 1", &u), WIRE_BAD_NAME);
	assert_int_equal(UPLOAD(".bottle 1", &u), WIRE_BAD_NAME);
	assert_int_equal(UPLOAD("\"\" 1", &u), WIRE_BAD_NAME);
	assert_int_equal(UPLOAD("\"open 1", &u), WIRE_BAD_NAME); /* no closing quote */
	assert_int_equal(UPLOAD("a\0b 1", &u), WIRE_BAD_NAME);   /* NUL in the name */
	assert_int_equal(UPLOAD("a", &u), WIRE_BAD_SIZE);
	assert_int_equal(UPLOAD("a -1", &u), WIRE_BAD_SIZE);
	assert_int_equal(UPLOAD("a +1", &u), WIRE_BAD_SIZE);
	assert_int_equal(UPLOAD("a 9223372036854775808", &u), WIRE_BAD_SIZE);
	assert_int_equal(UPLOAD("a 1\0", &u), WIRE_BAD_SIZE);
	assert_int_equal(UPLOAD("a 1 " SHA, &u), WIRE_USAGE);          /* no token */
	assert_int_equal(UPLOAD("a 1 " SHA " short", &u), WIRE_USAGE); /* token too short */
	assert_int_equal(UPLOAD("a 1 " SHA " " TOKEN " more", &u), WIRE_USAGE);
	assert_int_equal(UPLOAD("a 1 ABCDEF" SHA, &u), WIRE_USAGE);       /* sha too long */
	assert_int_equal(UPLOAD("a 1 " SHA "\0 " TOKEN, &u), WIRE_USAGE); /* NUL in the sha */
	assert_int_equal(UPLOAD("a 1 " SHA " " TOKEN, &u), WIRE_OK);
	assert_int_equal(u.size, 1);
	assert_int_equal(UPLOAD("  a   2  ", &u), WIRE_OK);
	assert_string_equal(u.name, "a");
	assert_string_equal(u.sha, "");
	assert_string_equal(u.token, "");
}

/* Words longer than their place: never skipped, always an error. */
static void test_overlong_words(void **state)
{
	char text[1024];
	struct wire_upload u;
	struct wire_download d;
	struct wire_list l;

	(void)state;
	memset(text, 'n', WIRE_NAME_MAX + 1);
	snprintf(text + WIRE_NAME_MAX + 1, sizeof text - WIRE_NAME_MAX - 1, " 1");
	assert_int_equal(wire_upload_parse(text, strlen(text), &u), WIRE_BAD_NAME);
	assert_int_equal(wire_download_parse(text, strlen(text), &d), WIRE_BAD_NAME);
	/* A number word of 80 bytes (leading zeros) is too long; 79 is a number. */
	int n = snprintf(text, sizeof text, "a %079d", 5);
	assert_int_equal(wire_upload_parse(text, (size_t)n, &u), WIRE_OK);
	assert_int_equal(u.size, 5);
	assert_int_equal(wire_download_parse(text, (size_t)n, &d), WIRE_OK);
	assert_int_equal(d.offset, 5);
	n = snprintf(text, sizeof text, "a %080d", 5);
	assert_int_equal(wire_upload_parse(text, (size_t)n, &u), WIRE_BAD_SIZE);
	assert_int_equal(wire_download_parse(text, (size_t)n, &d), WIRE_USAGE);
	/* LIST's number has room for 23 bytes. */
	n = snprintf(text, sizeof text, "%023d", 3);
	assert_int_equal(wire_list_parse(text, (size_t)n, &l), WIRE_OK);
	assert_int_equal(l.from, 3);
	n = snprintf(text, sizeof text, "%024d", 3);
	assert_int_equal(wire_list_parse(text, (size_t)n, &l), WIRE_USAGE);
	/* A token over 64 bytes. */
	n = snprintf(text, sizeof text, "a 1 %s %065d", SHA, 0);
	assert_int_equal(wire_upload_parse(text, (size_t)n, &u), WIRE_USAGE);
}

static void test_download_errors(void **state)
{
	struct wire_download d;

	(void)state;
	assert_int_equal(DOWNLOAD("", &d), WIRE_NO_NAME);
	assert_int_equal(DOWNLOAD("a/b", &d), WIRE_BAD_NAME);
	assert_int_equal(DOWNLOAD("a -1", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a +1", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a 9223372036854775808", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a 1 notasha", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a 1 " SHA " more", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a 1\0", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a 1 " SHA "\0", &d), WIRE_USAGE);
	assert_int_equal(DOWNLOAD("a 9223372036854775807 " SHA, &d), WIRE_OK);
	assert_int_equal(d.offset, INT64_MAX);
	assert_string_equal(d.sha, SHA);
}

static void test_list_errors(void **state)
{
	struct wire_list l;

	(void)state;
	assert_int_equal(LIST("", &l), WIRE_OK);
	assert_int_equal(l.from, 0);
	assert_int_equal(LIST("  ", &l), WIRE_OK);
	assert_int_equal(LIST("-1", &l), WIRE_USAGE);
	assert_int_equal(LIST("+1", &l), WIRE_USAGE);
	assert_int_equal(LIST("1 2", &l), WIRE_USAGE);
	assert_int_equal(LIST("9223372036854775808", &l), WIRE_USAGE);
	assert_int_equal(LIST("1\0", &l), WIRE_USAGE);
	assert_int_equal(LIST("\"1\"", &l), WIRE_OK); /* a quoted word is a word */
	assert_int_equal(l.from, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_say_max_fits_one_frame),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_parse_u63),
		cmocka_unit_test(test_upload_round_trips),
		cmocka_unit_test(test_upload_encode_refuses),
		cmocka_unit_test(test_download_round_trips),
		cmocka_unit_test(test_download_encodings),
		cmocka_unit_test(test_list_round_trips),
		cmocka_unit_test(test_upload_errors),
		cmocka_unit_test(test_overlong_words),
		cmocka_unit_test(test_download_errors),
		cmocka_unit_test(test_list_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
