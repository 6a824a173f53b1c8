/* Unit tests for framing.c: framer_decode over both framings, framing_detect,
 * and framing_encode in line and TPKT mode. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "framing.h"

#define MAX_LINE 16

static void assert_blob(const struct blob *b, const void *want, size_t wlen)
{
	assert_non_null(b);
	assert_int_equal(b->len, wlen);
	assert_true(b->len <= b->cap);
	if (wlen)
		assert_memory_equal(b->data, want, wlen);
}

/* ---- framer_decode ---- */

static void test_decode_tpkt_frame(void **state)
{
	struct framer f;
	const char *cmd, *err;
	size_t used, len;
	const unsigned char in[] = { 0x03, 0x00, 0x00, 0x0d, 'E',  'C', 'H',
		                     'O',  ' ',  'h',  'i',  '\n', 'x', 0x03 };

	(void)state;
	framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, in, sizeof in, &used, &cmd, &len, &err), FRAME_OK);
	assert_int_equal(used, 13);
	assert_int_equal(len, 9);
	assert_memory_equal(cmd, "ECHO hi\nx", 9);
	assert_null(err);
	/* The next frame starts; incomplete. */
	assert_int_equal(framer_decode(&f, in + 13, 1, &used, &cmd, &len, &err), FRAME_NEED_MORE);
	assert_int_equal(used, 1);
	assert_null(cmd);
	assert_int_equal(len, 0);
	assert_null(err);
	framer_free(&f);
}

static void test_decode_tpkt_split(void **state)
{
	const unsigned char in[] = { 0x03, 0x00, 0x00, 0x08, 'T', 'I', 'M', 'E' };

	(void)state;
	for (size_t cut = 1; cut < sizeof in; cut++) {
		struct framer f;
		const char *cmd, *err;
		size_t used, len;

		framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
		assert_int_equal(framer_decode(&f, in, cut, &used, &cmd, &len, &err),
		                 FRAME_NEED_MORE);
		assert_int_equal(used, cut);
		assert_int_equal(
			framer_decode(&f, in + cut, sizeof in - cut, &used, &cmd, &len, &err),
			FRAME_OK);
		assert_int_equal(used, sizeof in - cut);
		assert_int_equal(len, 4);
		assert_memory_equal(cmd, "TIME", 4);
		framer_free(&f);
	}
}

static void test_decode_tpkt_bad_version(void **state)
{
	struct framer f;
	const char *cmd, *err;
	size_t used, len;
	const unsigned char in[] = { 0x04, 0x00, 0x00, 0x08, 'T', 'I', 'M', 'E' };

	(void)state;
	framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, in, sizeof in, &used, &cmd, &len, &err), FRAME_FATAL);
	assert_non_null(err);
	assert_string_equal(err, "bad TPKT version");
	assert_null(cmd);
	assert_int_equal(len, 0);
	framer_free(&f);
}

static void test_decode_tpkt_errors(void **state)
{
	struct framer f;
	const char *cmd, *err;
	size_t used, len;
	const unsigned char reserved[] = { 0x03, 0x01, 0x00, 0x08 };
	const unsigned char short_len[] = { 0x03, 0x00, 0x00, 0x03 };
	const unsigned char too_long[] = { 0x03, 0x00, 0x01, 0x00 };

	(void)state;
	framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, reserved, 4, &used, &cmd, &len, &err), FRAME_FATAL);
	assert_string_equal(err, "bad TPKT reserved byte");
	framer_free(&f);

	framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, short_len, 4, &used, &cmd, &len, &err), FRAME_FATAL);
	assert_string_equal(err, "bad TPKT length");
	framer_free(&f);

	framer_init(&f, FRAMING_TPKT, MAX_LINE, 64);
	assert_int_equal(framer_decode(&f, too_long, 4, &used, &cmd, &len, &err), FRAME_FATAL);
	assert_string_equal(err, "TPKT frame too long");
	framer_free(&f);
}

