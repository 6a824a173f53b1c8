/* users_cli.h - bottled --users FILE --add-user NAME [--perms P] |
 * --remove-user NAME | --list-users: change or show the accounts file and
 * exit, without serving. */
#ifndef BOTTLE_USERS_CLI_H
#define BOTTLE_USERS_CLI_H

#include <stdbool.h>

struct users_cli {
	const char *add;    /* --add-user NAME */
	const char *remove; /* --remove-user NAME */
	const char *perms;  /* --perms, for --add-user (default USERS_CLI_PERMS) */
	bool list;          /* --list-users */
};

#define USERS_CLI_PERMS "chat,read"

/* True when the command line asked for one of these instead of serving. */
bool users_cli_wanted(const struct users_cli *u);
/* Does it (path is --users's, NULL if missing): the exit status. --add-user
 * prints the new token alone on the last line of stdout. */
int users_cli_run(const char *path, const struct users_cli *u);

#endif
