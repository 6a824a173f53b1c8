/* chat_once.h - bottle -c COMMAND: one server command, one reply line. */
#ifndef BOTTLE_CHAT_ONCE_H
#define BOTTLE_CHAT_ONCE_H

#include "client.h"

/* Sends command (one frame, as it is) and QUIT on the connected client,
 * prints the reply line and returns the exit status: BOTTLE_EXIT_OK for OK,
 * BOTTLE_EXIT_ERR for ERR, BOTTLE_EXIT_CONN when refused or cut off first.
 * nick (--nick, or NULL) is asked for first; refused, the command is not
 * sent and the status is BOTTLE_EXIT_ERR. The caller closes the client. */
int chat_once_run(struct client *cl, const char *command, const char *nick);

#endif
