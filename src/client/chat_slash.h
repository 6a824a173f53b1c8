/* chat_slash.h - the chat's slash commands (/nick, /who, /upload, /help,
 * /quit ...): a table of entries, each a server verb with its usage, summary,
 * argument rule and the label its reply is shown after. */
#ifndef BOTTLE_CHAT_SLASH_H
#define BOTTLE_CHAT_SLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct chat;

/* Runs "name[ arg]", what the user typed after the slash; the argument
 * follows one space or newline and may span lines. Says why when it can't. */
void chat_slash_run(struct chat *ch, const char *text, size_t len);
/* What an OK reply is shown after, for the tag of a command sent by one;
 * NULL: the OK is not shown. */
const char *chat_slash_label(int tag);
/* True for the tag of /nick: its OK reply names the new nickname. */
bool chat_slash_renames(int tag);
/* The slash commands, one "indent/usage  summary" line each. */
void chat_slash_print_help(FILE *out, const char *indent);
/* Their names, "/msg /me ...", without a final newline (for --help, after a
 * two-space indent; long lists wrap with the same indent). */
void chat_slash_print_names(FILE *out);

#endif
