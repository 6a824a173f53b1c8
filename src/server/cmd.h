/* cmd.h - the command language shared by every framing: "VERB[ argument]".
 * The verb is case-insensitive; the argument is the raw rest after one space. */
#ifndef BOTTLE_CMD_H
#define BOTTLE_CMD_H

#include <stddef.h>

struct conn;

typedef void cmd_fn(struct conn *c, const char *arg, size_t len);

struct cmd_def {
	const char *name;
	const char *usage;   /* "ECHO <text>" */
	const char *summary; /* "reply with the text" */
	cmd_fn *fn;
	unsigned flags; /* CMD_* */
};

/* The command may come first without making a TPKT connection join the room
 * (ROLE, HISTORY, OFFSETS; docs/protocol.md §4). Any other joins it first. */
#define CMD_BEFORE_JOIN 1u
/* What a command does, for the permissions accounts have (chat, read,
 * write; perms.h): cmd_execute checks them (auth_permits) before the handler. */
#define CMD_CHATS 2u
#define CMD_READS 4u
#define CMD_WRITES 8u

/* The table of commands, ending with a { NULL } entry (commands.c). */
extern const struct cmd_def cmd_table[];

/* Splits a command into verb and argument. */
void cmd_split(const char *line, size_t len, const char **verb, size_t *vlen, const char **arg,
               size_t *alen);
/* Finds a verb in the table, ignoring case; NULL if unknown. */
const struct cmd_def *cmd_find(const char *verb, size_t vlen);
/* "unknown command: VERB", the verb cut short and made safe to print; the
 * one wording for an unknown verb, run or asked about with HELP. */
#define CMD_UNKNOWN_MAX (4 * 64 + 32)
const char *cmd_unknown_text(char *out, size_t outsz, const char *verb, size_t vlen);
/* Runs one command for c: the handler replies, or "ERR unknown command: VERB". */
void cmd_execute(struct conn *c, const char *line, size_t len);

#endif
