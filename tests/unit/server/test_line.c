/* Unit tests for the line decoder (line.c): splits, endings, pipelining,
 * over-long lines, binary bytes and telnet IAC removal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "line.h"

#define MAX 16

/* A transcript of decoder events: each line as "[bytes]", each LINE_TOO_LONG as "!".
 * Lines may hold NUL bytes, so it is a counted buffer, not a C string. */
struct transcript {
	char buf[8192];
	size_t len;
	unsigned too_long;
	unsigned lines;
};

static void tr_add(struct transcript *t, const void *p, size_t n)
{
	assert_true(t->len + n <= sizeof t->buf);
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/* Feeds in[0..n) as one read: calls line_decode until the read is used up. */
static void feed(struct line_decoder *d, const void *input, size_t n, struct transcript *t)
{
	const char *in = input;

	while (n > 0) {
		const char *line = (const char *)1;
		size_t used = (size_t)-1, len = (size_t)-1;
		enum line_status st = line_decode(d, in, n, &used, &line, &len);

		assert_true(used <= n);
		switch (st) {
		case LINE_FRAME:
			assert_true(used > 0);
			assert_non_null(line);
			assert_true(len <= d->max);
			tr_add(t, "[", 1);
			tr_add(t, line, len);
			tr_add(t, "]", 1);
			t->lines++;
			break;
		case LINE_TOO_LONG:
			assert_true(used > 0);
			tr_add(t, "!", 1);
			t->too_long++;
			break;
		case LINE_NEED_MORE: assert_int_equal(used, n); break;
		default: fail_msg("bad status %d", (int)st);
		}
		in += used;
		n -= used;
	}
}

static void assert_transcript(const struct transcript *t, const char *want, size_t wlen,
                              const char *what, size_t cut)
{
	if (t->len != wlen || memcmp(t->buf, want, wlen) != 0) {
		print_error("%s (cut %zu): got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"\n", what,
		            cut, t->len, (int)t->len, t->buf, wlen, (int)wlen, want);
		fail();
	}
}

/* Decodes in[0..n) whole, split in two at every position, and one byte at a time;
 * every way must give the transcript `want`, and leave nothing pending. */
static void check_all_splits_max(const char *in, size_t n, const char *want, size_t wlen,
                                 size_t max)
{
	struct line_decoder d;
	struct transcript t;

	for (size_t cut = 0; cut <= n; cut++) {
		memset(&t, 0, sizeof t);
		line_decoder_init(&d, max);
		/* Each piece in its own heap buffer so ASan sees any over-read. */
		char *a = malloc(cut ? cut : 1), *b = malloc(n - cut ? n - cut : 1);
		assert_non_null(a);
		assert_non_null(b);
		memcpy(a, in, cut);
		memcpy(b, in + cut, n - cut);
		feed(&d, a, cut, &t);
		feed(&d, b, n - cut, &t);
		assert_transcript(&t, want, wlen, "two pieces", cut);
		assert_false(line_decoder_pending(&d));
		free(a);
		free(b);
		line_decoder_free(&d);
	}

	memset(&t, 0, sizeof t);
	line_decoder_init(&d, max);
	for (size_t i = 0; i < n; i++) {
		char *one = malloc(1);
		assert_non_null(one);
		*one = in[i];
		feed(&d, one, 1, &t);
		free(one);
	}
	assert_transcript(&t, want, wlen, "byte at a time", 0);
	assert_false(line_decoder_pending(&d));
	line_decoder_free(&d);
}

#define CHECK_SPLITS(in, want) check_all_splits_max(in, sizeof(in) - 1, want, sizeof(want) - 1, MAX)

/* ---- basic decoding ---- */

static void test_simple_line(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;
	const char in[] = "hello\n";

	(void)state;
	line_decoder_init(&d, MAX);
	assert_int_equal(line_decode(&d, in, 6, &used, &line, &len), LINE_FRAME);
	assert_int_equal(used, 6);
	assert_int_equal(len, 5);
	assert_memory_equal(line, "hello", 5);
	assert_false(line_decoder_pending(&d));
	line_decoder_free(&d);
}

static void test_need_more(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;

	(void)state;
	line_decoder_init(&d, MAX);
	assert_int_equal(line_decode(&d, "hel", 3, &used, &line, &len), LINE_NEED_MORE);
	assert_int_equal(used, 3);
	assert_null(line);
	assert_int_equal(len, 0);
	assert_int_equal(line_decode(&d, "lo\nX", 4, &used, &line, &len), LINE_FRAME);
	assert_int_equal(used, 3);
	assert_int_equal(len, 5);
	assert_memory_equal(line, "hello", 5);
	/* An empty read changes nothing. */
	assert_int_equal(line_decode(&d, "", 0, &used, &line, &len), LINE_NEED_MORE);
	assert_int_equal(used, 0);
	line_decoder_free(&d);
}

static void test_split_every_position(void **state)
{
	(void)state;
	CHECK_SPLITS("hello world\n", "[hello world]");
	CHECK_SPLITS("ECHO hi there\r\n", "[ECHO hi there]");
	CHECK_SPLITS("a\nbc\r\n\ndef\n", "[a][bc][][def]");
}

/* ---- line endings ---- */

static void test_crlf_and_lf(void **state)
{
	(void)state;
	CHECK_SPLITS("abc\r\n", "[abc]");
	CHECK_SPLITS("abc\n", "[abc]");
	CHECK_SPLITS("\r\n", "[]");
	/* A '\r' is dropped only right before '\n'. */
	CHECK_SPLITS("a\rb\n", "[a\rb]");
	CHECK_SPLITS("\rab\n", "[\rab]");
	CHECK_SPLITS("abc\r\r\n", "[abc\r]");
	CHECK_SPLITS("x\r\ny\n", "[x][y]");
	/* A lone '\r' is no line end. */
	CHECK_SPLITS("a\rb\rc\n", "[a\rb\rc]");
}

static void test_pipelining(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;
	const char in[] = "one\ntwo\r\nthree\n\nfour\r\npartial";
	const char *p = in;
	size_t n = sizeof in - 1;
	static const struct {
		const char *line;
		size_t used;
	} want[] = {
		{ "one", 4 }, { "two", 5 }, { "three", 6 }, { "", 1 }, { "four", 6 },
	};

	(void)state;
	line_decoder_init(&d, MAX);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_int_equal(line_decode(&d, p, n, &used, &line, &len), LINE_FRAME);
		assert_int_equal(used, want[i].used);
		assert_int_equal(len, strlen(want[i].line));
		assert_memory_equal(line, want[i].line, len);
		p += used;
		n -= used;
	}
	assert_int_equal(line_decode(&d, p, n, &used, &line, &len), LINE_NEED_MORE);
	assert_int_equal(used, strlen("partial"));
	assert_true(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\n", 1, &used, &line, &len), LINE_FRAME);
	assert_int_equal(used, 1);
	assert_int_equal(len, 7);
	assert_memory_equal(line, "partial", 7);
	line_decoder_free(&d);
}

static void test_many_lines_one_buffer(void **state)
{
	char in[4096], want[4096];
	size_t n = 0, w = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		char l[32];
		int k = snprintf(l, sizeof l, "line %d", i);
		memcpy(in + n, l, (size_t)k);
		n += (size_t)k;
		if (i % 3 == 0)
			in[n++] = '\r';
		in[n++] = '\n';
		want[w++] = '[';
		memcpy(want + w, l, (size_t)k);
		w += (size_t)k;
		want[w++] = ']';
	}
	assert_true(n < sizeof in);
	check_all_splits_max(in, n, want, w, MAX);
}

