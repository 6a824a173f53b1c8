/* xfer.h - UPLOAD, DOWNLOAD and LIST: file transfer as a byte stream that
 * takes over a connection (conn_stream) until the transfer is done. The wire
 * contract, including resume, is in docs/protocol.md. */
#ifndef BOTTLE_XFER_H
#define BOTTLE_XFER_H

#include <stddef.h>

struct conn;
struct loop;
struct store;
struct xfer;

/* What the transfer commands work with; the server fills one and hands it to
 * the handlers through each connection (conn_env.xfer). */
struct xfer_env {
	struct loop *loop; /* hashing runs in steps on its timers */
	struct store *store;
	unsigned long long max_file_size; /* 0: no limit */
	unsigned long long max_storage;   /* files and partials at most; 0: no limit */
	/* Scratch for hashing: the server's read buffer, which no read is using
	 * while a hashing step runs (both run from the loop, one at a time). */
	unsigned char *buf;
	size_t bufsz;
	struct xfer *uploads; /* private: uploads in progress, to find a token's */
};

void xfer_cmd_upload(struct conn *c, const char *arg, size_t len);
void xfer_cmd_download(struct conn *c, const char *arg, size_t len);
void xfer_cmd_list(struct conn *c, const char *arg, size_t len);

/* Deletes partial uploads untouched for ttl_s seconds (--partial-ttl). */
void xfer_expire_partials(struct xfer_env *env, unsigned long ttl_s);

#endif
