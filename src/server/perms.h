/* perms.h - what a connection may do: chat, read, write. An account carries a
 * set of them (users.h), guests get --anonymous's; cmd_execute checks them
 * against each command's CMD_CHATS / CMD_READS / CMD_WRITES (auth.h). Pure. */
#ifndef BOTTLE_PERMS_H
#define BOTTLE_PERMS_H

#include <stdbool.h>
#include <stddef.h>

#define PERM_CHAT 1u  /* be in the room: read the chat, SAY, ME, TELL, NICK, WHO, HISTORY */
#define PERM_READ 2u  /* LIST, DOWNLOAD */
#define PERM_WRITE 4u /* UPLOAD, DELETE, RENAME */
#define PERM_NONE 0u
#define PERM_ALL (PERM_CHAT | PERM_READ | PERM_WRITE)

/* "chat,read,write" (any order, each at most once), "all" or "none"; false on
 * anything else. */
bool perms_parse(const char *text, unsigned *out);
/* The set as perms_parse reads it: "chat,read", "none", ... */
#define PERMS_TEXT_MAX sizeof "chat,read,write"
const char *perms_text(unsigned perms, char out[PERMS_TEXT_MAX]);
/* The name of one permission bit ("chat"), for a refusal. */
const char *perms_name(unsigned bit);

#endif
