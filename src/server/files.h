/* files.h - the folder's commands that are not transfers: DELETE and RENAME,
 * the room's file news (FILE events), and the --max-storage check. */
#ifndef BOTTLE_FILES_H
#define BOTTLE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

void files_cmd_delete(struct conn *c, const char *arg, size_t len);
void files_cmd_rename(struct conn *c, const char *arg, size_t len);

/* Tells the room "FILE <who> <what> <names...>" once: who is conn_credit(c),
 * names are quoted as protocol words. to may be NULL. */
void files_announce(struct conn *c, const char *what, const char *detail, const char *name,
                    const char *to);

/* True when `more` bytes still fit under --max-storage (always without one).
 * Otherwise replies "ERR storage full: ..." and returns false. */
bool files_have_room(struct conn *c, uint64_t more);

#endif
