/* Unit tests for tlsio.c over an in-memory BIO pair (no sockets): a queue of
 * small blocks and a big one written through a pipe too small for it, each
 * retry after WANT_WRITE accepted; reads that leave nothing decrypted behind
 * unless the buffer is full; the fingerprint's form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

#include "buf.h"
#include "tlsio.h"

struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *server, *client;
	EVP_PKEY *key;
	X509 *cert;
};

static struct pair P;

static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, key, EVP_sha256());
	return x;
}

/* Both ends over a BIO pair with pipe_size bytes each way, handshake done. */
static int setup(size_t pipe_size)
{
	BIO *cb, *sb;
	long modes = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;

	P.key = EVP_EC_gen("P-256");
	P.cert = self_signed(P.key);
	P.sctx = SSL_CTX_new(TLS_server_method());
	P.cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_use_certificate(P.sctx, P.cert);
	SSL_CTX_use_PrivateKey(P.sctx, P.key);
	SSL_CTX_set_mode(P.sctx, modes);
	SSL_CTX_set_mode(P.cctx, modes);
	P.server = SSL_new(P.sctx);
	P.client = SSL_new(P.cctx);
	if (BIO_new_bio_pair(&cb, pipe_size, &sb, pipe_size) != 1)
		return -1;
	SSL_set_bio(P.client, cb, cb);
	SSL_set_bio(P.server, sb, sb);
	SSL_set_connect_state(P.client);
	SSL_set_accept_state(P.server);
	for (int i = 0; i < 100; i++) {
		int c = SSL_do_handshake(P.client), s = SSL_do_handshake(P.server);
		if (c == 1 && s == 1)
			return 0;
	}
	return -1;
}

static int setup_roomy(void **state)
{
	(void)state;
	return setup(64 * 1024);
}

static int setup_wide(void **state)
{
	(void)state;
	return setup(256 * 1024);
}

static int setup_narrow(void **state)
{
	(void)state;
	return setup(4096);
}

static int teardown(void **state)
{
	(void)state;
	SSL_free(P.server);
	SSL_free(P.client);
	SSL_CTX_free(P.sctx);
	SSL_CTX_free(P.cctx);
	X509_free(P.cert);
	EVP_PKEY_free(P.key);
	memset(&P, 0, sizeof P);
	return 0;
}

/* Everything the client can read now, appended at got[*n]. */
static void drain(unsigned char *got, size_t cap, size_t *n)
{
	while (*n < cap) {
		ssize_t r = tlsio_read(P.client, got + *n, cap - *n);
		if (r <= 0) {
			assert_true(r < 0 && errno == EAGAIN);
			return;
		}
		*n += (size_t)r;
	}
}

static void small_blocks_arrive_whole_and_in_order(void **state)
{
	struct outq q;
	unsigned char want[300 * 20], got[sizeof want];
	size_t n = 0;
	(void)state;

	outq_init(&q);
	for (int i = 0; i < 300; i++) {
		unsigned char word[20];
		memset(word, 'a' + i % 26, sizeof word);
		word[0] = (unsigned char)i;
		memcpy(want + i * 20, word, sizeof word);
		struct blob *b = blob_from(word, sizeof word);
		outq_push(&q, b);
		blob_unref(b);
	}
	assert_int_equal(tlsio_flush(P.server, &q), sizeof want);
	assert_int_equal(outq_bytes(&q), 0);
	drain(got, sizeof got, &n);
	assert_int_equal(n, sizeof want);
	assert_memory_equal(got, want, sizeof want);
	outq_free(&q);
}

static void a_full_pipe_is_retried_with_the_same_bytes(void **state)
{
	static unsigned char want[200000], got[sizeof want];
	struct outq q;
	size_t n = 0, sent = 0;
	(void)state;

	for (size_t i = 0; i < sizeof want; i++)
		want[i] = (unsigned char)(i * 7 + i / 251);
	outq_init(&q);
	struct blob *b = blob_from(want, sizeof want / 2);
	outq_push(&q, b);
	blob_unref(b);
	int rounds = 0;
	while (n < sizeof want && rounds++ < 10000) {
		if (sent == sizeof want / 2) { /* more arrives while the rest waits */
			b = blob_from(want + sent, sizeof want / 2);
			outq_push(&q, b);
			blob_unref(b);
			sent = sizeof want;
		}
		ssize_t w = tlsio_flush(P.server, &q);
		assert_true(w >= 0); /* never "bad write retry" */
		if (sent < sizeof want)
			sent += (size_t)w;
		drain(got, sizeof got, &n);
	}
	assert_int_equal(n, sizeof want);
	assert_memory_equal(got, want, sizeof want);
	assert_int_equal(outq_bytes(&q), 0);
	outq_free(&q);
}

static void reads_stop_before_a_record_that_would_not_fit(void **state)
{
	static unsigned char data[5 * TLSIO_RECORD], got[40000];
	size_t w;
	(void)state;

	memset(data, 'x', sizeof data);
	for (int i = 0; i < 5; i++)
		assert_int_equal(SSL_write_ex(P.server, data, TLSIO_RECORD, &w), 1);
	/* Two whole records fit in 40000 bytes, a third would not start. */
	assert_int_equal(tlsio_read(P.client, got, sizeof got), 2 * TLSIO_RECORD);
	assert_int_equal(SSL_pending(P.client), 0);
	/* A buffer smaller than one record still takes what it can. */
	assert_int_equal(tlsio_read(P.client, got, 1000), 1000);
	assert_true(tlsio_pending(P.client));
	/* The rest of that record, then one more whole one (a third would not fit). */
	assert_int_equal(tlsio_read(P.client, got, sizeof got), 2 * TLSIO_RECORD - 1000);
	assert_false(tlsio_pending(P.client));
	assert_int_equal(tlsio_read(P.client, got, sizeof got), TLSIO_RECORD);
	assert_false(tlsio_pending(P.client));
}

static void the_peer_closing_reads_as_zero(void **state)
{
	unsigned char got[100];
	(void)state;

	SSL_shutdown(P.server);
	assert_int_equal(tlsio_read(P.client, got, sizeof got), 0);
}

static void fingerprints_look_like_openssls(void **state)
{
	char fp[TLSIO_FP_LEN];
	unsigned char md[32];
	unsigned int n;
	char hex[3];
	(void)state;

	tlsio_fingerprint(P.cert, fp);
	assert_int_equal(strlen(fp), TLSIO_FP_LEN - 1);
	assert_memory_equal(fp, "SHA256:", 7);
	X509_digest(P.cert, EVP_sha256(), md, &n);
	for (unsigned int i = 0; i < n; i++) {
		snprintf(hex, sizeof hex, "%02X", md[i]);
		assert_memory_equal(fp + 7 + 3 * i, hex, 2);
		if (i + 1 < n)
			assert_int_equal(fp[7 + 3 * i + 2], ':');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(small_blocks_arrive_whole_and_in_order, setup_roomy,
		                                teardown),
		cmocka_unit_test_setup_teardown(a_full_pipe_is_retried_with_the_same_bytes,
		                                setup_narrow, teardown),
		cmocka_unit_test_setup_teardown(reads_stop_before_a_record_that_would_not_fit,
		                                setup_wide, teardown),
		cmocka_unit_test_setup_teardown(the_peer_closing_reads_as_zero, setup_roomy,
		                                teardown),
		cmocka_unit_test_setup_teardown(fingerprints_look_like_openssls, setup_roomy,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
