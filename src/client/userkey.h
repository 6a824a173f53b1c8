/* userkey.h - the per-user secret behind resume tokens: 32 random bytes kept
 * as hex in $XDG_STATE_HOME/bottle/key (else ~/.local/state/bottle/key),
 * created on first use with mode 0600. The same key gives the same token for
 * the same upload, so running a command again resumes it. */
#ifndef BOTTLE_USERKEY_H
#define BOTTLE_USERKEY_H

#include <stddef.h>

#define USERKEY_LEN 32
#define USERKEY_ERR_LEN 512

/* The key file's path from the environment's values (either may be NULL):
 * XDG_STATE_HOME when it is an absolute path, else HOME/.local/state. -1
 * when neither gives one or it does not fit out. Pure. */
int userkey_path(const char *xdg_state_home, const char *home, char *out, size_t outsz);

/* Reads the key, creating the file (and its folders) when it is missing. Two
 * processes creating it at once end up with the same key. 0, or -1 with err. */
int userkey_load(unsigned char key[USERKEY_LEN], char err[USERKEY_ERR_LEN]);

#endif
