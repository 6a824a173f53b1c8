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
	int lockfd; /* DIR/.bottle/lock, locked while we run (storelock.h) */
	/* What the owner records of our partials say (storelock_whoami). */
	char owner[STORELOCK_OWNER_MAX];
};

static int open_dir_at(int at, const char *path, bool create)
{
	if (create && mkdirat(at, path, 0750) < 0 && errno != EEXIST)
		return -1;
	return openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Two servers writing one folder would resume each other's partials with
 * different bytes, unless they are nodes of one cluster, which lock each
 * partial they write (store_partial_open). */
struct store *store_open(const char *dir, const char *cluster, struct storelock_holder *holder)
{
	*holder = (struct storelock_holder){ 0 };
	int dirfd = open_dir_at(AT_FDCWD, dir, true);
	if (dirfd < 0)
		return NULL;
	int metafd = open_dir_at(dirfd, STORE_META_DIR, true);
	int lockfd = metafd < 0 ? -1 : storelock_folder(dirfd, STORE_LOCK, cluster, holder);
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
	storelock_whoami(NULL, st->owner);
	return st;
}

void store_set_node(struct store *st, const char *node) { storelock_whoami(node, st->owner); }

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

/* The owner record beside a locked partial, ID.owner: who to name when
 * another upload asks for it. Best effort: the lock is what counts. */
static void owner_write(struct store *st, const char *id)
{
	char path[WIRE_TOKEN_MAX + 8];
	partial_path(path, sizeof path, id, "owner");
	int fd = open_beneath(st->partfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return;
	size_t len = strlen(st->owner);
	if (write(fd, st->owner, len) != (ssize_t)len)
		(void)ftruncate(fd, 0); /* better no name than half of one */
	close(fd);
}

static void owner_read(struct store *st, const char *id, char out[STORELOCK_OWNER_MAX])
{
	char path[WIRE_TOKEN_MAX + 8];
	partial_path(path, sizeof path, id, "owner");
	int fd = open_beneath(st->partfd, path, O_RDONLY, 0);
	ssize_t n = fd < 0 ? -1 : read(fd, out, STORELOCK_OWNER_MAX - 1);
	if (fd >= 0)
		close(fd);
	out[n > 0 ? n : 0] = '\0';
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	if (!out[0])
		snprintf(out, STORELOCK_OWNER_MAX, "another server");
}

/* The name still leads to the file fd has open. */
static bool still_named(int dirfd, const char *path, int fd)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && fstatat(dirfd, path, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* The partial's data file, opened (or held) and locked. Between our open and
 * our lock its holder may have published or deleted it, so once locked we
 * check that the name is still this file; as only a holder renames or
 * unlinks a partial, the answer can't change after that. */
static int open_locked(struct store *st, int held, const char *path, struct store_partial *p)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = held >= 0 ? held : open_beneath(st->partfd, path, O_RDWR | O_CREAT, 0640);
		bool mine = held >= 0; /* already locked by this process */
		held = -1;
		if (fd < 0)
			return -1;
		if (!mine && storelock_file(fd) < 0) {
			int saved = errno;
			close(fd);
			if (saved == EBUSY)
				owner_read(st, p->id, p->owner);
			errno = saved;
			return -1;
		}
		if (still_named(st->partfd, path, fd))
			return fd;
		close(fd);
	}
	errno = EBUSY; /* it keeps changing under us: someone else is at work */
	snprintf(p->owner, sizeof p->owner, "another server");
	return -1;
}

int store_partial_open(struct store *st, const char *id, const char *name, uint64_t size,
                       const char *sha, struct store_partial *p)
{
	return store_partial_take_over(st, -1, id, name, size, sha, p);
}

/* Locked first, read after: what another node left (it may have died in
 * the middle of a write) is what the files say now. On NFS taking the lock
 * also makes the client drop its cached attributes, so the size is fresh. */
int store_partial_take_over(struct store *st, int held, const char *id, const char *name,
                            uint64_t size, const char *sha, struct store_partial *p)
{
	char meta[WIRE_NAME_MAX + 128], path[WIRE_TOKEN_MAX + 8];
	struct stat sb;

	snprintf(meta, sizeof meta, "%llu %s %s\n", (unsigned long long)size, sha[0] ? sha : "-",
	         name);
	snprintf(p->id, sizeof p->id, "%s", id);
	p->owner[0] = '\0';
	partial_path(path, sizeof path, id, "data");
	p->fd = open_locked(st, held, path, p);
	if (p->fd < 0)
		return -1;
	bool same = meta_matches(st, id, meta);
	if (fstat(p->fd, &sb) < 0)
		goto fail;
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		/* Not a file of ours alone (a hard link someone planted): writing
		 * would reach the other name. Drop the name, make a new file. */
		close(p->fd);
		p->fd = -1;
		if (unlinkat(st->partfd, path, 0) < 0)
			return -1;
		p->fd = open_beneath(st->partfd, path, O_RDWR | O_CREAT | O_EXCL, 0640);
		if (p->fd < 0 || storelock_file(p->fd) < 0 || fstat(p->fd, &sb) < 0)
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
	owner_write(st, id);
	return 0;
fail:;
	int saved = errno;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (saved == EBUSY && !p->owner[0]) /* the new file locked first by another */
		snprintf(p->owner, sizeof p->owner, "another server");
	errno = saved;
	return -1;
}

/* The data file goes last: while its name is there, only its lock holder
 * (we) can touch the rest. */
static void partial_unlink(struct store *st, const char *id)
{
	char path[WIRE_TOKEN_MAX + 8];
	partial_path(path, sizeof path, id, "meta");
	unlinkat(st->partfd, path, 0);
	partial_path(path, sizeof path, id, "owner");
	unlinkat(st->partfd, path, 0);
	partial_path(path, sizeof path, id, "data");
	unlinkat(st->partfd, path, 0);
}

int store_partial_publish(struct store *st, struct store_partial *p, const char *name)
{
	char path[WIRE_TOKEN_MAX + 8];
	/* Data first, then the name: a crash never publishes a file with holes. */
	if (fdatasync(p->fd) < 0 && errno != EINVAL)
		return -1;
	/* Before the rename: after it, the name may be another upload's. */
	partial_path(path, sizeof path, p->id, "owner");
	unlinkat(st->partfd, path, 0);
	partial_path(path, sizeof path, p->id, "data");
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
		/* One being written (here or on another node) is not abandoned. */
		int fd = open_beneath(st->partfd, e->d_name, O_RDWR, 0);
		if (fd < 0)
			continue;
		if (storelock_file(fd) == 0 && still_named(st->partfd, e->d_name, fd)) {
			char id[WIRE_TOKEN_MAX + 1];
			snprintf(id, sizeof id, "%.*s", (int)(len - 5), e->d_name);
			partial_unlink(st, id);
			removed++;
		}
		close(fd);
	}
	closedir(d);
	return removed;
}
