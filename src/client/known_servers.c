/* known_servers.c - the pinned certificates file (known_servers.h). */
#include "known_servers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool known_servers_path(char *out, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/bottle/known_servers", xdg);
	else if (home && home[0])
		n = snprintf(out, len, "%s/.config/bottle/known_servers", home);
	else
		return false;
	return n > 0 && (size_t)n < len;
}

/* Copies the word at *p (up to whitespace) into out; false if none or too long. */
static bool take_word(const char **p, char *out, size_t len)
{
	const char *s = *p + strspn(*p, " \t");
	size_t n = strcspn(s, " \t\r\n");

	if (n == 0 || n >= len)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return true;
}

bool known_servers_parse(const char *line, char *server, size_t slen, char *fp, size_t flen)
{
	const char *p = line + strspn(line, " \t");

	if (*p == '#' || *p == '\0' || *p == '\n' || *p == '\r')
		return false;
	if (!take_word(&p, server, slen) || !take_word(&p, fp, flen))
		return false;
	p += strspn(p, " \t\r\n");
	return *p == '\0'; /* two words, nothing after them */
}

enum known_result known_servers_check(const char *path, const char *server, const char *fp,
                                      int *line)
{
	FILE *f = fopen(path, "re");
	char buf[1024], s[512], f_fp[256];
	int n = 0;

	if (!f)
		return errno == ENOENT ? KNOWN_UNKNOWN : KNOWN_ERROR;
	while (fgets(buf, sizeof buf, f)) {
		n++;
		if (!known_servers_parse(buf, s, sizeof s, f_fp, sizeof f_fp) ||
		    strcmp(s, server) != 0)
			continue;
		(void)fclose(f);
		*line = n;
		return strcmp(f_fp, fp) == 0 ? KNOWN_MATCH : KNOWN_CHANGED;
	}
	(void)fclose(f);
	return KNOWN_UNKNOWN;
}

/* mkdir -p of the folders above path, mode 0700 for the ones made. */
static void make_parents(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(dir, 0700); /* best effort: open says what failed */
		*p = '/';
	}
}

/* Lines in the file now (a last line without '\n' counts too). */
static int count_lines(int fd)
{
	char buf[4096], last = '\n';
	ssize_t r;
	int n = 0;

	while ((r = read(fd, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
		last = buf[r - 1];
	}
	return last == '\n' ? n : -(n + 1); /* negative: needs a '\n' first */
}

int known_servers_add(const char *path, const char *server, const char *fp, int *line)
{
	make_parents(path);
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	(void)fchmod(fd, 0600); /* whatever the umask */
	int n = count_lines(fd);
	char text[1024];
	int len = snprintf(text, sizeof text, "%s%s %s\n", n < 0 ? "\n" : "", server, fp);
	*line = (n < 0 ? -n : n) + 1;
	ssize_t w = len > 0 && (size_t)len < sizeof text ? write(fd, text, (size_t)len) : -1;
	int err = errno;
	close(fd);
	errno = err;
	return w == len ? 0 : -1;
}
