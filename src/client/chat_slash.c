/* chat_slash.c - the slash commands of the interactive chat, as a table: each
 * entry maps /name to a server verb, says what argument it takes and how its
 * reply is labelled (a NULL label: the OK is not shown). Most just send their
 * verb (/rm and /mv send DELETE and RENAME on the chat's own connection, so
 * the room's FILE news names this member); /msg, /mv, /time, /help, /quit,
 * /upload and /download bring run functions of their own. A command's reply tag is its index in the
 * table, so the session can label the reply when it comes. /help COMMAND is the client's own help
 * for its command, never the server's for a wire verb. */
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
	const char *more; /* /help COMMAND: what else to know, or NULL */
};

static slash_fn slash_send, slash_msg, slash_mv, slash_time, slash_help, slash_quit, slash_upload,
	slash_download;

static const struct slash slash_table[] = {
	{ "msg", "TELL", "/msg NICK TEXT", "a private message: only NICK sees it", ARG_REQUIRED,
	  NULL, slash_msg, "NICK sees it marked [private]; it is not kept in the room's history." },
	{ "me", "ME", "/me ACTION", "tell the room what you do: * you ACTION", ARG_REQUIRED, NULL,
	  slash_send, NULL },
	{ "nick", "NICK", "/nick NAME", "change your nickname", ARG_REQUIRED, "you are now ",
	  slash_send, "1-32 letters, digits or _-.[]; bottle --nick NAME asks for one at once." },
	{ "who", "WHO", "/who", "count and list the people in the room", ARG_NONE,
	  "in the room: ", slash_send, NULL },
	{ "history", "HISTORY", "/history [N]", "the room's last N messages again (all it keeps)",
	  ARG_OPTIONAL, NULL, slash_send,
	  "They show between --- history --- and --- live ---, each with the time it was said." },
	{ "time", "TIME", "/time [on|off]", "the server's clock; on/off: HH:MM before messages",
	  ARG_OPTIONAL, "server time: ", slash_time,
	  "The local time (HH:MM) before each message and event is on when the chat starts." },
	{ "echo", "ECHO", "/echo TEXT", "have the server send TEXT back", ARG_OPTIONAL, "",
	  slash_send, NULL },
	{ "upload", "UPLOAD", "/upload FILE",
	  "send FILE (stored as its base name) in the background", ARG_REQUIRED, "", slash_upload,
	  "The chat goes on meanwhile and the prompt shows its progress; several may run\n"
	  "at once. A broken link is retried for --retry-for seconds; the same /upload\n"
	  "resumes an interrupted one (bottle put FILE does the same outside the chat)." },
	{ "download", "DOWNLOAD", "/download NAME", "fetch NAME into ./NAME in the background",
	  ARG_REQUIRED, "", slash_download,
	  "The chat goes on meanwhile and the prompt shows its progress; the bytes go to\n"
	  "NAME.part until verified. The same /download resumes an interrupted one." },
	{ "list", "LIST", "/list", "the files on the server, with their sizes", ARG_NONE,
	  "files on the server: ", slash_send, NULL },
	{ "rm", "DELETE", "/rm NAME", "delete the file NAME on the server", ARG_REQUIRED, "",
	  slash_send,
	  "The room hears \"* you deleted NAME\". A name with spaces goes in double quotes:\n"
	  "/rm \"my notes.txt\" (bottle rm NAME... does the same outside the chat)." },
	{ "mv", "RENAME", "/mv OLD NEW", "rename the file OLD on the server to NEW", ARG_REQUIRED,
	  "", slash_mv,
	  "Never onto an existing name (that is an error). The room hears \"* you renamed\n"
	  "OLD to NEW\". Names with spaces go in double quotes: /mv \"a b\" c (bottle mv\n"
	  "OLD NEW does the same outside the chat)." },
	{ "help", "HELP", "/help [COMMAND]", "this help, or a command's", ARG_OPTIONAL,
	  "server: ", slash_help, NULL },
	{ "quit", "QUIT", "/quit", "leave the room (Ctrl-D does too)", ARG_NONE, "", slash_quit,
	  NULL },
};
#define SLASH_COUNT (sizeof slash_table / sizeof slash_table[0])
#define SLASH_NAMES_COLS 78 /* chat_slash_print_names wraps before this column */

/* ==== the commands ==== */

static void slash_send(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	chat_send(ch, s->verb, arg, len, (int)(s - slash_table));
}

/* "NICK TEXT": both are needed; the server finds NICK ignoring case. */
static void slash_msg(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	size_t n = strcspn(arg, " \n");

	if (n == 0 || n + 1 >= len) {
		chat_show_error(ch, "usage: %s", s->usage);
		return;
	}
	slash_send(ch, s, arg, len);
}

/* "OLD NEW": the names as protocol words, as typed (the server reads them). */
static void slash_mv(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	size_t n = strcspn(arg, " \n");

	if (n + 1 >= len) {
		chat_show_error(ch, "usage: %s", s->usage);
		return;
	}
	slash_send(ch, s, arg, len);
}

/* "/time": the server's clock; "/time on", "/time off": the stamps. */
static void slash_time(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	if (len == 0) {
		chat_send(ch, s->verb, NULL, 0, (int)(s - slash_table));
	} else if ((len == 2 && strncasecmp(arg, "on", 2) == 0) ||
	           (len == 3 && strncasecmp(arg, "off", 3) == 0)) {
		ch->stamps = len == 2;
		chat_show(ch, false, ch->stamps ? "time stamps on" : "time stamps off");
	} else {
		chat_show_error(ch, "usage: %s", s->usage);
	}
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

static const struct slash *slash_find(const char *name, size_t len);

static void show_entry(struct chat *ch, const struct slash *e)
{
	char line[200];

	snprintf(line, sizeof line, "  %-16s %s", e->usage, e->summary);
	chat_show(ch, false, line);
}

/* "/help": the client's help, then the server's command names (its reply).
 * "/help upload" (or "/help /upload"): the client's command, its usage and
 * what else to know; a name the client does not have is an error. */
static void slash_help(struct chat *ch, const struct slash *s, const char *arg, size_t len)
{
	if (len == 0) {
		chat_show(ch, false, help_text);
		for (size_t i = 0; i < SLASH_COUNT; i++)
			show_entry(ch, &slash_table[i]);
		slash_send(ch, s, arg, len);
		return;
	}
	if (arg[0] == '/') {
		arg++;
		len--;
	}
	const struct slash *e = slash_find(arg, len);
	if (!e) {
		chat_show_error(ch, "no command /%.*s (/help lists them)",
		                (int)(len < 64 ? len : 64), arg);
		return;
	}
	show_entry(ch, e);
	for (const char *p = e->more; p && *p;) { /* one show per line: each indented */
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		char line[200];
		snprintf(line, sizeof line, "  %.*s", n, p);
		chat_show(ch, false, line);
		p = nl ? nl + 1 : p + n;
	}
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

void chat_slash_print_names(FILE *out)
{
	size_t col = 2; /* after the caller's indent */

	for (size_t i = 0; i < SLASH_COUNT; i++) {
		size_t w = strlen(slash_table[i].name) + 1;
		if (i && col + 1 + w > SLASH_NAMES_COLS) {
			fputs("\n  ", out);
			col = 2;
		} else if (i) {
			fputc(' ', out);
			col++;
		}
		fprintf(out, "/%s", slash_table[i].name);
		col += w;
	}
}
