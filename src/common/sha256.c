/* sha256.c - stepwise SHA-256 over OpenSSL's EVP interface, and hex. */
#include "sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#define SHA256_LEN 32

int sha256_steps_begin(struct sha256_steps *h, int fd, uint64_t size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	memset(h, 0, sizeof *h);
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		errno = ENOMEM;
		return -1;
	}
	h->md = md;
	h->fd = fd;
	h->size = size;
	return 0;
}

int sha256_steps_run(struct sha256_steps *h, unsigned char *buf, size_t bufsz, size_t budget)
{
	for (size_t done = 0; done < budget && h->done < h->size;) {
		uint64_t left = h->size - h->done;
		size_t want = budget - done < bufsz ? budget - done : bufsz;
		if (left < want)
			want = (size_t)left;
		ssize_t n = pread(h->fd, buf, want, (off_t)h->done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the file ended before `size` */
			return -1;
		}
		EVP_DigestUpdate(h->md, buf, (size_t)n);
		h->done += (uint64_t)n;
		done += (size_t)n;
	}
	return h->done == h->size;
}

bool sha256_steps_feed(struct sha256_steps *h, uint64_t off, const void *data, size_t len)
{
	if (!h->md || off != h->done || len > h->size - h->done)
		return false;
	EVP_DigestUpdate(h->md, data, len);
	h->done += len;
	return true;
}

void sha256_steps_finish(struct sha256_steps *h, char hex[WIRE_SHA_HEX + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_DigestFinal_ex(h->md, digest, &len);
	hex_encode(digest, SHA256_LEN, hex);
	sha256_steps_abort(h);
}

void sha256_steps_abort(struct sha256_steps *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

bool sha256_hex_valid(const char *s)
{
	if (strlen(s) != WIRE_SHA_HEX)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}
