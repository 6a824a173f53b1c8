/* tlsio.c - reads, queued writes and fingerprints over OpenSSL (tlsio.h). */
#include "tlsio.h"
#include "buf.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

/* What an SSL_ERROR_* means as an errno (0: try again later). */
static int error_errno(SSL *ssl, int ret)
{
	int e = SSL_get_error(ssl, ret);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return EAGAIN;
	if (e == SSL_ERROR_SYSCALL && errno != 0)
		return errno;
	if (e == SSL_ERROR_SYSCALL)
		return ECONNRESET;
	return EPROTO;
}

ssize_t tlsio_read(SSL *ssl, void *buf, size_t cap)
{
	unsigned char *p = buf;
	size_t got = 0;

	/* A new record only while it fits whole; what is left of one always does. */
	while (got < cap && (got + TLSIO_RECORD <= cap || SSL_pending(ssl) > 0 || got == 0)) {
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		if (SSL_read_ex(ssl, p + got, cap - got, &n) > 0) {
			got += n;
			continue;
		}
		int e = SSL_get_error(ssl, 0);
		if (e == SSL_ERROR_ZERO_RETURN)
			return (ssize_t)got; /* the peer's close: 0 on the next call */
		int err = error_errno(ssl, 0);
		if (got)
			return (ssize_t)got; /* the error (or EAGAIN) shows next time */
		errno = err;
		return -1;
	}
	return (ssize_t)got;
}

int tlsio_pending(SSL *ssl) { return SSL_has_pending(ssl); }

ssize_t tlsio_flush(SSL *ssl, struct outq *q)
{
	unsigned char stage[TLSIO_RECORD];
	ssize_t total = 0;

	while (outq_bytes(q)) {
		struct iovec iov[16];
		int n = outq_peek(q, iov, 16);
		const void *p = iov[0].iov_base;
		size_t len = iov[0].iov_len;
		/* Small blocks (replies) go out together: one record, not one each.
		 * A retry after WANT_WRITE joins at least as many of the same bytes. */
		if (len < sizeof stage && n > 1) {
			len = 0;
			for (int i = 0; i < n && len < sizeof stage; i++) {
				size_t k = iov[i].iov_len < sizeof stage - len ? iov[i].iov_len
				                                               : sizeof stage - len;
				memcpy(stage + len, iov[i].iov_base, k);
				len += k;
			}
			p = stage;
		}
		size_t w = 0;
		ERR_clear_error();
		errno = 0;
		if (SSL_write_ex(ssl, p, len, &w) <= 0) {
			int err = error_errno(ssl, 0);
			if (err == EAGAIN)
				return total;
			errno = err;
			return -1;
		}
		outq_consume(q, w);
		total += (ssize_t)w;
	}
	return total;
}

void tlsio_fingerprint(X509 *cert, char out[TLSIO_FP_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *p = out;

	if (!X509_digest(cert, EVP_sha256(), md, &n) || n != 32) {
		snprintf(out, TLSIO_FP_LEN, "SHA256:?");
		return;
	}
	p += sprintf(p, "SHA256:");
	for (unsigned int i = 0; i < n; i++)
		p += sprintf(p, i ? ":%02X" : "%02X", md[i]);
}

const char *tlsio_error(void)
{
	static char text[256];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "unknown TLS error";
	ERR_error_string_n(e, text, sizeof text);
	return text;
}
