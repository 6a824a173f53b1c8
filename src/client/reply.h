/* reply.h - the words of a server's OK reply ("OK <size> <offset> <sha256>"),
 * read as spans of the payload: split at spaces, numbers and digests checked
 * with the protocol's own rules (wire.h, sha256.h). Pure. */
#ifndef BOTTLE_REPLY_H
#define BOTTLE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Splits "a b c" into up to n words. Returns how many, or -1 when more follow. */
int reply_words(const char *p, size_t len, const char **w, size_t *wl, int n);
/* A size, offset or count: decimal digits, below 2^63. */
bool reply_u63(const char *p, size_t len, uint64_t *v);
/* A SHA-256 as the protocol writes it: 64 lowercase hex digits. */
bool reply_sha(const char *p, size_t len);

#endif
