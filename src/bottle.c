/* bottle.c - the client's main: options, the address rule, the subcommand
 * table; each subcommand gets a connected client and returns the exit status. */
#include "chat_ui.h"
#include "client.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 10
#define MAX_TIMEOUT_S 3600

struct options {
	const char *command;     /* -c */
	struct net_keepalive ka;
	int timeout_s;
};

/* A form of the command: "bottle [NAME] ARGS... [HOST[:PORT]]". The address is
 * always the last positional argument, after the subcommand's own ones. */
struct subcommand {
	const char *name;        /* first positional argument; NULL: the default (chat) */
	const char *synopsis;    /* for --help, after "bottle " */
	int nargs;               /* positional arguments before the optional address */
	int (*run)(const struct options *o, struct client *c, char **args, const char *addr);
};

static int run_chat(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)args;
	if (o->command)
		return chat_once(c, o->command);
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		return chat_interactive(c, addr);
	return chat_script(c);
}

static const struct subcommand subcommands[] = {
	{ NULL, "[-c COMMAND] [OPTION]... [HOST[:PORT]]", 0, run_chat },
};
#define SUBCOMMAND_COUNT (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
	fprintf(out, "NAME\n    bottle - chat client for the bottled server\n\nSYNOPSIS\n");
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
		fprintf(out, "    bottle %s\n", subcommands[i].synopsis);
	fprintf(out,
"\nDESCRIPTION\n"
"    Connects to a bottled server and joins its chat room; messages travel in\n"
"    TPKT frames (RFC 1006). The server address HOST[:PORT] is the last argument\n"
"    (IPv6 as [::1]:4000, default port %d); without it, $BOTTLE_SERVER, else\n"
"    %s.\n"
"\n"
"    On a terminal, bottle is interactive: type a line and press Enter to say\n"
"    it to the room; incoming messages appear above the line being typed, which\n"
"    stays intact. Up and Down walk the history. A line ending in \\ continues\n"
"    the message on the next line (the \\ is dropped, the line break kept), and\n"
"    lines pasted together are sent as one message. Start a message with // to\n"
"    send text beginning with /. Ctrl-D, or Ctrl-C on an empty line, leaves.\n"
"\n"
"    When stdin or stdout is not a terminal, bottle runs as a script: each\n"
"    non-empty stdin line is said to the room and every event is printed on\n"
"    stdout, one line each (continuation lines of a multi-line message\n"
"    indented); errors go to stderr. At the end of stdin it waits for the\n"
"    replies still owed, says QUIT and exits.\n"
"\n"
"    Text from the network is made safe before it is shown: control characters\n"
"    and escape sequences appear escaped (ESC as \\x1b, a backslash as \\\\).\n"
"\n"
"    Chat display: \"nick: text\" for messages, \"* nick joined\", \"* nick left\n"
"    (reason)\", \"* old is now new\"; an ERR reply as \"error: text\".\n"
"\n"
"OPTIONS\n"
"    -c, --command COMMAND\n"
"        Send one server command (e.g. TIME, \"ECHO hi\", WHO), print the reply\n"
"        line as received (\"OK ...\" or \"ERR ...\"; escaped when stdout is a\n"
"        terminal) and exit. Chat events are ignored.\n"
"    -k, --keepalive IDLE,INTERVAL,COUNT\n"
"        TCP keepalive: probe after IDLE seconds of silence, every INTERVAL\n"
"        seconds, give up after COUNT probes; TCP_USER_TIMEOUT is set to the\n"
"        same window (default %d,%d,%d).\n"
"    --timeout SECONDS\n"
"        Give up connecting after this long (default %d).\n"
"    -h, --help\n"
"        Show this help and exit.\n"
"    -V, --version\n"
"        Show the version and exit.\n"
"\n"
"CHAT COMMANDS\n",
		BOTTLE_DEFAULT_PORT, BOTTLE_DEFAULT_ADDR, BOTTLE_DEFAULT_KEEPIDLE,
		BOTTLE_DEFAULT_KEEPINTVL, BOTTLE_DEFAULT_KEEPCNT, DEFAULT_TIMEOUT_S);
	chat_print_slash_help(out, "    ");
	fprintf(out,
"\nENVIRONMENT\n"
"    BOTTLE_SERVER\n"
"        HOST[:PORT] of the server when none is given on the command line.\n"
"\n"
"EXIT STATUS\n"
"    0   success: the session ended normally, or -c got an OK reply\n"
"    1   -c got an ERR reply\n"
"    2   bad command-line usage\n"
"    3   cannot connect, the server refused the connection, or the connection\n"
"        was lost\n"
"\n"
"EXAMPLES\n"
"    bottle                          chat on %s\n"
"    bottle -c TIME [::1]:4000       print the server's time\n"
"    echo hello | bottle chat.example.org\n",
		BOTTLE_DEFAULT_ADDR);
}

