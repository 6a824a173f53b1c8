/* bottled.c - the server's main: options in, a configured server out, run. */
#include "cluster.h"
#include "cluster_event.h"
#include "cluster_url.h"
#include "log.h"
#include "perms.h"
#include "protect.h"
#include "proto.h"
#include "server.h"
#include "size.h"
#include "users_cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* The help text is laid out as it prints. */
/* clang-format off */
static void usage(FILE *out)
{
	fprintf(out,
"Usage: bottled [OPTION]...\n"
"A single-threaded TCP server: a command protocol for telnet and netcat, a chat\n"
"room whose messages travel in TPKT frames (RFC 1006), and resumable file transfer.\n"
"\n"
"  -l, --listen HOST:PORT     address to listen on; repeatable; IPv6 as [::1]:4000;\n"
"                             port 0 picks a free port (the log names it)\n"
"                             (default " BOTTLE_DEFAULT_ADDR ")\n"
"      --seed-listen HOST:PORT\n"
"                             also listen here for the seed's own TPKT chat\n"
"                             clients (docs/protocol.md, \"The seed dialect\"):\n"
"                             greeted at once, every frame is a chat message,\n"
"                             /nick NAME and exit; repeatable (default: none)\n"
"      --tls-listen HOST:PORT also listen here for TLS: the same protocol inside\n"
"                             it, both framings (openssl s_client -quiet works as\n"
"                             a line client); repeatable (default: none)\n"
"      --tls-cert FILE        the TLS certificate (PEM, chain allowed) ...\n"
"      --tls-key FILE         ... and its private key; without both, a self-\n"
"                             signed one is made in DIR/.bottle/tls/ on first\n"
"                             start and kept; the log shows its fingerprint\n"
"      --tls-handshake-timeout SECONDS\n"
"                             close a TLS connection whose handshake is not done\n"
"                             by then (default 10)\n"
"  -d, --dir DIR              storage folder, created if missing\n"
"                             (default " BOTTLE_DEFAULT_DIR "); one server's alone,\n"
"                             or shared by the nodes of one --cluster prefix\n"
"      --max-clients N        clients served at once; more get \"ERR server full\"\n"
"                             (default %d)\n"
"      --announce-max N       tell each JOIN and LEAVE while the room holds at most\n"
"                             N people; above that, a PRESENCE count once a second\n"
"                             (default %d)\n"
"      --history N            keep the room's last N messages for newcomers and\n"
"                             for clients that reconnect (default %d; 0: none)\n"
"      --history-bytes BYTES  ... and at most this much of them, at most half of\n"
"                             --max-output (default %d)\n"
"      --max-line BYTES       longest command line (default %d)\n"
"      --max-frame BYTES      largest TPKT frame accepted, 5..65535 (default 65535)\n"
"      --max-output BYTES     output queued for one client before it is cut off\n"
"                             as too slow (default %d)\n"
"      --greeting-delay MS    wait this long for a TPKT client's first byte before\n"
"                             greeting in line mode (default %d)\n"
"      --idle-timeout SECONDS close clients silent this long (default 0: never)\n"
"      --keepalive IDLE,INTERVAL,COUNT\n"
"                             TCP keepalive: probe after IDLE seconds of silence,\n"
"                             every INTERVAL seconds, give up after COUNT probes;\n"
"                             also sets TCP_USER_TIMEOUT to the same window\n"
"                             (default %d,%d,%d: a dead peer is noticed within %d s)\n"
"      --max-file-size BYTES  refuse uploads bigger than this (default 0: no limit)\n"
"      --max-storage BYTES    refuse an upload that would take the folder (files and\n"
"                             partial uploads) past this (default 0: no limit)\n"
"      --partial-ttl SECONDS  delete interrupted uploads untouched this long\n"
"                             (default %d, one day)\n"
"      --transfer-timeout SECONDS\n"
"                             end a transfer that moves no byte either way this\n"
"                             long; its partial stays for resume (default %d;\n"
"                             0: never)\n"
"\n"
"Cluster (docs/cluster.md): nodes that share one chat through Redis.\n"
"      --cluster redis://HOST:PORT[/PREFIX]\n"
"                             join the cluster whose keys and channel start with\n"
"                             PREFIX (default " CLUSTER_PREFIX_DEFAULT ", port 6379); IPv6 as\n"
"                             [::1]; without Redis the node serves its own room\n"
"                             and reconnects by itself (default: one node alone)\n"
"      --node-name NAME       this node's name in the cluster, letters, digits\n"
"                             and _-.: (default: host name:port)\n"
"      --cluster-ttl SECONDS  heartbeat and name claims live this long unrefreshed;\n"
"                             a node silent for about twice this is reported lost\n"
"                             (default " CLUSTER_TTL_DEFAULT_TEXT ", 1..300)\n"
"\n"
"Access (bottled(8), docs/security.md). Without --users or --open, bottled only\n"
"listens on loopback addresses (protected mode).\n"
"      --users FILE           accounts: AUTH <name> <token> gives an account's\n"
"                             permissions and name; SIGHUP reads FILE again\n"
"      --add-user NAME        with --users: add an account, print its token (the\n"
"                             last line of stdout, shown once) and exit\n"
"      --perms PERMS          --add-user's permissions: chat,read,write, any of\n"
"                             them, all or none (default " USERS_CLI_PERMS ")\n"
"      --remove-user NAME     with --users: remove an account and exit\n"
"      --list-users           with --users: list accounts (never tokens), exit\n"
"      --anonymous PERMS      what a connection may do before AUTH (default: all\n"
"                             without --users, none with it)\n"
"      --open                 listen beyond loopback without accounts: anyone may\n"
"                             do anything\n"
"      --allow-plaintext-auth accept AUTH without TLS from non-loopback peers\n"
"  -v, --verbose              log more (repeatable)\n"
"  -q, --quiet                log only warnings and errors\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Connect with telnet or nc and type HELP, or use the bottle client.\n"
"SIGINT or SIGTERM: stop accepting, tell every client, flush, exit 0.\n"
"\n"
"Exit status:\n"
"  0  stopped by SIGINT or SIGTERM, or --help/--version\n"
"  1  cannot start: address in use, storage folder unusable, ...\n"
"  2  bad command-line usage\n",
		BOTTLE_DEFAULT_MAX_CLIENTS, ROOM_ANNOUNCE_MAX, ROOM_HISTORY_COUNT, ROOM_HISTORY_BYTES,
		BOTTLE_DEFAULT_MAX_LINE, BOTTLE_DEFAULT_MAX_OUTPUT,
		BOTTLE_DEFAULT_GREETING_MS, BOTTLE_DEFAULT_KEEPIDLE, BOTTLE_DEFAULT_KEEPINTVL,
		BOTTLE_DEFAULT_KEEPCNT,
		BOTTLE_DEFAULT_KEEPIDLE + BOTTLE_DEFAULT_KEEPINTVL * BOTTLE_DEFAULT_KEEPCNT,
		BOTTLE_DEFAULT_PARTIAL_TTL, BOTTLE_DEFAULT_TRANSFER_TIMEOUT);
}
/* clang-format on */