static void test_decode_line(void **state)
{
	struct framer f;
	const char *cmd, *err;
	size_t used, len;
	const char in[] = "ECHO hi\r\nTIME\n";

	(void)state;
	framer_init(&f, FRAMING_LINE, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, in, sizeof in - 1, &used, &cmd, &len, &err), FRAME_OK);
	assert_int_equal(used, 9);
	assert_int_equal(len, 7);
	assert_memory_equal(cmd, "ECHO hi", 7);
	assert_null(err);
	assert_int_equal(framer_decode(&f, in + 9, 5, &used, &cmd, &len, &err), FRAME_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(cmd, "TIME", 4);
	assert_int_equal(framer_decode(&f, "EC", 2, &used, &cmd, &len, &err), FRAME_NEED_MORE);
	assert_int_equal(used, 2);
	assert_null(cmd);
	assert_null(err);
	framer_free(&f);
}

static void test_decode_line_too_long(void **state)
{
	struct framer f;
	const char *cmd, *err;
	size_t used, len;
	const char in[] = "ECHO 0123456789abcdefghij\nTIME\n";
	const char *p = in;
	size_t n = sizeof in - 1;

	(void)state;
	framer_init(&f, FRAMING_LINE, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, p, n, &used, &cmd, &len, &err), FRAME_REJECT);
	assert_non_null(err);
	assert_string_equal(err, "line too long");
	assert_null(cmd);
	p += used;
	n -= used;
	/* Rejected, not fatal: the next command goes through. */
	assert_int_equal(framer_decode(&f, p, n, &used, &cmd, &len, &err), FRAME_OK);
	assert_null(err);
	assert_int_equal(len, 4);
	assert_memory_equal(cmd, "TIME", 4);
	assert_int_equal(used, n);
	framer_free(&f);
}

static void test_detect_and_name(void **state)
{
	(void)state;
	assert_int_equal(framing_detect(0x03), FRAMING_TPKT);
	for (int c = 0; c < 256; c++)
		if (c != 0x03)
			assert_int_equal(framing_detect((unsigned char)c), FRAMING_LINE);
	assert_string_equal(framing_name(FRAMING_LINE), "line");
	assert_string_equal(framing_name(FRAMING_TPKT), "tpkt");
}

/* ---- framing_encode, line mode ---- */

static void check_line_encode(const char *head, const char *body, const char *want)
{
	struct blob *b = framing_encode(FRAMING_LINE, head, strlen(head), body, strlen(body));
	assert_blob(b, want, strlen(want));
	assert_int_equal(b->refs, 1);
	blob_unref(b);
}

static void test_encode_line_single(void **state)
{
	(void)state;
	check_line_encode("head ", "body", "head body\n");
	check_line_encode("OK ", "hello there", "OK hello there\n");
}

static void test_encode_line_multi(void **state)
{
	(void)state;
	check_line_encode("MSG x ", "a\nb", "MSG x a\nMSG x b\n");
	check_line_encode("MSG x ", "a\nb\nc", "MSG x a\nMSG x b\nMSG x c\n");
	/* An empty line inside the body still gets its head. */
	check_line_encode("MSG x ", "a\n\nb", "MSG x a\nMSG x \nMSG x b\n");
}

static void test_encode_line_empty_body(void **state)
{
	(void)state;
	check_line_encode("head", "", "head\n");
	check_line_encode("OK", "", "OK\n");
	check_line_encode("", "", "\n");
}

static void test_encode_line_body_trailing_newline(void **state)
{
	(void)state;
	/* A final newline ends the last line; it does not add an empty one. */
	check_line_encode("MSG x ", "a\n", "MSG x a\n");
	check_line_encode("MSG x ", "a\nb\n", "MSG x a\nMSG x b\n");
	check_line_encode("MSG x ", "\n", "MSG x \n");
}

static void test_encode_line_binary(void **state)
{
	struct blob *b;
	const char body[] = { 'a', '\0', 'b', '\n', '\xff' };

	(void)state;
	b = framing_encode(FRAMING_LINE, "H ", 2, body, sizeof body);
	/* Line mode shows them escaped (docs/protocol.md, "Text safety"). */
	assert_blob(b, "H a\\x00b\nH \\xff\n", 16);
	blob_unref(b);
}

/* ---- text safety: line mode escapes, TPKT carries the bytes ---- */

