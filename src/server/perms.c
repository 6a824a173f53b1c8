/* perms.c - permission sets as the users file and the command line write them. */
#include "perms.h"

#include <string.h>

static const struct {
	unsigned bit;
	const char *name;
} perm_names[] = {
	{ PERM_CHAT, "chat" },
	{ PERM_READ, "read" },
	{ PERM_WRITE, "write" },
};

#define NPERMS (sizeof perm_names / sizeof perm_names[0])

static unsigned perm_word(const char *w, size_t len)
{
	for (size_t i = 0; i < NPERMS; i++)
		if (strlen(perm_names[i].name) == len && memcmp(perm_names[i].name, w, len) == 0)
			return perm_names[i].bit;
	return 0;
}

bool perms_parse(const char *text, unsigned *out)
{
	if (strcmp(text, "none") == 0 || strcmp(text, "-") == 0) {
		*out = PERM_NONE;
		return true;
	}
	if (strcmp(text, "all") == 0) {
		*out = PERM_ALL;
		return true;
	}
	unsigned set = 0;
	for (const char *p = text;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		unsigned bit = perm_word(p, len);
		if (!bit || (set & bit))
			return false; /* unknown, empty or repeated */
		set |= bit;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = set;
	return true;
}

const char *perms_text(unsigned perms, char out[PERMS_TEXT_MAX])
{
	size_t n = 0;
	for (size_t i = 0; i < NPERMS; i++) {
		if (!(perms & perm_names[i].bit))
			continue;
		size_t l = strlen(perm_names[i].name);
		if (n)
			out[n++] = ',';
		memcpy(out + n, perm_names[i].name, l);
		n += l;
	}
	if (!n)
		memcpy(out, "none", sizeof "none");
	else
		out[n] = '\0';
	return out;
}

const char *perms_name(unsigned bit)
{
	for (size_t i = 0; i < NPERMS; i++)
		if (perm_names[i].bit == bit)
			return perm_names[i].name;
	return "?";
}
