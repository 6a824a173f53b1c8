/* cluster_url.h - the --cluster address: redis://HOST:PORT[/PREFIX].
 * Pure: no I/O, no name lookup. */
#ifndef BOTTLE_CLUSTER_URL_H
#define BOTTLE_CLUSTER_URL_H

#include <stddef.h>

#define CLUSTER_PREFIX_DEFAULT "bottle"
#define CLUSTER_PORT_DEFAULT 6379

struct cluster_url {
	char host[256]; /* a name or an address; an IPv6 one without its brackets */
	int port;
	char prefix[64]; /* starts every Redis key and channel of the cluster */
};

/* redis://HOST:PORT[/PREFIX] (IPv6 as [::1]; port default 6379; prefix default
 * CLUSTER_PREFIX_DEFAULT, letters digits _-.:); 0, or -1 with err saying why. */
int cluster_url_parse(const char *url, struct cluster_url *out, char *err, size_t errsz);

#endif
