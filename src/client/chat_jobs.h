/* chat_jobs.h - the transfers a chat runs in the background (/upload,
 * /download), each on a connection of its own, stepped by the chat's loop
 * while the user goes on chatting; "retry? [y/N]" when one's link stays down. */
#ifndef BOTTLE_CHAT_JOBS_H
#define BOTTLE_CHAT_JOBS_H

#include "transfer.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#define CHAT_JOBS_MAX 16 /* transfers running at once */

struct chat;

struct chat_jobs {
	struct chat *chat;                    /* where their messages go */
	const struct transfer_config *config; /* shared settings (kind, file, name unset) */
	struct transfer *list[CHAT_JOBS_MAX];
	size_t count;
	struct transfer *asking; /* its retry window ran out: the next line answers */
	bool changed;            /* progress or the list changed: the prompt is stale */
};

void chat_jobs_init(struct chat_jobs *j, struct chat *ch, const struct transfer_config *config);

/* /upload FILE (TRANSFER_PUT) or /download NAME (TRANSFER_GET); arg is the
 * argument as typed. Says why when it cannot start. */
void chat_jobs_start(struct chat_jobs *j, enum transfer_kind kind, const char *arg, size_t len);

/* ---- driving, from the chat's loop ---- */

/* Fills p[0..count) with what each transfer waits on; returns ms (-1: no
 * limit) lowered to the nearest transfer deadline. */
int chat_jobs_poll(const struct chat_jobs *j, struct pollfd *p, int ms);
/* Steps every transfer with what poll said in p; forgets the finished. */
void chat_jobs_step(struct chat_jobs *j, const struct pollfd *p);
/* Leaving with transfers still running: they stop; each resumes when started again. */
void chat_jobs_stop_all(struct chat_jobs *j);

/* ---- retry? [y/N] ---- */

/* True while a transfer waits for the answer to "retry?". */
bool chat_jobs_asking(const struct chat_jobs *j);
/* The user's answer to it: "y" or "yes" (any case) retries, anything else gives up. */
void chat_jobs_answer(struct chat_jobs *j, const char *line);

/* The prompt's part: "[notes.txt 45% | big.iso 3%] ", or "" with none
 * running. Returns its length. */
size_t chat_jobs_progress(const struct chat_jobs *j, char *out, size_t outsz);

#endif
