/* Unit tests for the client's connection: address rule, roles and tags,
 * frames in and out (over a socketpair instead of a server). Parsing and
 * rendering messages: test_message.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"
#include "xmalloc.h"

/* ---- helpers ---- */

/* A client whose socket is one end of a socketpair; *peer gets the other. */
static void fake_client(struct client *c, int *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(c, 0, sizeof *c);
	c->fd = sv[0];
	*peer = sv[1];
	tpkt_decoder_init(&c->dec, TPKT_MAX_LEN);
	outq_init(&c->out);
	c->rbuf = xmalloc(CLIENT_RBUF);
}

/* Writes one TPKT frame holding text to fd. */
static void put_frame(int fd, const char *text, size_t len)
{
	unsigned char hdr[TPKT_HDR_LEN];

	tpkt_encode_header(hdr, len);
	assert_int_equal(write(fd, hdr, sizeof hdr), sizeof hdr);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
}
#define PUT(fd, lit) put_frame((fd), (lit), sizeof(lit) - 1)

/* Reads from the socket and decodes the next message, which must exist. */
static void next_msg(struct client *c, struct client_msg *m)
{
	enum client_next st = client_next(c, m);
	if (st == CLIENT_NEXT_NONE) {
		assert_int_equal(client_read(c), 1);
		st = client_next(c, m);
	}
	assert_int_equal(st, CLIENT_NEXT_MSG);
}

static void assert_span(const char *p, size_t len, const char *want)
{
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

/* ---- address ---- */

static void test_addr_pick(void **state)
{
	(void)state;
	assert_string_equal(client_addr_pick("h:1", "e:2"), "h:1");
	assert_string_equal(client_addr_pick(NULL, "e:2"), "e:2");
	assert_string_equal(client_addr_pick(NULL, ""), BOTTLE_DEFAULT_ADDR);
	assert_string_equal(client_addr_pick(NULL, NULL), BOTTLE_DEFAULT_ADDR);
	assert_string_equal(client_addr_pick("[::1]:4000", NULL), "[::1]:4000");
}

/* ---- the connection ---- */

static void test_roles_and_tags(void **state)
{
	struct client c;
	struct client_msg m;
	int peer;
	(void)state;

	fake_client(&c, &peer);
	assert_int_equal(client_send(&c, "WHO", NULL, 0, 7), 0);
	assert_int_equal(client_send(&c, "SAY", "hi", 2, 8), 0);
	assert_int_equal(client_owed(&c), 2);
	PUT(peer, "OK bottled 0.1.0 ready; type HELP for commands; you are Guest12");
	PUT(peer, "OK 1 Guest12");
	PUT(peer, "MSG bob early"); /* events may come between replies */
	PUT(peer, "ERR message too long");
	PUT(peer, "OK server shutting down"); /* nobody asked: a notice */

	next_msg(&c, &m);
	assert_int_equal(m.role, CLIENT_GREETING);
	const char *nick;
	size_t nick_len;
	assert_true(client_greeting_nick(&m, &nick, &nick_len));
	assert_span(nick, nick_len, "Guest12");
	next_msg(&c, &m);
	assert_int_equal(m.role, CLIENT_REPLY);
	assert_int_equal(m.tag, 7);
	next_msg(&c, &m);
	assert_int_equal(m.role, CLIENT_EVENT);
	next_msg(&c, &m);
	assert_int_equal(m.role, CLIENT_REPLY);
	assert_int_equal(m.kind, CLIENT_ERR);
	assert_int_equal(m.tag, 8);
	assert_int_equal(client_owed(&c), 0);
	next_msg(&c, &m);
	assert_int_equal(m.role, CLIENT_NOTICE);
	close(peer);
	assert_int_equal(client_next(&c, &m), CLIENT_NEXT_NONE);
	assert_int_equal(client_read(&c), 0); /* EOF */
	client_close(&c);
}

static void test_send_frames(void **state)
{
	struct client c;
	unsigned char got[64];
	int peer;
	(void)state;

	fake_client(&c, &peer);
	client_send(&c, "ECHO", "a\nb", 3, 0);
	client_send(&c, "TIME", NULL, 0, 0);
	assert_true(client_wants_write(&c));
	assert_int_equal(client_flush(&c), 0);
	assert_false(client_wants_write(&c));
	static const unsigned char want[] = "\x03\x00\x00\x0c"
					    "ECHO a\nb"
					    "\x03\x00\x00\x08"
					    "TIME";
	assert_int_equal(read(peer, got, sizeof got), sizeof want - 1);
	assert_memory_equal(got, want, sizeof want - 1);
	close(peer);
	client_close(&c);
}

static void test_send_too_long(void **state)
{
	struct client c;
	int peer;
	size_t max = TPKT_MAX_PAYLOAD - 4; /* "SAY " + text fills a frame */
	char *text = xcalloc(1, max + 1);
	(void)state;

	fake_client(&c, &peer);
	assert_int_equal(client_send(&c, "SAY", text, max, 0), 0);
	assert_int_equal(client_send(&c, "SAY", text, max + 1, 0), -1);
	assert_int_equal(client_owed(&c), 1);
	free(text);
	close(peer);
	client_close(&c);
}

/* A frame split across reads, and two frames in one read. */
static void test_split_and_merged(void **state)
{
	struct client c;
	struct client_msg m;
	int peer;
	(void)state;

	fake_client(&c, &peer);
	c.greeted = true;
	assert_int_equal(write(peer,
	                       "\x03\x00\x00\x0c"
	                       "JOIN",
	                       8),
	                 8);
	assert_int_equal(client_read(&c), 1);
	assert_int_equal(client_next(&c, &m), CLIENT_NEXT_NONE);
	assert_int_equal(write(peer,
	                       " bob"
	                       "\x03\x00\x00\x0c"
	                       "JOIN amy",
	                       16),
	                 16);
	next_msg(&c, &m);
	assert_span(m.nick, m.nick_len, "bob");
	next_msg(&c, &m);
	assert_span(m.nick, m.nick_len, "amy");
	close(peer);
	client_close(&c);
}

static void test_bad_frame(void **state)
{
	struct client c;
	struct client_msg m;
	int peer;
	(void)state;

	fake_client(&c, &peer);
	assert_int_equal(write(peer, "OK hello\r\n", 10), 10); /* line framing, not TPKT */
	assert_int_equal(client_read(&c), 1);
	assert_int_equal(client_next(&c, &m), CLIENT_NEXT_BROKEN);
	assert_non_null(strstr(c.error, "TPKT"));
	close(peer);
	client_close(&c);
}

static void test_say_max(void **state)
{
	(void)state;
	/* The longest SAY's MSG event, with the longest nick, fits a frame. */
	assert_true(sizeof "MSG " - 1 + NICK_MAX_BYTES + 1 + WIRE_SAY_MAX <= TPKT_MAX_PAYLOAD);
}

int main(void)
{
	/* One test a line, as in the other test programs. */
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_pick),
		cmocka_unit_test(test_roles_and_tags),
		cmocka_unit_test(test_send_frames),
		cmocka_unit_test(test_send_too_long),
		cmocka_unit_test(test_split_and_merged),
		cmocka_unit_test(test_bad_frame),
		cmocka_unit_test(test_say_max),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
