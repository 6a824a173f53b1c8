/* known_servers.c - the pinned certificates file (known_servers.h). */
#include "known_servers.h"
#include "userfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool known_servers_path(char *out, size_t len)
{
	return userfiles_config_path("known_servers", out, len);
}

bool known_servers_parse(const char *line, char *server, size_t slen, char *fp, size_t flen)
{
	const char *p = line + strspn(line, " \t");

	if (*p == '#' || *p == '\0' || *p == '\n' || *p == '\r')
		return false;
	if (!userfiles_next_word(&p, server, slen) || !userfiles_next_word(&p, fp, flen))
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
	(void)userfiles_make_parents(path); /* best effort: open says what failed */
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
