/* protect.h - protected mode: without access configured (--users or --open),
 * bottled listens on loopback addresses only, and AUTH's token never crosses
 * a network in clear text unless asked to (--allow-plaintext-auth). */
#ifndef BOTTLE_PROTECT_H
#define BOTTLE_PROTECT_H

#include <stdbool.h>
#include <sys/socket.h>

/* 127.0.0.0/8, ::1 and ::ffff:127.x.y.z. Anything else (0.0.0.0 and :: too)
 * is not. */
bool protect_is_loopback(const struct sockaddr *sa);
/* The first listen address ("HOST:PORT", as given) that is or may resolve to
 * a non-loopback address, or NULL when all of them are loopback. Resolves
 * names (at startup, before the loop runs); a name that does not resolve is
 * left to the listener, which says why. */
const char *protect_exposed(const char *const *addrs, int n, int default_port);

#endif
