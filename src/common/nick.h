/* Nickname rules: 1..32 code points of letters (any script), ASCII digits and "_-.[]",
 * strictly valid UTF-8. Uniqueness is case-insensitive via nick_fold(). Pure. */
#ifndef BOTTLE_NICK_H
#define BOTTLE_NICK_H

#include <stddef.h>

#define NICK_MAX_CHARS 32
#define NICK_MAX_BYTES (NICK_MAX_CHARS * 4)

enum nick_status { NICK_OK, NICK_EMPTY, NICK_INVALID };

/* Checks raw bytes s[0..len); NUL bytes, bad UTF-8 and too long names are NICK_INVALID. */
enum nick_status nick_check(const char *s, size_t len);

/* Writes the case-folded key of a valid nick into out (NUL-terminated, out must hold
 * NICK_MAX_BYTES + 1); returns its length. Two nicks clash iff their keys are equal.
 * For input that fails nick_check, writes "" and returns 0. */
size_t nick_fold(const char *s, size_t len, char out[NICK_MAX_BYTES + 1]);

#endif
