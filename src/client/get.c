/* get.c - a download as one kind of transfer (kind.h; docs/protocol.md,
 * DOWNLOAD). Bytes go into PATH.part (partfile.h), which a later run resumes
 * from; on each connection:
 *
 *   (the link is up) ASKED -> RECV -> VERIFY -> PATH
 *
 * "OK <size> <offset> <sha256>" says where the server goes on from (0 when
 * the file changed since the .part began); the whole .part must then have
 * that digest before it is renamed into place.
 *
 * An existing PATH (not its .part) is never replaced without --force: when
 * the reply's size is not its size, or its SHA-256 (hashed in steps, after
 * QUIT: no byte is read) is not the reply's, the download fails before any
 * .part is made; when both match, the file is already there and that is
 * success, nothing moved:
 *
 *   ASKED -> (PATH exists) SAME -> done, or refused */
#include "kind.h"
#include "escape.h"
#include "partfile.h"
#include "reply.h"
#include "resume.h"
#include "xmalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARGS_MAX (2 * WIRE_NAME_MAX + 200)
#define SAFE_PATH (WIRE_NAME_MAX * 4 + 16)
#define SAME_STEP (1u << 20) /* bytes of an existing PATH hashed per step */

enum get_phase {
	GET_OFF,    /* no connection: the link dials */
	GET_ASKED,  /* DOWNLOAD sent: the reply is awaited */
	GET_RECV,   /* data frames go into the .part */
	GET_VERIFY, /* hashing the .part */
	GET_SAME,   /* hashing an existing PATH: is it the server's file? */
};

struct get {
	struct transfer *t;
	const char *name;
	enum get_phase ph;
	struct partfile pf;
	uint64_t size;         /* from the reply */
	uint64_t pos;          /* bytes in the .part */
	char part[SAFE_PATH];  /* pf.part, safe to show */
	char spath[SAFE_PATH]; /* pf.path, safe to show */
	bool force;            /* --force: an existing PATH is replaced */
	bool exists;           /* PATH is there (checked at the reply) */
	int same_fd;           /* GET_SAME: PATH open for hashing */
	struct sha256_steps same;
	char want[WIRE_SHA_HEX + 1]; /* GET_SAME: the server's digest */
};

/* A name the client may use as one component of a local path. */
static bool local_name_ok(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Where the file goes: -o PATH, or PATH/NAME when PATH is a folder, or ./NAME.
 * A PATH ending in '/' must be a folder that exists. */
static char *target_path(const char *name, const char *output, char err[NET_ERR_LEN])
{
	struct stat sb;
	bool into_dir = !output || (stat(output, &sb) == 0 && S_ISDIR(sb.st_mode));

	if (output && !into_dir && *output && output[strlen(output) - 1] == '/') {
		char safe[NET_ERR_LEN / 2];
		bool there = stat(output, &sb) == 0 || errno == ENOTDIR;
		escape_text(safe, sizeof safe, output, strlen(output));
		snprintf(err, NET_ERR_LEN, "-o %s: %s", safe,
		         there ? "not a folder" : "no such folder");
		return NULL;
	}

	if (into_dir && !local_name_ok(name)) {
		char safe[NET_ERR_LEN / 2];
		escape_text(safe, sizeof safe, name, strlen(name));
		snprintf(err, NET_ERR_LEN, "invalid file name: %s", safe);
		return NULL;
	}
	if (!output)
		return xstrdup(name);
	if (!into_dir)
		return xstrdup(output);
	size_t n = strlen(output) + strlen(name) + 2;
	char *path = xmalloc(n);
	snprintf(path, n, "%s%s%s", output, output[strlen(output) - 1] == '/' ? "" : "/", name);
	return path;
}

static void *get_open(struct transfer *t, const struct transfer_config *cfg, char err[NET_ERR_LEN])
{
	char *path = target_path(cfg->name, cfg->output, err);

	if (!path)
		return NULL;
	struct get *g = xcalloc(1, sizeof *g);
	g->t = t;
	g->name = cfg->name;
	g->force = cfg->force;
	g->same_fd = -1;
	int rc = partfile_open(&g->pf, path);
	free(path);
	escape_text(g->part, sizeof g->part, g->pf.part, strlen(g->pf.part));
	escape_text(g->spath, sizeof g->spath, g->pf.path, strlen(g->pf.path));
	if (rc < 0) {
		char safe[NET_ERR_LEN / 2];
		escape_text(safe, sizeof safe, g->pf.part, strlen(g->pf.part));
		snprintf(err, NET_ERR_LEN, "cannot open %s: %s", safe, strerror(errno));
		partfile_close(&g->pf);
		free(g);
		return NULL;
	}
	g->pos = g->pf.size;
	return g;
}

static void same_close(struct get *g)
{
	sha256_steps_abort(&g->same);
	if (g->same_fd >= 0)
		close(g->same_fd);
	g->same_fd = -1;
}

static void get_free(void *k)
{
	struct get *g = k;
	same_close(g);
	partfile_close(&g->pf);
	free(g);
}

static enum kind_need get_need(const void *k)
{
	const struct get *g = k;

	switch (g->ph) {
	case GET_OFF: return KIND_WAIT;
	case GET_ASKED: return KIND_TALK;
	case GET_RECV: return KIND_RECV;
	case GET_VERIFY:
	case GET_SAME: break;
	}
	return KIND_LOCAL;
}

static void start_verify(struct get *g)
{
	link_quit(transfer_link(g->t));
	if (partfile_verify_begin(&g->pf, g->size) < 0) {
		transfer_fail(g->t, "cannot check %s: %s", g->part, strerror(errno));
		return;
	}
	transfer_checking(g->t, g->size);
	g->ph = GET_VERIFY;
}

/* The final word on an existing PATH that is not the server's file. */
static void refuse(struct get *g)
{
	transfer_fail(g->t,
	              "%s exists and is not the server's file; use --force to replace it "
	              "(or -o another name)",
	              g->spath);
}

/* At the reply, PATH is there (not followed: a symlink counts as there).
 * Another size: refused now. The same size: QUIT, and hash it (GET_SAME). */
static bool check_existing(struct get *g, uint64_t size, const char *sha)
{
	struct stat sb;

	if (g->force || lstat(g->pf.path, &sb) < 0)
		return true;
	g->exists = true;
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != size) {
		refuse(g);
		return false;
	}
	memcpy(g->want, sha, WIRE_SHA_HEX); /* before QUIT: the reply lives in the link */
	g->want[WIRE_SHA_HEX] = '\0';
	link_quit(transfer_link(g->t));
	g->same_fd = open(g->pf.path, O_RDONLY | O_CLOEXEC);
	if (g->same_fd < 0 || sha256_steps_begin(&g->same, g->same_fd, size) < 0) {
		transfer_fail(g->t, "cannot read %s: %s", g->spath, strerror(errno));
		return false;
	}
	g->size = size;
	transfer_checking(g->t, size);
	g->ph = GET_SAME;
	return false;
}

