/* Unit tests for link.c against a listener on 127.0.0.1: the backoff, the
 * up event, a break before the link is kept up (failed), a kept-up break
 * with no retry window left (down, then gave_up), link_retry, and the
 * server's last word told as the reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link.h"

struct seen {
	int up, down, lost, gave_up, failed;
	char why[NET_ERR_LEN];
};

static void on_up(void *ctx) { ((struct seen *)ctx)->up++; }

static void on_down(void *ctx, const char *why, bool lost)
{
	struct seen *s = ctx;
	s->down++;
	s->lost += lost;
	snprintf(s->why, sizeof s->why, "%s", why);
}

static void on_gave_up(void *ctx, const char *why)
{
	struct seen *s = ctx;
	s->gave_up++;
	snprintf(s->why, sizeof s->why, "%s", why);
}

static void on_failed(void *ctx, const char *why)
{
	struct seen *s = ctx;
	s->failed++;
	snprintf(s->why, sizeof s->why, "%s", why);
}

static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void open_link(struct link *l, struct seen *s, int port, int retry_for_s)
{
	struct link_config cfg = {
		.host = "127.0.0.1", .port = port, .timeout_s = 5, .retry_for_s = retry_for_s
	};
	struct link_events ev = {
		.up = on_up, .down = on_down, .gave_up = on_gave_up, .failed = on_failed, .ctx = s
	};

	memset(s, 0, sizeof *s);
	link_init(l, &cfg, &ev);
	assert_int_equal(l->st, LINK_OFF);
	link_open(l);
}

/* Polls and steps until the link is up (a few seconds at most). */
static void wait_up(struct link *l)
{
	for (int i = 0; i < 100 && l->st != LINK_UP; i++) {
		struct pollfd p = { .fd = -1 };
		p.fd = link_fd(l, &p.events);
		int ms = link_timeout_ms(l);
		int rc = poll(&p, 1, ms < 0 || ms > 100 ? 100 : ms);
		link_step(l, (short)(rc > 0 ? p.revents : 0));
	}
	assert_int_equal(l->st, LINK_UP);
}

/* A link that is up and kept up, to a listener of its own (*lfd). */
static void kept_up_link(struct link *l, struct seen *s, int *lfd, int retry_for_s)
{
	int port;

	*lfd = listener(&port);
	open_link(l, s, port, retry_for_s);
	wait_up(l);
	link_keep_up(l, true);
}

static void backoff_doubles_up_to_five_seconds(void **state)
{
	(void)state;
	assert_int_equal(link_backoff_ms(-1), 250);
	assert_int_equal(link_backoff_ms(0), 250);
	assert_int_equal(link_backoff_ms(1), 500);
	assert_int_equal(link_backoff_ms(4), 4000);
	assert_int_equal(link_backoff_ms(5), 5000);
	assert_int_equal(link_backoff_ms(1000), 5000);
}

static void break_before_keep_up_fails(void **state)
{
	struct link l;
	struct seen s;
	int port, lfd = listener(&port);
	(void)state;

	open_link(&l, &s, port, 30);
	wait_up(&l);
	assert_int_equal(s.up, 1);
	assert_non_null(link_client(&l));
	close(accept(lfd, NULL, NULL)); /* the server closes at once */
	assert_false(link_read(&l));
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.down, 0);
	assert_string_equal(s.why, "connection closed by server");
	assert_int_equal(l.st, LINK_OFF);
	assert_null(link_client(&l));
	link_close(&l); /* twice is fine */
	close(lfd);
}

static void kept_up_break_without_window_gives_up(void **state)
{
	struct link l;
	struct seen s;
	int lfd;
	(void)state;

	kept_up_link(&l, &s, &lfd, 0);
	link_explain(&l, "server: shutting down");
	link_break(&l, "reset");
	assert_int_equal(s.down, 1);
	assert_int_equal(s.lost, 1);
	assert_int_equal(s.gave_up, 1);
	assert_string_equal(s.why, "server: shutting down"); /* the server's word wins */
	assert_int_equal(l.st, LINK_WAITING);
	assert_true(link_recovering(&l));
	assert_int_equal(link_timeout_ms(&l), -1);

	link_retry(&l);
	wait_up(&l);
	assert_int_equal(s.up, 2);
	link_confirmed(&l);
	assert_false(link_recovering(&l));
	link_quit(&l);
	assert_int_equal(l.st, LINK_OFF);
	close(lfd);
}

static void kept_up_break_backs_off(void **state)
{
	struct link l;
	struct seen s;
	int lfd;
	(void)state;

	kept_up_link(&l, &s, &lfd, 30);
	link_break(&l, "reset");
	assert_int_equal(s.lost, 1);
	assert_int_equal(s.gave_up, 0);
	assert_string_equal(s.why, "reset");
	assert_int_equal(l.st, LINK_BACKOFF);
	int ms = link_timeout_ms(&l);
	assert_true(ms > 0 && ms <= 250);
	wait_up(&l); /* dials again when the backoff is over */
	assert_int_equal(s.up, 2);
	link_break(&l, "reset again"); /* the same window: not lost again */
	assert_int_equal(s.down, 2);
	assert_int_equal(s.lost, 1);
	assert_true(link_timeout_ms(&l) <= 500);
	link_close(&l);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_doubles_up_to_five_seconds),
		cmocka_unit_test(break_before_keep_up_fails),
		cmocka_unit_test(kept_up_break_without_window_gives_up),
		cmocka_unit_test(kept_up_break_backs_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
