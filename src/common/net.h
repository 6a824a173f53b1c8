/* net.h - sockets: address parsing, listen, accept, connect, options.
 * Functions return 0 or a descriptor on success, -1 with errno set on failure;
 * those that can fail for several reasons also fill a caller's error text. */
#ifndef BOTTLE_NET_H
#define BOTTLE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct addrinfo;

#define NET_ERR_LEN 256
#define NET_ADDR_LEN 64 /* "[ipv6]:port" and NUL */

struct net_keepalive {
	int idle;     /* seconds of silence before the first probe */
	int interval; /* seconds between probes */
	int count;    /* unanswered probes before the peer is dead */
};

/* Splits "HOST:PORT", "[V6]:PORT", "HOST" (port = default_port) into host and port.
 * 0 on success, -1 with err filled. */
int net_split_hostport(const char *spec, int default_port, char *host, size_t hostsz, int *port,
                       char err[NET_ERR_LEN]);
/* Parses "IDLE,INTERVAL,COUNT" (positive integers). */
int net_parse_keepalive(const char *spec, struct net_keepalive *ka);

/* Non-blocking, close-on-exec, SO_REUSEADDR listener on host:port. */
int net_listen(const char *host, int port, int backlog, char err[NET_ERR_LEN]);
/* Accepts one connection as non-blocking, close-on-exec; -1/EAGAIN when none is waiting. */
int net_accept(int lfd, struct sockaddr_storage *peer);
/* Blocking connect, each address of host tried for at most timeout_ms; the
 * socket comes back blocking. -1 with errno, err says "cannot connect to
 * HOST:PORT: why" whatever failed (the name lookup included). */
int net_connect(const char *host, int port, int timeout_ms, char err[NET_ERR_LEN]);

/* Connecting without blocking, for a loop that must go on meanwhile: the
 * addresses of host are tried one after the other; the caller polls fd for
 * POLLOUT and bounds each attempt with its own timer. Name lookup itself
 * (getaddrinfo) blocks: numeric addresses and /etc/hosts answer at once. */
struct net_dial {
	struct addrinfo *res, *next; /* all addresses; those not tried yet */
	int fd;                      /* the attempt in progress, or -1 */
	char host[256];
	int port;
	int err;               /* the last attempt's errno */
	char why[NET_ERR_LEN]; /* ... and its text */
};

/* 1: connected at once, 0: in progress (poll d->fd), -1: failed, err says
 * "cannot connect to HOST:PORT: why". */
int net_dial_start(struct net_dial *d, const char *host, int port, char err[NET_ERR_LEN]);
/* After POLLOUT/POLLERR on d->fd, or with timed_out when the attempt took too
 * long: 1 connected, 0 the next address is in progress, -1 all failed (err). */
int net_dial_step(struct net_dial *d, bool timed_out, char err[NET_ERR_LEN]);
/* Hands out the connected socket (after 1, still non-blocking) and frees the rest. */
int net_dial_take(struct net_dial *d);
/* Stops an attempt in progress; safe on a finished dial, or one with fd -1. */
void net_dial_abort(struct net_dial *d);

int net_set_nonblock(int fd, bool on);
int net_set_nodelay(int fd);
/* SO_KEEPALIVE with the given timing, and TCP_USER_TIMEOUT of the same window so a
 * dead link is also noticed while data is unacknowledged. */
int net_set_keepalive(int fd, const struct net_keepalive *ka);

/* "1.2.3.4:5" or "[::1]:5" for a socket address, into out[NET_ADDR_LEN]. */
const char *net_addr_text(const struct sockaddr_storage *sa, char out[NET_ADDR_LEN]);
/* The locally bound address of fd, as text. */
const char *net_local_text(int fd, char out[NET_ADDR_LEN]);

#endif
