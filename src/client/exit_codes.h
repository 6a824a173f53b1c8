/* exit_codes.h - the exit statuses of bottle, one list for the chat, -c and
 * put/get/ls (bottle --help and bottle(1) describe them). */
#ifndef BOTTLE_EXIT_CODES_H
#define BOTTLE_EXIT_CODES_H

enum bottle_exit {
	BOTTLE_EXIT_OK = 0,
	BOTTLE_EXIT_ERR = 1, /* -c: the server answered ERR; a transfer failed for good */
	BOTTLE_EXIT_USAGE = 2,
	BOTTLE_EXIT_CONN = 3,      /* cannot connect, refused, or the connection was lost */
	BOTTLE_EXIT_TEMPFAIL = 75, /* a transfer's link stayed down for its whole retry window */
	BOTTLE_EXIT_INTERRUPTED = 130, /* a transfer was stopped by a signal */
};

#endif
