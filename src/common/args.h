/* args.h - splitting a command's argument into words. A word is a run of
 * non-spaces, or a double-quoted string in which \" and \\ stand for " and \.
 * Quoting lets file names hold spaces. Pure. */
#ifndef BOTTLE_ARGS_H
#define BOTTLE_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct args {
	const char *p, *end;
};

void args_init(struct args *a, const char *text, size_t len);
/* Copies the next word into out (NUL-terminated). Returns its length, or -1 when
 * there are no more words, -2 when the word is malformed or longer than outsz-1. */
int args_next(struct args *a, char *out, size_t outsz);
bool args_done(const struct args *a);
/* Writes word, quoted if it needs to be, into out; returns the length or -1 if
 * it doesn't fit. */
int args_quote(const char *word, char *out, size_t outsz);

#endif
