/* protect.c - which addresses are loopback, for protected mode. */
#include "protect.h"
#include "net.h"

#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

bool protect_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

/* True if host may be reached from elsewhere: a wildcard, or any of its
 * addresses outside loopback. */
static bool host_exposed(const char *host)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
	if (!host[0] || strcmp(host, "*") == 0)
		return true;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false; /* the listener reports the name; nothing is bound */
	bool exposed = false;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
		if (!protect_is_loopback(ai->ai_addr))
			exposed = true;
	freeaddrinfo(res);
	return exposed;
}

const char *protect_exposed(const char *const *addrs, int n, int default_port)
{
	for (int i = 0; i < n; i++) {
		char host[256], err[NET_ERR_LEN];
		int port;
		if (net_split_hostport(addrs[i], default_port, host, sizeof host, &port, err) < 0)
			continue; /* a usage error the listener reports */
		if (host_exposed(host))
			return addrs[i];
	}
	return NULL;
}
