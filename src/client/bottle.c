/* bottle.c - the client's main: options, the address rule, the subcommand
 * table; each subcommand returns the exit status. The chat and -c get a
 * connected client; put, get and ls make their own connections (they
 * reconnect). */
#include "chat.h"
#include "chat_once.h"
#include "chat_script.h"
#include "chat_slash.h"
#include "chat_tty.h"
#include "client.h"
#include "escape.h"
#include "exit_codes.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "ratelimit.h"
#include "transfer.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 10
#define MAX_TIMEOUT_S 3600
#define DEFAULT_RETRY_FOR_S 60
#define MAX_RETRY_FOR_S (7 * 24 * 3600)

struct options {
	const char *command; /* -c */
	const char *as;      /* put --as NAME */
	const char *output;  /* get -o PATH */
	struct net_keepalive ka;
	int timeout_s;
	int retry_for_s;
	uint64_t limit_rate; /* bytes per second, 0: none */
};

/* A form of the command: "bottle [NAME] ARGS... [HOST[:PORT]]". The address is
 * always the last positional argument, after the subcommand's own ones. */
struct subcommand {
	const char *name;     /* first positional argument; NULL: picked without one */
	bool by_command;      /* picked by -c (and by no name) */
	const char *synopsis; /* for --help, after "bottle "; NULL: shown in the chat's */
	int nargs;            /* positional arguments before the optional address */
	bool dials;           /* makes its own connections: run gets no client */
	int (*run)(const struct options *o, struct client *c, char **args, const char *addr);
};

/* The settings every transfer shares (the chat's /upload and /download too). */
static struct transfer_config transfer_defaults(const struct options *o, const char *addr)
{
	return (struct transfer_config){
		.addr = addr,
		.ka = o->ka,
		.timeout_s = o->timeout_s,
		.retry_for_s = o->retry_for_s,
		.limit_rate = o->limit_rate,
	};
}

/* On a terminal, interactive; else a script of stdin lines. */
static int run_chat(const struct options *o, struct client *c, char **args, const char *addr)
{
	struct transfer_config xfer = transfer_defaults(o, addr);
	bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);

	(void)args;
	return chat_run(c, tty ? &chat_tty_input : &chat_script_input, addr, &xfer);
}

static int run_command(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)args;
	(void)addr;
	return chat_once_run(c, o->command);
}

/* ---- put, get, ls on their own: messages and the progress bar ---- */

struct solo {
	bool tty;       /* stdout is a terminal: progress bar, escaped listings */
	bool bar_shown; /* the bar is on the current line of stdout */
};

static void solo_clear_bar(struct solo *s)
{
	if (!s->bar_shown)
		return;
	fputs("\r\x1b[K", stdout);
	fflush(stdout);
	s->bar_shown = false;
}

static void solo_say(void *ctx, struct transfer *t, enum transfer_text kind, const char *text,
                     size_t len)
{
	struct solo *s = ctx;
	(void)t;
	solo_clear_bar(s);
	if (kind == TRANSFER_NOTE || kind == TRANSFER_ERROR) {
		fprintf(stderr, "bottle: %.*s\n", (int)len, text);
	} else if (kind == TRANSFER_LISTING && s->tty) {
		char safe[4 * 300];
		printf("%s\n", escape_text(safe, sizeof safe, text, len));
	} else {
		fwrite(text, 1, len, stdout);
		fputc('\n', stdout);
	}
	fflush(stdout);
}

static void solo_progress(void *ctx, struct transfer *t)
{
	struct solo *s = ctx;
	struct winsize ws;
	char bar[512];
	int width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;

	if (width > (int)sizeof bar - 1)
		width = (int)sizeof bar - 1;
	printf("\r%s\x1b[K", transfer_progress_text(t, bar, sizeof bar, width - 1));
	fflush(stdout);
	s->bar_shown = true;
}

static int exit_status(enum transfer_result r)
{
	switch (r) {
	case TRANSFER_OK: return BOTTLE_EXIT_OK;
	case TRANSFER_NO_SERVER: return BOTTLE_EXIT_CONN;
	case TRANSFER_GAVE_UP: return BOTTLE_EXIT_TEMPFAIL;
	case TRANSFER_STOPPED: return BOTTLE_EXIT_INTERRUPTED;
	default: return BOTTLE_EXIT_ERR;
	}
}

static volatile sig_atomic_t solo_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	solo_stop = 1;
}

