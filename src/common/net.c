/* net.c - thin, explicit wrappers over the socket calls bottle needs. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_port(const char *s, int *port)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int net_split_hostport(const char *spec, int default_port, char *host, size_t hostsz, int *port,
                       char err[NET_ERR_LEN])
{
	const char *h = spec, *colon;
	size_t hlen;

	*port = default_port;
	if (spec[0] == '[') { /* [v6] or [v6]:port */
		const char *close = strchr(spec, ']');
		if (!close) {
			snprintf(err, NET_ERR_LEN, "%s: missing ']'", spec);
			return -1;
		}
		h = spec + 1;
		hlen = (size_t)(close - h);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (!colon && close[1] != '\0') {
			snprintf(err, NET_ERR_LEN, "%s: junk after ']'", spec);
			return -1;
		}
	} else {
		colon = strrchr(spec, ':');
		if (colon && strchr(spec, ':') != colon) /* bare IPv6 without a port */
			colon = NULL;
		hlen = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (hlen == 0 || hlen >= hostsz) {
		snprintf(err, NET_ERR_LEN, "%s: bad host", spec);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon && parse_port(colon + 1, port) < 0) {
		snprintf(err, NET_ERR_LEN, "%s: bad port", spec);
		return -1;
	}
	return 0;
}

/* One number of a keepalive spec, 1..max, ended by sep; *s moves past sep. */
static int parse_keepalive_field(const char **s, char sep, long max, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(*s, &end, 10);
	if (errno || end == *s || *end != sep || v < 1 || v > max)
		return -1;
	*out = (int)v;
	*s = sep ? end + 1 : end;
	return 0;
}

int net_parse_keepalive(const char *spec, struct net_keepalive *ka)
{
	struct net_keepalive k;
	const char *s = spec;

	if (parse_keepalive_field(&s, ',', 32767, &k.idle) < 0 ||
	    parse_keepalive_field(&s, ',', 32767, &k.interval) < 0 ||
	    parse_keepalive_field(&s, '\0', 127, &k.count) < 0)
		return -1;
	*ka = k;
	return 0;
}

static struct addrinfo *resolve(const char *host, int port, int flags, char err[NET_ERR_LEN])
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = flags | AI_NUMERICSERV,
	};
	struct addrinfo *res;
	char portstr[8];

	snprintf(portstr, sizeof portstr, "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, NET_ERR_LEN, "%s: %s", host, gai_strerror(rc));
		errno = EINVAL;
		return NULL;
	}
	return res;
}

static void addr_err(char err[NET_ERR_LEN], const char *what, const char *host, int port)
{
	int saved = errno;
	snprintf(err, NET_ERR_LEN, strchr(host, ':') ? "%s [%s]:%d: %s" : "%s %s:%d: %s", what,
	         host, port, strerror(saved));
	errno = saved;
}

int net_listen(const char *host, int port, int backlog, char err[NET_ERR_LEN])
{
	struct addrinfo *res = resolve(host, port, AI_PASSIVE, err);
	if (!res)
		return -1;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0) {
		addr_err(err, "cannot create socket for", host, port);
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6) /* [::]:port means IPv6 only; add 0.0.0.0 for v4 */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		addr_err(err, "cannot listen on", host, port);
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	freeaddrinfo(res);
	return -1;
}

int net_accept(int lfd, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof *peer;
	return accept4(lfd, (struct sockaddr *)peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* Connects fd to addr within timeout_ms; 0 or -1 with errno. */
static int connect_within(int fd, const struct addrinfo *ai, int timeout_ms)
{
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int rc = poll(&pfd, 1, timeout_ms);
	if (rc == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	if (soerr) {
		errno = soerr;
		return -1;
	}
	return 0;
}

int net_connect(const char *host, int port, int timeout_ms, char err[NET_ERR_LEN])
{
	struct addrinfo *res = resolve(host, port, 0, err), *ai;
	int fd = -1;

	if (!res)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect_within(fd, ai, timeout_ms) == 0)
			break;
		addr_err(err, "cannot connect to", host, port);
		int saved = errno;
		close(fd);
		errno = saved;
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		net_set_nonblock(fd, false);
	return fd;
}

int net_set_nonblock(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
}

int net_set_nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int net_set_keepalive(int fd, const struct net_keepalive *ka)
{
	int one = 1;
	unsigned int user_timeout_ms = (unsigned int)(ka->idle + ka->interval * ka->count) * 1000u;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka->idle, sizeof ka->idle) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka->interval, sizeof ka->interval) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &ka->count, sizeof ka->count) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
	               sizeof user_timeout_ms) < 0)
		return -1;
	return 0;
}

const char *net_addr_text(const struct sockaddr_storage *sa, char out[NET_ADDR_LEN])
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		snprintf(out, NET_ADDR_LEN, "%s:%d", ip, ntohs(in->sin_port));
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		snprintf(out, NET_ADDR_LEN, "[%s]:%d", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, NET_ADDR_LEN, "?");
	}
	return out;
}

const char *net_local_text(int fd, char out[NET_ADDR_LEN])
{
	/* Initialised because the analyzer cannot see getsockname fill it in. */
	struct sockaddr_storage sa = { .ss_family = AF_UNSPEC };
	socklen_t len = sizeof sa;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		snprintf(out, NET_ADDR_LEN, "?");
		return out;
	}
	return net_addr_text(&sa, out);
}
