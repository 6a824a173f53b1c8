/* tls_client.c - TLS for the client's connections (tls_client.h). */
#include "tls_client.h"
#include "known_servers.h"
#include "tlsio.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The run's one configuration: set once from the options. */
static struct {
	SSL_CTX *ctx;
	bool ca_given; /* --tls-ca: no pinning, the CA must vouch */
	const char *ca_file;
} tls;

struct tls_link {
	SSL *ssl;
	char server[300]; /* "host:port" as pinned */
};

void tls_client_setup(const char *ca_file)
{
	tls.ctx = SSL_CTX_new(TLS_client_method());
	if (!tls.ctx) {
		fprintf(stderr, "bottle: TLS: %s\n", tlsio_error());
		exit(1);
	}
	SSL_CTX_set_min_proto_version(tls.ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(tls.ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(tls.ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Checked after the handshake (check_peer), where an unverified
	 * certificate may still be a pinned one. */
	SSL_CTX_set_verify(tls.ctx, SSL_VERIFY_NONE, NULL);
	if (ca_file && SSL_CTX_load_verify_locations(tls.ctx, ca_file, NULL) != 1) {
		fprintf(stderr, "bottle: --tls-ca %s: %s\n", ca_file, tlsio_error());
		exit(1);
	}
	if (!ca_file)
		SSL_CTX_set_default_verify_paths(tls.ctx);
	tls.ca_given = ca_file != NULL;
	tls.ca_file = ca_file;
	(void)signal(SIGPIPE, SIG_IGN); /* SSL_write on a dead socket: an error, not a kill */
}

bool tls_client_enabled(void) { return tls.ctx != NULL; }

/* An error for the user; long names are cut, never overflow. */
static void say(char err[NET_ERR_LEN], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(char err[NET_ERR_LEN], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, NET_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* ==== the client_io ==== */

static void set_tls_error(struct client *c, ssize_t n)
{
	if (n < 0 && errno == EPROTO)
		snprintf(c->error, sizeof c->error, "TLS: %s", tlsio_error());
}

static ssize_t link_read(struct client *c, void *buf, size_t cap)
{
	struct tls_link *t = c->io_data;
	ssize_t n = tlsio_read(t->ssl, buf, cap);
	set_tls_error(c, n);
	return n;
}

static ssize_t link_flush(struct client *c)
{
	struct tls_link *t = c->io_data;
	ssize_t n = tlsio_flush(t->ssl, &c->out);
	set_tls_error(c, n);
	return n;
}

static void link_close(struct client *c)
{
	struct tls_link *t = c->io_data;
	if (SSL_is_init_finished(t->ssl)) {
		ERR_clear_error();
		(void)SSL_shutdown(t->ssl); /* best effort: the server sees a clean close */
	}
	SSL_free(t->ssl);
	free(t);
	c->io = NULL;
	c->io_data = NULL;
}

static const struct client_io tls_io = {
	.read = link_read,
	.flush = link_flush,
	.close = link_close,
};

/* ==== the certificate ==== */

static bool is_ip(const char *host)
{
	unsigned char addr[16];
	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Not vouched for by a CA: the pin decides (known_servers). */
static int check_pin(struct tls_link *t, long verify, char err[NET_ERR_LEN])
{
	char path[4096], fp[TLSIO_FP_LEN];
	int line = 0;
	X509 *cert = SSL_get0_peer_certificate(t->ssl);

	if (!cert) {
		say(err, "%s sent no certificate", t->server);
		return TLS_CLIENT_REFUSED;
	}
	tlsio_fingerprint(cert, fp);
	if (!known_servers_path(path, sizeof path)) {
		say(err, "%s: certificate not verified (%s) and nowhere to pin it: set HOME",
		    t->server, X509_verify_cert_error_string(verify));
		return TLS_CLIENT_REFUSED;
	}
	switch (known_servers_check(path, t->server, fp, &line)) {
	case KNOWN_MATCH: return TLS_CLIENT_DONE;
	case KNOWN_CHANGED:
		fprintf(stderr,
		        "bottle: WARNING: the TLS certificate of %s has CHANGED.\n"
		        "bottle: It is now %s,\n"
		        "bottle: but line %d of %s pins another one.\n"
		        "bottle: Someone may be impersonating the server, or it has a new "
		        "certificate.\n"
		        "bottle: If you trust the new one, remove line %d of %s and connect "
		        "again.\n",
		        t->server, fp, line, path, line, path);
		say(err, "certificate of %s changed: refused (%s line %d)", t->server, path, line);
		return TLS_CLIENT_REFUSED;
	case KNOWN_UNKNOWN: break;
	case KNOWN_ERROR:
		say(err, "cannot read %s: %s", path, strerror(errno));
		return TLS_CLIENT_REFUSED;
	}
	if (known_servers_add(path, t->server, fp, &line) < 0) {
		say(err, "cannot pin %s's certificate in %s: %s", t->server, path, strerror(errno));
		return TLS_CLIENT_REFUSED;
	}
	fprintf(stderr,
	        "bottle: the TLS certificate of %s is not vouched for by a CA (%s).\n"
	        "bottle: Its fingerprint is %s.\n"
	        "bottle: Trusting it on first use: pinned in %s line %d; a different one "
	        "will be refused.\n",
	        t->server, X509_verify_cert_error_string(verify), fp, path, line);
	return TLS_CLIENT_DONE;
}

static int check_peer(struct tls_link *t, char err[NET_ERR_LEN])
{
	long verify = SSL_get_verify_result(t->ssl);

	if (verify == X509_V_OK && SSL_get0_peer_certificate(t->ssl))
		return TLS_CLIENT_DONE;
	if (tls.ca_given) {
		say(err, "the certificate of %s does not verify against %s: %s", t->server,
		    tls.ca_file, X509_verify_cert_error_string(verify));
		return TLS_CLIENT_REFUSED;
	}
	return check_pin(t, verify, err);
}

/* ==== the handshake ==== */

int tls_client_start(struct client *c, const char *host, int port, char err[NET_ERR_LEN])
{
	SSL *ssl = SSL_new(tls.ctx);
	if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
		SSL_free(ssl);
		say(err, "TLS: %s", tlsio_error());
		return TLS_CLIENT_FAILED;
	}
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	if (is_ip(host)) {
		X509_VERIFY_PARAM_set1_ip_asc(param, host);
	} else {
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host);
	}
	SSL_set_connect_state(ssl);
	struct tls_link *t = xcalloc(1, sizeof *t);
	t->ssl = ssl;
	snprintf(t->server, sizeof t->server, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	c->io = &tls_io;
	c->io_data = t;
	return TLS_CLIENT_MORE;
}

int tls_client_step(struct client *c, short *events, char err[NET_ERR_LEN])
{
	struct tls_link *t = c->io_data;

	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return check_peer(t, err);
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return TLS_CLIENT_MORE;
	}
	if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
		say(err, "TLS handshake with %s: %s", t->server,
		    errno ? strerror(errno) : "connection closed by server");
	else
		say(err, "TLS handshake with %s failed: %s", t->server, tlsio_error());
	return TLS_CLIENT_FAILED;
}

static long ms_left(const struct timespec *end)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
}

int tls_client_handshake(struct client *c, const char *host, int port, int timeout_ms,
                         char err[NET_ERR_LEN])
{
	struct timespec end;
	short events = 0;
	int rc = tls_client_start(c, host, port, err);

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	while (rc == TLS_CLIENT_MORE &&
	       (rc = tls_client_step(c, &events, err)) == TLS_CLIENT_MORE) {
		long left = ms_left(&end);
		struct pollfd p = { .fd = c->fd, .events = events };
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			say(err, "TLS handshake with %s:%d timed out", host, port);
			return TLS_CLIENT_FAILED;
		}
	}
	return rc;
}
