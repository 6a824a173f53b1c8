/* account.c - the account bottle signs in as (account.h). */
#include "account.h"
#include "escape.h"
#include "nick.h"
#include "userfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKENS_MAX (64 * 1024) /* a tokens file is a few lines */

static struct {
	bool active;
	char name[NICK_MAX_BYTES + 1];
	char token[ACCOUNT_TOKEN_MAX + 1];
} me;

bool account_find_token(const char *text, const char *user, const char *addr,
                        char token[ACCOUNT_TOKEN_MAX + 1])
{
	bool any = false;
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n'), *p = line;
		char w[3][256];
		int n = 0;
		while (n < 3 &&
		       userfiles_next_word(&p, w[n], sizeof w[n])) /* stops at the line's end */
			n++;
		line = end ? end + 1 : NULL;
		if (n == 0 || w[0][0] == '#')
			continue;
		const char *name = n == 3 ? w[1] : w[0], *tok = n == 3 ? w[2] : w[1];
		if (n < 2 || strcmp(name, user) != 0 || strlen(tok) > ACCOUNT_TOKEN_MAX)
			continue;
		if (n == 3 && strcmp(w[0], addr) != 0)
			continue;
		if (n == 3 || !any) {
			memcpy(token, tok, strlen(tok) + 1); /* its length was checked */
			any = true;
		}
		if (n == 3)
			return true; /* this server's line wins */
	}
	return any;
}

/* The tokens file's text, if its mode lets nobody else read it: 1, 0 when
 * there is no file, -1 with err. */
static int read_tokens(const char *path, char *text, size_t size, char err[ACCOUNT_ERR_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, ACCOUNT_ERR_LEN, "cannot read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, ACCOUNT_ERR_LEN,
		         "%s may be read by others (mode %04o): it holds secrets; "
		         "chmod 600 %s",
		         path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	ssize_t n = read(fd, text, size - 1);
	int saved = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, ACCOUNT_ERR_LEN, "cannot read %s: %s", path, strerror(saved));
		return -1;
	}
	text[n] = '\0';
	return 1;
}

static bool token_valid(const char *t)
{
	size_t n = strlen(t);
	return n > 0 && n <= ACCOUNT_TOKEN_MAX && strcspn(t, " \t\r\n") == n;
}

int account_setup(const char *user, const char *addr, char err[ACCOUNT_ERR_LEN])
{
	const char *env = getenv("BOTTLE_TOKEN");
	char path[1024];

	me.active = false;
	if (!user || !user[0]) {
		if (env && env[0]) {
			snprintf(err, ACCOUNT_ERR_LEN,
			         "BOTTLE_TOKEN is set: say whose it is with "
			         "--user NAME or BOTTLE_USER");
			return -1;
		}
		return 0;
	}
	if (nick_check(user, strlen(user)) != NICK_OK) {
		snprintf(err, ACCOUNT_ERR_LEN, "--user: '%s' is not an account name", user);
		return -1;
	}
	snprintf(me.name, sizeof me.name, "%s", user);
	if (env && env[0]) {
		if (!token_valid(env)) {
			snprintf(err, ACCOUNT_ERR_LEN,
			         "BOTTLE_TOKEN: not a token (1-%d bytes, "
			         "no spaces)",
			         ACCOUNT_TOKEN_MAX);
			return -1;
		}
		snprintf(me.token, sizeof me.token, "%s", env);
		me.active = true;
		return 0;
	}
	if (!userfiles_config_path("tokens", path, sizeof path)) {
		snprintf(err, ACCOUNT_ERR_LEN,
		         "no token for %s: set BOTTLE_TOKEN (no HOME for "
		         "~/.config/bottle/tokens)",
		         user);
		return -1;
	}
	char *text = malloc(TOKENS_MAX);
	int rc = text ? read_tokens(path, text, TOKENS_MAX, err) : -1;
	if (!text)
		snprintf(err, ACCOUNT_ERR_LEN, "out of memory");
	if (rc == 1 && account_find_token(text, user, addr, me.token))
		me.active = true;
	free(text);
	if (rc < 0)
		return -1;
	if (!me.active) {
		snprintf(err, ACCOUNT_ERR_LEN,
		         "no token for %s: set BOTTLE_TOKEN, or add a line \"%s TOKEN\" to %s "
		         "(mode 0600)",
		         user, user, path);
		return -1;
	}
	return 0;
}

const char *account_name(void) { return me.active ? me.name : NULL; }

void account_send(struct client *cl)
{
	char arg[NICK_MAX_BYTES + ACCOUNT_TOKEN_MAX + 2];
	if (!me.active)
		return;
	int n = snprintf(arg, sizeof arg, "%s %s", me.name, me.token);
	(void)client_send(cl, "AUTH", arg, (size_t)n, ACCOUNT_TAG);
}

bool account_accepted(const struct client_msg *m, char why[ACCOUNT_ERR_LEN])
{
	if (m->kind == CLIENT_OK)
		return true;
	char text[4 * 200 + 8];
	escape_text(text, sizeof text, m->arg, m->arg_len < 200 ? m->arg_len : 200);
	snprintf(why, ACCOUNT_ERR_LEN, "cannot sign in as %s: %s", me.name, text);
	return false;
}
