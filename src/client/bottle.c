/* bottle.c - the client's main: options, the address rule, the subcommand
 * table; each subcommand returns the exit status. The chat, -c, rm and mv
 * get a connected client; put, get and ls make their own connections (they
 * reconnect). */
#include "account.h"
#include "chat.h"
#include "chat_once.h"
#include "chat_script.h"
#include "chat_slash.h"
#include "chat_tty.h"
#include "client.h"
#include "escape.h"
#include "exit_codes.h"
#include "fileop.h"
#include "log.h"
#include "net.h"
#include "nick.h"
#include "progress.h"
#include "proto.h"
#include "ratelimit.h"
#include "tls_client.h"
#include "transfer.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
	bool force;          /* get --force: replace an existing different file */
	const char *nick;    /* --nick NAME: asked for right after connecting */
	const char *user;    /* --user NAME: sign in as (account.h) */
	struct net_keepalive ka;
	int timeout_s;
	int retry_for_s;
	uint64_t limit_rate; /* bytes per second, 0: none */
	bool tls;            /* --tls or BOTTLE_TLS=1 (tls_client.h) */
	const char *tls_ca;  /* --tls-ca FILE: trust only these CAs; implies --tls */
};

/* A form of the command: "bottle [NAME] ARGS... [HOST[:PORT]]". The address is
 * always the last positional argument, after the subcommand's own ones. */
struct subcommand {
	const char *name;     /* first positional argument; NULL: picked without one */
	bool by_command;      /* picked by -c (and by no name) */
	const char *synopsis; /* for --help, after "bottle "; NULL: shown in the chat's */
	int nargs;            /* positional arguments before the optional address */
	bool more;            /* nargs or more (rm NAME...): see address_given */
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
	return chat_run(c, tty ? &chat_tty_input : &chat_script_input, addr, &xfer, o->nick);
}

static int run_command(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)args;
	(void)addr;
	return chat_once_run(c, o->command, o->nick);
}

/* ---- put, get, ls on their own: messages and the progress bar ---- */

struct solo {
	bool tty;     /* stdout is a terminal: progress bar, escaped listings */
	int bar_cols; /* columns of the bar on the current line of stdout; 0: none */
};

static volatile sig_atomic_t solo_stop;

/* The terminal's width now: read at every redraw, so a resize (SIGWINCH)
 * shows at the next one, within PROGRESS_INTERVAL. */
