/* tls_client.h - the client's TLS (--tls, BOTTLE_TLS=1): one configuration
 * for the run, a handshake in steps for a poll loop (the link's dialing) or
 * whole within a timeout (the one-shot modes), the server's certificate
 * checked against the CAs with its host name, else pinned on first use in
 * known_servers (known_servers.h), and the client_io that carries the bytes. */
#ifndef BOTTLE_TLS_CLIENT_H
#define BOTTLE_TLS_CLIENT_H

#include "client.h"
#include "net.h"

#include <stdbool.h>

/* Turns TLS on for every connection of this run. ca_file: --tls-ca, the only
 * CAs trusted (a certificate they don't vouch for is refused); NULL: the
 * system's, and an unverified certificate is pinned on first use. Exits
 * with a one-line error when the CA file can't be read. */
void tls_client_setup(const char *ca_file);
bool tls_client_enabled(void);

/* What a handshake step came to. */
enum tls_client_step {
	TLS_CLIENT_DONE = 1,     /* up and checked: c carries TLS now */
	TLS_CLIENT_MORE = 0,     /* poll c->fd for *events, then step again */
	TLS_CLIENT_FAILED = -1,  /* a broken connection: err; worth a retry */
	TLS_CLIENT_REFUSED = -2, /* the certificate is refused: err; a retry won't help */
};

/* Begins a handshake on the connected client c with the server host:port
 * (the name checked in its certificate and pinned). TLS_CLIENT_MORE, or
 * TLS_CLIENT_FAILED with err. */
int tls_client_start(struct client *c, const char *host, int port, char err[NET_ERR_LEN]);
/* One step, when poll said c->fd is ready for the *events asked before. */
int tls_client_step(struct client *c, short *events, char err[NET_ERR_LEN]);
/* The whole handshake, waiting with poll at most timeout_ms. */
int tls_client_handshake(struct client *c, const char *host, int port, int timeout_ms,
                         char err[NET_ERR_LEN]);

#endif
