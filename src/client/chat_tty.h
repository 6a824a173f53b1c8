/* chat_tty.h - the terminal as the chat's input source: line editing with
 * GNU readline, messages printed above the line being typed, the prompt
 * showing transfers in progress. */
#ifndef BOTTLE_CHAT_TTY_H
#define BOTTLE_CHAT_TTY_H

#include "chat.h"

/* For chat_run when stdin and stdout are terminals. */
extern const struct chat_input chat_tty_input;

#endif