static int solo_width(void)
{
	struct winsize ws;
	return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

static void solo_clear_bar(struct solo *s)
{
	char seq[32];

	if (!s->bar_cols)
		return;
	fputs(progress_rewind(seq, sizeof seq, s->bar_cols, solo_width()), stdout);
	fflush(stdout);
	s->bar_cols = 0;
}

static void solo_say(void *ctx, struct transfer *t, enum transfer_text kind, const char *text,
                     size_t len)
{
	struct solo *s = ctx;
	(void)t;
	solo_clear_bar(s);
	if (kind == TRANSFER_NOTE || kind == TRANSFER_ERROR) {
		if (solo_stop && isatty(STDERR_FILENO))
			fputs("\r\x1b[K", stderr); /* the terminal's echo of ^C */
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
	char bar[1024], seq[32];
	int width = solo_width();

	transfer_progress_text(t, bar, sizeof bar, width - PROGRESS_MARGIN);
	fputs(progress_rewind(seq, sizeof seq, s->bar_cols, width), stdout);
	fputs(bar, stdout);
	fflush(stdout);
	s->bar_cols = progress_columns(bar);
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
		cfg.force = o->force;
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

/* args: the names, NULL-terminated (main cut the address off). */
static int run_rm(const struct options *o, struct client *c, char **args, const char *addr)
{
	int n = 0;

	(void)o;
	(void)addr;
	while (args[n])
		n++;
	return fileop_delete(c, args, n);
}

static int run_mv(const struct options *o, struct client *c, char **args, const char *addr)
{
	(void)o;
	(void)addr;
	return fileop_rename(c, args[0], args[1]);
}

static const struct subcommand subcommands[] = {
	{ NULL, false, "[-c COMMAND] [OPTION]... [HOST[:PORT]]", 0, false, false, run_chat },
	{ NULL, true, NULL, 0, false, false, run_command },
	{ "put", false, "put FILE [--as NAME] [OPTION]... [HOST[:PORT]]", 1, false, true, run_put },
	{ "get", false, "get NAME [-o PATH] [--force] [OPTION]... [HOST[:PORT]]", 1, false, true,
	  run_get },
	{ "ls", false, "ls [OPTION]... [HOST[:PORT]]", 0, false, true, run_ls },
	{ "rm", false, "rm NAME... [OPTION]... [HOST:PORT]", 1, true, false, run_rm },
	{ "mv", false, "mv OLD NEW [OPTION]... [HOST[:PORT]]", 2, false, false, run_mv },
};
#define SUBCOMMAND_COUNT (sizeof subcommands / sizeof subcommands[0])

/* One screen: the forms, the options, where to read more (bottle(1)). */
static void usage(FILE *out)
{
	const char *lead = "Usage:";

	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++) {
		if (!subcommands[i].synopsis)
			continue;
		fprintf(out, "%-6s bottle %s\n", lead, subcommands[i].synopsis);
		lead = "";
	}
	/* The help text starts in column 0, so it reads as printed. */
	/* clang-format off */
	fprintf(out,
"\n"
"Chat and file transfer client for bottled. Without a subcommand it joins the\n"
"chat room (a script when stdin or stdout is not a terminal). The address is the\n"
"last argument (port %d if none), else $BOTTLE_SERVER, else %s.\n"
"\n"
"Subcommands:\n"
"  put FILE    upload FILE; the same command again resumes an interrupted one\n"
"  get NAME    download NAME into ./NAME, verified; a different one is kept\n"
"  ls          list the server's files\n"
"  rm NAME...  delete files on the server\n"
"  mv OLD NEW  rename a file on the server (never onto an existing name)\n"
"\n"
"Options:\n"
"  -c, --command COMMAND    send one server command, print its reply line\n"
"      --nick NAME          ask for this nickname right after connecting\n"
"      --user NAME          sign in to NAME (also BOTTLE_USER, BOTTLE_TOKEN)\n"
"      --as NAME            put: the name to store the file under\n"
"  -o, --output PATH        get: where to save the file (a folder: PATH/NAME)\n"
"  -f, --force              get: replace an existing file that is not the same\n"
"      --retry-for SECONDS  keep reconnecting this long after a break (%d)\n"
"      --limit-rate RATE    cap a transfer at RATE bytes/s (500k, 2M)\n"
"  -k, --keepalive I,N,C    TCP keepalive (default %d,%d,%d: a dead link in %d s)\n"
"      --timeout SECONDS    give up connecting after this long (default %d)\n"
"      --tls                TLS (or BOTTLE_TLS=1); pins servers no CA vouches for\n"
"      --tls-ca FILE        TLS trusting only the CAs in FILE (no pinning)\n"
"  -h, --help               show this help and exit\n"
"  -V, --version            show the version and exit\n"
"\n"
"Chat commands (in the chat, /help COMMAND explains one):\n  ",
		BOTTLE_DEFAULT_PORT, BOTTLE_DEFAULT_ADDR, DEFAULT_RETRY_FOR_S,
		BOTTLE_DEFAULT_KEEPIDLE, BOTTLE_DEFAULT_KEEPINTVL, BOTTLE_DEFAULT_KEEPCNT,
		BOTTLE_DEFAULT_KEEPIDLE + BOTTLE_DEFAULT_KEEPINTVL * BOTTLE_DEFAULT_KEEPCNT,
		DEFAULT_TIMEOUT_S);
	chat_slash_print_names(out);
	fprintf(out, "\n\n"
"Exit status: 0 done, 1 ERR or a failed transfer, 2 usage, 3 no connection,\n"
"75 a transfer's retry window ran out, 130 interrupted. See bottle(1).\n");
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

enum {
	OPT_TIMEOUT = 256,
	OPT_AS,
	OPT_RETRY_FOR,
	OPT_LIMIT_RATE,
	OPT_NICK,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_USER
};

static const struct option long_options[] = {
	{ "command", required_argument, NULL, 'c' },
	{ "as", required_argument, NULL, OPT_AS },
	{ "nick", required_argument, NULL, OPT_NICK },
	{ "user", required_argument, NULL, OPT_USER },
	{ "tls", no_argument, NULL, OPT_TLS },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "output", required_argument, NULL, 'o' },
	{ "force", no_argument, NULL, 'f' },
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
	case OPT_TLS: o->tls = true; break;
	case OPT_TLS_CA:
		o->tls = true;
		o->tls_ca = optarg;
		break;
	case OPT_USER: o->user = optarg; break;
	case OPT_NICK:
		if (nick_check(optarg, strlen(optarg)) != NICK_OK)
			usage_error("--nick: '%s' is not a nickname: 1-32 letters, digits or _-.[]",
			            optarg);
		o->nick = optarg;
		break;
	case 'o': o->output = optarg; break;
	case 'f': o->force = true; break;
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

/* True when two words are at most one edit apart (a letter added, dropped,
 * changed, or two neighbours swapped): "lss", "gte", "puts". */
static bool one_edit_apart(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i = 0;

	if (la > lb + 1 || lb > la + 1)
		return false;
	while (i < la && i < lb && a[i] == b[i])
		i++;
	if (la == lb)
		return strcmp(a + i + (i < la), b + i + (i < lb)) == 0 ||
		       (i + 1 < la && a[i] == b[i + 1] && a[i + 1] == b[i] &&
		        strcmp(a + i + 2, b + i + 2) == 0);
	return la > lb ? strcmp(a + i + 1, b + i) == 0 : strcmp(a + i, b + i + 1) == 0;
}

/* The subcommand a mistyped word probably meant, or NULL. */
static const char *suggest_subcommand(const char *word)
{
	static const struct {
		const char *word, *meant;
	} synonyms[] = {
		{ "list", "ls" },   { "dir", "ls" },    { "files", "ls" },     { "upload", "put" },
		{ "send", "put" },  { "push", "put" },  { "download", "get" }, { "fetch", "get" },
		{ "pull", "get" },  { "delete", "rm" }, { "remove", "rm" },    { "del", "rm" },
		{ "rename", "mv" }, { "move", "mv" },
	};
	for (size_t i = 0; i < sizeof synonyms / sizeof synonyms[0]; i++)
		if (strcasecmp(word, synonyms[i].word) == 0)
			return synonyms[i].meant;
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
		if (subcommands[i].name && one_edit_apart(word, subcommands[i].name))
			return subcommands[i].name;
	return NULL;
}

/* The address rule for a first argument that names no subcommand: it is the
 * server's address when it looks like one (it holds '.', ':' or '[', or is
 * "localhost"); any other bare word is taken for a mistyped subcommand, so a
 * one-label host name is written with its port (myhost:4000). */
static bool looks_like_address(const char *arg)
{
	return strpbrk(arg, ".:[") != NULL || strcasecmp(arg, "localhost") == 0;
}

/* The subcommand named by args[0]; else -c's when it was given; else the
 * default one (the chat, first in the table). A first argument that is
 * neither a subcommand nor an address is a usage error. */
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
	if (nargs > 0 && !looks_like_address(args[0])) {
		const char *meant = suggest_subcommand(args[0]);
		if (meant)
			usage_error("unknown command '%s'; did you mean '%s'?", args[0], meant);
		usage_error(
			"unknown command '%s' (the commands are put, get, ls, rm and mv; a server "
			"address holds a '.' or a port: %s:%d)",
			args[0], args[0], BOTTLE_DEFAULT_PORT);
	}
	for (size_t i = 0; o->command && i < SUBCOMMAND_COUNT; i++)
		if (subcommands[i].by_command)
			return &subcommands[i];
	return &subcommands[0];
}

/* After a list of names (rm NAME...), the last argument is the server's
 * address only when it can't be a plain file name: it has a port
 * (HOST:PORT, [::1]:4000), or is [IPv6] or "localhost". So "bottle rm a.txt
 * b.txt" deletes two files; a host is given with its port. */
static bool address_given(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	size_t n = colon ? strlen(colon + 1) : 0;

	if (strcasecmp(arg, "localhost") == 0 || (arg[0] == '[' && arg[strlen(arg) - 1] == ']'))
		return true;
	return colon && colon > arg && n > 0 && n <= 5 && strspn(colon + 1, "0123456789") == n &&
	       (arg[0] != '[' || colon[-1] == ']');
}

/* Options that only make sense with some subcommands. */
static void check_options(const struct options *o, const struct subcommand *sc)
{
	const char *name = sc->name ? sc->name : "chat";

	if (o->as && strcmp(name, "put") != 0)
		usage_error("--as is for put only");
	if (o->output && strcmp(name, "get") != 0)
		usage_error("-o/--output is for get only");
	if (o->force && strcmp(name, "get") != 0)
		usage_error("-f/--force is for get only");
	if (o->command && sc->name)
		usage_error("-c cannot be used with %s", sc->name);
	if (o->nick && sc->name)
		usage_error("--nick is for the chat and -c, not %s", sc->name);
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
	if (o->tls && tls_client_handshake(c, host, port, o->timeout_s * 1000, err) < 0)
		fatalx(BOTTLE_EXIT_CONN, "%s", err);
}

/* BOTTLE_TLS=1 (or yes, true) turns TLS on as --tls does. */
static bool env_on(const char *v)
{
	return v &&
	       (strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0);
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
	while ((opt = getopt_long(argc, argv, "c:o:fk:hV", long_options, NULL)) != -1)
		parse_option(&o, opt);
	if (o.tls || env_on(getenv("BOTTLE_TLS"))) {
		o.tls = true;
		tls_client_setup(o.tls_ca);
	}
	char **args = argv + optind;
	int nargs = argc - optind;
	const struct subcommand *sc = find_subcommand(&o, nargs, args, &skip);
	args += skip;
	nargs -= skip;
	if (nargs < sc->nargs)
		usage_error("missing argument (usage: bottle %s)", sc->synopsis);
	if (!sc->more && nargs > sc->nargs + 1)
		usage_error("unexpected argument '%s'", args[sc->nargs + 1]);
	check_options(&o, sc);
	bool has_addr =
		sc->more ? nargs > sc->nargs && address_given(args[nargs - 1]) : nargs > sc->nargs;
	const char *addr =
		client_addr_pick(has_addr ? args[nargs - 1] : NULL, getenv("BOTTLE_SERVER"));
	if (has_addr)
		args[--nargs] = NULL; /* argv ends in NULL: so do the names */
	char why[ACCOUNT_ERR_LEN];
	if (account_setup(o.user ? o.user : getenv("BOTTLE_USER"), addr, why) < 0)
		fatalx(BOTTLE_EXIT_USAGE, "%s", why);
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
