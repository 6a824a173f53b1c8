/* store.c - files on disk, opened only relative to the storage folder's fd. */
#include "store.h"
#include "xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The server's own folder is the name no file may have (wire.h). */
#define STORE_META_DIR WIRE_RESERVED_NAME
#define STORE_PARTIAL_DIR STORE_META_DIR "/partial"
#define STORE_LOCK STORE_META_DIR "/lock"

struct store {
	int dirfd;  /* DIR */
	int partfd; /* DIR/.bottle/partial */
	int lockfd; /* DIR/.bottle/lock, flock()ed while we run */
};

static int open_dir_at(int at, const char *path, bool create)
{
	if (create && mkdirat(at, path, 0750) < 0 && errno != EEXIST)
		return -1;
	return openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Two servers writing one folder would resume each other's partials with
 * different bytes: the first to start holds an exclusive lock on it, and the
 * lock file names its pid for the error the second one prints. */
static int lock_dir(int dirfd, long *holder)
{
	int fd = openat(dirfd, STORE_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char text[24] = "";
		int saved = errno == EWOULDBLOCK ? EBUSY : errno;
		ssize_t n = pread(fd, text, sizeof text - 1, 0);
		*holder = n > 0 ? strtol(text, NULL, 10) : 0;
		close(fd);
		errno = saved;
		return -1;
	}
	char pid[24];
	int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

struct store *store_open(const char *dir, long *holder)
{
	*holder = 0;
	int dirfd = open_dir_at(AT_FDCWD, dir, true);
	if (dirfd < 0)
		return NULL;
	int metafd = open_dir_at(dirfd, STORE_META_DIR, true);
	int lockfd = metafd < 0 ? -1 : lock_dir(dirfd, holder);
	int partfd = lockfd < 0 ? -1 : open_dir_at(dirfd, STORE_PARTIAL_DIR, true);
	int saved = errno;
	if (metafd >= 0)
		close(metafd);
	if (partfd < 0) {
		if (lockfd >= 0)
			close(lockfd);
		close(dirfd);
		errno = saved;
		return NULL;
	}
	struct store *st = xmalloc(sizeof *st);
	st->dirfd = dirfd;
	st->partfd = partfd;
	st->lockfd = lockfd;
	return st;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	close(st->dirfd);
	close(st->partfd);
	close(st->lockfd); /* releases the lock */
	free(st);
}

/* openat2 keeps the lookup inside DIR and refuses symlinks; older kernels get
 * O_NOFOLLOW, which is enough because names hold no '/'. O_NONBLOCK so that a
 * FIFO someone left in DIR can't stall the loop on open. */
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, name, (int)how.flags, mode);
	return fd;
}

int store_open_file(struct store *st, const char *name, struct stat *sb)
{
	int fd = open_beneath(st->dirfd, name, O_RDONLY, 0);
	if (fd < 0)
		return -1;
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

/* A directory stream over a folder we hold open, leaving our fd untouched. */
static DIR *dir_stream(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d && fd >= 0)
		close(fd);
	return d;
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_file *)a)->name, ((const struct store_file *)b)->name);
}

ssize_t store_list(struct store *st, struct store_file **files)
{
	DIR *d = dir_stream(st->dirfd);
	size_t n = 0, cap = 0;
	struct dirent *e;

	*files = NULL;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat sb;
		if (!wire_name_valid(e->d_name, strlen(e->d_name)) ||
		    fstatat(st->dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			*files = xrealloc(*files, cap * sizeof **files);
		}
		snprintf((*files)[n].name, sizeof(*files)[n].name, "%s", e->d_name);
		(*files)[n++].size = (uint64_t)sb.st_size;
	}
	closedir(d);
	if (n)
		qsort(*files, n, sizeof **files, file_cmp);
	return (ssize_t)n;
}

/* A published name that is a regular file here (not a symlink, a folder...). */
static bool is_regular(struct store *st, const char *name)
{
	struct stat sb;
	return fstatat(st->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode);
}

int store_delete(struct store *st, const char *name)
{
	if (!is_regular(st, name)) {
		errno = ENOENT;
		return -1;
	}
	return unlinkat(st->dirfd, name, 0);
}

int store_rename(struct store *st, const char *name, const char *to)
{
	if (!is_regular(st, name)) {
		errno = ENOENT;
		return -1;
	}
	/* NOREPLACE: two people renaming onto one name can not lose a file. */
	return renameat2(st->dirfd, name, st->dirfd, to, RENAME_NOREPLACE);
}

/* Adds the sizes of the regular files in dirfd whose names pass `keep`. */
static int add_sizes(int dirfd, bool (*keep)(const char *name), uint64_t *bytes)
{
	DIR *d = dir_stream(dirfd);
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat sb;
		if (keep(e->d_name) && fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode))
			*bytes += (uint64_t)sb.st_size;
	}
	closedir(d);
	return 0;
}

static bool published_name(const char *name) { return wire_name_valid(name, strlen(name)); }

static bool partial_data(const char *name)
{
	size_t len = strlen(name);
	return len > 5 && strcmp(name + len - 5, ".data") == 0;
}

int store_usage(struct store *st, uint64_t *bytes)
{
	*bytes = 0;
	if (add_sizes(st->dirfd, published_name, bytes) < 0)
		return -1;
	return add_sizes(st->partfd, partial_data, bytes);
}

