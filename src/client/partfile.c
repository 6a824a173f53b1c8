/* partfile.c - PATH.part: opening, tagging with the digest, writing,
 * verifying in steps and the durable rename into place (partfile.h). */
#include "partfile.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define VERIFY_STEP (1u << 20)   /* bytes read back and hashed per step */
#define CATCH_UP_STEP (1u << 20) /* the same, per write while data arrives */
#define VERIFY_BUF (256 * 1024)

int partfile_open(struct partfile *pf, const char *path)
{
	struct stat sb;
	char sha[WIRE_SHA_HEX + 1];
	size_t n = strlen(path) + sizeof ".part";

	memset(pf, 0, sizeof *pf);
	pf->path = xstrdup(path);
	pf->part = xmalloc(n);
	snprintf(pf->part, n, "%s.part", path);
	pf->fd = open(pf->part, O_RDWR | O_CLOEXEC);
	if (pf->fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(pf->fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return 0;
	pf->size = (uint64_t)sb.st_size;
	if (fgetxattr(pf->fd, WIRE_SHA_XATTR, sha, WIRE_SHA_HEX) == WIRE_SHA_HEX) {
		sha[WIRE_SHA_HEX] = '\0';
		if (sha256_hex_valid(sha))
			memcpy(pf->sha, sha, sizeof sha);
	}
	return 0;
}

int partfile_create(struct partfile *pf)
{
	if (pf->fd >= 0)
		return 0;
	pf->fd = open(pf->part, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	return pf->fd < 0 ? -1 : 0;
}

int partfile_truncate(struct partfile *pf, uint64_t size) { return ftruncate(pf->fd, (off_t)size); }

void partfile_tag(struct partfile *pf, const char *sha)
{
	if (memcmp(pf->sha, sha, WIRE_SHA_HEX) == 0)
		return;
	memcpy(pf->sha, sha, WIRE_SHA_HEX);
	pf->sha[WIRE_SHA_HEX] = '\0';
	/* Best effort: without it a later resume still works, unchecked. */
	fsetxattr(pf->fd, WIRE_SHA_XATTR, pf->sha, WIRE_SHA_HEX, 0);
}

int partfile_receive(struct partfile *pf, uint64_t offset, uint64_t size)
{
	pf->written = offset;
	if (pf->hash.md && pf->hash.size == size && pf->hash.done <= offset)
		return 0; /* the same data goes on where the last connection stopped */
	sha256_steps_abort(&pf->hash);
	return sha256_steps_begin(&pf->hash, pf->fd, size);
}

/* Reads back and hashes at most budget bytes of what is written but not
 * hashed (a resumed .part's start, or data written while the hash lagged). */
static int hash_written(struct partfile *pf, size_t budget)
{
	static unsigned char buf[VERIFY_BUF];
	uint64_t lag = pf->written - pf->hash.done;

	if (lag < budget)
		budget = (size_t)lag;
	return budget ? sha256_steps_run(&pf->hash, buf, sizeof buf, budget) : 0;
}

int partfile_write(struct partfile *pf, uint64_t off, const unsigned char *p, size_t len)
{
	/* Best effort: a read error here is met again, and reported, when the
	 * check at the end reads the same bytes. */
	if (pf->hash.md && pf->hash.done < off)
		(void)hash_written(pf, CATCH_UP_STEP);
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(pf->fd, p + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += (size_t)n;
	}
	/* Hashed once written, so the digest is of what the .part holds; the bytes
	 * are still in the cache. Bytes the hash is not up to yet (it lags behind
	 * a resumed start) are read back later instead. */
	(void)sha256_steps_feed(&pf->hash, off, p, len);
	if (off + len > pf->written)
		pf->written = off + len;
	return 0;
}

int partfile_verify_begin(struct partfile *pf, uint64_t size)
{
	pf->written = size; /* all of it is in now */
	if (pf->hash.md && pf->hash.size == size)
		return 0;
	sha256_steps_abort(&pf->hash);
	return sha256_steps_begin(&pf->hash, pf->fd, size);
}

uint64_t partfile_hashed(const struct partfile *pf) { return pf->hash.done; }

enum partfile_check partfile_verify_step(struct partfile *pf, char got[WIRE_SHA_HEX + 1])
{
	int rc = hash_written(pf, VERIFY_STEP);

	if (rc == 0 && pf->hash.done < pf->hash.size)
		return PARTFILE_MORE;
	if (rc < 0)
		return PARTFILE_ERROR;
	sha256_steps_finish(&pf->hash, got);
	if (strcmp(got, pf->sha) == 0)
		return PARTFILE_GOOD;
	unlink(pf->part);
	return PARTFILE_BAD;
}

/* fsync that accepts EINVAL: the file system has nothing to sync. */
static int sync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc < 0 && saved != EINVAL ? -1 : 0;
}

int partfile_publish(struct partfile *pf)
{
	if (sync_path(pf->part, O_RDONLY) < 0 || rename(pf->part, pf->path) < 0)
		return -1;
	char *copy = xstrdup(pf->path);
	int rc = sync_path(dirname(copy), O_RDONLY | O_DIRECTORY);
	int saved = errno;
	free(copy);
	errno = saved;
	return rc;
}

void partfile_close(struct partfile *pf)
{
	sha256_steps_abort(&pf->hash);
	if (pf->fd >= 0)
		close(pf->fd);
	pf->fd = -1;
	free(pf->path);
	free(pf->part);
	pf->path = pf->part = NULL;
}
