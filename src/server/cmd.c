/* cmd.c - parsing and dispatch; the handlers live with what they act on. */
#include "cmd.h"
#include "auth.h"
#include "conn.h"
#include "escape.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CMD_SHOW_VERB 64 /* bytes of an unknown verb echoed back */

void cmd_split(const char *line, size_t len, const char **verb, size_t *vlen, const char **arg,
               size_t *alen)
{
	const char *sp = memchr(line, ' ', len);

	*verb = line;
	*vlen = sp ? (size_t)(sp - line) : len;
	*arg = sp ? sp + 1 : line + len;
	*alen = sp ? len - *vlen - 1 : 0;
}

const struct cmd_def *cmd_find(const char *verb, size_t vlen)
{
	for (const struct cmd_def *d = cmd_table; d->name; d++)
		if (strlen(d->name) == vlen && strncasecmp(d->name, verb, vlen) == 0)
			return d;
	return NULL;
}

const char *cmd_unknown_text(char *out, size_t outsz, const char *verb, size_t vlen)
{
	char shown[4 * CMD_SHOW_VERB + 8];
	escape_text(shown, sizeof shown, verb, vlen < CMD_SHOW_VERB ? vlen : CMD_SHOW_VERB);
	snprintf(out, outsz, "unknown command: %s", shown);
	return out;
}

void cmd_execute(struct conn *c, const char *line, size_t len)
{
	const char *verb, *arg;
	size_t vlen, alen;

	/* Spaces before the verb are a typing slip, not part of it. */
	while (len && *line == ' ') {
		line++;
		len--;
	}
	cmd_split(line, len, &verb, &vlen, &arg, &alen);
	if (vlen == 0) {
		conn_err(c, "empty command: start with a command's name; HELP lists them");
		return;
	}
	const struct cmd_def *d = cmd_find(verb, vlen);
	if (!d || !(d->flags & CMD_BEFORE_JOIN))
		conn_first_command(c);
	if (!d) {
		char shown[CMD_UNKNOWN_MAX];
		conn_err(c, "%s", cmd_unknown_text(shown, sizeof shown, verb, vlen));
		return;
	}
	if (!auth_permits(c, d)) /* the one place permissions are checked */
		return;
	d->fn(c, arg, alen);
}