/* A whole number in [min, max], or a usage error naming the option. */
static unsigned long long number_arg(const char *opt, const char *s, unsigned long long min,
                                     unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		fatalx(EXIT_USAGE, "%s: expected a number from %llu to %llu, got '%s'", opt, min,
		       max, s);
	return v;
}

/* A byte count in [min, max], with K, M, G or T allowed (size.h). */
static unsigned long long size_arg(const char *opt, const char *s, unsigned long long min,
                                   unsigned long long max)
{
	uint64_t v;
	if (size_parse(s, &v) < 0 || v < min || v > max)
		fatalx(EXIT_USAGE,
		       "%s: expected a size from %llu to %llu bytes (K, M, G allowed), got '%s'",
		       opt, min, max, s);
	return v;
}

enum {
	OPT_MAX_CLIENTS = 256,
	OPT_MAX_LINE,
	OPT_MAX_FRAME,
	OPT_MAX_OUTPUT,
	OPT_GREETING,
	OPT_IDLE,
	OPT_KEEPALIVE,
	OPT_MAX_FILE,
	OPT_PARTIAL_TTL,
	OPT_TRANSFER_TIMEOUT,
	OPT_ANNOUNCE_MAX,
	OPT_HISTORY,
	OPT_HISTORY_BYTES,
	OPT_MAX_STORAGE,
	OPT_SEED_LISTEN,
	OPT_CLUSTER,
	OPT_NODE_NAME,
	OPT_CLUSTER_TTL,
	OPT_TLS_LISTEN,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_HANDSHAKE_TIMEOUT,
	OPT_USERS,
	OPT_ADD_USER,
	OPT_PERMS,
	OPT_REMOVE_USER,
	OPT_LIST_USERS,
	OPT_ANONYMOUS,
	OPT_OPEN,
	OPT_PLAINTEXT_AUTH,
};

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "seed-listen", required_argument, NULL, OPT_SEED_LISTEN },
	{ "dir", required_argument, NULL, 'd' },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "announce-max", required_argument, NULL, OPT_ANNOUNCE_MAX },
	{ "history", required_argument, NULL, OPT_HISTORY },
	{ "history-bytes", required_argument, NULL, OPT_HISTORY_BYTES },
	{ "max-storage", required_argument, NULL, OPT_MAX_STORAGE },
	{ "max-line", required_argument, NULL, OPT_MAX_LINE },
	{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
	{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
	{ "greeting-delay", required_argument, NULL, OPT_GREETING },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "max-file-size", required_argument, NULL, OPT_MAX_FILE },
	{ "partial-ttl", required_argument, NULL, OPT_PARTIAL_TTL },
	{ "transfer-timeout", required_argument, NULL, OPT_TRANSFER_TIMEOUT },
	{ "cluster", required_argument, NULL, OPT_CLUSTER },
	{ "node-name", required_argument, NULL, OPT_NODE_NAME },
	{ "cluster-ttl", required_argument, NULL, OPT_CLUSTER_TTL },
	{ "tls-listen", required_argument, NULL, OPT_TLS_LISTEN },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-handshake-timeout", required_argument, NULL, OPT_TLS_HANDSHAKE_TIMEOUT },
	{ "users", required_argument, NULL, OPT_USERS },
	{ "add-user", required_argument, NULL, OPT_ADD_USER },
	{ "perms", required_argument, NULL, OPT_PERMS },
	{ "remove-user", required_argument, NULL, OPT_REMOVE_USER },
	{ "list-users", no_argument, NULL, OPT_LIST_USERS },
	{ "anonymous", required_argument, NULL, OPT_ANONYMOUS },
	{ "open", no_argument, NULL, OPT_OPEN },
	{ "allow-plaintext-auth", no_argument, NULL, OPT_PLAINTEXT_AUTH },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Access (docs/security.md): what the options about accounts said. */
static struct {
	struct users_cli admin; /* --add-user, --remove-user, --list-users */
	bool anonymous_given;   /* --anonymous, else a default from --users */
	bool open;              /* --open: non-loopback listeners without --users */
} acl;

/* The options about accounts and protected mode; false if opt is another. */
static bool parse_access_option(struct server_config *cfg, int opt)
{
	switch (opt) {
	case OPT_USERS: cfg->users_file = optarg; return true;
	case OPT_ADD_USER: acl.admin.add = optarg; return true;
	case OPT_PERMS: acl.admin.perms = optarg; return true;
	case OPT_REMOVE_USER: acl.admin.remove = optarg; return true;
	case OPT_LIST_USERS: acl.admin.list = true; return true;
	case OPT_ANONYMOUS:
		if (!perms_parse(optarg, &cfg->anonymous_perms))
			fatalx(EXIT_USAGE,
			       "--anonymous: expected chat,read,write (any of them), all or none, "
			       "got '%s'",
			       optarg);
		acl.anonymous_given = true;
		return true;
	case OPT_OPEN: acl.open = true; return true;
	case OPT_PLAINTEXT_AUTH: cfg->allow_plaintext_auth = true; return true;
	default: return false;
	}
}

/* Protected mode: listening beyond loopback needs accounts or an explicit
 * --open. Guests may do nothing much once there are accounts. */
static void settle_access(struct server_config *cfg)
{
	if (acl.admin.perms && !acl.admin.add)
		fatalx(EXIT_USAGE, "--perms goes with --add-user");
	if (cfg->users_file && !acl.anonymous_given)
		cfg->anonymous_perms = PERM_NONE;
	if (cfg->users_file || acl.open)
		return;
	const char *exposed = protect_exposed(cfg->listen, cfg->nlisten, BOTTLE_DEFAULT_PORT);
	if (!exposed)
		exposed = protect_exposed(cfg->seed_listen, cfg->nseed_listen, BOTTLE_DEFAULT_PORT);
	if (!exposed)
		exposed = protect_exposed(cfg->tls_listen, cfg->ntls_listen, BOTTLE_DEFAULT_PORT);
	if (exposed)
		fatalx(1,
		       "refusing to listen on %s, which is not a loopback address, without "
		       "access control: add --users FILE (accounts) or --open (anyone may do "
		       "anything), or listen on 127.0.0.1",
		       exposed);
}

static void parse_option(struct server_config *cfg, int opt, int *verbosity)
{
	if (parse_access_option(cfg, opt))
		return;
	switch (opt) {
	case 'l':
		if (cfg->nlisten == SERVER_MAX_LISTEN)
			fatalx(EXIT_USAGE, "at most %d --listen addresses", SERVER_MAX_LISTEN);
		cfg->listen[cfg->nlisten++] = optarg;
		break;
	case OPT_SEED_LISTEN:
		if (cfg->nseed_listen == SERVER_MAX_LISTEN)
			fatalx(EXIT_USAGE, "at most %d --seed-listen addresses", SERVER_MAX_LISTEN);
		cfg->seed_listen[cfg->nseed_listen++] = optarg;
		break;
	case 'd': cfg->dir = optarg; break;
	case OPT_MAX_CLIENTS:
		cfg->max_clients = number_arg("--max-clients", optarg, 1, 1000000);
		break;
	case OPT_ANNOUNCE_MAX:
		cfg->announce_max = number_arg("--announce-max", optarg, 0, 1000000);
		break;
	case OPT_HISTORY: cfg->history = number_arg("--history", optarg, 0, 100000); break;
	case OPT_HISTORY_BYTES:
		cfg->history_bytes = size_arg("--history-bytes", optarg, 0, 1ull << 31);
		break;
	case OPT_MAX_STORAGE:
		cfg->max_storage = size_arg("--max-storage", optarg, 0, INT64_MAX);
		break;
	case OPT_MAX_LINE: cfg->max_line = size_arg("--max-line", optarg, 16, 16 << 20); break;
	case OPT_MAX_FRAME: cfg->max_frame = size_arg("--max-frame", optarg, 5, 65535); break;
	case OPT_MAX_OUTPUT:
		cfg->max_output = size_arg("--max-output", optarg, 4096, 1ull << 32);
		break;
	case OPT_GREETING:
		cfg->greeting_ms = (unsigned)number_arg("--greeting-delay", optarg, 0, 60000);
		break;
	case OPT_IDLE:
		cfg->idle_timeout_s = (unsigned)number_arg("--idle-timeout", optarg, 0, 1u << 30);
		break;
	case OPT_KEEPALIVE:
		if (net_parse_keepalive(optarg, &cfg->keepalive) < 0)
			fatalx(EXIT_USAGE,
			       "--keepalive: expected IDLE,INTERVAL,COUNT (e.g. 15,5,6), got '%s'",
			       optarg);
		break;
	case OPT_MAX_FILE:
		cfg->max_file_size = size_arg("--max-file-size", optarg, 0, INT64_MAX);
		break;
	case OPT_PARTIAL_TTL:
		cfg->partial_ttl_s = number_arg("--partial-ttl", optarg, 1, 100ull * 365 * 86400);
		break;
	case OPT_TRANSFER_TIMEOUT:
		cfg->transfer_timeout_s =
			(unsigned)number_arg("--transfer-timeout", optarg, 0, 1u << 30);
		break;
	case OPT_CLUSTER: {
		struct cluster_url url;
		char why[128];
		if (cluster_url_parse(optarg, &url, why, sizeof why) < 0)
			fatalx(EXIT_USAGE, "--cluster: %s, got '%s'", why, optarg);
		cfg->cluster_url = optarg;
		break;
	}
	case OPT_NODE_NAME:
		if (!cluster_name_valid(optarg, strlen(optarg)))
			fatalx(EXIT_USAGE,
			       "--node-name: 1-%d letters, digits or _-.: expected, got '%s'",
			       CLUSTER_NAME_MAX, optarg);
		cfg->node_name = optarg;
		break;
	case OPT_CLUSTER_TTL:
		cfg->cluster_ttl_s = (unsigned)number_arg("--cluster-ttl", optarg, 1, 300);
		break;
	case OPT_TLS_LISTEN:
		if (cfg->ntls_listen == SERVER_MAX_LISTEN)
			fatalx(EXIT_USAGE, "at most %d --tls-listen addresses", SERVER_MAX_LISTEN);
		cfg->tls_listen[cfg->ntls_listen++] = optarg;
		break;
	case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
	case OPT_TLS_KEY: cfg->tls_key = optarg; break;
	case OPT_TLS_HANDSHAKE_TIMEOUT:
		cfg->tls_handshake_timeout_s =
			(unsigned)number_arg("--tls-handshake-timeout", optarg, 1, 3600);
		break;
	case 'v': (*verbosity)++; break;
	case 'q': *verbosity = -1; break;
	case 'h': usage(stdout); exit(0);
	case 'V': printf("bottled %s\n", BOTTLE_VERSION); exit(0);
	default: fprintf(stderr, "Try 'bottled --help' for more information.\n"); exit(EXIT_USAGE);
	}
}

static void prepare_dir(const char *dir)
{
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) /* store_open makes the inside */
		fatal(1, "cannot create storage folder %s", dir);
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		fatalx(1, "storage folder %s is not a directory", dir);
}

int main(int argc, char **argv)
{
	struct server_config cfg;
	int opt, verbosity = 0;

	server_config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "l:d:vqhV", long_options, NULL)) != -1)
		parse_option(&cfg, opt, &verbosity);
	if (optind < argc)
		fatalx(EXIT_USAGE, "unexpected argument '%s' (try --help)", argv[optind]);
	if (users_cli_wanted(&acl.admin))
		return users_cli_run(cfg.users_file, &acl.admin);
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = BOTTLE_DEFAULT_ADDR;
	settle_access(&cfg);
	log_set_level(verbosity < 0 ? LOG_WARN : verbosity > 0 ? LOG_DEBUG : LOG_INFO);
	prepare_dir(cfg.dir);
	/* Flushed by the loop before it sleeps (log_flush): a busy turn that logs
	 * a thousand lines costs one write, and no line waits past the turn. */
	(void)setvbuf(stderr, NULL, _IOFBF, 1 << 16);

	struct server *srv = server_new(&cfg);
	int status = server_run(srv);
	server_free(srv);
	return status;
}