static void test_empty_line(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;

	(void)state;
	line_decoder_init(&d, MAX);
	assert_int_equal(line_decode(&d, "\n", 1, &used, &line, &len), LINE_FRAME);
	assert_int_equal(used, 1);
	assert_int_equal(len, 0);
	assert_non_null(line);
	assert_int_equal(line_decode(&d, "\r\n", 2, &used, &line, &len), LINE_FRAME);
	assert_int_equal(used, 2);
	assert_int_equal(len, 0);
	/* "\r" and "\n" in separate reads. */
	assert_int_equal(line_decode(&d, "\r", 1, &used, &line, &len), LINE_NEED_MORE);
	assert_int_equal(line_decode(&d, "\n", 1, &used, &line, &len), LINE_FRAME);
	assert_int_equal(len, 0);
	assert_non_null(line);
	assert_false(line_decoder_pending(&d));
	line_decoder_free(&d);
	CHECK_SPLITS("\n\n\r\n", "[][][]");
}

/* ---- length limit ---- */

static void test_exactly_max(void **state)
{
	(void)state;
	/* 16 bytes: fine with "\n" and with "\r\n". */
	CHECK_SPLITS("0123456789abcdef\n", "[0123456789abcdef]");
	CHECK_SPLITS("0123456789abcdef\r\n", "[0123456789abcdef]");
	CHECK_SPLITS("0123456789abcdef\r\nok\n", "[0123456789abcdef][ok]");
	/* 15 bytes + a kept '\r' is 16 bytes: fine. */
	CHECK_SPLITS("0123456789abcde\r\r\n", "[0123456789abcde\r]");
}

