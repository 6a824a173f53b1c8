/* seed.h - the seed's own chat dialect, for the Ruby clients of the seed
 * document (docs/protocol.md, "The seed dialect"): on a --seed-listen
 * listener the server speaks first, every TPKT frame from the client is a
 * chat message ("/nick NAME" renames, "exit" leaves), and the room's events
 * reach the member as plain sentences ("Bob: hi", "Bob joined"). A seed
 * connection is an ordinary struct conn with `seed` set; conn.c hands its
 * frames and the room's messages for it to this module. */
#ifndef BOTTLE_SEED_H
#define BOTTLE_SEED_H

#include "buf.h"
#include "room.h"

#include <stddef.h>

struct conn;

/* The greeting, the first frame on a seed connection: "Hi, you are Guest12". */
#define SEED_GREETING "Hi, you are "

/* Rendering (pure): a room message as a seed member sees it, as one TPKT
 * frame ("<nick>: <text>", "* <nick> <action>", "<old> is now known as
 * <new>", "<nick> joined", ...). NULL for what seed members never get: an
 * entry replayed from history (the seed has none). The caller unrefs. */
struct blob *seed_encode(const struct room_msg *msg);

/* The connection's side (conn.c calls these for a connection with `seed`). */
/* Queues the greeting and enters the room, without history. */
void seed_greet(struct conn *c);
/* One frame from the member. Each gets exactly one frame back, as the seed's
 * stage I server does: "Ok: <message>" for a message said to the room,
 * "You are now: NAME" (or why not) for /nick, "Bye, NAME." for exit, which
 * then closes the connection once that is written. */
void seed_frame(struct conn *c, const char *text, size_t len);
/* A room message for the member: queued as seed_encode renders it. */
void seed_deliver(struct conn *c, const struct room_msg *msg);

#endif
