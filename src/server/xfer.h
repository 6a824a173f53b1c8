/* xfer.h - UPLOAD, DOWNLOAD and LIST: file transfer as a byte stream that
 * takes over a connection (conn_stream) until the transfer is done. The wire
 * contract, including resume, is in docs/protocol.md. */
#ifndef BOTTLE_XFER_H
#define BOTTLE_XFER_H

#include <stddef.h>

struct conn;
struct server;

void xfer_cmd_upload(struct conn *c, const char *arg, size_t len);
void xfer_cmd_download(struct conn *c, const char *arg, size_t len);
void xfer_cmd_list(struct conn *c, const char *arg, size_t len);

/* Deletes partial uploads older than the server's --partial-ttl. */
void xfer_expire_partials(struct server *srv);

#endif
