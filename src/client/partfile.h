/* partfile.h - a download's file in the making: PATH.part beside where it
 * goes, the server's digest kept on it (an xattr) so a later run resumes
 * only the same version, its bytes checked against that digest in steps, and
 * the durable rename that puts it in place. */
#ifndef BOTTLE_PARTFILE_H
#define BOTTLE_PARTFILE_H

#include "sha256.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

struct partfile {
	char *path;                 /* where the file goes */
	char *part;                 /* PATH.part */
	int fd;                     /* the .part, or -1 before partfile_create */
	uint64_t size;              /* bytes the .part had when opened */
	char sha[WIRE_SHA_HEX + 1]; /* the digest it holds part of; "" unknown */
	/* The digest of its data, taken from the bytes as they are written and,
	 * for what was there before (a resumed .part), read back in steps. */
	struct sha256_steps hash;
	uint64_t written; /* the .part's first `written` bytes are in place */
};

/* Names PATH.part and opens one that is there already (its size and digest).
 * 0 also when there is none; -1 with errno when it can't be opened. */
int partfile_open(struct partfile *pf, const char *path);
/* Opens it, creating it when needed (after partfile_open found none). */
int partfile_create(struct partfile *pf);
int partfile_truncate(struct partfile *pf, uint64_t size);
/* The digest of the file it holds part of (64 hex digits): kept on the .part,
 * best effort (without it a later resume still works, unchecked). */
void partfile_tag(struct partfile *pf, const char *sha);
/* Data for the first size bytes is about to arrive from offset: what comes
 * is hashed as it is written, and what the .part has before offset is read
 * back and hashed a bounded step per write, so the check at the end has
 * nothing left to read. A hash that covers no byte beyond offset (the same
 * download on a new connection) goes on. -1 with errno when there is no hash. */
int partfile_receive(struct partfile *pf, uint64_t offset, uint64_t size);
/* Writes all len bytes at off, in order from partfile_receive's offset, and
 * hashes them; -1 with errno. */
int partfile_write(struct partfile *pf, uint64_t off, const unsigned char *p, size_t len);

enum partfile_check {
	PARTFILE_MORE,  /* call partfile_verify_step again */
	PARTFILE_GOOD,  /* it has the tagged digest */
	PARTFILE_BAD,   /* it has another one (in got): the .part is deleted */
	PARTFILE_ERROR, /* a read error, errno set (EIO: the file ended early) */
};

/* Starts checking its first size bytes against the tagged digest, going on
 * from what was hashed while receiving (all of it, for data that arrived on
 * this run). -1: no hash. */
int partfile_verify_begin(struct partfile *pf, uint64_t size);
/* Hashes up to 1 MiB more of what was not hashed yet. got: the digest, when
 * known. */
enum partfile_check partfile_verify_step(struct partfile *pf, char got[WIRE_SHA_HEX + 1]);
/* Bytes hashed so far, for the progress. */
uint64_t partfile_hashed(const struct partfile *pf);

/* The .part becomes the file: its data reaches the disk before the rename
 * and the rename before we return, so a crash leaves either the old state or
 * the whole new file, never a name pointing at lost pages. -1 with errno. */
int partfile_publish(struct partfile *pf);
/* Closes it (the .part stays for a resume) and frees the names. */
void partfile_close(struct partfile *pf);

#endif