/* The cached digest is "HEX SIZE MTIME_SEC.MTIME_NSEC": stale once the file changes. */
static void sha_stamp(char *out, size_t outsz, const char *hex, const struct stat *sb)
{
	snprintf(out, outsz, "%.64s %lld %lld.%09ld", hex, (long long)sb->st_size,
	         (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
}

bool store_get_sha(int fd, const struct stat *sb, char hex[WIRE_SHA_HEX + 1])
{
	char val[160], want[160];
	ssize_t n = fgetxattr(fd, WIRE_SHA_XATTR, val, sizeof val - 1);
	if (n < WIRE_SHA_HEX)
		return false;
	val[n] = '\0';
	memcpy(hex, val, WIRE_SHA_HEX);
	hex[WIRE_SHA_HEX] = '\0';
	sha_stamp(want, sizeof want, hex, sb);
	return strcmp(val, want) == 0;
}

void store_set_sha(int fd, const char hex[WIRE_SHA_HEX + 1])
{
	struct stat sb;
	char val[160];
	if (fstat(fd, &sb) < 0)
		return;
	sha_stamp(val, sizeof val, hex, &sb);
	fsetxattr(fd, WIRE_SHA_XATTR, val, strlen(val), 0); /* best effort: a cache */
}

/* ---- partial uploads: ID.data holds the bytes, ID.meta what they are part of ---- */

static void partial_path(char *out, size_t outsz, const char *id, const char *ext)
{
	snprintf(out, outsz, "%s.%s", id, ext);
}

static bool meta_matches(struct store *st, const char *id, const char *want)
{
	char path[WIRE_TOKEN_MAX + 8], have[WIRE_NAME_MAX + 128];
	partial_path(path, sizeof path, id, "meta");
	int fd = open_beneath(st->partfd, path, O_RDONLY, 0);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, have, sizeof have - 1);
	close(fd);
	return n == (ssize_t)strlen(want) && memcmp(have, want, (size_t)n) == 0;
}

static int meta_write(struct store *st, const char *id, const char *meta)
{
	char path[WIRE_TOKEN_MAX + 8];
	partial_path(path, sizeof path, id, "meta");
	int fd = open_beneath(st->partfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -1;
	size_t len = strlen(meta);
	int rc = write(fd, meta, len) == (ssize_t)len ? 0 : -1;
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int store_partial_open(struct store *st, const char *id, const char *name, uint64_t size,
                       const char *sha, struct store_partial *p)
{
	char meta[WIRE_NAME_MAX + 128], path[WIRE_TOKEN_MAX + 8];
	struct stat sb;

	snprintf(meta, sizeof meta, "%llu %s %s\n", (unsigned long long)size, sha[0] ? sha : "-",
	         name);
	snprintf(p->id, sizeof p->id, "%s", id);
	partial_path(path, sizeof path, id, "data");
	bool same = meta_matches(st, id, meta);
	p->fd = open_beneath(st->partfd, path, O_RDWR | O_CREAT, 0640);
	if (p->fd < 0)
		return -1;
	if (fstat(p->fd, &sb) < 0)
		goto fail;
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		/* Not a file of ours alone (a hard link someone planted): writing
		 * would reach the other name. Drop the name, make a new file. */
		close(p->fd);
		if (unlinkat(st->partfd, path, 0) < 0)
			return -1;
		p->fd = open_beneath(st->partfd, path, O_RDWR | O_CREAT | O_EXCL, 0640);
		if (p->fd < 0 || fstat(p->fd, &sb) < 0)
			goto fail;
		same = false;
	}
	if (!same || (uint64_t)sb.st_size > size) {
		/* Another file's partial, or longer than the whole file: it can't be
		 * a prefix of this one. Start over. */
		if (ftruncate(p->fd, 0) < 0)
			goto fail;
		sb.st_size = 0;
	}
	p->have = (uint64_t)sb.st_size;
	if (!same && meta_write(st, id, meta) < 0)
		goto fail;
	return 0;
fail:;
	int saved = errno;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	errno = saved;
	return -1;
}

static void partial_unlink(struct store *st, const char *id)
{
	char path[WIRE_TOKEN_MAX + 8];
	partial_path(path, sizeof path, id, "data");
	unlinkat(st->partfd, path, 0);
	partial_path(path, sizeof path, id, "meta");
	unlinkat(st->partfd, path, 0);
}

int store_partial_publish(struct store *st, struct store_partial *p, const char *name)
{
	char path[WIRE_TOKEN_MAX + 8];
	partial_path(path, sizeof path, p->id, "data");
	/* Data first, then the name: a crash never publishes a file with holes. */
	if (fdatasync(p->fd) < 0 && errno != EINVAL)
		return -1;
	if (renameat(st->partfd, path, st->dirfd, name) < 0)
		return -1;
	partial_path(path, sizeof path, p->id, "meta");
	unlinkat(st->partfd, path, 0);
	/* The new name is durable only once its folder is: a failure here is a
	 * failure to store, even though the name is already visible. */
	if (fsync(st->dirfd) < 0 && errno != EINVAL)
		return -1;
	return 0;
}

void store_partial_remove(struct store *st, struct store_partial *p) { partial_unlink(st, p->id); }

int store_expire_partials(struct store *st, time_t ttl)
{
	DIR *d = dir_stream(st->partfd);
	time_t now = time(NULL);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat sb;
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".data") != 0 ||
		    fstatat(st->partfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    now - sb.st_mtime < ttl)
			continue;
		char id[WIRE_TOKEN_MAX + 1];
		snprintf(id, sizeof id, "%.*s", (int)(len - 5), e->d_name);
		partial_unlink(st, id);
		removed++;
	}
	closedir(d);
	return removed;
}