static int run_transfer(const struct options *o, enum transfer_kind kind, char **args,
                        const char *addr)
{
	struct solo s = { .tty = isatty(STDOUT_FILENO) };
	struct transfer_io io = { .say = solo_say, .progress = solo_progress, .ctx = &s };
	struct transfer_config cfg = transfer_defaults(o, addr);
	char err[NET_ERR_LEN];

	cfg.kind = kind;
	cfg.progress = s.tty;
	if (kind == TRANSFER_PUT) {
		cfg.file = args[0];
		cfg.name = o->as;
	} else if (kind == TRANSFER_GET) {
		cfg.name = args[0];
		cfg.output = o->output;
	}
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigaction(SIGINT, &sa, NULL); /* stop cleanly: clear the bar, say how to resume */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN); /* a dead socket is an error, not a kill */
	struct transfer *t = transfer_start(&cfg, &io, err);
	if (!t) {
		fprintf(stderr, "bottle: %s\n", err);
		return BOTTLE_EXIT_ERR;
	}
	int status = exit_status(transfer_run(t, &solo_stop));
	solo_clear_bar(&s);
	transfer_free(t);
	return status;
}

static int run_put(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)c;
	return run_transfer(o, TRANSFER_PUT, args, addr);
}

static int run_get(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)c;
	return run_transfer(o, TRANSFER_GET, args, addr);
}

static int run_ls(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)c;
	return run_transfer(o, TRANSFER_LS, args, addr);
}

