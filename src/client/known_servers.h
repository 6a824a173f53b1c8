/* known_servers.h - certificates pinned on first use, as ssh's known_hosts:
 * one line per server, "HOST:PORT FINGERPRINT", in
 * $XDG_CONFIG_HOME/bottle/known_servers (else ~/.config/bottle/known_servers),
 * mode 0600. Blank lines and lines starting with '#' are ignored. */
#ifndef BOTTLE_KNOWN_SERVERS_H
#define BOTTLE_KNOWN_SERVERS_H

#include <stdbool.h>
#include <stddef.h>

enum known_result {
	KNOWN_MATCH,   /* the server's line pins this fingerprint */
	KNOWN_CHANGED, /* its line pins another one: *line says which */
	KNOWN_UNKNOWN, /* no line for the server (or no file yet) */
	KNOWN_ERROR,   /* the file can't be read: errno */
};

/* The file's path from the environment (XDG_CONFIG_HOME, else HOME). false
 * when neither is set or the path does not fit. */
bool known_servers_path(char *out, size_t len);
/* Splits one line into its server and fingerprint; false for a blank line, a
 * comment, or a line that is not two words. */
bool known_servers_parse(const char *line, char *server, size_t slen, char *fp, size_t flen);
/* Looks the server ("host:port", "[v6]:port") up; *line is the 1-based
 * line number of its entry (KNOWN_MATCH, KNOWN_CHANGED). */
enum known_result known_servers_check(const char *path, const char *server, const char *fp,
                                      int *line);
/* Appends the server's line, creating the file (0600) and its folder (0700)
 * as needed; *line is its number. 0, or -1 with errno. */
int known_servers_add(const char *path, const char *server, const char *fp, int *line);

#endif
