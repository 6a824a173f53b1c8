/* account.h - who bottle signs in as: --user NAME (else $BOTTLE_USER), with
 * the token from $BOTTLE_TOKEN, else from the tokens file
 * (~/.config/bottle/tokens, or $XDG_CONFIG_HOME/bottle/tokens), which must
 * be readable by its owner only. Every connection the client makes (the
 * chat and its reconnects, -c, put/get/ls/rm/mv and their reconnects) says
 * AUTH first; a refusal ends the program with the server's reason.
 *
 * The tokens file: one account a line, "NAME TOKEN" (any server) or
 * "HOST:PORT NAME TOKEN" (only that server address, as given to bottle);
 * a line for the address wins over one for any server; '#' starts a comment. */
#ifndef BOTTLE_ACCOUNT_H
#define BOTTLE_ACCOUNT_H

#include "client.h"

#include <stdbool.h>
#include <stddef.h>

#define ACCOUNT_TAG (-1000) /* AUTH's reply, whatever else the connection does */
#define ACCOUNT_TOKEN_MAX 64
#define ACCOUNT_ERR_LEN 2560 /* room for the tokens file's path, twice */

/* Chooses the account for server address addr, once, before connecting.
 * user NULL or "": none (no AUTH; BOTTLE_TOKEN alone is an error). 0, or -1
 * with err saying what to fix. */
int account_setup(const char *user, const char *addr, char err[ACCOUNT_ERR_LEN]);
/* The account's name, or NULL when the client signs in as nobody. */
const char *account_name(void);
/* Queues "AUTH <name> <token>" with ACCOUNT_TAG; nothing without an account. */
void account_send(struct client *cl);
/* For the reply tagged ACCOUNT_TAG: false when it was a refusal, with why
 * saying so ("cannot sign in as alice: authentication failed"). */
bool account_accepted(const struct client_msg *m, char why[ACCOUNT_ERR_LEN]);

/* Pure, for tests: the token of user for addr in a tokens file's text; false
 * if it has none. */
bool account_find_token(const char *text, const char *user, const char *addr,
                        char token[ACCOUNT_TOKEN_MAX + 1]);

#endif
