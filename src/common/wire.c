/* wire.c - the protocol's words and the transfer commands' arguments. */
#include "wire.h"
#include "args.h"
#include "sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Room for a number word. A word that doesn't fit is refused before it is
 * read as a number, so these sizes are part of what the server accepts
 * (leading zeros included): keep them. */
#define WIRE_NUMBER_WORD 80
#define WIRE_FROM_WORD 24
/* A name quoted by args_quote: every byte escaped, and the two quotes. */
#define WIRE_QUOTED_NAME (2 * WIRE_NAME_MAX + 3)

/* ---- words ---- */

bool wire_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > WIRE_NAME_MAX)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && memcmp(name, "..", 2) == 0) ||
	    (len == strlen(WIRE_RESERVED_NAME) && memcmp(name, WIRE_RESERVED_NAME, len) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

bool wire_token_valid(const char *token, size_t len)
{
	if (len < 8 || len > WIRE_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = token[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

bool wire_parse_u63(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* ---- encoders ---- */

/* The length written, or -1 when snprintf did not fit. */
static int fitted(int n, size_t outsz) { return n < 0 || (size_t)n >= outsz ? -1 : n; }

int wire_upload_encode(char *out, size_t outsz, const struct wire_upload *u)
{
	char q[WIRE_QUOTED_NAME];

	if (!u->sha[0] != !u->token[0] || args_quote(u->name, q, sizeof q) < 0)
		return -1;
	if (!u->sha[0])
		return fitted(snprintf(out, outsz, "%s %" PRIu64, q, u->size), outsz);
	return fitted(snprintf(out, outsz, "%s %" PRIu64 " %s %s", q, u->size, u->sha, u->token),
	              outsz);
}

int wire_download_encode(char *out, size_t outsz, const struct wire_download *d)
{
	char q[WIRE_QUOTED_NAME];

	if (args_quote(d->name, q, sizeof q) < 0)
		return -1;
	if (d->sha[0]) /* the digest needs the offset before it, even 0 */
		return fitted(snprintf(out, outsz, "%s %" PRIu64 " %s", q, d->offset, d->sha),
		              outsz);
	if (d->offset)
		return fitted(snprintf(out, outsz, "%s %" PRIu64, q, d->offset), outsz);
	return fitted(snprintf(out, outsz, "%s", q), outsz);
}

int wire_list_encode(char *out, size_t outsz, const struct wire_list *l)
{
	if (!l->from)
		return fitted(snprintf(out, outsz, "%s", ""), outsz);
	return fitted(snprintf(out, outsz, "%" PRIu64, l->from), outsz);
}

int wire_names_encode(char *out, size_t outsz, const struct wire_names *n)
{
	char q[WIRE_QUOTED_NAME], t[WIRE_QUOTED_NAME];

	if (args_quote(n->name, q, sizeof q) < 0)
		return -1;
	if (!n->to[0])
		return fitted(snprintf(out, outsz, "%s", q), outsz);
	if (args_quote(n->to, t, sizeof t) < 0)
		return -1;
	return fitted(snprintf(out, outsz, "%s %s", q, t), outsz);
}

/* ---- parsers ---- */

/* Starts on an argument whose first word is a file name, and reads that. */
static enum wire_status name_first(struct args *a, const char *arg, size_t len,
                                   char name[WIRE_NAME_MAX + 1])
{
	args_init(a, arg, len);
	int n = args_next(a, name, WIRE_NAME_MAX + 1);
	if (n == -1)
		return WIRE_NO_NAME;
	if (n < 0 || !wire_name_valid(name, (size_t)n))
		return WIRE_BAD_NAME;
	return WIRE_OK;
}

enum wire_status wire_upload_parse(const char *arg, size_t len, struct wire_upload *u)
{
	struct args a;
	char word[WIRE_NUMBER_WORD];

	memset(u, 0, sizeof *u);
	enum wire_status st = name_first(&a, arg, len, u->name);
	if (st != WIRE_OK)
		return st;
	if (args_next(&a, word, sizeof word) < 0 || !wire_parse_u63(word, &u->size))
		return WIRE_BAD_SIZE;
	int n = args_next(&a, u->sha, sizeof u->sha);
	if (n == -1)
		return WIRE_OK;
	if (n < 0 || !sha256_hex_valid(u->sha) || args_next(&a, u->token, sizeof u->token) < 0 ||
	    !wire_token_valid(u->token, strlen(u->token)) || !args_done(&a))
		return WIRE_USAGE;
	return WIRE_OK;
}

enum wire_status wire_download_parse(const char *arg, size_t len, struct wire_download *d)
{
	struct args a;
	char word[WIRE_NUMBER_WORD];

	memset(d, 0, sizeof *d);
	enum wire_status st = name_first(&a, arg, len, d->name);
	if (st != WIRE_OK)
		return st;
	int n = args_next(&a, word, sizeof word);
	int m = n >= 0 ? args_next(&a, d->sha, sizeof d->sha) : -1;
	if (n == -2 || m == -2 || (n >= 0 && !wire_parse_u63(word, &d->offset)) ||
	    (m >= 0 && !sha256_hex_valid(d->sha)) || !args_done(&a))
		return WIRE_USAGE;
	return WIRE_OK;
}

enum wire_status wire_list_parse(const char *arg, size_t len, struct wire_list *l)
{
	struct args a;
	char word[WIRE_FROM_WORD];

	args_init(&a, arg, len);
	memset(l, 0, sizeof *l);
	int n = args_next(&a, word, sizeof word);
	if (n == -2 || (n >= 0 && !wire_parse_u63(word, &l->from)) || !args_done(&a))
		return WIRE_USAGE;
	return WIRE_OK;
}

enum wire_status wire_names_parse(const char *arg, size_t len, bool want_to, struct wire_names *n)
{
	struct args a;

	memset(n, 0, sizeof *n);
	enum wire_status st = name_first(&a, arg, len, n->name);
	if (st != WIRE_OK)
		return st;
	if (want_to) {
		int k = args_next(&a, n->to, sizeof n->to);
		if (k == -1)
			return WIRE_USAGE;
		if (k < 0 || !wire_name_valid(n->to, (size_t)k))
			return WIRE_BAD_NAME;
	}
	return args_done(&a) ? WIRE_OK : WIRE_USAGE;
}
