/* userfiles.h - the user's own bottle files (tokens, known_servers, the
 * resume key): their paths under the XDG base folders, their parent folders
 * made private, and the words of their lines. */
#ifndef BOTTLE_USERFILES_H
#define BOTTLE_USERFILES_H

#include <stdbool.h>
#include <stddef.h>

/* Paths. "XDG/bottle/NAME" when xdg (an XDG_*_HOME variable's value) is an
 * absolute path (XDG ignores relative ones), else "HOME/UNDER_HOME/bottle/NAME"
 * (under_home: that variable's default, ".config"); xdg and home may be NULL.
 * false when neither gives a path or it does not fit out. Pure. */
bool userfiles_path(const char *xdg, const char *home, const char *under_home, const char *name,
                    char *out, size_t len);
/* The same for $XDG_CONFIG_HOME, else ~/.config, from the environment. */
bool userfiles_config_path(const char *name, char *out, size_t len);

/* mkdir -p of the folders above path, mode 0700 for the ones it makes. 0, or
 * -1 with errno at the first that is neither made nor there. */
int userfiles_make_parents(const char *path);

/* The next word of *p on its line (up to a space, tab or line end) into out;
 * false if there is none or it does not fit. *p moves past the word. */
bool userfiles_next_word(const char **p, char *out, size_t len);

#endif
