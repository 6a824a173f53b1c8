/* fileop.h - bottle rm and bottle mv: DELETE and RENAME on a connection that
 * says ROLE files first (not a chatter), one reply per name, one line each
 * for the user (docs/protocol.md, section 5). */
#ifndef BOTTLE_FILEOP_H
#define BOTTLE_FILEOP_H

struct client;

/* DELETE each of the n names, pipelined; "deleted NAME" on stdout for each
 * OK, "bottle: rm NAME: <the server's ERR text>" on stderr for each ERR.
 * Returns the exit status: 0 when all went, 1 when any was refused, 3 when
 * the connection was lost or refused before every reply came. */
int fileop_delete(struct client *cl, char *const *names, int n);
/* RENAME from to; "renamed FROM to TO", else as above ("bottle: mv ..."). */
int fileop_rename(struct client *cl, const char *from, const char *to);

#endif
