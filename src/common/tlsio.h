/* tlsio.h - moving bytes through an OpenSSL session, for both programs: reads
 * that leave nothing decrypted behind inside OpenSSL, an output queue written
 * with SSL_write_ex, and the certificate fingerprint both sides print. */
#ifndef BOTTLE_TLSIO_H
#define BOTTLE_TLSIO_H

#include <stddef.h>
#include <sys/types.h>

struct outq;
struct ssl_st;
struct x509_st;

/* The most plaintext one TLS record carries. */
#define TLSIO_RECORD 16384
/* "SHA256:" and 32 bytes as upper-case hex pairs joined by ':', as
 * `openssl x509 -noout -fingerprint -sha256` shows them, and a NUL. */
#define TLSIO_FP_LEN (7 + 32 * 3)

/* Reads what the session has into buf, record after record while a whole
 * record still fits, so that (unless buf filled up) nothing decrypted waits
 * inside OpenSSL where poll and epoll can't see it. Returns the bytes read,
 * 0 when the peer closed, or -1 with errno: EAGAIN (nothing yet), EPROTO (a
 * TLS error: tlsio_error says which) or the socket's. */
ssize_t tlsio_read(struct ssl_st *ssl, void *buf, size_t cap);
/* True when OpenSSL holds input not yet returned (buf was full). */
int tlsio_pending(struct ssl_st *ssl);
/* Writes the queue's front with SSL_write_ex until it is empty or the socket
 * is full; small blocks are joined into one record. Retries present the same
 * bytes first (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER and
 * SSL_MODE_ENABLE_PARTIAL_WRITE must be set). Returns bytes written (0: the
 * socket is full), or -1 with errno as tlsio_read. */
ssize_t tlsio_flush(struct ssl_st *ssl, struct outq *q);
/* The SHA-256 fingerprint of a certificate (its DER form). */
void tlsio_fingerprint(struct x509_st *cert, char out[TLSIO_FP_LEN]);
/* The last OpenSSL error as text, for a log line (never NULL). */
const char *tlsio_error(void);

#endif
