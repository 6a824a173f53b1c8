/* tls.c - TLS listeners' connections: the certificate, handshakes driven by
 * the loop, and the conn_io that moves a connection's bytes through OpenSSL.
 *
 *   accept -> on_handshake_io (WANT_READ / WANT_WRITE become the fd's
 *   interest; a timer bounds it) -> conn_on_io and the greeting timer, as a
 *   plain connection from its accept on.
 *
 * Bytes OpenSSL decrypted but did not hand over make no epoll event, so a
 * read that stops with some still inside (the read buffer was full) comes
 * back through a zero-delay timer. */
#include "tls.h"
#include "log.h"
#include "tlsio.h"
#include "tpkt.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A download moves at most this much per loop turn, as on plain TCP, in
 * chunks of this size (TPKT: one frame's payload): what is queued for one
 * connection is one chunk at most. */
#define TLS_FILE_STEP (256u * 1024)
#define TLS_FILE_CHUNK (64u * 1024)
#define TLS_CERT_DAYS 3650

struct tls_server {
	SSL_CTX *ctx;
	unsigned handshake_ms, greeting_ms;
};

struct tls_session {
	struct tls_server *ts;
	SSL *ssl;
	struct loop_timer handshake_timer;
	struct loop_timer more_timer; /* decrypted input waits inside OpenSSL */
	bool ktls;                    /* kernel TLS sends: downloads by SSL_sendfile */
	bool began;                   /* the client's first bytes were looked at */
};

/* ==== the certificate ==== */

/* Writes a PEM file atomically with the given mode, whatever the umask. */
static void write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f = fd >= 0 && fchmod(fd, mode) == 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		fatal(1, "cannot write %s", tmp);
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
	             : PEM_write_X509(f, cert);
	if (!ok || fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0)
		fatalx(1, "cannot write %s: %s", tmp, tlsio_error());
	if (rename(tmp, path) < 0)
		fatal(1, "cannot rename %s", tmp);
}

/* A self-signed certificate for this host, localhost, 127.0.0.1 and ::1. */
static X509 *make_cert(EVP_PKEY *key)
{
	char host[256] = "localhost", san[512];
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	X509V3_CTX v3;

	if (gethostname(host, sizeof host - 1) < 0 || !host[0] || strpbrk(host, ", "))
		snprintf(host, sizeof host, "localhost");
	snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", host);
	if (!x || !serial || !BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * TLS_CERT_DAYS) ||
	    !X509_set_pubkey(x, key))
		fatalx(1, "cannot make a TLS certificate: %s", tlsio_error());
	BN_free(serial);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1,
	                           0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (!ext || !X509_add_ext(x, ext, -1) || !X509_sign(x, key, EVP_sha256()))
		fatalx(1, "cannot make a TLS certificate: %s", tlsio_error());
	X509_EXTENSION_free(ext);
	return x;
}

/* DIR/.bottle/tls/{cert,key}.pem: made on first start, reused afterwards.
 * Returns true when they were made now. */
static bool ensure_self_signed(const char *dir, char *cert, char *key, size_t len)
{
	char folder[PATH_MAX - 16];
	snprintf(folder, sizeof folder, "%s/.bottle/tls", dir);
	if (mkdir(folder, 0700) < 0 && errno != EEXIST)
		fatal(1, "cannot create %s", folder);
	if ((size_t)snprintf(cert, len, "%s/cert.pem", folder) >= len ||
	    (size_t)snprintf(key, len, "%s/key.pem", folder) >= len)
		fatalx(1, "storage folder path too long: %s", dir);
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
		return false;
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	if (!pkey)
		fatalx(1, "cannot make a TLS key: %s", tlsio_error());
	X509 *x = make_cert(pkey);
	write_pem(key, 0600, pkey, NULL); /* the key first: a cert alone is useless */
	write_pem(cert, 0644, NULL, x);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return true;
}

struct tls_server *tls_server_new(const struct tls_config *cfg)
{
	char certbuf[PATH_MAX], keybuf[PATH_MAX];
	const char *cert = cfg->cert, *key = cfg->key;
	bool made = false;

