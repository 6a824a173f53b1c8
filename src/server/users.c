/* users.c - the accounts file: parse, look up, add and remove, write back. */
#include "users.h"
#include "perms.h"
#include "sha256.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define USERS_LINE_MAX 512

static void digest_of(const char *token, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	if (!EVP_Digest(token, len, out, &n, EVP_sha256(), NULL))
		memset(out, 0, 32); /* matches no token: the comparison still runs */
}

/* A digit sha256_hex_valid has let through. */
static unsigned hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

static bool hex_decode32(const char *hex, unsigned char out[32])
{
	if (!sha256_hex_valid(hex))
		return false;
	for (int i = 0; i < 32; i++)
		out[i] = (unsigned char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
	return true;
}

bool users_name_valid(const char *name, size_t len)
{
	if (nick_check(name, len) != NICK_OK)
		return false;
	if (len > 5 && strncasecmp(name, "guest", 5) == 0 &&
	    strspn(name + 5, "0123456789") == len - 5)
		return false;
	return true;
}

const struct user *users_find(const struct users *u, const char *name, size_t len)
{
	char want[NICK_MAX_BYTES + 1], key[NICK_MAX_BYTES + 1];
	if (nick_check(name, len) != NICK_OK)
		return NULL;
	nick_fold(name, len, want);
	for (size_t i = 0; i < u->n; i++) {
		nick_fold(u->list[i].name, strlen(u->list[i].name), key);
		if (strcmp(key, want) == 0)
			return &u->list[i];
	}
	return NULL;
}

bool users_token_matches(const struct user *user, const char *token, size_t len)
{
	unsigned char d[32];
	digest_of(token, len, d);
	return CRYPTO_memcmp(d, user->digest, sizeof d) == 0;
}

static void users_append(struct users *u, const struct user *one)
{
	u->list = xrealloc(u->list, (u->n + 1) * sizeof *u->list);
	u->list[u->n++] = *one;
}

void users_free(struct users *u)
{
	free(u->list);
	u->list = NULL;
	u->n = 0;
}

/* ---- the file ---- */

/* One "NAME PERMS DIGEST" line into *one; false if it is not one. */
static bool parse_line(char *line, const struct users *so_far, struct user *one, const char **why)
{
	char *save, *name = strtok_r(line, " \t", &save), *perms = strtok_r(NULL, " \t", &save),
		    *digest = strtok_r(NULL, " \t", &save);
	*why = "expected NAME PERMS SHA256";
	if (!name || !perms || !digest)
		return false;
	if (strtok_r(NULL, " \t", &save)) /* a fourth word */
		return false;
	*why = "invalid account name";
	if (!users_name_valid(name, strlen(name)))
		return false;
	*why = "a second account of this name";
	if (users_find(so_far, name, strlen(name)))
		return false;
	*why = "permissions must be chat,read,write (any of them) or none";
	if (!perms_parse(perms, &one->perms))
		return false;
	*why = "the digest must be 64 lowercase hex digits";
	if (!hex_decode32(digest, one->digest))
		return false;
	snprintf(one->name, sizeof one->name, "%s", name);
	return true;
}

int users_load(const char *path, struct users *out, char err[USERS_ERR_LEN])
{
	FILE *f = fopen(path, "re");
	char line[USERS_LINE_MAX];
	unsigned lineno = 0;

	out->list = NULL;
	out->n = 0;
	if (!f) {
		int saved = errno;
		snprintf(err, USERS_ERR_LEN, "%s: %s", path, strerror(errno));
		errno = saved;
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			snprintf(err, USERS_ERR_LEN, "%s:%u: line too long", path, lineno);
			goto bad;
		}
		const char *p = line + strspn(line, " \t");
		if (!*p || *p == '#')
			continue;
		struct user one;
		const char *why;
		if (!parse_line(line, out, &one, &why)) {
			snprintf(err, USERS_ERR_LEN, "%s:%u: %s", path, lineno, why);
			goto bad;
		}
		users_append(out, &one);
	}
	(void)fclose(f);
	return 0;
bad:
	(void)fclose(f);
	users_free(out);
	errno = EINVAL;
	return -1;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_users(int fd, const struct users *u)
{
	static const char head[] = "# bottled accounts (bottled(8)): NAME PERMS SHA256-OF-TOKEN\n";
	if (write_all(fd, head, sizeof head - 1) < 0)
		return -1;
	for (size_t i = 0; i < u->n; i++) {
		char line[USERS_LINE_MAX], perms[PERMS_TEXT_MAX], hex[65];
		hex_encode(u->list[i].digest, 32, hex);
		int n = snprintf(line, sizeof line, "%s %s %s\n", u->list[i].name,
		                 perms_text(u->list[i].perms, perms), hex);
		if (write_all(fd, line, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

/* The folder of path synced, so the rename itself survives a crash. */
static void sync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int users_save(const char *path, const struct users *u, char err[USERS_ERR_LEN])
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
		snprintf(err, USERS_ERR_LEN, "%s: path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	/* 0600 from the start, and again by fchmod: the umask can only take away. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, USERS_ERR_LEN, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) < 0 || write_users(fd, u) < 0 || fsync(fd) < 0) {
		int saved = errno;
		snprintf(err, USERS_ERR_LEN, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int saved = errno;
		snprintf(err, USERS_ERR_LEN, "cannot replace %s: %s", path, strerror(errno));
		unlink(tmp);
		errno = saved;
		return -1;
	}
	sync_dir_of(path);
	return 0;
}

/* ---- changes ---- */

int users_add(struct users *u, const char *name, unsigned perms, char *token,
              char err[USERS_ERR_LEN])
{
	unsigned char secret[USERS_TOKEN_BYTES];
	struct user one = { .perms = perms };

	if (!users_name_valid(name, strlen(name))) {
		snprintf(err, USERS_ERR_LEN,
		         "invalid account name '%s': 1-%d letters, digits or _-.[], and not "
		         "Guest<digits>",
		         name, NICK_MAX_CHARS);
		return -1;
	}
	if (users_find(u, name, strlen(name))) {
		snprintf(err, USERS_ERR_LEN, "an account '%s' exists; --remove-user it first",
		         name);
		return -1;
	}
	if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
		snprintf(err, USERS_ERR_LEN, "no random bytes for a token: %s", strerror(errno));
		return -1;
	}
	hex_encode(secret, sizeof secret, token);
	digest_of(token, USERS_TOKEN_HEX, one.digest);
	snprintf(one.name, sizeof one.name, "%s", name);
	users_append(u, &one);
	return 0;
}

bool users_remove(struct users *u, const char *name)
{
	const struct user *found = users_find(u, name, strlen(name));
	if (!found)
		return false;
	size_t i = (size_t)(found - u->list);
	memmove(&u->list[i], &u->list[i + 1], (u->n - i - 1) * sizeof *u->list);
	u->n--;
	return true;
}
