/* resume.h - what lets a transfer be picked up again: the upload's resume
 * token, derived so the same command run again finds its partial on the
 * server, and shell quoting for the command the user is told to run. Pure. */
#ifndef BOTTLE_RESUME_H
#define BOTTLE_RESUME_H

#include <stddef.h>
#include <stdint.h>

#define RESUME_KEY_LEN 32
#define RESUME_TOKEN_HEX 32

/* Hex of the first 16 bytes of
 * SHA-256(key || 0 || name || 0 || size in decimal || 0 || sha256 hex). */
void resume_token(const unsigned char key[RESUME_KEY_LEN], const char *name, uint64_t size,
                  const char *sha_hex, char out[RESUME_TOKEN_HEX + 1]);
/* A word for a POSIX shell: as it is when plain, else in single quotes. */
char *resume_shell_quote(const char *s, char *out, size_t outsz);

#endif