static void test_encode_line_escapes_controls(void **state)
{
	(void)state;
	/* The attack of issue 12: clear screen, set the window title. */
	check_line_encode("MSG eve ", "\x1b[2J\x1b]0;pwned\x07",
	                  "MSG eve \\x1b[2J\\x1b]0;pwned\\x07\n");
	/* A carriage return can't go back over the head. */
	check_line_encode("MSG eve ", "x\rMSG alice hi", "MSG eve x\\rMSG alice hi\n");
	check_line_encode("MSG eve ", "\x7f\x08\x01", "MSG eve \\x7f\\x08\\x01\n");
	/* C1 controls and bytes that are not UTF-8. */
	check_line_encode("MSG eve ",
	                  "\xc2\x9b"
	                  "2J \x9b"
	                  "2J \xff",
	                  "MSG eve \\xc2\\x9b2J \\x9b2J \\xff\n");
	/* Newlines still split, each line escaped on its own. */
	check_line_encode("MSG eve ", "a\x1b\nb\x07\nc",
	                  "MSG eve a\\x1b\nMSG eve b\\x07\nMSG eve c\n");
	check_line_encode("MSG eve ", "\x1b\n", "MSG eve \\x1b\n");
}

static void test_encode_line_keeps_text(void **state)
{
	(void)state;
	/* Tab, backslash, quotes and UTF-8 arrive byte for byte. */
	check_line_encode("MSG bob ", "a\tb", "MSG bob a\tb\n");
	check_line_encode("OK 1 ", "q\"x\\y", "OK 1 q\"x\\y\n");
	check_line_encode("MSG bob ", "C:\\x1b", "MSG bob C:\\x1b\n");
	check_line_encode("MSG bob ", "\xd0\xbf\xd1\x80\xe2\x82\xac \xf0\x9f\x98\x80",
	                  "MSG bob \xd0\xbf\xd1\x80\xe2\x82\xac \xf0\x9f\x98\x80\n");
}

static void test_encode_line_bidi(void **state)
{
	(void)state;
	check_line_encode("MSG eve ",
	                  "abc\xe2\x80\xae"
	                  "def\xe2\x81\xa6"
	                  "g\xe2\x81\xa9",
	                  "MSG eve abc\\u202edef\\u2066g\\u2069\n");
	check_line_encode("MSG eve ", "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
	                  "MSG eve \\u202a\\u202b\\u202c\\u202d\n");
	check_line_encode("MSG eve ", "\xe2\x81\xa7\xe2\x81\xa8", "MSG eve \\u2067\\u2068\n");
}

/* A head is the server's, but it gets the same rule (a head never holds a newline:
 * one would show as \n). */
static void test_encode_line_head_escaped(void **state)
{
	(void)state;
	check_line_encode("ERR \x1b", "x", "ERR \\x1bx\n");
	check_line_encode("A\nB ", "x\ny", "A\\nB x\nA\\nB y\n");
	check_line_encode("H\x07", "", "H\\x07\n");
}

/* The blob is exactly as big as what it holds, give or take one line's head. */
static void test_encode_line_escaped_size(void **state)
{
	char body[600];

	(void)state;
	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (char)(i % 7 == 6 ? '\n' : i % 3 ? 0x1b : 'a');
	struct blob *b = framing_encode(FRAMING_LINE, "MSG x ", 6, body, sizeof body);
	assert_true(b->len <= b->cap && b->cap <= b->len + 7);
	for (size_t i = 0; i < b->len; i++)
		assert_true(b->data[i] == '\n' || (b->data[i] >= 0x20 && b->data[i] < 0x7f));
	blob_unref(b);
}

/* Every byte value from a sender: the line receiver gets no control byte but its line
 * ends, the TPKT receiver gets every byte as sent. */
static void test_encode_all_bytes(void **state)
{
	char body[256];

	(void)state;
	for (int i = 0; i < 256; i++)
		body[i] = (char)i;
	struct blob *l = framing_encode(FRAMING_LINE, "MSG x ", 6, body, sizeof body);
	size_t lines = 0;
	for (size_t i = 0; i < l->len; i++) {
		unsigned char c = l->data[i];
		lines += c == '\n';
		assert_true(c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f));
	}
	assert_int_equal(lines, 2); /* the body's one newline splits it in two */
	blob_unref(l);
	struct blob *t = framing_encode(FRAMING_TPKT, "MSG x ", 6, body, sizeof body);
	assert_int_equal(t->len, TPKT_HDR_LEN + 6 + sizeof body);
	assert_memory_equal(t->data + TPKT_HDR_LEN + 6, body, sizeof body);
	blob_unref(t);
}