static const struct subcommand subcommands[] = {
	{ NULL, false, "[-c COMMAND] [OPTION]... [HOST[:PORT]]", 0, false, run_chat },
	{ NULL, true, NULL, 0, false, run_command },
	{ "put", false, "put FILE [--as NAME] [OPTION]... [HOST[:PORT]]", 1, true, run_put },
	{ "get", false, "get NAME [-o PATH] [OPTION]... [HOST[:PORT]]", 1, true, run_get },
	{ "ls", false, "ls [OPTION]... [HOST[:PORT]]", 0, true, run_ls },
};
#define SUBCOMMAND_COUNT (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
	fprintf(out, "NAME\n    bottle - chat and file transfer client for the bottled server\n\n"
	             "SYNOPSIS\n");
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
		if (subcommands[i].synopsis)
			fprintf(out, "    bottle %s\n", subcommands[i].synopsis);
	/* The help text starts in column 0, so it reads as printed. */
	/* clang-format off */
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
"    When the connection breaks (a server restart, a dead link found by\n"
"    keepalive), the interactive chat says \"* connection lost: WHY;\n"
"    reconnecting...\" and dials again with the same growing pauses as a\n"
"    transfer, for up to --retry-for seconds; back, it takes the nickname it had\n"
"    again and says \"* back (away 3.2 s) as NICK\" (or one line saying why the\n"
"    nickname could not be had). Lines typed meanwhile are not sent, and are\n"
"    said to be. When the window runs out it asks \"retry? [y/N]\": y opens a\n"
"    new window; n, or Ctrl-D, exits 3. A script and -c do not reconnect.\n"
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
"FILE TRANSFER\n"
"    put FILE\n"
"        Uploads FILE as its base name (or --as NAME). The file is hashed\n"
"        (SHA-256) first; the server publishes it only if what it stored has\n"
"        the same digest.\n"
"    get NAME\n"
"        Downloads NAME into ./NAME (or -o PATH). The bytes go to PATH.part,\n"
"        which is renamed to PATH once its SHA-256 matches the server's; on a\n"
"        mismatch PATH.part is deleted and bottle exits 1.\n"
"    ls\n"
"        Lists the server's files, one \"SIZE NAME\" line each.\n"
"\n"
"    Each transfer uses a connection of its own. When stdout is a terminal a\n"
"    progress bar (percent, bytes, rate, time left) is redrawn in place; at\n"
"    the end one line always goes to stdout, e.g. \"uploaded notes.txt: 12 bytes\n"
"    in 0.003 s, 0.00 MB/s, 0.03 Mbit/s\", with \"(resumed at N)\" when it\n"
"    carried on from byte N.\n"
"\n"
"    Transfers resume. An upload carries a resume token derived from a random\n"
"    per-user key ($XDG_STATE_HOME/bottle/key, else\n"
"    ~/.local/state/bottle/key, made on first use), the name, the size and the\n"
"    digest, so the same command run again (even after the client was killed)\n"
"    continues where the server's copy ends. A download continues from the\n"
"    size of PATH.part, unless the file on the server changed meanwhile.\n"
"\n"
"    When the connection breaks during a transfer (reset, closed, a dead link\n"
"    found by keepalive, a server restart), bottle reconnects by itself with\n"
"    growing pauses (0.25 s doubling up to 5 s) and resumes, noting it on\n"
"    stderr, for up to --retry-for seconds from the break; the window starts\n"
"    again once data moves. When it runs out, bottle prints the reason and the\n"
"    command that resumes, and exits 75. Failing to reach the server at the\n"
"    very start exits 3.\n"
"\n"
"OPTIONS\n"
"    -c, --command COMMAND\n"
"        Send one server command (e.g. TIME, \"ECHO hi\", WHO), print the reply\n"
"        line as received (\"OK ...\" or \"ERR ...\"; escaped when stdout is a\n"
"        terminal) and exit. Chat events are ignored.\n"
"    --as NAME\n"
"        put: the name to store the file under (default: FILE's base name).\n"
"    -o, --output PATH\n"
"        get: where to save the file; an existing folder means PATH/NAME\n"
"        (default: NAME in the current folder).\n"
"    --retry-for SECONDS\n"
"        How long a transfer, or the interactive chat, keeps reconnecting after\n"
"        its link broke, from 0 (give up at once) to %d (default %d).\n"
"    --limit-rate RATE\n"
"        Cap a transfer at RATE bytes per second; k, M and G multiply by 1024,\n"
"        1024^2 and 1024^3 (e.g. 500k, 2M). Also for /upload and /download.\n"
"    -k, --keepalive IDLE,INTERVAL,COUNT\n"
"        TCP keepalive: probe after IDLE seconds of silence, every INTERVAL\n"
"        seconds, give up after COUNT probes; TCP_USER_TIMEOUT is set to the\n"
"        same window, so a dead link is noticed within IDLE+INTERVAL*COUNT\n"
"        seconds (default %d,%d,%d).\n"
"    --timeout SECONDS\n"
"        Give up a connection attempt after this long (default %d); each\n"
"        reconnect of a transfer is bounded the same way.\n"
"    -h, --help\n"
"        Show this help and exit.\n"
"    -V, --version\n"
"        Show the version and exit.\n"
"\n"
"CHAT COMMANDS\n",
		BOTTLE_DEFAULT_PORT, BOTTLE_DEFAULT_ADDR, MAX_RETRY_FOR_S, DEFAULT_RETRY_FOR_S,
		BOTTLE_DEFAULT_KEEPIDLE, BOTTLE_DEFAULT_KEEPINTVL, BOTTLE_DEFAULT_KEEPCNT,
		DEFAULT_TIMEOUT_S);
	chat_slash_print_help(out, "    ");
	fprintf(out,
"\n    Transfers started in the chat run in the background on their own\n"
"    connections while the chat goes on, several at once; the prompt shows\n"
"    their progress. When one's retry window runs out, bottle asks \"retry?\n"
"    [y/N]\" (y: another window); one answer serves every question waiting,\n"
"    the chat's own too. Leaving stops them; the same /upload or /download\n"
"    resumes them later.\n"
"\nENVIRONMENT\n"
"    BOTTLE_SERVER\n"
"        HOST[:PORT] of the server when none is given on the command line.\n"
"    XDG_STATE_HOME, HOME\n"
"        Where the resume key lives (see FILE TRANSFER).\n"
"\n"
"EXIT STATUS\n"
"    0   success: the session ended normally, -c got an OK reply, or the\n"
"        transfer or listing completed\n"
"    1   -c got an ERR reply; a transfer failed for good (an ERR from the\n"
"        server such as \"no such file\", a local file error, a checksum\n"
"        mismatch)\n"
"    2   bad command-line usage\n"
"    3   cannot connect, the server refused the connection, or the chat's\n"
"        connection was lost (interactive: and not retried, or left meanwhile)\n"
"    75  a transfer's link stayed broken for the whole --retry-for window;\n"
"        the same command run again resumes it\n"
"    130 a transfer was interrupted (SIGINT, SIGTERM, SIGHUP); the same\n"
"        command run again resumes it\n"
"\n"
"EXAMPLES\n"
"    bottle                          chat on %s\n"
"    bottle -c TIME [::1]:4000       print the server's time\n"
"    echo hello | bottle chat.example.org\n"
"    bottle put notes.txt            upload ./notes.txt as notes.txt\n"
"    bottle get notes.txt -o /tmp    download it into /tmp/notes.txt\n"
"    bottle put big.iso --limit-rate 2M --retry-for 600 files.example.org\n",
		BOTTLE_DEFAULT_ADDR);
	/* clang-format on */
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
	exit(BOTTLE_EXIT_USAGE);
}

enum { OPT_TIMEOUT = 256, OPT_AS, OPT_RETRY_FOR, OPT_LIMIT_RATE };

static const struct option long_options[] = {
	{ "command", required_argument, NULL, 'c' },
	{ "as", required_argument, NULL, OPT_AS },
	{ "output", required_argument, NULL, 'o' },
	{ "retry-for", required_argument, NULL, OPT_RETRY_FOR },
	{ "limit-rate", required_argument, NULL, OPT_LIMIT_RATE },
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

static int retry_for_arg(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 0 || v > MAX_RETRY_FOR_S)
		usage_error("--retry-for: expected whole seconds from 0 to %d, got '%s'",
		            MAX_RETRY_FOR_S, s);
	return (int)v;
}

