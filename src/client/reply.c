/* reply.c - spans of an OK reply's words, checked as the protocol says
 * (reply.h); the rules themselves are wire.c's and sha256.c's. */
#include "reply.h"
#include "sha256.h"
#include "wire.h"

#include <string.h>

#define NUMBER_MAX 24 /* a longer word is no number below 2^63 */

int reply_words(const char *p, size_t len, const char **w, size_t *wl, int n)
{
	int k = 0;
	const char *end = p + len;

	while (p < end && k < n) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		w[k] = p;
		wl[k] = sp ? (size_t)(sp - p) : (size_t)(end - p);
		k++;
		p = sp ? sp + 1 : end;
	}
	return p < end ? -1 : k;
}

bool reply_u63(const char *p, size_t len, uint64_t *v)
{
	char word[NUMBER_MAX + 1];

	if (len > NUMBER_MAX || memchr(p, '\0', len))
		return false;
	memcpy(word, p, len);
	word[len] = '\0';
	return wire_parse_u63(word, v);
}

bool reply_sha(const char *p, size_t len)
{
	char hex[WIRE_SHA_HEX + 1];

	if (len != WIRE_SHA_HEX)
		return false;
	memcpy(hex, p, len);
	hex[len] = '\0';
	return sha256_hex_valid(hex);
}