static _Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bottle: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'bottle --help' for more information.\n");
	va_end(ap);
	exit(CHAT_EXIT_USAGE);
}

enum { OPT_TIMEOUT = 256 };

static const struct option long_options[] = {
	{ "command", required_argument, NULL, 'c' },
	{ "keepalive", required_argument, NULL, 'k' },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int timeout_arg(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 1 || v > MAX_TIMEOUT_S)
		usage_error("--timeout: expected whole seconds from 1 to 3600, got '%s'", s);
	return (int)v;
}

static void parse_option(struct options *o, int opt)
{
	switch (opt) {
	case 'c':
		if (strlen(optarg) > TPKT_MAX_PAYLOAD)
			usage_error("--command: longer than one frame (%d bytes)", TPKT_MAX_PAYLOAD);
		o->command = optarg;
		break;
	case 'k':
		if (net_parse_keepalive(optarg, &o->ka) < 0)
			usage_error("--keepalive: expected IDLE,INTERVAL,COUNT (e.g. 15,5,6), got '%s'", optarg);
		break;
	case OPT_TIMEOUT: o->timeout_s = timeout_arg(optarg); break;
	case 'h': usage(stdout); exit(CHAT_EXIT_OK);
	case 'V': printf("bottle %s\n", BOTTLE_VERSION); exit(CHAT_EXIT_OK);
	default:
		fprintf(stderr, "Try 'bottle --help' for more information.\n");
		exit(CHAT_EXIT_USAGE);
	}
}

/* The subcommand named by args[0], else the default one (the chat). */
static const struct subcommand *find_subcommand(int nargs, char **args, int *skip)
{
	*skip = 0;
	for (size_t i = 0; nargs > 0 && i < SUBCOMMAND_COUNT; i++) {
		if (subcommands[i].name && strcmp(subcommands[i].name, args[0]) == 0) {
			*skip = 1;
			return &subcommands[i];
		}
	}
	return &subcommands[0];
}

/* Connects or exits 3 with a one-line error naming the address. */
static void connect_or_exit(struct client *c, const char *addr, const struct options *o)
{
	char host[256], err[NET_ERR_LEN];
	int port;

	if (net_split_hostport(addr, BOTTLE_DEFAULT_PORT, host, sizeof host, &port, err) < 0)
		usage_error("bad server address %s", err);
	if (client_connect(c, host, port, o->timeout_s * 1000, &o->ka, err) < 0)
		fatalx(CHAT_EXIT_CONN, "%s", err);
}

int main(int argc, char **argv)
{
	struct options o = {
		.ka = { BOTTLE_DEFAULT_KEEPIDLE, BOTTLE_DEFAULT_KEEPINTVL, BOTTLE_DEFAULT_KEEPCNT },
		.timeout_s = DEFAULT_TIMEOUT_S,
	};
	struct client c;
	int opt, skip;

	log_set_ident("bottle");
	while ((opt = getopt_long(argc, argv, "c:k:hV", long_options, NULL)) != -1)
		parse_option(&o, opt);
	char **args = argv + optind;
	int nargs = argc - optind;
	const struct subcommand *sc = find_subcommand(nargs, args, &skip);
	args += skip;
	nargs -= skip;
	if (nargs < sc->nargs)
		usage_error("missing argument (usage: bottle %s)", sc->synopsis);
	if (nargs > sc->nargs + 1)
		usage_error("unexpected argument '%s'", args[sc->nargs + 1]);
	const char *addr = client_addr_pick(nargs > sc->nargs ? args[nargs - 1] : NULL,
	                                    getenv("BOTTLE_SERVER"));
	connect_or_exit(&c, addr, &o);
	int status = sc->run(&o, &c, args, addr);
	client_close(&c);
	return status;
}
