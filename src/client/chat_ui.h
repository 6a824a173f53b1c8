/* chat_ui.h - the ways a person or a program talks to the room over a
 * connected client: interactive (line editing on a terminal), script (stdin
 * lines become messages) and once (-c: one command, one reply). */
#ifndef BOTTLE_CHAT_UI_H
#define BOTTLE_CHAT_UI_H

#include "client.h"
#include "transfer.h"

#include <stdio.h>

/* Process exit statuses of bottle. */
enum chat_exit {
	CHAT_EXIT_OK = 0,
	CHAT_EXIT_ERR = 1, /* -c: the server answered ERR */
	CHAT_EXIT_USAGE = 2,
	CHAT_EXIT_CONN = 3,          /* cannot connect, refused, or the connection was lost */
	CHAT_EXIT_TEMPFAIL = 75,     /* a transfer's link stayed down for its whole retry window */
	CHAT_EXIT_INTERRUPTED = 130, /* a transfer was stopped by a signal */
};

/* Each runs until the session ends and returns the exit status; the caller
 * connected the client and closes it afterwards. addr is only shown.
 * xfer: the settings for /upload and /download (kind, file, name unset). */
int chat_interactive(struct client *c, const char *addr, const struct transfer_config *xfer);
int chat_script(struct client *c);
int chat_once(struct client *c, const char *command);

/* The slash commands, one "indent/usage  summary" line each (for --help). */
void chat_print_slash_help(FILE *out, const char *indent);

#endif