/* GET_SAME: one step of hashing PATH; at the end, it is the server's file
 * (success, nothing downloaded) or it is refused. */
static void same_step(struct get *g)
{
	static unsigned char buf[SAME_STEP];
	char got[WIRE_SHA_HEX + 1];
	int rc = sha256_steps_run(&g->same, buf, sizeof buf, sizeof buf);

	if (rc == 0)
		return;
	if (rc < 0) {
		transfer_fail(g->t, "cannot read %s: %s", g->spath,
		              errno == EIO ? "file shrank" : strerror(errno));
		return;
	}
	sha256_steps_finish(&g->same, got);
	same_close(g);
	if (strcmp(got, g->want) != 0) {
		refuse(g);
		return;
	}
	transfer_say(
		g->t, TRANSFER_DONE,
		"%s is already here: same size and SHA-256 as the server's; nothing downloaded",
		g->spath);
	transfer_succeed(g->t, NULL, NULL);
}

/* The .part must have the digest the server announced; then it is the file. */
static void get_work(void *k)
{
	struct get *g = k;
	char sha[WIRE_SHA_HEX + 1];
	const char *where = strcmp(g->pf.path, g->name) != 0 ? g->pf.path : NULL;

	if (g->ph == GET_SAME) {
		same_step(g);
		return;
	}
	switch (partfile_verify_step(&g->pf, sha)) {
	case PARTFILE_MORE: break;
	case PARTFILE_ERROR:
		/* EIO: the hash found the file shorter than it was */
		transfer_fail(g->t, "cannot read %s: %s", g->part,
		              errno == EIO ? "file shrank" : strerror(errno));
		break;
	case PARTFILE_BAD:
		transfer_fail(g->t, "checksum mismatch (got %s, the server has %s); %s deleted",
		              sha, g->pf.sha, g->part);
		break;
	case PARTFILE_GOOD:
		if (partfile_publish(&g->pf) < 0)
			transfer_fail(g->t, "cannot put %s in place: %s", g->part, strerror(errno));
		else
			transfer_succeed(g->t, "downloaded", where);
		break;
	}
}