	if (!cert)
		made = ensure_self_signed(cfg->dir, certbuf, keybuf, sizeof certbuf);
	if (!cert) {
		cert = certbuf;
		key = keybuf;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		fatalx(1, "TLS: %s", tlsio_error());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* No renegotiation: a write can then never wait for a read. A peer
	 * that just closes the TCP connection is an ordinary close. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	                                 SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		fatalx(1, "--tls-cert %s: %s", cert, tlsio_error());
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		fatalx(1, "--tls-key %s: %s", key, tlsio_error());
	if (SSL_CTX_check_private_key(ctx) != 1)
		fatalx(1, "--tls-key %s does not match --tls-cert %s", key, cert);
	char fp[TLSIO_FP_LEN];
	tlsio_fingerprint(SSL_CTX_get0_certificate(ctx), fp);
	log_info("TLS certificate %s (%s), fingerprint %s", cert,
	         made        ? "self-signed, made now"
	         : cfg->cert ? "given"
	                     : "self-signed, made before",
	         fp);
	struct tls_server *ts = xcalloc(1, sizeof *ts);
	ts->ctx = ctx;
	ts->handshake_ms = cfg->handshake_ms;
	ts->greeting_ms = cfg->greeting_ms;
	return ts;
}

void tls_server_free(struct tls_server *ts)
{
	if (!ts)
		return;
	SSL_CTX_free(ts->ctx);
	free(ts);
}

/* ==== reading and writing (the conn_io) ==== */

static void on_more(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)t;
	struct conn *c = data;
	if ((c->state == CONN_GREETING || c->state == CONN_OPEN) &&
	    (loop_get_mask(loop, c->fd) & LOOP_READABLE))
		conn_on_io(loop, c->fd, c, LOOP_READABLE);
}

/* Input waits inside OpenSSL: read it on the next turn, as if epoll said so. */
static void more_later(struct conn *c)
{
	struct tls_session *s = c->io_data;
	if (tlsio_pending(s->ssl) && !loop_timer_pending(&s->more_timer))
		loop_timer_start(c->env->loop, &s->more_timer, 0, on_more, c);
}

static void log_tls_error(struct conn *c, ssize_t n)
{
	if (n < 0 && errno == EPROTO) {
		int err = errno;
		log_info("%s: TLS error: %s", c->peer, tlsio_error());
		errno = err;
	}
}

static ssize_t tls_read(struct conn *c, void *buf, size_t cap)
{
	struct tls_session *s = c->io_data;
	ssize_t n = tlsio_read(s->ssl, buf, cap);
	if (n > 0)
		more_later(c);
	log_tls_error(c, n);
	return n;
}

static ssize_t tls_flush(struct conn *c)
{
	struct tls_session *s = c->io_data;
	if (!SSL_is_init_finished(s->ssl)) {
		/* Closing during the handshake (a shutdown's goodbye): nothing can
		 * be said before it is done. */
		outq_free(&c->out);
		return 0;
	}
	ssize_t n = tlsio_flush(s->ssl, &c->out);
	log_tls_error(c, n);
	return n;
}

/* Kernel TLS, line mode: the file's pages go to the socket, encrypted by the
 * kernel, as sendfile does on plain TCP. */
static ssize_t send_file_ktls(struct conn *c, int fd, uint64_t off, uint64_t len)
{
	struct tls_session *s = c->io_data;
	size_t want = len < TLS_FILE_STEP ? (size_t)len : TLS_FILE_STEP;

	if (outq_bytes(&c->out))
		return 0; /* replies first */
	ERR_clear_error();
	ossl_ssize_t n = SSL_sendfile(s->ssl, fd, (off_t)off, want, 0);
	if (n > 0) {
		c->last_io = loop_now(c->env->loop);
		return n;
	}
	int e = SSL_get_error(s->ssl, (int)n);
	if (e == SSL_ERROR_WANT_WRITE || errno == EAGAIN || errno == EINTR)
		return 0;
	if (n == 0) {
		errno = ENODATA;
		return -1;
	}
	int err = errno ? errno : EPROTO;
	conn_close_errno(c, err);
	errno = err;
	return -1;
}

/* Without kernel TLS: a chunk (TPKT: a frame) read into a block, queued and
 * encrypted as the socket takes it; the next chunk only once the queue is
 * empty, so at most one chunk waits per connection. */
static ssize_t tls_send_file(struct conn *c, int fd, uint64_t off, uint64_t len)
{
	struct tls_session *s = c->io_data;
	bool tpkt = c->framer.kind == FRAMING_TPKT;
	size_t hdr = tpkt ? TPKT_HDR_LEN : 0, most = tpkt ? TPKT_MAX_PAYLOAD : TLS_FILE_CHUNK;
	uint64_t moved = 0;

	if (most + hdr > c->env->max_output) /* what waits never passes --max-output */
		most = c->env->max_output - hdr;

	if (s->ktls && !tpkt)
		return send_file_ktls(c, fd, off, len);
	while (moved < len && moved < TLS_FILE_STEP && !outq_bytes(&c->out)) {
		uint64_t left = len - moved;
		size_t want = left < most ? (size_t)left : most;
		struct blob *b = blob_new(hdr + want);
		ssize_t r;
		do
			r = pread(fd, b->data + hdr, want, (off_t)(off + moved));
		while (r < 0 && errno == EINTR);
		if (r != (ssize_t)want) {
			blob_unref(b);
			if (r >= 0)
				errno = ENODATA;
			return -1;
		}
		if (tpkt)
			tpkt_encode_header(b->data, want);
		b->len = hdr + want;
		outq_push(&c->out, b);
		blob_unref(b);
		moved += want;
		if (tls_flush(c) < 0) {
			int err = errno;
			conn_close_errno(c, err);
			errno = err;
			return -1;
		}
	}
	if (moved) {
		c->last_io = loop_now(c->env->loop);
		conn_want_flush(c);
	}
	return (ssize_t)moved;
}

