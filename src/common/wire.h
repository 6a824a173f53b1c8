/* wire.h - the protocol's words, defined once for both sides (docs/protocol.md):
 * the limits of a chat text, the rules for file names and resume tokens, the
 * numbers in commands, and the arguments of UPLOAD, DOWNLOAD and LIST as an
 * encoder (the client's) and a parser (the server's) that agree. Pure. */
#ifndef BOTTLE_WIRE_H
#define BOTTLE_WIRE_H

#include "nick.h"
#include "tpkt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest head the server puts before a chat text: a history event,
 * "HISTORY <offset: 20 digits> <time: 29> ACTION <nick> ", with the longest
 * nick. Every event that carries a text (MSG, ACTION, PRIVATE, HISTORY, a
 * tagged "@<offset> MSG") has a shorter one. */
#define WIRE_EVENT_HEAD_MAX                                                                        \
	(sizeof "HISTORY " - 1 + 20 + 1 + 29 + 1 + sizeof "ACTION " - 1 + NICK_MAX_BYTES + 1)
/* The longest chat text (65336): any event that carries it, with the longest
 * nick, still fits in one TPKT frame. */
#define WIRE_SAY_MAX (TPKT_MAX_PAYLOAD - WIRE_EVENT_HEAD_MAX)

#define WIRE_NAME_MAX 255 /* bytes of a file name */
#define WIRE_TOKEN_MAX 64 /* bytes of a resume token */
#define WIRE_SHA_HEX 64   /* a SHA-256 in lowercase hex */
/* The one name no file may have: the server keeps its own state in it. */
#define WIRE_RESERVED_NAME ".bottle"
/* Where both sides cache a file's digest: an extended attribute. */
#define WIRE_SHA_XATTR "user.bottle.sha256"
/* How an ERR that is worth retrying soon begins ("ERR busy: ..."): an upload
 * whose partial another node is writing right now. */
#define WIRE_BUSY "busy: "

/* The usage lines: HELP shows them, a malformed command gets "usage: ...". */
#define WIRE_UPLOAD_USAGE "UPLOAD <name> <size> [<sha256> <token>]"
#define WIRE_DOWNLOAD_USAGE "DOWNLOAD <name> [<offset> [<sha256>]]"
#define WIRE_LIST_USAGE "LIST [<from>]"
#define WIRE_DELETE_USAGE "DELETE <name>"
#define WIRE_RENAME_USAGE "RENAME <name> <new name>"

/* ---- words ---- */

/* A file name: 1..255 bytes, no '/', no control characters (below 0x20, 0x7f),
 * not ".", ".." or WIRE_RESERVED_NAME. */
bool wire_name_valid(const char *name, size_t len);
/* A resume token: 8..64 bytes of [A-Za-z0-9_-]. */
bool wire_token_valid(const char *token, size_t len);
/* A size, offset or count: decimal digits only (no sign, no space), below 2^63. */
bool wire_parse_u63(const char *s, uint64_t *out);

/* ---- command arguments ---- */

enum wire_status {
	WIRE_OK,
	WIRE_NO_NAME,  /* no file name at all */
	WIRE_BAD_NAME, /* a name word that is malformed or breaks the name rules */
	WIRE_BAD_SIZE, /* UPLOAD's size is missing or not a number below 2^63 */
	WIRE_USAGE,    /* anything else: a bad optional word, or words left over */
};

/* UPLOAD <name> <size> [<sha256> <token>]: sha and token "" when absent. */
struct wire_upload {
	char name[WIRE_NAME_MAX + 1];
	uint64_t size;
	char sha[WIRE_SHA_HEX + 1];
	char token[WIRE_TOKEN_MAX + 1];
};

/* DOWNLOAD <name> [<offset> [<sha256>]]: offset 0 and sha "" when absent. */
struct wire_download {
	char name[WIRE_NAME_MAX + 1];
	uint64_t offset;
	char sha[WIRE_SHA_HEX + 1];
};

/* LIST [<from>]: from 0 when absent. */
struct wire_list {
	uint64_t from;
};

/* DELETE <name> (to is "") and RENAME <name> <to>. */
struct wire_names {
	char name[WIRE_NAME_MAX + 1];
	char to[WIRE_NAME_MAX + 1];
};

/* Encoders write the argument text (what follows "VERB "), the name quoted as
 * args_quote does, NUL-terminated. They return its length, or -1 if it doesn't
 * fit in outsz, or (upload) if only one of sha and token is given: the protocol
 * has no way to say that. Names are not judged here: the server does that. */
int wire_upload_encode(char *out, size_t outsz, const struct wire_upload *u);
int wire_download_encode(char *out, size_t outsz, const struct wire_download *d);
int wire_list_encode(char *out, size_t outsz, const struct wire_list *l);
int wire_names_encode(char *out, size_t outsz, const struct wire_names *n);

/* Parsers read a command's raw argument. A word that is too long for its
 * place, or holds a NUL, is an error, never a word to skip (skipping a digest
 * would publish unverified bytes). On an error the struct holds nothing useful. */
enum wire_status wire_upload_parse(const char *arg, size_t len, struct wire_upload *u);
enum wire_status wire_download_parse(const char *arg, size_t len, struct wire_download *d);
enum wire_status wire_list_parse(const char *arg, size_t len, struct wire_list *l);
/* want_to: RENAME (two names), else DELETE (one). */
enum wire_status wire_names_parse(const char *arg, size_t len, bool want_to, struct wire_names *n);

#endif
