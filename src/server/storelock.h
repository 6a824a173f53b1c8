/* storelock.h - who may write the storage folder, and which upload may write
 * a partial: advisory locks that hold across processes and, where the storage
 * honours them (NFS, CephFS), across machines. The kernel drops each lock when
 * its holder dies, so a lock never outlives a crashed node.
 *
 * Both are open-file-description locks (fcntl F_OFD_SETLK): see storelock.c
 * for why not flock. They belong to an open file, not to a process, so two
 * uploads of one process conflict just as two nodes do. */
#ifndef BOTTLE_STORELOCK_H
#define BOTTLE_STORELOCK_H

#include <stddef.h>

#define STORELOCK_CLUSTER_MAX 64 /* a cluster's name (its --cluster prefix) */
#define STORELOCK_OWNER_MAX 192  /* "node A (host h, pid 12)" */

/* Who holds a folder we could not lock: a single server (pid, 0 if unknown)
 * or the nodes of a cluster (its name; "" for a single server). */
struct storelock_holder {
	long pid;
	char cluster[STORELOCK_CLUSTER_MAX + 1];
};

/* Locks the folder through the lock file `path` under dirfd (created if
 * needed) and writes who holds it there. cluster NULL: this server alone, an
 * exclusive lock. Else a shared lock that only nodes of the same cluster
 * name can join. The locked fd (keep it open), or -1 with errno: EBUSY when
 * someone else holds it, *holder saying who. */
int storelock_folder(int dirfd, const char *path, const char *cluster,
                     struct storelock_holder *holder);

/* An exclusive lock on all of an open file (opened for writing): 0, or -1
 * with errno, EBUSY when another open file holds it. Closing fd releases it. */
int storelock_file(int fd);

/* This process as an owner record: "node NAME (host H, pid P)", or without
 * the node when name is NULL or empty. Unprintable bytes become '?'. */
void storelock_whoami(const char *node, char out[STORELOCK_OWNER_MAX]);

#endif
