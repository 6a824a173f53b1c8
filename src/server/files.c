/* files.c - DELETE, RENAME, file news and the storage limit. Handlers reply
 * through conn_ok/conn_err; the folder is store.c's. */
#include "files.h"
#include "args.h"
#include "conn.h"
#include "log.h"
#include "store.h"
#include "wire.h"
#include "xfer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static struct store *store_of(struct conn *c) { return c->env->xfer->store; }

void files_announce(struct conn *c, const char *what, const char *detail, const char *name,
                    const char *to)
{
	char q[2 * WIRE_NAME_MAX + 3], t[2 * WIRE_NAME_MAX + 3], head[WIRE_EVENT_HEAD_MAX + 600];

	if (args_quote(name, q, sizeof q) < 0 || (to && args_quote(to, t, sizeof t) < 0))
		return;
	int n = snprintf(head, sizeof head, "FILE %s %s%s%s %s%s%s", conn_credit(c), what,
	                 detail ? " " : "", detail ? detail : "", q, to ? " " : "", to ? t : "");
	if (n > 0 && (size_t)n < sizeof head)
		room_broadcast(c->env->room, NULL, head, (size_t)n, "", 0);
}

static bool names_arg(struct conn *c, const char *arg, size_t len, bool rename,
                      struct wire_names *n)
{
	switch (wire_names_parse(arg, len, rename, n)) {
	case WIRE_OK: return true;
	case WIRE_NO_NAME: conn_err(c, "file name required"); break;
	case WIRE_BAD_NAME: conn_err(c, "invalid file name"); break;
	default: conn_err(c, "usage: %s", rename ? WIRE_RENAME_USAGE : WIRE_DELETE_USAGE); break;
	}
	return false;
}

/* The errno of a failed delete or rename, as the client should read it. */
static void reply_errno(struct conn *c, const char *verb, const char *name, const char *to)
{
	int err = errno;
	if (err == ENOENT)
		conn_err(c, "no such file: %s", name);
	else if (err == EEXIST)
		conn_err(c, "file exists: %s", to);
	else {
		log_error("%s %s: %s", verb, name, strerror(err));
		conn_err(c, "storage error: %s", strerror(err));
	}
}

void files_cmd_delete(struct conn *c, const char *arg, size_t len)
{
	struct wire_names n;

	if (!names_arg(c, arg, len, false, &n))
		return;
	if (store_delete(store_of(c), n.name) < 0) {
		reply_errno(c, "delete", n.name, NULL);
		return;
	}
	log_info("%s (%s) deleted %s", c->peer, conn_credit(c), n.name);
	conn_ok(c, "deleted");
	files_announce(c, "deleted", NULL, n.name, NULL);
}

void files_cmd_rename(struct conn *c, const char *arg, size_t len)
{
	struct wire_names n;

	if (!names_arg(c, arg, len, true, &n))
		return;
	if (strcmp(n.name, n.to) == 0) {
		conn_err(c, "file exists: %s", n.to);
		return;
	}
	if (store_rename(store_of(c), n.name, n.to) < 0) {
		reply_errno(c, "rename", n.name, n.to);
		return;
	}
	log_info("%s (%s) renamed %s to %s", c->peer, conn_credit(c), n.name, n.to);
	conn_ok(c, "renamed");
	files_announce(c, "renamed", NULL, n.name, n.to);
}

bool files_have_room(struct conn *c, uint64_t more)
{
	unsigned long long max = c->env->xfer->max_storage;
	uint64_t used;

	if (!max)
		return true;
	if (store_usage(store_of(c), &used) < 0) {
		log_error("storage usage: %s", strerror(errno));
		conn_err(c, "storage error: %s", strerror(errno));
		return false;
	}
	if (used + more <= max)
		return true;
	log_warn("%s: upload of %" PRIu64 " bytes refused: %" PRIu64 " of %llu bytes used", c->peer,
	         more, used, max);
	conn_err(c, "storage full: %" PRIu64 " of %llu bytes used, %" PRIu64 " more needed", used,
	         max, more);
	return false;
}
