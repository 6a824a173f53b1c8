/* resume.c - the upload's resume token and shell quoting for the resume
 * hint (resume.h). */
#include "resume.h"
#include "sha256.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

void resume_token(const unsigned char key[RESUME_KEY_LEN], const char *name, uint64_t size,
                  const char *sha_hex, char out[RESUME_TOKEN_HEX + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char num[24];
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	snprintf(num, sizeof num, "%" PRIu64, size);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, key, RESUME_KEY_LEN);
	EVP_DigestUpdate(md, "", 1);
	EVP_DigestUpdate(md, name, strlen(name));
	EVP_DigestUpdate(md, "", 1);
	EVP_DigestUpdate(md, num, strlen(num));
	EVP_DigestUpdate(md, "", 1);
	EVP_DigestUpdate(md, sha_hex, strlen(sha_hex));
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	hex_encode(digest, RESUME_TOKEN_HEX / 2, out);
}

char *resume_shell_quote(const char *s, char *out, size_t outsz)
{
	size_t n = 0;
	bool plain = *s != '\0';

	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		            "_-./:@%+=,[]",
		            *p))
			plain = false;
	if (plain) {
		snprintf(out, outsz, "%s", s);
		return out;
	}
	if (outsz < 3)
		return out;
	out[n++] = '\'';
	for (const char *p = s; *p && n + 6 < outsz; p++) {
		if (*p == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else {
			out[n++] = *p;
		}
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}
