/* args.c - the word splitter used by the transfer commands. */
#include "args.h"

#include <string.h>

void args_init(struct args *a, const char *text, size_t len)
{
	a->p = text;
	a->end = text + len;
}

static void skip_spaces(struct args *a)
{
	while (a->p < a->end && *a->p == ' ')
		a->p++;
}

bool args_done(const struct args *a)
{
	struct args copy = *a;
	skip_spaces(&copy);
	return copy.p == copy.end;
}

static int quoted_word(struct args *a, char *out, size_t outsz)
{
	size_t n = 0;
	for (a->p++; a->p < a->end; a->p++) {
		char c = *a->p;
		if (c == '"') {
			a->p++;
			if (a->p < a->end && *a->p != ' ')
				return -2; /* junk right after the closing quote */
			out[n] = '\0';
			return (int)n;
		}
		if (c == '\\') {
			if (++a->p == a->end || (*a->p != '"' && *a->p != '\\'))
				return -2;
			c = *a->p;
		}
		if (n + 1 >= outsz || c == '\0')
			return -2;
		out[n++] = c;
	}
	return -2; /* no closing quote */
}

int args_next(struct args *a, char *out, size_t outsz)
{
	skip_spaces(a);
	if (a->p == a->end)
		return -1;
	if (*a->p == '"')
		return quoted_word(a, out, outsz);
	const char *start = a->p;
	while (a->p < a->end && *a->p != ' ')
		a->p++;
	size_t n = (size_t)(a->p - start);
	if (n + 1 > outsz || memchr(start, '\0', n))
		return -2;
	memcpy(out, start, n);
	out[n] = '\0';
	return (int)n;
}

int args_quote(const char *word, char *out, size_t outsz)
{
	size_t n = 0, len = strlen(word);
	bool plain = len > 0 && !strpbrk(word, " \"\\");

	if (plain) {
		if (len + 1 > outsz)
			return -1;
		memcpy(out, word, len + 1);
		return (int)len;
	}
	if (outsz < 3)
		return -1;
	out[n++] = '"';
	for (const char *s = word; *s; s++) {
		if (n + 4 > outsz)
			return -1;
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
	return (int)n;
}
