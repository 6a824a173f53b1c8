/* userkey.c - the per-user resume key: find, create once, read. */
#include "userkey.h"
#include "sha256.h"
#include "userfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define KEY_HEX (USERKEY_LEN * 2)

int userkey_path(const char *xdg_state_home, const char *home, char *out, size_t outsz)
{
	return userfiles_path(xdg_state_home, home, ".local/state", "key", out, outsz) ? 0 : -1;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 1: read, 0: no such file, -1: error (err filled). */
static int read_key(const char *path, unsigned char key[USERKEY_LEN], char err[USERKEY_ERR_LEN])
{
	char text[KEY_HEX + 8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(err, USERKEY_ERR_LEN, "cannot read the resume key %.400s: %s", path,
		         strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, text, sizeof text);
	close(fd);
	while (n > KEY_HEX && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	for (int i = 0; n == KEY_HEX && i < USERKEY_LEN; i++) {
		int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			n = -1;
		else
			key[i] = (unsigned char)(hi << 4 | lo);
	}
	if (n != KEY_HEX) {
		snprintf(err, USERKEY_ERR_LEN,
		         "%.400s: not a resume key (expected %d hex digits); "
		         "remove it to make a new one",
		         path, KEY_HEX);
		return -1;
	}
	return 1;
}

/* Writes a fresh key next to path and links it into place; if another process
 * was faster, its key stays (link fails with EEXIST) and we read that one. */
static int create_key(const char *path, char err[USERKEY_ERR_LEN])
{
	unsigned char raw[USERKEY_LEN];
	char tmp[4200], text[KEY_HEX + 1];

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		snprintf(err, USERKEY_ERR_LEN, "cannot make a resume key: getrandom: %s",
		         strerror(errno));
		return -1;
	}
	hex_encode(raw, sizeof raw, text);
	text[KEY_HEX] = '\n';
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	bool ok = write(fd, text, sizeof text) == (ssize_t)sizeof text && fsync(fd) == 0;
	close(fd);
	if (!ok || (link(tmp, path) < 0 && errno != EEXIST)) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	unlink(tmp);
	return 0;
fail:
	snprintf(err, USERKEY_ERR_LEN, "cannot create the resume key %.400s: %s", path,
	         strerror(errno));
	return -1;
}

int userkey_load(unsigned char key[USERKEY_LEN], char err[USERKEY_ERR_LEN])
{
	char path[4096];

	if (userkey_path(getenv("XDG_STATE_HOME"), getenv("HOME"), path, sizeof path) < 0) {
		snprintf(err, USERKEY_ERR_LEN,
		         "no place for the resume key: set HOME or XDG_STATE_HOME");
		return -1;
	}
	int rc = read_key(path, key, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (userfiles_make_parents(path) < 0) {
		snprintf(err, USERKEY_ERR_LEN, "cannot create the folder of %.400s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (create_key(path, err) < 0)
		return -1;
	return read_key(path, key, err) == 1 ? 0 : -1;
}
