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

/* The addresses of host:port, or NULL with the resolver's error in *rc. */
static struct addrinfo *resolve(const char *host, int port, int flags, int *rc)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = flags | AI_NUMERICSERV,
	};
	struct addrinfo *res;
	char portstr[8];

	snprintf(portstr, sizeof portstr, "%d", port);
	*rc = getaddrinfo(host, portstr, &hints, &res);
	if (*rc != 0) {
		errno = EINVAL;
		return NULL;
	}
	return res;
}

/* "<what> HOST:PORT: <why>", brackets around an IPv6 host; errno is kept. */
static void addr_err(char err[NET_ERR_LEN], const char *what, const char *host, int port,
                     const char *why)
{
	int saved = errno;
	snprintf(err, NET_ERR_LEN, strchr(host, ':') ? "%s [%s]:%d: %s" : "%s %s:%d: %s", what,
	         host, port, why);
	errno = saved;
}

int net_listen(const char *host, int port, int backlog, char err[NET_ERR_LEN])
{
	int rc;
	struct addrinfo *res = resolve(host, port, AI_PASSIVE, &rc);
	if (!res) {
		snprintf(err, NET_ERR_LEN, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0) {
		addr_err(err, "cannot create socket for", host, port, strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6) /* [::]:port means IPv6 only; add 0.0.0.0 for v4 */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		addr_err(err, "cannot listen on", host, port, strerror(errno));
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

/* ---- connecting ---- */

/* Starts connecting to the next untried address: 1 connected, 0 in progress,
 * -1 none left (err names the address and the last attempt's failure). */
static int dial_next(struct net_dial *d, char err[NET_ERR_LEN])
{
	while (d->next) {
		const struct addrinfo *ai = d->next;
		d->next = ai->ai_next;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			d->err = errno;
			snprintf(d->why, sizeof d->why, "%s", strerror(errno));
			continue;
		}
		d->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return 1;
		if (errno == EINPROGRESS)
			return 0;
		d->err = errno;
		snprintf(d->why, sizeof d->why, "%s", strerror(errno));
		close(fd);
		d->fd = -1;
	}
	addr_err(err, "cannot connect to", d->host, d->port, d->why);
	errno = d->err;
	return -1;
}

/* The attempt in progress failed with errno value `why`: on to the next address. */
static int dial_failed(struct net_dial *d, int why, char err[NET_ERR_LEN])
{
	d->err = why;
	snprintf(d->why, sizeof d->why, "%s", strerror(why));
	close(d->fd);
	d->fd = -1;
	return dial_next(d, err);
}

int net_dial_start(struct net_dial *d, const char *host, int port, char err[NET_ERR_LEN])
{
	int rc;

	memset(d, 0, sizeof *d);
	d->fd = -1;
	d->port = port;
	d->err = EADDRNOTAVAIL;
	snprintf(d->host, sizeof d->host, "%s", host);
	snprintf(d->why, sizeof d->why, "no usable address");
	d->res = d->next = resolve(host, port, 0, &rc);
	if (!d->res)
		snprintf(d->why, sizeof d->why, "%s", gai_strerror(rc));
	return dial_next(d, err);
}

int net_dial_step(struct net_dial *d, bool timed_out, char err[NET_ERR_LEN])
{
	int soerr = ETIMEDOUT;
	socklen_t len = sizeof soerr;

	if (d->fd < 0)
		return dial_next(d, err);
	if (!timed_out && getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0)
		return 1;
	return dial_failed(d, soerr, err);
}

int net_dial_take(struct net_dial *d)
{
	int fd = d->fd;
	d->fd = -1;
	net_dial_abort(d);
	return fd;
}

void net_dial_abort(struct net_dial *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->res)
		freeaddrinfo(d->res);
	d->res = d->next = NULL;
}

int net_connect(const char *host, int port, int timeout_ms, char err[NET_ERR_LEN])
{
	struct net_dial d;
	int rc = net_dial_start(&d, host, port, err);

	while (rc == 0) {
		struct pollfd pfd = { .fd = d.fd, .events = POLLOUT };
		int ready = poll(&pfd, 1, timeout_ms);
		rc = ready < 0 ? dial_failed(&d, errno, err) : net_dial_step(&d, ready == 0, err);
	}
	if (rc < 0) {
		int saved = errno;
		net_dial_abort(&d);
		errno = saved;
		return -1;
	}
	int fd = net_dial_take(&d);
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
