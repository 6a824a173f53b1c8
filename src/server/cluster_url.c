/* cluster_url.c - takes the --cluster URL apart, refusing what Redis or our
 * key names could not use, so a typo fails at start and not at the first
 * reconnect. */
#include "cluster_url.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SCHEME "redis://"

static int fail(char *err, size_t errsz, const char *why)
{
	if (errsz)
		snprintf(err, errsz, "%s", why);
	return -1;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

static bool prefix_char(char c) { return host_char(c) || c == ':'; }

/* Digits only, 1..65535. */
static int parse_port(const char *s, size_t len)
{
	if (len == 0 || len > 5)
		return -1;
	int port = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		port = port * 10 + (s[i] - '0');
	}
	return port >= 1 && port <= 65535 ? port : -1;
}

/* The host, bracketed for IPv6; *p moves past it. 0, or -1 with err set. */
static int parse_host(const char **p, struct cluster_url *out, char *err, size_t errsz)
{
	const char *host = *p, *host_end;

	if (*host == '[') {
		host++;
		host_end = strchr(host, ']');
		if (!host_end)
			return fail(err, errsz, "an IPv6 address needs its closing ']'");
		for (const char *q = host; q < host_end; q++)
			if (!(*q == ':' || *q == '.' || strchr("0123456789abcdefABCDEF", *q)))
				return fail(err, errsz, "not an IPv6 address inside [ ]");
		*p = host_end + 1;
	} else {
		for (host_end = host; *host_end && *host_end != ':' && *host_end != '/'; host_end++)
			if (!host_char(*host_end))
				return fail(err, errsz,
				            "a host name has letters, digits, '-' and '.'");
		*p = host_end;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0)
		return fail(err, errsz, "no host");
	if (hlen >= sizeof out->host)
		return fail(err, errsz, "host name too long");
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	return 0;
}

static int parse_prefix(const char *prefix, struct cluster_url *out, char *err, size_t errsz)
{
	size_t plen = strlen(prefix);
	if (plen == 0)
		return fail(err, errsz, "an empty prefix after '/'");
	if (plen >= sizeof out->prefix)
		return fail(err, errsz, "the prefix is at most 63 characters");
	for (size_t i = 0; i < plen; i++)
		if (!prefix_char(prefix[i]))
			return fail(err, errsz,
			            "the prefix has letters, digits, '_', '-', '.' and ':'");
	memcpy(out->prefix, prefix, plen + 1);
	return 0;
}

int cluster_url_parse(const char *url, struct cluster_url *out, char *err, size_t errsz)
{
	memset(out, 0, sizeof *out);
	out->port = CLUSTER_PORT_DEFAULT;
	snprintf(out->prefix, sizeof out->prefix, "%s", CLUSTER_PREFIX_DEFAULT);

	if (strncmp(url, SCHEME, strlen(SCHEME)) != 0)
		return fail(err, errsz, "expected redis://HOST:PORT[/PREFIX]");
	const char *p = url + strlen(SCHEME);
	if (parse_host(&p, out, err, errsz) < 0)
		return -1;
	if (*p == ':') {
		const char *port = ++p;
		while (*p && *p != '/')
			p++;
		out->port = parse_port(port, (size_t)(p - port));
		if (out->port < 0)
			return fail(err, errsz, "the port is a number from 1 to 65535");
	}
	if (*p == '/')
		return parse_prefix(p + 1, out, err, errsz);
	return *p ? fail(err, errsz, "unexpected text after the host") : 0;
}