static void test_encode_tpkt_exact_bytes(void **state)
{
	const char body[] = "\x1b[2J\x1b]0;pwned\x07\xe2\x80\xae\r\xff";

	(void)state;
	struct blob *b = framing_encode(FRAMING_TPKT, "MSG eve ", 8, body, sizeof body - 1);
	assert_int_equal(b->len, TPKT_HDR_LEN + 8 + sizeof body - 1);
	assert_memory_equal(b->data + TPKT_HDR_LEN + 8, body, sizeof body - 1);
	blob_unref(b);
}

/* ---- telnet answers and idle memory through the framer ---- */

static void test_framer_reply_and_trim(void **state)
{
	struct framer f;
	const char *cmd, *err;
	size_t used, len;
	unsigned char *reply;
	/* Ctrl-C in telnet: IAC IP IAC DO TIMING-MARK, then a new line. */
	const unsigned char in[] = { 'E', 'C', 'H', 'O', ' ', 'x', 255, 244,  255, 253,
		                     6,   'E', 'C', 'H', 'O', ' ', 'y', '\r', '\n' };

	(void)state;
	framer_init(&f, FRAMING_LINE, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_take_reply(&f, &reply), 0);
	assert_null(reply);
	assert_int_equal(framer_decode(&f, in, sizeof in, &used, &cmd, &len, &err), FRAME_OK);
	assert_int_equal(used, sizeof in);
	assert_int_equal(len, 6);
	assert_memory_equal(cmd, "ECHO y", 6);
	assert_int_equal(framer_take_reply(&f, &reply), 3);
	assert_memory_equal(reply, "\xff\xfb\x06", 3);
	free(reply);
	assert_int_equal(framer_take_reply(&f, &reply), 0);
	/* The line was copied (it had telnet bytes); trim frees the copy. */
	assert_non_null(f.u.line.buf);
	framer_trim(&f);
	assert_null(f.u.line.buf);
	/* A partial line survives a trim. */
	assert_int_equal(framer_decode(&f, "TI", 2, &used, &cmd, &len, &err), FRAME_NEED_MORE);
	framer_trim(&f);
	assert_int_equal(framer_decode(&f, "ME\n", 3, &used, &cmd, &len, &err), FRAME_OK);
	assert_memory_equal(cmd, "TIME", 4);
	framer_trim(&f);
	assert_null(f.u.line.buf);
	framer_free(&f);

	/* TPKT: no answers ever; a frame split over two calls is buffered, then trimmed. */
	const unsigned char fr[] = { 0x03, 0x00, 0x00, 0x08, 'T', 'I', 'M', 'E' };
	framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, fr, 6, &used, &cmd, &len, &err), FRAME_NEED_MORE);
	framer_trim(&f);
	assert_non_null(f.u.tpkt.buf);
	assert_int_equal(framer_decode(&f, fr + 6, 2, &used, &cmd, &len, &err), FRAME_OK);
	assert_memory_equal(cmd, "TIME", 4);
	assert_int_equal(framer_take_reply(&f, &reply), 0);
	assert_null(reply);
	framer_trim(&f);
	assert_null(f.u.tpkt.buf);
	framer_free(&f);
}

/* ---- framing_encode, TPKT mode ---- */

static void check_tpkt_encode(const char *head, size_t hlen, const char *body, size_t blen)
{
	struct blob *b = framing_encode(FRAMING_TPKT, head, hlen, body, blen);
	size_t total = TPKT_HDR_LEN + hlen + blen;

	assert_non_null(b);
	assert_int_equal(b->len, total);
	assert_int_equal(b->data[0], 0x03);
	assert_int_equal(b->data[1], 0x00);
	assert_int_equal(b->data[2], (total >> 8) & 0xff);
	assert_int_equal(b->data[3], total & 0xff);
	if (hlen)
		assert_memory_equal(b->data + TPKT_HDR_LEN, head, hlen);
	if (blen)
		assert_memory_equal(b->data + TPKT_HDR_LEN + hlen, body, blen);
	blob_unref(b);
}