static void parse_option(struct options *o, int opt)
{
	switch (opt) {
	case 'c':
		if (strlen(optarg) > TPKT_MAX_PAYLOAD)
			usage_error("--command: longer than one frame (%d bytes)",
			            TPKT_MAX_PAYLOAD);
		o->command = optarg;
		break;
	case 'k':
		if (net_parse_keepalive(optarg, &o->ka) < 0)
			usage_error(
				"--keepalive: expected IDLE,INTERVAL,COUNT (e.g. 15,5,6), got '%s'",
				optarg);
		break;
	case OPT_TIMEOUT: o->timeout_s = timeout_arg(optarg); break;
	case OPT_AS: o->as = optarg; break;
	case 'o': o->output = optarg; break;
	case OPT_RETRY_FOR: o->retry_for_s = retry_for_arg(optarg); break;
	case OPT_LIMIT_RATE:
		if (ratelimit_parse(optarg, &o->limit_rate) < 0)
			usage_error(
				"--limit-rate: expected bytes per second, e.g. 500k or 2M, got '%s'",
				optarg);
		break;
	case 'h': usage(stdout); exit(BOTTLE_EXIT_OK);
	case 'V': printf("bottle %s\n", BOTTLE_VERSION); exit(BOTTLE_EXIT_OK);
	default:
		fprintf(stderr, "Try 'bottle --help' for more information.\n");
		exit(BOTTLE_EXIT_USAGE);
	}
}

/* The subcommand named by args[0]; else -c's when it was given; else the
 * default one (the chat, first in the table). */
static const struct subcommand *find_subcommand(const struct options *o, int nargs, char **args,
                                                int *skip)
{
	*skip = 0;
	for (size_t i = 0; nargs > 0 && i < SUBCOMMAND_COUNT; i++) {
		if (subcommands[i].name && strcmp(subcommands[i].name, args[0]) == 0) {
			*skip = 1;
			return &subcommands[i];
		}
	}
	for (size_t i = 0; o->command && i < SUBCOMMAND_COUNT; i++)
		if (subcommands[i].by_command)
			return &subcommands[i];
	return &subcommands[0];
}

/* Options that only make sense with some subcommands. */
static void check_options(const struct options *o, const struct subcommand *sc)
{
	const char *name = sc->name ? sc->name : "chat";

	if (o->as && strcmp(name, "put") != 0)
		usage_error("--as is for put only");
	if (o->output && strcmp(name, "get") != 0)
		usage_error("-o/--output is for get only");
	if (o->command && sc->name)
		usage_error("-c cannot be used with %s", sc->name);
}

/* Connects or exits 3 with a one-line error naming the address. */
static void connect_or_exit(struct client *c, const char *addr, const struct options *o)
{
	char host[256], err[NET_ERR_LEN];
	int port;

	if (net_split_hostport(addr, BOTTLE_DEFAULT_PORT, host, sizeof host, &port, err) < 0)
		usage_error("bad server address %s", err);
	if (client_connect(c, host, port, o->timeout_s * 1000, &o->ka, err) < 0)
		fatalx(BOTTLE_EXIT_CONN, "%s", err);
}

int main(int argc, char **argv)
{
	struct options o = {
		.ka = { BOTTLE_DEFAULT_KEEPIDLE, BOTTLE_DEFAULT_KEEPINTVL, BOTTLE_DEFAULT_KEEPCNT },
		.timeout_s = DEFAULT_TIMEOUT_S,
		.retry_for_s = DEFAULT_RETRY_FOR_S,
	};
	struct client c;
	int opt, skip;

	log_set_ident("bottle");
	while ((opt = getopt_long(argc, argv, "c:o:k:hV", long_options, NULL)) != -1)
		parse_option(&o, opt);
	char **args = argv + optind;
	int nargs = argc - optind;
	const struct subcommand *sc = find_subcommand(&o, nargs, args, &skip);
	args += skip;
	nargs -= skip;
	if (nargs < sc->nargs)
		usage_error("missing argument (usage: bottle %s)", sc->synopsis);
	if (nargs > sc->nargs + 1)
		usage_error("unexpected argument '%s'", args[sc->nargs + 1]);
	check_options(&o, sc);
	const char *addr = client_addr_pick(nargs > sc->nargs ? args[nargs - 1] : NULL,
	                                    getenv("BOTTLE_SERVER"));
	if (sc->dials) {
		char host[256], err[NET_ERR_LEN];
		int port, rc;
		rc = net_split_hostport(addr, BOTTLE_DEFAULT_PORT, host, sizeof host, &port, err);
		if (rc < 0)
			usage_error("bad server address %s", err);
		return sc->run(&o, NULL, args, addr);
	}
	connect_or_exit(&c, addr, &o);
	int status = sc->run(&o, &c, args, addr);
	client_close(&c);
	return status;
}
