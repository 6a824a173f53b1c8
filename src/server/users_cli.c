/* users_cli.c - the accounts file from the command line. */
#include "users_cli.h"
#include "perms.h"
#include "users.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define EXIT_USAGE 2

bool users_cli_wanted(const struct users_cli *u) { return u->add || u->remove || u->list; }

/* A missing file is an empty list for --add-user, which creates it. */
static int load(const char *path, struct users *users, bool missing_ok)
{
	char err[USERS_ERR_LEN];
	if (users_load(path, users, err) == 0)
		return 0;
	if (missing_ok && errno == ENOENT)
		return 0;
	fprintf(stderr, "bottled: %s\n", err);
	return -1;
}

/* Ends a change to the loaded users: saves them if it went well (ok; if not,
 * it said why), frees them either way. 0 when saved, else -1. */
static int save_and_free(const char *path, struct users *users, bool ok)
{
	char err[USERS_ERR_LEN];
	int rc = ok ? users_save(path, users, err) : -1;
	if (ok && rc < 0)
		fprintf(stderr, "bottled: %s\n", err);
	users_free(users);
	return rc < 0 ? -1 : 0;
}

static int add_user(const char *path, const char *name, const char *perms_arg)
{
	struct users users;
	unsigned perms;
	char token[USERS_TOKEN_HEX + 1], err[USERS_ERR_LEN], shown[PERMS_TEXT_MAX];

	if (!perms_parse(perms_arg, &perms)) {
		fprintf(stderr,
		        "bottled: --perms: expected chat,read,write (any of them), all or "
		        "none, got '%s'\n",
		        perms_arg);
		return EXIT_USAGE;
	}
	if (load(path, &users, true) < 0)
		return 1;
	bool added = users_add(&users, name, perms, token, err) == 0;
	if (!added)
		fprintf(stderr, "bottled: %s\n", err);
	if (save_and_free(path, &users, added) < 0)
		return 1;
	printf("added %s (%s) to %s; its token, shown this once:\n%s\n", name,
	       perms_text(perms, shown), path, token);
	return 0;
}

static int remove_user(const char *path, const char *name)
{
	struct users users;
	if (load(path, &users, false) < 0)
		return 1;
	bool removed = users_remove(&users, name);
	if (!removed)
		fprintf(stderr, "bottled: no account '%s' in %s\n", name, path);
	if (save_and_free(path, &users, removed) < 0)
		return 1;
	printf("removed %s from %s\n", name, path);
	return 0;
}

static int list_users(const char *path)
{
	struct users users;
	char perms[PERMS_TEXT_MAX];
	if (load(path, &users, false) < 0)
		return 1;
	for (size_t i = 0; i < users.n; i++)
		printf("%s %s\n", users.list[i].name, perms_text(users.list[i].perms, perms));
	users_free(&users);
	return 0;
}

/* Two --add-user at once must not lose one: each holds FILE.lock (the file
 * itself is replaced by a rename, so it can't carry the lock). -1 if the
 * lock can't be had; the descriptor otherwise, closed to release it. */
static int lock_file(const char *path)
{
	char lock[4096];
	if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock)
		return -1;
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		fprintf(stderr, "bottled: cannot lock %s: %s\n", lock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int users_cli_run(const char *path, const struct users_cli *u)
{
	if (!path) {
		fprintf(stderr, "bottled: --add-user, --remove-user and --list-users need "
		                "--users FILE\n");
		return EXIT_USAGE;
	}
	if (!!u->add + !!u->remove + u->list > 1) {
		fprintf(stderr, "bottled: one of --add-user, --remove-user, --list-users at a "
		                "time\n");
		return EXIT_USAGE;
	}
	if (u->list)
		return list_users(path);
	int lock = lock_file(path);
	if (lock < 0)
		return 1;
	int rc = u->add ? add_user(path, u->add, u->perms ? u->perms : USERS_CLI_PERMS)
	                : remove_user(path, u->remove);
	close(lock);
	return rc;
}
