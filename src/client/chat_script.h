/* chat_script.h - stdin and stdout as the chat's input source, for a program
 * or a pipe: each stdin line is said to the room, every event printed. */
#ifndef BOTTLE_CHAT_SCRIPT_H
#define BOTTLE_CHAT_SCRIPT_H

#include "chat.h"

/* For chat_run when stdin or stdout is not a terminal. */
extern const struct chat_input chat_script_input;

#endif
