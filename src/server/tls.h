/* tls.h - TLS in the event loop: the server's certificate (given, or made
 * once and kept in DIR/.bottle/tls/), non-blocking handshakes bounded by a
 * timeout, and the conn_io that carries a connection's bytes through OpenSSL
 * once the handshake is done. Framing, commands and the room never know. */
#ifndef BOTTLE_TLS_H
#define BOTTLE_TLS_H

#include "conn.h"

struct tls_server;

struct tls_config {
	const char *dir;  /* the storage folder: DIR/.bottle/tls/ for a made certificate */
	const char *cert; /* --tls-cert and --tls-key; both NULL: a self-signed one */
	const char *key;
	unsigned handshake_ms; /* --tls-handshake-timeout */
	unsigned greeting_ms;  /* --greeting-delay, counted from the handshake's end */
};

/* Loads or makes the certificate and logs its fingerprint; exits with a
 * one-line error when it can't. */
struct tls_server *tls_server_new(const struct tls_config *cfg);
void tls_server_free(struct tls_server *ts);
/* A connection accepted on a TLS listener: watches it for its handshake
 * (instead of conn_on_io), then hands it to conn_on_io and starts its
 * greeting timer. -1 with errno if it can't be watched (c is not closed). */
int tls_server_adopt(struct tls_server *ts, struct conn *c);

#endif