static void test_max_plus_one(void **state)
{
	(void)state;
	CHECK_SPLITS("0123456789abcdefg\nok\n", "![ok]");
	/* A kept '\r' counts: 16 bytes + '\r' + "\r\n" is 17 bytes. */
	CHECK_SPLITS("0123456789abcdef\r\r\nok\n", "![ok]");
	/* A '\r' in the slack that is not followed by '\n'. */
	CHECK_SPLITS("0123456789abcdef\rX\nok\n", "![ok]");
}

static void test_too_long_once_same_buffer(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;
	const char in[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nnext\n";
	const char *p = in;
	size_t n = sizeof in - 1;

	(void)state;
	line_decoder_init(&d, MAX);
	assert_int_equal(line_decode(&d, p, n, &used, &line, &len), LINE_TOO_LONG);
	assert_true(used > 0 && used <= (size_t)(strchr(in, '\n') - in));
	p += used;
	n -= used;
	/* The rest of the long line is skipped silently; the next line decodes. */
	assert_int_equal(line_decode(&d, p, n, &used, &line, &len), LINE_FRAME);
	assert_int_equal(len, 4);
	assert_memory_equal(line, "next", 4);
	assert_int_equal(used, n);
	assert_false(line_decoder_pending(&d));
	line_decoder_free(&d);
}

static void test_too_long_small_pieces(void **state)
{
	struct line_decoder d;
	struct transcript t;
	char longline[300];

	(void)state;
	memset(longline, 'x', sizeof longline);
	for (size_t piece = 1; piece <= 20; piece++) {
		memset(&t, 0, sizeof t);
		line_decoder_init(&d, MAX);
		for (size_t off = 0; off < sizeof longline; off += piece) {
			size_t k = sizeof longline - off < piece ? sizeof longline - off : piece;
			feed(&d, longline + off, k, &t);
		}
		feed(&d, "\r\n", 2, &t);
		feed(&d, "fine\n", 5, &t);
		assert_transcript(&t, "![fine]", 7, "long line in pieces", piece);
		assert_int_equal(t.too_long, 1);
		line_decoder_free(&d);
	}
}

static void test_too_long_all_splits(void **state)
{
	(void)state;
	CHECK_SPLITS("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nok\n", "![ok]");
	CHECK_SPLITS("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nok\r\n", "![ok]");
	CHECK_SPLITS("short\naaaaaaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbbb\nz\n",
	             "[short]!![z]");
	/* Telnet sequences inside the skipped part are still parsed, so an option
	 * byte that happens to be '\n' does not end the skipping early. */
	CHECK_SPLITS("aaaaaaaaaaaaaaaaaaaa\xff\xfd\nbbb\nok\n", "![ok]");
}

/* ---- binary bytes ---- */

static void test_nul_and_high_bytes(void **state)
{
	(void)state;
	CHECK_SPLITS("a\0b\n", "[a\0b]");
	CHECK_SPLITS("\0\n", "[\0]");
	CHECK_SPLITS("\x80\x9b\xc2\x9b\xd0\xbf\xfe\n", "[\x80\x9b\xc2\x9b\xd0\xbf\xfe]");
	CHECK_SPLITS("\x01\x1b[31m\x7f\n", "[\x01\x1b[31m\x7f]");

	/* Every byte value except 0xFF and '\n' passes through unchanged. */
	char in[300], want[300];
	size_t n = 0, w = 0;
	want[w++] = '[';
	for (int c = 0; c < 255; c++) {
		if (c == '\n')
			continue;
		if (c == '\r') /* keep '\r' away from the end */
			continue;
		in[n++] = (char)c;
		want[w++] = (char)c;
		if (n % 15 == 0) { /* lines of 15 bytes fit MAX */
			in[n++] = '\n';
			want[w++] = ']';
			want[w++] = '[';
		}
	}
	in[n++] = '\n';
	want[w++] = ']';
	check_all_splits_max(in, n, want, w, MAX);
	check_all_splits_max("a\rb\n", 4, "[a\rb]", 5, MAX);
}

/* ---- telnet ---- */

/* Byte strings are split where a hex escape must end ("\xff" "b"), which
 * clang-format would put on lines of their own. */
/* clang-format off */

static void test_telnet_option(void **state)
{
	(void)state;
	CHECK_SPLITS("\xff\xfd\x18hi\n", "[hi]");               /* IAC DO TTYPE */
	CHECK_SPLITS("h\xff\xfb\x1fi\n", "[hi]");               /* IAC WILL NAWS */
	CHECK_SPLITS("hi\xff\xfc\x01\n", "[hi]");               /* IAC WONT ECHO */
	CHECK_SPLITS("\xff\xfe\x22hi\n", "[hi]");               /* IAC DONT LINEMODE */
	CHECK_SPLITS("\xff\xfd\x18\xff\xfb\x1f\xff\xfd\x01ok\r\n", "[ok]");
	/* The option byte is not data even when it is '\n' or '\r'. */
	CHECK_SPLITS("\xff\xfd\nok\n", "[ok]");
	CHECK_SPLITS("ok\xff\xfb\r\n", "[ok]");
	/* Option negotiation alone is no line. */
	CHECK_SPLITS("\xff\xfd\x18\xff\xfb\x1f", "");
}

static void test_telnet_commands(void **state)
{
	(void)state;
	CHECK_SPLITS("\xff\xf4x\n", "[x]");                     /* IAC IP */
	CHECK_SPLITS("a\xff\xf1" "b\n", "[ab]");                /* IAC NOP */
	CHECK_SPLITS("ab\xff\xf9\n", "[ab]");                   /* IAC GA */
	CHECK_SPLITS("\xff\xf4\xff\xfd\x06\n", "[]");           /* ^C from telnet: IP, DO TM */
}

static void test_telnet_iac_iac(void **state)
{
	(void)state;
	CHECK_SPLITS("a\xff\xff" "b\n", "[a\xff" "b]");
	CHECK_SPLITS("\xff\xff\n", "[\xff]");
	CHECK_SPLITS("\xff\xff\xff\xff\n", "[\xff\xff]");
	CHECK_SPLITS("\xff\xff\xff\xfd\x18x\n", "[\xffx]");
	/* 16 literal 0xFF bytes make a line of exactly MAX. */
	CHECK_SPLITS("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	             "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\n",
	             "[\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff]");
}

static void test_telnet_subnegotiation(void **state)
{
	(void)state;
	CHECK_SPLITS("\xff\xfa\x18\x01\xff\xf0ok\n", "[ok]");
	CHECK_SPLITS("o\xff\xfa\x18\x01\xff\xf0k\n", "[ok]");
	/* NAWS with a '\n' and an escaped IAC IAC inside: all of it is skipped. */
	CHECK_SPLITS("\xff\xfa\x1f\x00\n\xff\xff\x00\x18\xff\xf0ok\n", "[ok]");
	/* TTYPE IS "xterm". */
	CHECK_SPLITS("\xff\xfa\x18\x00xterm\xff\xf0hi\r\n", "[hi]");
	/* Mixed with lines on both sides. */
	CHECK_SPLITS("a\n\xff\xfa\x18\x01\xff\xf0" "b\n", "[a][b]");
}

static void test_telnet_mixed(void **state)
{
	(void)state;
	CHECK_SPLITS("\xff\xfd\x18\xff\xfb\x1f\xff\xfa\x18\x01\xff\xf0NICK \xff\xff" "bob\r\n"
	             "\xff\xf4MSG hi\n",
	             "[NICK \xff" "bob][MSG hi]");
}
/* clang-format on */

static void test_pending(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;

	(void)state;
	line_decoder_init(&d, MAX);
	assert_false(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "abc", 3, &used, &line, &len), LINE_NEED_MORE);
	assert_true(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\n", 1, &used, &line, &len), LINE_FRAME);
	assert_false(line_decoder_pending(&d));
	/* A whole line in one read leaves nothing behind. */
	assert_int_equal(line_decode(&d, "xy\n", 3, &used, &line, &len), LINE_FRAME);
	assert_false(line_decoder_pending(&d));
	/* Inside a telnet sequence. */
	assert_int_equal(line_decode(&d, "\xff", 1, &used, &line, &len), LINE_NEED_MORE);
	assert_true(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\xfd", 1, &used, &line, &len), LINE_NEED_MORE);
	assert_true(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\x18", 1, &used, &line, &len), LINE_NEED_MORE);
	assert_false(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\xff\xfa\x18", 3, &used, &line, &len), LINE_NEED_MORE);
	assert_true(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\x01\xff\xf0", 3, &used, &line, &len), LINE_NEED_MORE);
	assert_false(line_decoder_pending(&d));
	/* A lone '\r' is part of a line. */
	assert_int_equal(line_decode(&d, "\r", 1, &used, &line, &len), LINE_NEED_MORE);
	assert_true(line_decoder_pending(&d));
	assert_int_equal(line_decode(&d, "\n", 1, &used, &line, &len), LINE_FRAME);
	assert_false(line_decoder_pending(&d));
	line_decoder_free(&d);
}

static void test_free_twice_and_reuse(void **state)
{
	struct line_decoder d;
	struct transcript t;

	(void)state;
	memset(&t, 0, sizeof t);
	line_decoder_init(&d, MAX);
	feed(&d, "abc", 3, &t);
	line_decoder_free(&d);
	line_decoder_free(&d);
	line_decoder_init(&d, MAX);
	feed(&d, "def\n", 4, &t);
	assert_transcript(&t, "[def]", 5, "reuse", 0);
	line_decoder_free(&d);
}

static void test_large_max(void **state)
{
	/* A line longer than the 256-byte first allocation, split at every byte. */
	char in[1200], want[1200];
	size_t n = 0, w = 0;

	(void)state;
	want[w++] = '[';
	for (int i = 0; i < 1000; i++) {
		in[n++] = (char)('a' + i % 26);
		want[w++] = (char)('a' + i % 26);
	}
	in[n++] = '\r';
	in[n++] = '\n';
	want[w++] = ']';
	check_all_splits_max(in, n, want, w, 1000);
	check_all_splits_max(in, n, "!", 1, 999);
}

/* ---- telnet: what drops a line, and the answers (RFC 854, 860) ---- */

/* clang-format off */
static void test_telnet_interrupt_drops_line(void **state)
{
	(void)state;
	/* Ctrl-C in telnet's character mode: the typed part never becomes a command. */
	CHECK_SPLITS("ECHO x\xff\xf4\xff\xfd\x06" "ECHO y\r\n", "[ECHO y]");
	CHECK_SPLITS("ECHO x\xff\xf3\xff\xfd\x06" "ECHO y\r\n", "[ECHO y]"); /* BRK: Ctrl-\ */
	CHECK_SPLITS("ECHO x\xff\xf5" "ECHO y\n", "[ECHO y]");               /* AO */
	CHECK_SPLITS("ECHO x\xff\xf8" "ECHO y\n", "[ECHO y]");               /* EL */
	CHECK_SPLITS("a\nb\xff\xf4\nc\n", "[a][][c]");
	/* EC (erase character), NOP, DM, GA change nothing. */
	CHECK_SPLITS("ab\xff\xf7" "c\n", "[abc]");
	CHECK_SPLITS("ab\xff\xf2" "c\n", "[abc]");
	/* Only as a command: a 0xF4 data byte or IAC IAC then 0xF4 is data. */
	CHECK_SPLITS("a\xf4\n", "[a\xf4]");
	CHECK_SPLITS("a\xff\xff\xf4\n", "[a\xff\xf4]");
	/* Inside a subnegotiation it is no command either. */
	CHECK_SPLITS("ab\xff\xfa\x18\xf4\xff\xf0" "c\n", "[abc]");
}

static void test_telnet_interrupt_ends_too_long(void **state)
{
	(void)state;
	/* The line that was too long is given up: what follows is a new line. */
	CHECK_SPLITS("0123456789abcdefghij\xff\xf4ok\n", "![ok]");
	CHECK_SPLITS("0123456789abcdefghij\xff\xf4\n", "![]");
}
/* clang-format on */

/* Decodes in[0..n) split in two at every cut (and whole), taking the answers after
 * every call as conn_feed does: the answers must be `want` whatever the cut. */
static void check_replies(const char *in, size_t n, const char *want, size_t wlen)
{
	for (size_t cut = 0; cut <= n; cut++) {
		struct line_decoder d;
		unsigned char got[512];
		size_t glen = 0;

		line_decoder_init(&d, MAX);
		for (int part = 0; part < 2; part++) {
			const char *p = part ? in + cut : in;
			size_t left = part ? n - cut : cut;
			do {
				const char *line;
				size_t used, len;
				unsigned char *r;
				line_decode(&d, p, left, &used, &line, &len);
				size_t rn = line_decoder_take_reply(&d, &r);
				assert_true(rn == 0 ? r == NULL : r != NULL);
				assert_true(glen + rn <= sizeof got);
				if (rn)
					memcpy(got + glen, r, rn);
				glen += rn;
				free(r);
				p += used;
				left -= used;
			} while (left > 0);
		}
		if (glen != wlen || memcmp(got, want, wlen) != 0)
			fail_msg("cut %zu: %zu bytes of answers, want %zu", cut, glen, wlen);
		line_decoder_free(&d);
	}
}

#define CHECK_REPLIES(in, want) check_replies(in, sizeof(in) - 1, want, sizeof(want) - 1)

/* clang-format off */
static void test_telnet_answers(void **state)
{
	(void)state;
	/* RFC 860: DO TIMING-MARK is answered WILL TIMING-MARK, every time. */
	CHECK_REPLIES("\xff\xf4\xff\xfd\x06", "\xff\xfb\x06");
	CHECK_REPLIES("\xff\xfd\x06x\n\xff\xfd\x06", "\xff\xfb\x06\xff\xfb\x06");
	/* Everything else is refused: DO x -> WONT x, WILL x -> DONT x. */
	CHECK_REPLIES("\xff\xfd\x03", "\xff\xfc\x03");             /* DO SGA */
	CHECK_REPLIES("\xff\xfd\x01", "\xff\xfc\x01");             /* DO ECHO */
	CHECK_REPLIES("\xff\xfb\x1f", "\xff\xfe\x1f");             /* WILL NAWS */
	CHECK_REPLIES("\xff\xfb\x06", "\xff\xfe\x06");             /* WILL TIMING-MARK */
	/* A refusal needs no answer (no loops, RFC 854). */
	CHECK_REPLIES("\xff\xfc\x01\xff\xfe\x03\xff\xfc\x06", "");
	/* What inetutils telnet sends at connect when it negotiates (port "-4000"). */
	CHECK_REPLIES("\xff\xfd&\xff\xfb&\xff\xfd\x03\xff\xfb\x18\xff\xfb\x1f\xff\xfb \xff\xfb!"
	              "\xff\xfb\"\xff\xfb'\xff\xfd\x05",
	              "\xff\xfc&\xff\xfe&\xff\xfc\x03\xff\xfe\x18\xff\xfe\x1f\xff\xfe \xff\xfe!"
	              "\xff\xfe\"\xff\xfe'\xff\xfc\x05");
	/* Are you there? */
	CHECK_REPLIES("\xff\xf6", LINE_AYT_ANSWER);
	/* Data, subnegotiations and other commands get nothing. */
	CHECK_REPLIES("ECHO \xff\xff\n\xff\xfa\x18\x00xterm\xff\xf0\xff\xf1\xff\xf4\xff\xf3", "");
	CHECK_REPLIES("\xff\xfa\x18\xff\xfd\x06\xff\xf0", ""); /* DO inside SB is no DO */
	CHECK_REPLIES("\xfd\x06", "");                      /* no IAC: data */
}
/* clang-format on */

/* The answer to a DO TIMING-MARK comes with the call that decodes past it, after the
 * lines before it and before the line after it: conn_feed sends it ahead of that
 * line's reply, so it is "after the data before it" (RFC 860). */
static void test_telnet_answer_order(void **state)
{
	struct line_decoder d;
	const char *line, *in = "ECHO a\n\xff\xfd\x06"
				"ECHO b\n";
	size_t used, len, n = strlen(in);
	unsigned char *r;

	(void)state;
	line_decoder_init(&d, MAX);
	assert_int_equal(line_decode(&d, in, n, &used, &line, &len), LINE_FRAME);
	assert_memory_equal(line, "ECHO a", 6);
	assert_int_equal(line_decoder_take_reply(&d, &r), 0);
	assert_null(r);
	assert_int_equal(line_decode(&d, in + used, n - used, &used, &line, &len), LINE_FRAME);
	assert_memory_equal(line, "ECHO b", 6);
	assert_int_equal(line_decoder_take_reply(&d, &r), 3);
	assert_memory_equal(r, "\xff\xfb\x06", 3);
	free(r);
	line_decoder_free(&d);
}

/* A flood of negotiation gets at most LINE_REPLY_MAX bytes of answers per take, and
 * untaken answers are freed with the decoder. */
static void test_telnet_answer_cap(void **state)
{
	enum { N = LINE_REPLY_MAX / 3 + 100 };
	unsigned char *in = malloc(3 * N), *r;
	struct line_decoder d;
	const char *line;
	size_t used, len;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < N; i++)
		memcpy(in + 3 * i, "\xff\xfd\x18", 3);
	line_decoder_init(&d, MAX);
	assert_int_equal(line_decode(&d, in, 3 * N, &used, &line, &len), LINE_NEED_MORE);
	size_t rn = line_decoder_take_reply(&d, &r);
	assert_true(rn <= LINE_REPLY_MAX && rn >= LINE_REPLY_MAX - 3);
	assert_int_equal(rn % 3, 0);
	assert_memory_equal(r, "\xff\xfc\x18", 3);
	free(r);
	assert_int_equal(line_decode(&d, in, 30, &used, &line, &len), LINE_NEED_MORE);
	line_decoder_free(&d); /* ten answers never taken: freed here (ASan) */
	free(in);
}

/* ---- idle memory: buffers only while a line is kept across calls ---- */

static void test_lazy_buffers(void **state)
{
	struct line_decoder d;
	const char *line;
	size_t used, len;

	(void)state;
	line_decoder_init(&d, MAX);
	/* A whole line in one read: in place, no buffer. */
	assert_int_equal(line_decode(&d, "ECHO hi\r\n", 9, &used, &line, &len), LINE_FRAME);
	assert_null(d.buf);
	/* Split over two reads: kept while needed, gone after a trim. */
	assert_int_equal(line_decode(&d, "EC", 2, &used, &line, &len), LINE_NEED_MORE);
	assert_non_null(d.buf);
	line_decoder_trim(&d);
	assert_non_null(d.buf); /* still holds "EC" */
	assert_int_equal(line_decode(&d, "HO\n", 3, &used, &line, &len), LINE_FRAME);
	assert_memory_equal(line, "ECHO", 4);
	line_decoder_trim(&d);
	assert_null(d.buf);
	assert_null(d.reply);
	assert_false(line_decoder_pending(&d));
	line_decoder_free(&d);
	assert_true(sizeof d <= 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_line),
		cmocka_unit_test(test_need_more),
		cmocka_unit_test(test_split_every_position),
		cmocka_unit_test(test_crlf_and_lf),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_many_lines_one_buffer),
		cmocka_unit_test(test_empty_line),
		cmocka_unit_test(test_exactly_max),
		cmocka_unit_test(test_max_plus_one),
		cmocka_unit_test(test_too_long_once_same_buffer),
		cmocka_unit_test(test_too_long_small_pieces),
		cmocka_unit_test(test_too_long_all_splits),
		cmocka_unit_test(test_nul_and_high_bytes),
		cmocka_unit_test(test_telnet_option),
		cmocka_unit_test(test_telnet_commands),
		cmocka_unit_test(test_telnet_iac_iac),
		cmocka_unit_test(test_telnet_subnegotiation),
		cmocka_unit_test(test_telnet_mixed),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_free_twice_and_reuse),
		cmocka_unit_test(test_large_max),
		cmocka_unit_test(test_telnet_interrupt_drops_line),
		cmocka_unit_test(test_telnet_interrupt_ends_too_long),
		cmocka_unit_test(test_telnet_answers),
		cmocka_unit_test(test_telnet_answer_order),
		cmocka_unit_test(test_telnet_answer_cap),
		cmocka_unit_test(test_lazy_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
