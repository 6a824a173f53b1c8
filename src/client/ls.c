/* ls.c - the listing as one kind of transfer (kind.h; docs/protocol.md,
 * LIST). One reply holds the lines that fit in a frame, so it asks again
 * from the number of lines it has until it has all <count>; after a break
 * it asks again from there.
 *
 * What it shows: on a terminal (stdout), "  10.0 MiB  report.pdf", the
 * sizes in binary units (progress_bytes) with numbers and units in columns
 * of their own, so every name starts in the same column whatever the page;
 * elsewhere the server's lines as they are, "<bytes> <name>", for scripts. */
#include "kind.h"
#include "progress.h"
#include "reply.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LS_NUM_COLS 6  /* "1023.9" */
#define LS_UNIT_COLS 3 /* "KiB", "B  " */

struct ls {
	struct transfer *t;
	bool asked;      /* LIST sent on this connection */
	bool human;      /* stdout is a terminal: sizes for people, in columns */
	uint64_t listed; /* lines shown so far (the next page's start) */
};

/* NOLINTNEXTLINE(readability-non-const-parameter): kind_ops.open's signature */
static void *ls_open(struct transfer *t, const struct transfer_config *cfg, char err[NET_ERR_LEN])
{
	struct ls *ls = xcalloc(1, sizeof *ls);

	(void)cfg;
	(void)err;
	ls->t = t;
	ls->human = isatty(STDOUT_FILENO);
	return ls;
}

static void ls_free(void *k) { free(k); }

static enum kind_need ls_need(const void *k)
{
	const struct ls *ls = k;
	return ls->asked ? KIND_TALK : KIND_WAIT;
}

static void ask(struct ls *ls, struct client *cl)
{
	char from[24];
	int n = wire_list_encode(from, sizeof from, &(struct wire_list){ .from = ls->listed });
	client_send(cl, "LIST", from, (size_t)n, 0);
	ls->asked = true;
}

static void ls_begin(void *k, struct client *cl) { ask(k, cl); }

/* One "<size> <name>" line of the listing, for a person when human; a line
 * that does not read as one goes as it came. */
static void show_line(const struct ls *ls, const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	char size[32], out[WIRE_NAME_MAX + 64];
	uint64_t bytes;

	if (!ls->human || !sp || !reply_u63(line, (size_t)(sp - line), &bytes) ||
	    len - (size_t)(sp + 1 - line) > WIRE_NAME_MAX) {
		transfer_list_line(ls->t, line, len);
		return;
	}
	progress_bytes(size, sizeof size, (double)bytes);
	char *unit = strchr(size, ' ');
	if (unit)
		*unit++ = '\0';
	int n = snprintf(out, sizeof out, "%*s %-*s  %.*s", LS_NUM_COLS, size, LS_UNIT_COLS,
	                 unit ? unit : "", (int)(len - (size_t)(sp + 1 - line)), sp + 1);
	transfer_list_line(ls->t, out,
	                   n < 0                    ? 0
	                   : (size_t)n < sizeof out ? (size_t)n
	                                            : sizeof out - 1);
}

/* "OK <count>\n<size> <name>\n..." */
static bool ls_message(void *k, const struct client_msg *m)
{
	struct ls *ls = k;
	const char *p = m->arg, *end = m->arg + m->arg_len;
	const char *nl = memchr(p, '\n', m->arg_len);
	uint64_t count, got = 0;

	if (!ls->asked || m->role != CLIENT_REPLY)
		return false;
	if (m->kind == CLIENT_ERR) {
		transfer_refused(ls->t, m);
		return true;
	}
	if (!reply_u63(p, (size_t)((nl ? nl : end) - p), &count))
		return false;
	if (ls->listed == 0)
		transfer_began(ls->t, 0, 0);
	while (nl) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		show_line(ls, p, (size_t)((nl ? nl : end) - p));
		got++;
	}
	ls->listed += got;
	if (got == 0 || ls->listed >= count)
		transfer_succeed(ls->t, NULL, NULL);
	else
		ask(ls, link_client(transfer_link(ls->t))); /* the next page */
	return true;
}

static void ls_down(void *k)
{
	struct ls *ls = k;
	ls->asked = false;
}

static void ls_progress(const void *k, struct kind_progress *pr)
{
	(void)k;
	memset(pr, 0, sizeof *pr);
}

static void ls_resume_hint(const void *k, const char *addr, char *out, size_t outsz)
{
	(void)k;
	snprintf(out, outsz, "run the same command again: bottle ls %s", addr);
}

const struct kind_ops ls_ops = {
	.verb = "list",
	.resumable = false,
	.open = ls_open,
	.free = ls_free,
	.need = ls_need,
	.begin = ls_begin,
	.message = ls_message,
	.down = ls_down,
	.progress = ls_progress,
	.resume_hint = ls_resume_hint,
};
