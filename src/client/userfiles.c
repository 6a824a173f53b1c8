/* userfiles.c - paths, folders and words of the user's bottle files (userfiles.h). */
#include "userfiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool userfiles_path(const char *xdg, const char *home, const char *under_home, const char *name,
                    char *out, size_t len)
{
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/bottle/%s", xdg, name);
	else if (home && home[0])
		n = snprintf(out, len, "%s/%s/bottle/%s", home, under_home, name);
	else
		return false;
	return n > 0 && (size_t)n < len;
}

bool userfiles_config_path(const char *name, char *out, size_t len)
{
	return userfiles_path(getenv("XDG_CONFIG_HOME"), getenv("HOME"), ".config", name, out, len);
}

int userfiles_make_parents(const char *path)
{
	char dir[4096];

	snprintf(dir, sizeof dir, "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

bool userfiles_next_word(const char **p, char *out, size_t len)
{
	const char *s = *p + strspn(*p, " \t");
	size_t n = strcspn(s, " \t\r\n");

	*p = s + n;
	if (n == 0 || n >= len)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}