static void test_encode_tpkt(void **state)
{
	(void)state;
	check_tpkt_encode("OK ", 3, "hi", 2);
	check_tpkt_encode("MSG x ", 6, "a\nb\n", 4); /* newlines kept byte for byte */
	check_tpkt_encode("OK", 2, "", 0);
	check_tpkt_encode("", 0, "", 0);
	check_tpkt_encode("H ", 2, "\r\n\0\xff", 4);

	struct blob *b = framing_encode(FRAMING_TPKT, "OK ", 3, "hi", 2);
	assert_blob(b, "\x03\x00\x00\x09OK hi", 9);
	blob_unref(b);
}

static void test_encode_tpkt_roundtrip(void **state)
{
	struct blob *b = framing_encode(FRAMING_TPKT, "MSG bob ", 8, "one\ntwo", 7);
	struct framer f;
	const char *cmd, *err;
	size_t used, len;

	(void)state;
	framer_init(&f, FRAMING_TPKT, MAX_LINE, TPKT_MAX_LEN);
	assert_int_equal(framer_decode(&f, b->data, b->len, &used, &cmd, &len, &err), FRAME_OK);
	assert_int_equal(used, b->len);
	assert_int_equal(len, 15);
	assert_memory_equal(cmd, "MSG bob one\ntwo", 15);
	framer_free(&f);
	blob_unref(b);
}

static void test_encode_tpkt_large(void **state)
{
	size_t blen = TPKT_MAX_PAYLOAD - 6; /* exactly the maximum with "MSG x " */
	char *body = malloc(blen);

	(void)state;
	assert_non_null(body);
	for (size_t i = 0; i < blen; i++)
		body[i] = (char)(i * 31 + 7);
	check_tpkt_encode("MSG x ", 6, body, blen);
	free(body);
}

static void test_encode_tpkt_oversize(void **state)
{
	size_t blen = 70000;
	char *body = malloc(blen);
	struct blob *b;

	(void)state;
	assert_non_null(body);
	for (size_t i = 0; i < blen; i++)
		body[i] = (char)(i * 13 + 1);
	b = framing_encode(FRAMING_TPKT, "MSG x ", 6, body, blen);
	assert_int_equal(b->len, TPKT_MAX_LEN);
	assert_memory_equal(b->data, "\x03\x00\xff\xff", 4);
	assert_memory_equal(b->data + 4, "MSG x ", 6);
	assert_memory_equal(b->data + 10, body, TPKT_MAX_PAYLOAD - 6);
	blob_unref(b);

	/* A head alone over the limit. */
	b = framing_encode(FRAMING_TPKT, body, blen, "tail", 4);
	assert_int_equal(b->len, TPKT_MAX_LEN);
	assert_memory_equal(b->data, "\x03\x00\xff\xff", 4);
	assert_memory_equal(b->data + 4, body, TPKT_MAX_PAYLOAD);
	blob_unref(b);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_tpkt_frame),
		cmocka_unit_test(test_decode_tpkt_split),
		cmocka_unit_test(test_decode_tpkt_bad_version),
		cmocka_unit_test(test_decode_tpkt_errors),
		cmocka_unit_test(test_decode_line),
		cmocka_unit_test(test_decode_line_too_long),
		cmocka_unit_test(test_detect_and_name),
		cmocka_unit_test(test_encode_line_single),
		cmocka_unit_test(test_encode_line_multi),
		cmocka_unit_test(test_encode_line_empty_body),
		cmocka_unit_test(test_encode_line_body_trailing_newline),
		cmocka_unit_test(test_encode_line_binary),
		cmocka_unit_test(test_encode_line_escapes_controls),
		cmocka_unit_test(test_encode_line_keeps_text),
		cmocka_unit_test(test_encode_line_bidi),
		cmocka_unit_test(test_encode_line_head_escaped),
		cmocka_unit_test(test_encode_line_escaped_size),
		cmocka_unit_test(test_encode_all_bytes),
		cmocka_unit_test(test_encode_tpkt_exact_bytes),
		cmocka_unit_test(test_framer_reply_and_trim),
		cmocka_unit_test(test_encode_tpkt),
		cmocka_unit_test(test_encode_tpkt_roundtrip),
		cmocka_unit_test(test_encode_tpkt_large),
		cmocka_unit_test(test_encode_tpkt_oversize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
