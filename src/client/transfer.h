/* transfer.h - one file transfer (put, get) or listing (ls) on a connection
 * of its own, as a non-blocking state machine (docs/protocol.md, section 5).
 *
 * The owner's poll loop asks for the socket to watch (transfer_fd) and how
 * long it may sleep (transfer_timeout_ms), then calls transfer_step. Nothing
 * here blocks for long: local hashing goes 1 MiB per step, data moves in
 * frames, connecting is non-blocking. So a chat can run several transfers
 * in its own loop while the user goes on typing, and `bottle put/get/ls` run
 * one with transfer_run.
 *
 * When the link breaks after the transfer began, it reconnects on its own
 * with backoff and resumes where the server (upload) or the .part file
 * (download) left off, for up to retry_for_s seconds from the break; only
 * then is the user asked (io->ask), or it gives up (TRANSFER_GAVE_UP). */
#ifndef BOTTLE_TRANSFER_H
#define BOTTLE_TRANSFER_H

#include "net.h"
#include "ratelimit.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum transfer_kind { TRANSFER_PUT, TRANSFER_GET, TRANSFER_LS };

enum transfer_result {
	TRANSFER_RUNNING,
	TRANSFER_OK,
	TRANSFER_FAILED,    /* final: an ERR reply, a local file error, a bad digest */
	TRANSFER_NO_SERVER, /* the server could not be reached before anything began */
	TRANSFER_GAVE_UP,   /* the link stayed broken for the whole retry window */
	TRANSFER_STOPPED,   /* transfer_stop: the user interrupted it */
};

struct transfer_config {
	enum transfer_kind kind;
	const char *addr;   /* HOST[:PORT] as the user gave it (also for the resume hint) */
	const char *file;   /* put: the local file */
	const char *name;   /* put: remote name (NULL: the file's base name); get: the name */
	const char *output; /* get: -o PATH (a folder means PATH/NAME); NULL: ./NAME */
	bool force;         /* get: replace an existing PATH that is not the server's file */
	struct net_keepalive ka;
	int timeout_s;       /* bounds each connect attempt */
	int retry_for_s;     /* keep reconnecting this long after the link broke */
	uint64_t limit_rate; /* bytes per second; 0: no limit */
	bool progress;       /* call io->progress about 10 times a second */
	/* How to resume, told when giving up; NULL: a bottle command line. */
	const char *resume_hint;
};

enum transfer_text {
	TRANSFER_NOTE,    /* how it goes (reconnecting, resumed): stderr, safe text */
	TRANSFER_ERROR,   /* why it failed: stderr, safe text */
	TRANSFER_DONE,    /* the final line: stdout, safe text */
	TRANSFER_LISTING, /* one "<size> <name>" line of ls: stdout, raw server bytes */
};

struct transfer;

/* How a transfer reaches its user; ctx is passed back. */
struct transfer_io {
	void (*say)(void *ctx, struct transfer *t, enum transfer_text kind, const char *text,
	            size_t len);
	/* Time to redraw the progress (transfer_progress_text); may be NULL. */
	void (*progress)(void *ctx, struct transfer *t);
	/* The retry window ran out: ask the user, later call transfer_retry or
	 * transfer_abandon. NULL: give up at once. */
	void (*ask)(void *ctx, struct transfer *t);
	void *ctx;
};

/* ---- running one ---- */

/* Opens what can be opened at once (put: the local file and the resume key;
 * get: an existing .part) and starts. NULL with err for a local problem. */
struct transfer *transfer_start(const struct transfer_config *cfg, const struct transfer_io *io,
                                char err[NET_ERR_LEN]);
void transfer_free(struct transfer *t);

/* The socket to poll and its events, or -1 when there is none right now. */
int transfer_fd(const struct transfer *t, short *events);
/* How long the caller may sleep before transfer_step is due anyway: 0 when
 * there is work right now, -1 when only the socket matters. */
int transfer_timeout_ms(const struct transfer *t);
/* Does what is due; revents is what poll said about transfer_fd (0: nothing). */
void transfer_step(struct transfer *t, short revents);
enum transfer_result transfer_result(const struct transfer *t);

/* Runs alone until the end with its own poll loop (bottle put/get/ls).
 * SIGINT, SIGTERM and SIGHUP are only let through while it sleeps; when a
 * handler of the caller's has set *stop, the transfer stops (transfer_stop). */
enum transfer_result transfer_run(struct transfer *t, const volatile sig_atomic_t *stop);
/* Ends it now, telling how to resume (TRANSFER_STOPPED). */
void transfer_stop(struct transfer *t);

/* After io->ask: reconnect for another retry window, or give up now. */
void transfer_retry(struct transfer *t);
void transfer_abandon(struct transfer *t);
bool transfer_asking(const struct transfer *t);

/* "upload notes.txt" (safe text), for messages about it. */
const char *transfer_label(const struct transfer *t);
/* The remote name (raw) and what the transfer does. */
const char *transfer_name(const struct transfer *t);
enum transfer_kind transfer_kind(const struct transfer *t);
/* The progress bar, at most width columns. */
char *transfer_progress_text(struct transfer *t, char *out, size_t outsz, int width);
/* A short "notes.txt 45%" for a status line. */
char *transfer_progress_short(const struct transfer *t, char *out, size_t outsz);

/* ---- pure helpers (exported for the unit tests) ---- */

#define TRANSFER_SHA_HEX 64
#define TRANSFER_TOKEN_HEX 32
#define TRANSFER_KEY_LEN 32

/* The resume token: hex of the first 16 bytes of
 * SHA-256(key || 0 || name || 0 || size in decimal || 0 || sha256 hex). */
void transfer_token(const unsigned char key[TRANSFER_KEY_LEN], const char *name, uint64_t size,
                    const char *sha_hex, char out[TRANSFER_TOKEN_HEX + 1]);
/* Command arguments with the name quoted when needed: "<name> <size> <sha> <token>"
 * and "<name>[ <offset>[ <sha>]]" (sha may be NULL). -1 when out is too small. */
int transfer_upload_args(char *out, size_t outsz, const char *name, uint64_t size, const char *sha,
                         const char *token);
int transfer_download_args(char *out, size_t outsz, const char *name, uint64_t offset,
                           const char *sha);
/* Milliseconds to wait before reconnect attempt n (0, 1, ...): 250 doubling up to 5000. */
int transfer_backoff_ms(int attempt);
/* A word for a POSIX shell: as it is when plain, else in single quotes. */
char *transfer_shell_quote(const char *s, char *out, size_t outsz);

#endif