static void get_begin(void *k, struct client *cl)
{
	struct get *g = k;
	char args[ARGS_MAX];
	int n = transfer_download_args(args, sizeof args, g->name, g->pos,
	                               g->pos ? g->pf.sha : NULL);

	if (n < 0) {
		transfer_fail(g->t, "name too long");
		return;
	}
	client_send(cl, "DOWNLOAD", args, (size_t)n, 0);
	g->ph = GET_ASKED;
}

/* "OK <size> <offset> <sha256>": the .part is made to end at offset. */
static void take_reply(struct get *g, uint64_t size, uint64_t offset, const char *sha)
{
	if (offset > size || offset > g->pos) {
		transfer_fail(g->t, "the server resumed at %" PRIu64 ", we have %" PRIu64, offset,
		              g->pos);
		return;
	}
	if (partfile_create(&g->pf) < 0) {
		transfer_fail(g->t, "cannot create %s: %s", g->part, strerror(errno));
		return;
	}
	if (offset < g->pos && partfile_truncate(&g->pf, offset) < 0) {
		transfer_fail(g->t, "cannot truncate %s: %s", g->part, strerror(errno));
		return;
	}
	partfile_tag(&g->pf, sha);
	if (partfile_receive(&g->pf, offset, size) < 0) {
		transfer_fail(g->t, "cannot hash %s: %s", g->part, strerror(errno));
		return;
	}
	g->size = size;
	transfer_began(g->t, offset, size);
	g->pos = offset;
	if (offset == size)
		start_verify(g);
	else
		g->ph = GET_RECV;
}

static bool get_message(void *k, const struct client_msg *m)
{
	struct get *g = k;
	const char *w[3];
	size_t wl[3];
	uint64_t size, offset;

	if (g->ph != GET_ASKED || m->role != CLIENT_REPLY)
		return false;
	if (m->kind == CLIENT_ERR) {
		transfer_refused(g->t, m);
		return true;
	}
	if (reply_words(m->arg, m->arg_len, w, wl, 3) != 3 || !reply_u63(w[0], wl[0], &size) ||
	    !reply_u63(w[1], wl[1], &offset) || !reply_sha(w[2], wl[2]))
		return false;
	if (check_existing(g, size, w[2]))
		take_reply(g, size, offset, w[2]);
	return true;
}

static bool get_data(void *k, const unsigned char *p, size_t len)
{
	struct get *g = k;
	struct link *l = transfer_link(g->t);

	if (len > g->size - g->pos) {
		transfer_fail(g->t, "the server sent more than %" PRIu64 " bytes", g->size);
		return false;
	}
	if (partfile_write(&g->pf, g->pos, p, len) < 0) {
		transfer_fail(g->t, "cannot write %s: %s", g->part, strerror(errno));
		return false;
	}
	g->pos += len;
	ratelimit_spend(transfer_limit(g->t), len, link_now());
	if (link_recovering(l) && len)
		link_confirmed(l);
	if (g->pos == g->size) {
		start_verify(g);
		return false;
	}
	return true;
}

/* Stops reading while the rate limit is in debt, so TCP slows the server. */
static void get_poll(const void *k, short *events, double *wait)
{
	const struct get *g = k;
	struct ratelimit lim = *transfer_limit(g->t);

	if (g->ph != GET_RECV)
		return;
	double w = ratelimit_wait(&lim, 1, link_now());
	if (w > 0) {
		*events &= (short)~POLLIN;
		if (*wait < 0 || w < *wait)
			*wait = w;
	}
}

static void get_down(void *k)
{
	struct get *g = k;
	g->ph = GET_OFF;
}

static void get_progress(const void *k, struct kind_progress *pr)
{
	const struct get *g = k;

	pr->shown = g->ph == GET_RECV || g->ph == GET_VERIFY || g->ph == GET_SAME;
	pr->checking = g->ph == GET_VERIFY || g->ph == GET_SAME;
	pr->done = g->ph == GET_VERIFY ? partfile_hashed(&g->pf)
	           : g->ph == GET_SAME ? g->same.done
	                               : g->pos;
	pr->total = g->size;
}

static void get_resume_hint(const void *k, const char *addr, char *out, size_t outsz)
{
	const struct get *g = k;
	char name[600], path[600];

	resume_shell_quote(g->name, name, sizeof name);
	resume_shell_quote(g->pf.path, path, sizeof path);
	snprintf(out, outsz, "run the same command again to resume: bottle get %s -o %s%s %s", name,
	         path, g->force ? " --force" : "", addr);
}

const struct kind_ops get_ops = {
	.verb = "download",
	.resumable = true,
	.open = get_open,
	.free = get_free,
	.need = get_need,
	.work = get_work,
	.begin = get_begin,
	.message = get_message,
	.data = get_data,
	.poll = get_poll,
	.down = get_down,
	.progress = get_progress,
	.resume_hint = get_resume_hint,
};