static void tls_resumed(struct conn *c) { more_later(c); }

static void tls_free(struct conn *c)
{
	struct tls_session *s = c->io_data;
	loop_timer_stop(c->env->loop, &s->handshake_timer);
	loop_timer_stop(c->env->loop, &s->more_timer);
	if (SSL_is_init_finished(s->ssl) && c->end != END_RESET) {
		ERR_clear_error();
		(void)SSL_shutdown(s->ssl); /* best effort: a close_notify for the peer */
	}
	SSL_free(s->ssl);
	free(s);
	c->io = NULL;
	c->io_data = NULL;
}

static const struct conn_io tls_conn_io = {
	.read = tls_read,
	.flush = tls_flush,
	.send_file = tls_send_file,
	.resumed = tls_resumed,
	.free = tls_free,
};

/* ==== the handshake ==== */

static void handshake_done(struct conn *c)
{
	struct tls_session *s = c->io_data;
	struct loop *loop = c->env->loop;

	loop_timer_stop(loop, &s->handshake_timer);
	s->ktls = BIO_get_ktls_send(SSL_get_wbio(s->ssl)) > 0;
	if (loop_watch(loop, c->fd, LOOP_READABLE, conn_on_io, c) < 0) {
		conn_close(c, END_ERROR);
		return;
	}
	log_debug("%s: %s %s; downloads by %s", c->peer, SSL_get_version(s->ssl),
	          SSL_get_cipher_name(s->ssl),
	          s->ktls ? "SSL_sendfile (kernel TLS) in line mode"
	                  : "pread and SSL_write (no kernel TLS)");
	/* From here on as a plain connection after its accept. */
	loop_timer_start(loop, &c->greet_timer, s->ts->greeting_ms, conn_on_greeting_timer, c);
	more_later(c);
}

/* A first byte that can't start a TLS handshake record (22): a plaintext
 * client (nc, telnet, bottle without --tls) at a TLS port. It gets one line
 * saying so, in clear, and is closed. True when that was the case. */
static bool turned_away_plaintext(struct conn *c, struct tls_session *s)
{
	static const char hint[] =
		"ERR this port speaks TLS: use bottle --tls or openssl s_client\n";
	unsigned char first;

	if (s->began || recv(c->fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
		return false;
	s->began = true;
	if (first == 22)
		return false;
	log_info("%s: plaintext on a TLS port, closing", c->peer);
	(void)send(c->fd, hint, sizeof hint - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	conn_close(c, END_PROTOCOL);
	return true;
}

static void handshake_step(struct conn *c)
{
	struct tls_session *s = c->io_data;

	if (c->state != CONN_GREETING)
		return;
	if (turned_away_plaintext(c, s))
		return;
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		handshake_done(c);
		return;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		loop_set_mask(c->env->loop, c->fd,
		              e == SSL_ERROR_WANT_READ ? LOOP_READABLE : LOOP_WRITABLE);
		return;
	}
	bool closed = e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN;
	log_info("%s: TLS handshake failed: %s", c->peer,
	         closed ? (errno ? strerror(errno) : "the peer closed") : tlsio_error());
	conn_close(c, closed ? END_PEER_CLOSED : END_PROTOCOL);
}

static void on_handshake_io(struct loop *loop, int fd, void *data, int mask)
{
	(void)loop;
	(void)fd;
	(void)mask;
	handshake_step(data);
}

static void on_handshake_timeout(struct loop *loop, struct loop_timer *t, void *data)
{
	(void)loop;
	(void)t;
	struct conn *c = data;
	struct tls_session *s = c->io_data;
	if (c->state != CONN_GREETING || SSL_is_init_finished(s->ssl))
		return;
	log_info("%s: no TLS handshake within %u ms, closing", c->peer, s->ts->handshake_ms);
	conn_close(c, END_IDLE);
}

int tls_server_adopt(struct tls_server *ts, struct conn *c)
{
	SSL *ssl = SSL_new(ts->ctx);
	if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
		SSL_free(ssl);
		errno = ENOMEM;
		return -1;
	}
	SSL_set_accept_state(ssl);
	struct tls_session *s = xcalloc(1, sizeof *s);
	s->ts = ts;
	s->ssl = ssl;
	c->tls = true;
	c->io = &tls_conn_io;
	c->io_data = s;
	if (loop_watch(c->env->loop, c->fd, LOOP_READABLE, on_handshake_io, c) < 0)
		return -1; /* conn_free frees the session */
	loop_timer_start(c->env->loop, &s->handshake_timer, ts->handshake_ms, on_handshake_timeout,
	                 c);
	return 0;
}
