/* server.h - the server: configuration, listeners, the connection table, and
 * the work done between events (flush, reap, timeouts, shutdown). */
#ifndef BOTTLE_SERVER_H
#define BOTTLE_SERVER_H

#include "conn.h"
#include "loop.h"
#include "net.h"
#include "room.h"
#include "store.h"
#include "xfer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVER_MAX_LISTEN 16
#define SERVER_READ_CHUNK (64 * 1024)

/* What a listener's connections speak. */
enum server_listener {
	LISTENER_PLAIN, /* --listen */
	LISTENER_SEED,  /* --seed-listen (seed.h) */
	LISTENER_TLS,   /* --tls-listen (tls.h) */
};

struct server_config {
	const char *listen[SERVER_MAX_LISTEN];
	int nlisten;
	/* --seed-listen: listeners for the seed's Ruby clients (seed.h) */
	const char *seed_listen[SERVER_MAX_LISTEN];
	int nseed_listen;
	/* --tls-listen: TLS listeners (docs/security.md) */
	const char *tls_listen[SERVER_MAX_LISTEN];
	int ntls_listen;
	const char *tls_cert, *tls_key;   /* NULL: a self-signed one in DIR/.bottle/tls/ */
	unsigned tls_handshake_timeout_s; /* a TLS handshake not done by then is cut */
	const char *dir;
	size_t max_clients;
	size_t announce_max;  /* JOIN/LEAVE one by one up to this room size */
	size_t history;       /* messages kept for newcomers and reconnects */
	size_t history_bytes; /* ... and at most this much of them */
	size_t max_line;
	size_t max_frame;
	size_t max_output;
	unsigned greeting_ms;
	unsigned idle_timeout_s; /* 0: off */
	struct net_keepalive keepalive;
	unsigned long partial_ttl_s;
	unsigned long long max_file_size; /* 0: no limit */
	unsigned long long max_storage;   /* files and partials; 0: no limit */
	unsigned transfer_timeout_s;      /* a transfer moving no byte this long ends; 0: off */
	/* --cluster redis://HOST:PORT[/PREFIX] (docs/cluster.md); NULL: one node */
	const char *cluster_url;
	const char *node_name;  /* --node-name; NULL: host name and port */
	unsigned cluster_ttl_s; /* --cluster-ttl: heartbeat and name claims (cluster.h) */
	/* Accounts (auth.h, docs/security.md) */
	const char *users_file;    /* --users FILE; NULL: everyone is a guest */
	unsigned anonymous_perms;  /* --anonymous: a guest's PERM_* (perms.h) */
	bool allow_plaintext_auth; /* AUTH over plaintext from other hosts too */
};

struct server {
	struct server_config cfg;
	struct loop *loop;
	/* --listen ones, then --seed-listen ones, then --tls-listen ones */
	int listen_fds[3 * SERVER_MAX_LISTEN];
	enum server_listener listen_kind[3 * SERVER_MAX_LISTEN];
	int nlisten;
	int signal_fd;
	struct conn **conns; /* every live connection */
	size_t nconns, conns_cap;
	int spare_fd; /* released to shed a client when out of fds */
	struct room *room;
	struct store *store;
	struct tls_server *tls;  /* NULL without --tls-listen */
	struct auth *auth;       /* accounts and permissions */
	struct cluster *cluster; /* NULL without --cluster */
	struct conn_env env;  /* what connections see: loop, room, limits, flush and dead lists */
	struct xfer_env xfer; /* what the transfer commands see: store, limits */
	struct loop_timer tick;
	uint64_t next_expiry;   /* when to look for abandoned partials */
	uint64_t next_presence; /* when to tell the room's PRESENCE summary */
	size_t sweep_next;      /* where the idle sweep resumes */
	bool stopping;
	uint64_t stop_started;
	unsigned char rbuf[SERVER_READ_CHUNK]; /* one read buffer for all connections */
};

void server_config_defaults(struct server_config *cfg);
/* Binds every listen address; exits with a one-line error on failure. */
struct server *server_new(const struct server_config *cfg);
/* Serves until SIGINT/SIGTERM; returns the exit status. */
int server_run(struct server *srv);
/* For fuzzers and tests that drive a server by hand: serve a connected socket
 * as if it had been accepted (NULL if it can't be watched), and run one turn
 * of the loop, waiting at most max_wait_ms (0 or -1 with errno). */
struct conn *server_adopt(struct server *srv, int fd, const struct sockaddr_storage *peer);
int server_poll(struct server *srv, int max_wait_ms);
void server_free(struct server *srv);

#endif
