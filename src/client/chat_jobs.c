/* chat_jobs.c - background transfers of a chat. /upload and /download each
 * start a transfer (transfer.c) on a connection of its own; the chat's loop
 * polls their fds and steps them, so chatting goes on meanwhile. Their
 * messages print above the prompt, their progress shows in it, and when one's
 * retry window runs out the next line typed answers "retry? [y/N]". */
#include "chat_jobs.h"
#include "chat.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ==== what transfers report ==== */

static void job_say(void *ctx, struct transfer *t, enum transfer_text kind, const char *text,
                    size_t len)
{
	struct chat_jobs *j = ctx;
	(void)t;
	if (kind == TRANSFER_LISTING)
		chat_show_text(j->chat, false, "", text, len);
	else
		chat_show(j->chat, kind != TRANSFER_DONE, text); /* already safe */
	j->changed = true;
}

static void job_progress(void *ctx, struct transfer *t)
{
	struct chat_jobs *j = ctx;
	(void)t;
	j->changed = true;
}

/* Asks about the first transfer waiting for an answer, if none is being asked. */
static void ask_next(struct chat_jobs *j)
{
	char line[600];

	if (j->asking)
		return;
	for (size_t i = 0; i < j->count; i++) {
		if (transfer_asking(j->list[i])) {
			j->asking = j->list[i];
			snprintf(line, sizeof line,
			         "%s: still no connection after %d s; retry? [y/N]",
			         transfer_label(j->asking), j->config->retry_for_s);
			chat_show(j->chat, true, line);
			j->changed = true;
			return;
		}
	}
}

static void job_ask(void *ctx, struct transfer *t)
{
	(void)t;
	ask_next(ctx);
}

bool chat_jobs_asking(const struct chat_jobs *j) { return j->asking != NULL; }

void chat_jobs_answer(struct chat_jobs *j, const char *line)
{
	struct transfer *t = j->asking;

	j->asking = NULL;
	if (strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0)
		transfer_retry(t);
	else
		transfer_abandon(t);
	j->changed = true;
	ask_next(j);
}

/* ==== starting ==== */

void chat_jobs_init(struct chat_jobs *j, struct chat *ch, const struct transfer_config *config)
{
	memset(j, 0, sizeof *j);
	j->chat = ch;
	j->config = config;
}

/* The running transfer of this kind and name, if any: two of them would fight
 * over one partial copy. */
static struct transfer *find_running(const struct chat_jobs *j, enum transfer_kind kind,
                                     const char *name)
{
	for (size_t i = 0; i < j->count; i++)
		if (transfer_kind(j->list[i]) == kind &&
		    strcmp(transfer_name(j->list[i]), name) == 0)
			return j->list[i];
	return NULL;
}

void chat_jobs_start(struct chat_jobs *j, enum transfer_kind kind, const char *arg, size_t len)
{
	struct transfer_io io = {
		.say = job_say, .progress = job_progress, .ask = job_ask, .ctx = j
	};
	struct transfer_config cfg = *j->config;
	char err[NET_ERR_LEN], hint[600];

	if (j->count == CHAT_JOBS_MAX) {
		chat_show_error(j->chat, "already %d transfers running; wait for one to end",
		                CHAT_JOBS_MAX);
		return;
	}
	char *what = xstrndup(arg, len);
	const char *slash = strrchr(what, '/');
	const char *name = kind == TRANSFER_PUT && slash ? slash + 1 : what;
	const struct transfer *same = find_running(j, kind, name);
	if (same) {
		chat_show_error(j->chat, "%s is already running", transfer_label(same));
		free(what);
		return;
	}
	cfg.kind = kind;
	cfg.progress = true;
	if (kind == TRANSFER_PUT)
		cfg.file = what;
	else
		cfg.name = what;
	char *safe = client_render_lines("", what, strlen(what));
	snprintf(hint, sizeof hint, "type /%s %s again to resume it",
	         kind == TRANSFER_PUT ? "upload" : "download", safe);
	free(safe);
	cfg.resume_hint = hint;
	struct transfer *t = transfer_start(&cfg, &io, err);
	free(what);
	if (!t) {
		chat_show_error(j->chat, "%s", err);
		return;
	}
	j->list[j->count++] = t;
	j->changed = true;
}

/* ==== driving ==== */

int chat_jobs_poll(const struct chat_jobs *j, struct pollfd *p, int ms)
{
	for (size_t i = 0; i < j->count; i++) {
		int t_ms = transfer_timeout_ms(j->list[i]);
		p[i] = (struct pollfd){ .fd = -1 };
		p[i].fd = transfer_fd(j->list[i], &p[i].events);
		if (t_ms >= 0 && (ms < 0 || t_ms < ms))
			ms = t_ms;
	}
	return ms;
}

void chat_jobs_step(struct chat_jobs *j, const struct pollfd *p)
{
	size_t kept = 0;

	for (size_t i = 0; i < j->count; i++)
		transfer_step(j->list[i], (short)(p[i].fd >= 0 ? p[i].revents : 0));
	for (size_t i = 0; i < j->count; i++) {
		if (transfer_result(j->list[i]) == TRANSFER_RUNNING) {
			j->list[kept++] = j->list[i];
		} else {
			transfer_free(j->list[i]);
			j->changed = true;
		}
	}
	j->count = kept;
}

void chat_jobs_stop_all(struct chat_jobs *j)
{
	if (j->count) {
		char line[128];
		snprintf(line, sizeof line,
		         "stopped %zu transfer%s; the same /upload or /download "
		         "resumes it later",
		         j->count, j->count == 1 ? "" : "s");
		chat_show(j->chat, true, line);
	}
	for (size_t i = 0; i < j->count; i++)
		transfer_free(j->list[i]);
	j->count = 0;
	j->asking = NULL;
}

/* ==== the prompt ==== */

size_t chat_jobs_progress(const struct chat_jobs *j, char *out, size_t outsz)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < j->count && n + 80 < outsz; i++) {
		char item[128];
		transfer_progress_short(j->list[i], item, sizeof item);
		n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? " | " : "[", item);
	}
	if (n)
		n += (size_t)snprintf(out + n, outsz - n, "] ");
	return n;
}
