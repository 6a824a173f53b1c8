/* chat_slash.c - the slash commands of the interactive chat, as a table: each
 * entry maps /name to a server verb, says what argument it takes and how its
 * reply is labelled. Most just send their verb; /help, /quit, /upload and
 * /download bring run functions of their own. A command's reply tag is its
 * index in the table, so the session can label the reply when it comes. */
#include "chat_slash.h"
#include "chat.h"

#include <string.h>
#include <strings.h>

struct slash;
typedef void slash_fn(struct chat *ch, const struct slash *s, const char *arg, size_t len);

enum slash_arg { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

/* A chat command: /name maps to a server verb; its OK reply is shown after label.
 * Commands that need more than one request and reply (file transfer) bring
 * their own run function. */
struct slash {
	const char *name;
	const char *verb;
	const char *usage;
	const char *summary;
	enum slash_arg arg;
	const char *label;
	slash_fn *run;
};

static slash_fn slash_send, slash_help, slash_quit, slash_upload, slash_download;

static const struct slash slash_table[] = {
	{ "nick", "NICK", "/nick NAME", "change your nickname", ARG_REQUIRED, "you are now ",
	  slash_send },
	{ "who", "WHO", "/who", "count and list the people in the room", ARG_NONE,
	  "in the room: ", slash_send },
	{ "time", "TIME", "/time", "the server's clock", ARG_NONE, "server time: ", slash_send },
	{ "echo", "ECHO", "/echo TEXT", "have the server send TEXT back", ARG_OPTIONAL, "",
	  slash_send },
	{ "upload", "UPLOAD", "/upload FILE",
	  "send FILE (stored as its base name) in the background", ARG_REQUIRED, "", slash_upload },
	{ "download", "DOWNLOAD", "/download NAME", "fetch NAME into ./NAME in the background",
	  ARG_REQUIRED, "", slash_download },
	{ "list", "LIST", "/list", "the files on the server, with their sizes", ARG_NONE,
	  "files on the server: ", slash_send },
	{ "help", "HELP", "/help [COMMAND]", "this help, then the server's commands", ARG_OPTIONAL,
	  "server: ", slash_help },
	{ "quit", "QUIT", "/quit", "leave the room (Ctrl-D does too)", ARG_NONE, "", slash_quit },
};
#define SLASH_COUNT (sizeof slash_table / sizeof slash_table[0])

/* ==== the commands ==== */

static void slash_send(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	chat_send(ch, s->verb, arg, len, (int)(s - slash_table));
}

static void slash_quit(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	(void)s;
	(void)arg;
	(void)len;
	chat_quit(ch);
}

static void slash_upload(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	(void)s;
	chat_jobs_start(&ch->jobs, TRANSFER_PUT, arg, len);
}

static void slash_download(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	(void)s;
	chat_jobs_start(&ch->jobs, TRANSFER_GET, arg, len);
}

static const char help_text[] =
	"Type a message and press Enter to send it to everyone in the room.\n"
	"A line ending in \\ continues the message on the next line (the \\ is dropped);\n"
	"lines pasted together go as one message. Start a message with // to send\n"
	"text that begins with /. Up and Down walk the history; Ctrl-C clears the\n"
	"line, or leaves when it is empty.\n"
	"Commands:";

static void slash_help(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	if (len == 0) {
		chat_show(ch, false, help_text);
		for (size_t i = 0; i < SLASH_COUNT; i++) {
			char line[160];
			snprintf(line, sizeof line, "  %-16s %s", slash_table[i].usage,
			         slash_table[i].summary);
			chat_show(ch, false, line);
		}
	}
	slash_send(ch, s, arg, len);
}

/* ==== lookup and dispatch ==== */

static const struct slash *slash_find(const char *name, size_t len)
{
	for (size_t i = 0; i < SLASH_COUNT; i++)
		if (strlen(slash_table[i].name) == len &&
		    strncasecmp(slash_table[i].name, name, len) == 0)
			return &slash_table[i];
	return NULL;
}

void chat_slash_run(struct chat *ch, const char *text, size_t len)
{
	size_t n = strcspn(text, " \n");
	const char *arg = n < len ? text + n + 1 : text + len;
	size_t alen = n < len ? len - n - 1 : 0;
	const struct slash *s = slash_find(text, n);

	if (!s) {
		chat_show_error(ch, "unknown command /%.*s (/help lists them)",
		                (int)(n < 64 ? n : 64), text);
		return;
	}
	if ((s->arg == ARG_NONE && alen) || (s->arg == ARG_REQUIRED && !alen)) {
		chat_show_error(ch, "usage: %s", s->usage);
		return;
	}
	s->run(ch, s, arg, alen);
}

const char *chat_slash_label(int tag)
{
	return tag >= 0 && (size_t)tag < SLASH_COUNT ? slash_table[tag].label : "";
}

bool chat_slash_renames(int tag)
{
	return tag >= 0 && (size_t)tag < SLASH_COUNT && strcmp(slash_table[tag].verb, "NICK") == 0;
}

void chat_slash_print_help(FILE *out, const char *indent)
{
	for (size_t i = 0; i < SLASH_COUNT; i++)
		fprintf(out, "%s%-18s %s\n", indent, slash_table[i].usage, slash_table[i].summary);
}
