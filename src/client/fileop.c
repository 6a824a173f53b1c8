/* fileop.c - bottle rm NAME... and bottle mv OLD NEW (fileop.h). The
 * connection says ROLE files first, so it is no member of the room (the
 * room's FILE news names the GuestN the server gave it; the chat's /rm and
 * /mv go on the chat's own connection instead). Every command
 * goes out at once with QUIT behind it; replies come back in order, tagged
 * with the index of their operation. Names travel as protocol words
 * (wire_names_encode: quoted when they hold spaces). */
#include "fileop.h"
#include "account.h"
#include "chat.h"
#include "client.h"
#include "escape.h"
#include "exit_codes.h"
#include "wire.h"
#include "xmalloc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAFE_NAME (WIRE_NAME_MAX * 4 + 4)
#define QUOTED_NAME (2 * WIRE_NAME_MAX + 3) /* a name as a word: quotes, escapes */

enum { TAG_ROLE = -1, TAG_QUIT = -2 }; /* operations are tagged 0, 1, ... */

/* One DELETE or RENAME. */
struct fileop {
	const char *name, *to; /* to: RENAME's new name, NULL for DELETE */
	bool answered;
};

struct fileops {
	struct client *cl;
	struct fileop *ops;
	int n, answered;
	int status;
	bool done;
	char reason[256]; /* the server's last notice, to explain a close */
};

static const char *verb_of(const struct fileop *op) { return op->to ? "mv" : "rm"; }

/* "rm NAME" or "mv OLD NEW", safe to show. */
static void describe(const struct fileop *op, char *out, size_t outsz)
{
	char a[SAFE_NAME], b[SAFE_NAME] = "";

	escape_text(a, sizeof a, op->name, strlen(op->name));
	if (op->to)
		escape_text(b, sizeof b, op->to, strlen(op->to));
	snprintf(out, outsz, "%s %s%s%s", verb_of(op), a, op->to ? " " : "", b);
}

static void op_failed(struct fileops *f, const struct fileop *op, const char *why, size_t len)
{
	char what[2 * SAFE_NAME + 8], safe[NET_ERR_LEN];

	describe(op, what, sizeof what);
	escape_text(safe, sizeof safe, why, len);
	fprintf(stderr, "bottle: %s: %s\n", what, safe);
	f->status = BOTTLE_EXIT_ERR;
}

static void op_done(const struct fileop *op)
{
	char a[SAFE_NAME], b[SAFE_NAME];

	escape_text(a, sizeof a, op->name, strlen(op->name));
	if (op->to) {
		escape_text(b, sizeof b, op->to, strlen(op->to));
		printf("renamed %s to %s\n", a, b);
	} else {
		printf("deleted %s\n", a);
	}
	fflush(stdout);
}

/* Queues one operation; a name that can't be a word of a frame fails here. */
static void op_send(struct fileops *f, int i)
{
	struct fileop *op = &f->ops[i];
	struct wire_names w = { 0 };
	char args[2 * QUOTED_NAME + 2];
	int len = -1;

	if (strlen(op->name) <= WIRE_NAME_MAX && (!op->to || strlen(op->to) <= WIRE_NAME_MAX)) {
		snprintf(w.name, sizeof w.name, "%s", op->name);
		snprintf(w.to, sizeof w.to, "%s", op->to ? op->to : "");
		len = wire_names_encode(args, sizeof args, &w);
	}
	if (len < 0 || client_send(f->cl, op->to ? "RENAME" : "DELETE", args, (size_t)len, i) < 0) {
		static const char why[] = "name too long";
		op_failed(f, op, why, sizeof why - 1);
		op->answered = true;
		f->answered++;
	}
}

static void on_reply(struct fileops *f, const struct client_msg *m)
{
	if (m->tag == TAG_ROLE) /* "OK files", or an older server's ERR: no matter */
		return;
	char why[ACCOUNT_ERR_LEN];
	if (m->tag == ACCOUNT_TAG && !account_accepted(m, why)) {
		fprintf(stderr, "bottle: %s\n", why);
		f->status = BOTTLE_EXIT_ERR;
		f->done = true;
		return;
	}
	if (m->tag == ACCOUNT_TAG)
		return;
	if (m->tag == TAG_QUIT) {
		f->done = true; /* "OK bye" */
		return;
	}
	if (m->tag < 0 || m->tag >= f->n || f->ops[m->tag].answered)
		return;
	struct fileop *op = &f->ops[m->tag];
	op->answered = true;
	f->answered++;
	if (m->kind == CLIENT_OK)
		op_done(op);
	else
		op_failed(f, op, m->arg, m->arg_len);
}

static void on_message(void *ctx, const struct client_msg *m)
{
	struct fileops *f = ctx;

	if (m->role == CLIENT_GREETING && m->kind != CLIENT_OK) {
		char safe[NET_ERR_LEN];
		escape_text(safe, sizeof safe, m->arg, m->arg_len);
		fprintf(stderr, "bottle: server refused the connection: %s\n", safe);
		f->status = BOTTLE_EXIT_CONN;
		f->done = true;
	} else if (m->role == CLIENT_REPLY) {
		on_reply(f, m);
	} else if (m->role == CLIENT_NOTICE) {
		escape_text(f->reason, sizeof f->reason, m->arg, m->arg_len);
	}
}

/* The connection ended: fine once every operation has its reply. */
static void lost(struct fileops *f, const char *why)
{
	f->done = true;
	if (f->answered == f->n)
		return;
	fprintf(stderr, "bottle: connection lost: %s (%d of %d not answered)\n",
	        f->reason[0] ? f->reason : why, f->n - f->answered, f->n);
	f->status = BOTTLE_EXIT_CONN;
}

static void step(struct fileops *f)
{
	struct pollfd p = { .fd = f->cl->fd, .events = POLLIN };

	if (client_flush(f->cl) < 0) {
		lost(f, f->cl->error);
		return;
	}
	if (client_wants_write(f->cl))
		p.events |= POLLOUT;
	if (poll(&p, 1, -1) < 0) {
		if (errno != EINTR)
			lost(f, strerror(errno));
		return;
	}
	if ((p.revents & (POLLIN | POLLHUP | POLLERR)) &&
	    chat_receive(f->cl, on_message, f, &f->done) < 0)
		lost(f, f->cl->error);
}

static int run(struct client *cl, struct fileop *ops, int n)
{
	struct fileops f = { .cl = cl, .ops = ops, .n = n, .status = BOTTLE_EXIT_OK };

	(void)signal(SIGPIPE, SIG_IGN); /* a dead socket is an error, not a kill */
	/* AUTH first (account.h) */
	account_send(cl);
	(void)client_send(cl, "ROLE", "files", 5, TAG_ROLE); /* TPKT clients speak first */
	for (int i = 0; i < n; i++)
		op_send(&f, i);
	(void)client_send(cl, "QUIT", NULL, 0, TAG_QUIT);
	while (!f.done)
		step(&f);
	return f.status;
}

int fileop_delete(struct client *cl, char *const *names, int n)
{
	struct fileop *ops = xcalloc((size_t)n, sizeof *ops);

	for (int i = 0; i < n; i++)
		ops[i].name = names[i];
	int status = run(cl, ops, n);
	free(ops);
	return status;
}

int fileop_rename(struct client *cl, const char *from, const char *to)
{
	struct fileop op = { .name = from, .to = to };
	return run(cl, &op, 1);
}
