/* tmpdir.h - a fresh folder for a test program under $TMPDIR (else /tmp),
 * and removing it with all it holds (for the unit tests of every side). In a
 * header, as static functions: each test program is one .c file. */
#ifndef BOTTLE_TEST_TMPDIR_H
#define BOTTLE_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Makes "$TMPDIR/NAME.XXXXXX" into dir: 0, or -1. */
static inline int tmpdir_make(char *dir, size_t len, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, len, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	return mkdtemp(dir) ? 0 : -1;
}

static inline int tmpdir_remove_one(const char *path, const struct stat *sb, int flag,
                                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

/* rm -rf dir: 0, or -1. */
static inline int tmpdir_remove(const char *dir)
{
	return nftw(dir, tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
