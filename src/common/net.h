/* net.h - sockets: address parsing, listen, accept, connect, options.
 * Functions return 0 or a descriptor on success, -1 with errno set on failure;
 * those that can fail for several reasons also fill a caller's error text. */
#ifndef BOTTLE_NET_H
#define BOTTLE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

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
/* Blocking connect with a timeout in ms (the client uses it before its loop starts). */
int net_connect(const char *host, int port, int timeout_ms, char err[NET_ERR_LEN]);

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
