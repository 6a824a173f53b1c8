/* proto.h - what server and client agree on: version, ports, limits, defaults. */
#ifndef BOTTLE_PROTO_H
#define BOTTLE_PROTO_H

#define BOTTLE_VERSION "0.1.0"

#define BOTTLE_DEFAULT_HOST "127.0.0.1"
#define BOTTLE_DEFAULT_PORT 4000
#define BOTTLE_DEFAULT_ADDR "127.0.0.1:4000"

/* Server defaults; every one of them has a command-line option. */
#define BOTTLE_DEFAULT_DIR "./bottle-data"
#define BOTTLE_DEFAULT_MAX_CLIENTS 10000
#define BOTTLE_DEFAULT_MAX_LINE (64 * 1024)
#define BOTTLE_DEFAULT_MAX_OUTPUT (1024 * 1024)
#define BOTTLE_DEFAULT_GREETING_MS 200
#define BOTTLE_DEFAULT_KEEPIDLE 15
#define BOTTLE_DEFAULT_KEEPINTVL 5
#define BOTTLE_DEFAULT_KEEPCNT 6
#define BOTTLE_DEFAULT_PARTIAL_TTL (24 * 3600)
#define BOTTLE_DEFAULT_TRANSFER_TIMEOUT 120

/* The first byte a TPKT client sends is its version byte. */
#define BOTTLE_TPKT_FIRST_BYTE 0x03

#endif
