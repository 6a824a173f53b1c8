/* storelock.c - the folder lock and the partials' locks (storelock.h).
 *
 * Why open-file-description locks and not flock: on NFS, flock is emulated
 * differently by kernel versions (local to one machine before 2.6.12, a
 * whole-file byte-range lock since, and local again with the local_lock
 * mount option), so two machines may both "hold" it. fcntl byte-range locks
 * are what the NFS client turns into NFS locks (NLM, or NFSv4's own), and
 * CephFS's client forwards them to its metadata servers. Classic fcntl locks
 * belong to a process and vanish when it closes any descriptor of the file;
 * the OFD flavour (Linux 3.15) belongs to one open file, like flock, and
 * survives other descriptors of the same file coming and going. */
#include "storelock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The folder lock file's bytes as lock regions: byte 0 is the folder (held
 * exclusively by a single server, shared by a cluster's nodes); byte 1 is
 * held for a moment while a node joins, so that finding the folder free and
 * naming the cluster in it are one step for the nodes that start together. */
#define LOCK_FOLDER 0
#define LOCK_JOINING 1
#define CLUSTER_TAG "cluster "

static int ofd_lock(int fd, short type, off_t start, off_t len, bool wait)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	int rc;
	do
		rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
	while (rc < 0 && errno == EINTR);
	if (rc < 0 && (errno == EAGAIN || errno == EACCES))
		errno = EBUSY;
	return rc;
}

int storelock_file(int fd) { return ofd_lock(fd, F_WRLCK, 0, 0, false); }

/* What the lock file says of its holder: "<pid>" or "cluster <name>". */
static void read_holder(int fd, struct storelock_holder *h)
{
	char text[STORELOCK_CLUSTER_MAX + 16] = "";
	ssize_t n = pread(fd, text, sizeof text - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	if (strncmp(text, CLUSTER_TAG, strlen(CLUSTER_TAG)) == 0) {
		const char *name = text + strlen(CLUSTER_TAG);
		snprintf(h->cluster, sizeof h->cluster, "%.*s", (int)strcspn(name, "\n"), name);
	} else {
		h->pid = strtol(text, NULL, 10);
	}
}

static int write_text(int fd, const char *text)
{
	size_t len = strlen(text);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, len, 0) != (ssize_t)len)
		return -1;
	return 0;
}

/* A node joins: the first one names the cluster, the others must match it. */
static int join_cluster(int fd, const char *cluster, struct storelock_holder *h)
{
	char name[STORELOCK_CLUSTER_MAX + 1], mine[STORELOCK_CLUSTER_MAX + 16];
	snprintf(name, sizeof name, "%s", cluster);
	snprintf(mine, sizeof mine, CLUSTER_TAG "%s\n", name);
	if (ofd_lock(fd, F_WRLCK, LOCK_FOLDER, 1, false) == 0) {
		/* Nobody here: name the cluster, then share (an atomic downgrade). */
		if (write_text(fd, mine) < 0 || ofd_lock(fd, F_RDLCK, LOCK_FOLDER, 1, false) < 0)
			return -1;
		return 0;
	}
	if (errno != EBUSY)
		return -1;
	if (ofd_lock(fd, F_RDLCK, LOCK_FOLDER, 1, false) < 0) {
		if (errno == EBUSY) /* a single server holds it exclusively */
			read_holder(fd, h);
		return -1;
	}
	read_holder(fd, h);
	if (strcmp(h->cluster, name) == 0) {
		*h = (struct storelock_holder){ 0 };
		return 0;
	}
	errno = EBUSY; /* another cluster's nodes share it */
	return -1;
}

int storelock_folder(int dirfd, const char *path, const char *cluster,
                     struct storelock_holder *holder)
{
	*holder = (struct storelock_holder){ 0 };
	int fd = openat(dirfd, path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	int rc;
	if (!cluster) {
		char pid[24];
		snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		rc = ofd_lock(fd, F_WRLCK, LOCK_FOLDER, 1, false);
		if (rc < 0 && errno == EBUSY)
			read_holder(fd, holder);
		else if (rc == 0)
			rc = write_text(fd, pid);
	} else if ((rc = ofd_lock(fd, F_WRLCK, LOCK_JOINING, 1, true)) == 0) {
		/* Held only while a node joins, never across a wait for anything. */
		rc = join_cluster(fd, cluster, holder);
		int saved = errno;
		ofd_lock(fd, F_UNLCK, LOCK_JOINING, 1, false);
		errno = saved;
	}
	if (rc < 0) {
		int saved = errno;
		close(fd); /* drops whatever this attempt holds */
		errno = saved;
		return -1;
	}
	return fd;
}

void storelock_whoami(const char *node, char out[STORELOCK_OWNER_MAX])
{
	char host[65] = "?";
	if (gethostname(host, sizeof host - 1) < 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	if (node && *node)
		snprintf(out, STORELOCK_OWNER_MAX, "node %.64s (host %s, pid %ld)", node, host,
		         (long)getpid());
	else
		snprintf(out, STORELOCK_OWNER_MAX, "host %s, pid %ld", host, (long)getpid());
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}
