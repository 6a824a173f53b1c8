/* server.c - listeners, accept, the connection table, and what happens between
 * events: flushing output, reaping closed connections, timeouts, shutdown. */
#include "server.h"
#include "auth.h"
#include "cluster.h"
#include "cmd.h"
#include "folder.h"
#include "log.h"
#include "perms.h"
#include "proto.h"
#include "tls.h"
#include "xfer.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SERVER_TICK_MS 250
#define SERVER_ACCEPTS_PER_EVENT 256
#define SERVER_DRAIN_TIMEOUT_MS 10000 /* a closing peer that never reads */
#define SERVER_SHUTDOWN_GRACE_MS 5000
#define SERVER_EXPIRY_MS (10 * 60 * 1000) /* abandoned partials: look this often */
#define SERVER_PRESENCE_MS 1000           /* a big room's PRESENCE summary */

void server_config_defaults(struct server_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->dir = BOTTLE_DEFAULT_DIR;
	cfg->max_clients = BOTTLE_DEFAULT_MAX_CLIENTS;
	cfg->announce_max = ROOM_ANNOUNCE_MAX;
	cfg->history = ROOM_HISTORY_COUNT;
	cfg->history_bytes = ROOM_HISTORY_BYTES;
	cfg->max_line = BOTTLE_DEFAULT_MAX_LINE;
	cfg->max_frame = 65535;
	cfg->max_output = BOTTLE_DEFAULT_MAX_OUTPUT;
	cfg->greeting_ms = BOTTLE_DEFAULT_GREETING_MS;
	cfg->keepalive = (struct net_keepalive){ BOTTLE_DEFAULT_KEEPIDLE, BOTTLE_DEFAULT_KEEPINTVL,
		                                 BOTTLE_DEFAULT_KEEPCNT };
	cfg->partial_ttl_s = BOTTLE_DEFAULT_PARTIAL_TTL;
	cfg->transfer_timeout_s = BOTTLE_DEFAULT_TRANSFER_TIMEOUT;
	cfg->tls_handshake_timeout_s = 10;
	cfg->anonymous_perms = PERM_ALL; /* no accounts: anyone may do anything */
}

/* ---- startup ---- */

/* 10,000 clients need 10,000 descriptors: take all the hard limit allows. */
static rlim_t raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open file limit: %s", strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

static void listen_one(struct server *srv, const char *where, enum server_listener kind)
{
	static const char *const option[] = { "--listen", "--seed-listen", "--tls-listen" };
	char host[256], err[NET_ERR_LEN];
	int port, fd;

	if (net_split_hostport(where, BOTTLE_DEFAULT_PORT, host, sizeof host, &port, err) < 0)
		fatalx(2, "%s %s", option[kind], err);
	if ((fd = net_listen(host, port, 511, err)) < 0)
		fatalx(1, "%s", err);
	srv->listen_kind[srv->nlisten] = kind;
	srv->listen_fds[srv->nlisten++] = fd;
}

static void listen_all(struct server *srv)
{
	char addr[NET_ADDR_LEN];

	for (int i = 0; i < srv->cfg.nlisten; i++)
		listen_one(srv, srv->cfg.listen[i], LISTENER_PLAIN);
	for (int i = 0; i < srv->cfg.nseed_listen; i++)
		listen_one(srv, srv->cfg.seed_listen[i], LISTENER_SEED);
	for (int i = 0; i < srv->cfg.ntls_listen; i++)
		listen_one(srv, srv->cfg.tls_listen[i], LISTENER_TLS);
	/* Logged only once all are bound, so a failure is the one line printed. */
	log_info("bottled %s starting (pid %ld, storage %s)", BOTTLE_VERSION, (long)getpid(),
	         srv->cfg.dir);
	uint64_t used;
	if (srv->cfg.max_storage && store_usage(srv->store, &used) == 0)
		log_info("storage: %llu of %llu bytes used (--max-storage)",
		         (unsigned long long)used, srv->cfg.max_storage);
	for (int i = 0; i < srv->nlisten; i++)
		log_info("listening on %s%s", net_local_text(srv->listen_fds[i], addr),
		         srv->listen_kind[i] == LISTENER_SEED
		                 ? " for the seed's clients (--seed-listen)"
		         : srv->listen_kind[i] == LISTENER_TLS ? " for TLS (--tls-listen)"
		                                               : "");
}

/* SIGINT and SIGTERM arrive as readable bytes on a signalfd, inside the loop. */
static int open_signal_fd(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP); /* read the users file again */
	sigprocmask(SIG_BLOCK, &set, NULL);
	(void)signal(SIGPIPE, SIG_IGN);
	int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		fatal(1, "signalfd");
	return fd;
}

static void on_accept(struct loop *loop, int fd, void *data, int mask);
static void on_accept_seed(struct loop *loop, int fd, void *data, int mask);
static void on_accept_tls(struct loop *loop, int fd, void *data, int mask);
static void on_signal(struct loop *loop, int fd, void *data, int mask);
static void on_tick(struct loop *loop, struct loop_timer *t, void *data);
static void before_sleep(struct loop *loop, void *data);

struct server *server_new(const struct server_config *cfg)
{
	struct server *srv = xcalloc(1, sizeof *srv);
	srv->cfg = *cfg;
	rlim_t nofile = raise_fd_limit();
	srv->loop = loop_new((int)(nofile > 1048576 ? 1048576 : nofile));
	if (!srv->loop)
		fatal(1, "cannot create the event loop");
	srv->room = room_new();
	room_set_announce_max(srv->room, cfg->announce_max);
	/* A newcomer's replay must never make it "too slow" by itself. */
	room_set_history(srv->room, cfg->history,
	                 cfg->history_bytes < cfg->max_output / 2 ? cfg->history_bytes
	                                                          : cfg->max_output / 2);
	srv->store = folder_open(cfg);
	srv->xfer = (struct xfer_env){
		.loop = srv->loop,
		.store = srv->store,
		.max_file_size = cfg->max_file_size,
		.max_storage = cfg->max_storage,
		.buf = srv->rbuf,
		.bufsz = sizeof srv->rbuf,
	};
	srv->env = (struct conn_env){
		.loop = srv->loop,
		.room = srv->room,
		.rbuf = srv->rbuf,
		.rbuf_size = sizeof srv->rbuf,
		.max_clients = cfg->max_clients,
		.max_line = cfg->max_line,
		.max_frame = cfg->max_frame,
		.max_output = cfg->max_output,
		.command = cmd_execute,
		.xfer = &srv->xfer,
		.auth = srv->auth =
			auth_new(cfg->users_file, cfg->anonymous_perms, cfg->allow_plaintext_auth),
		.entering = auth_entering,
	};
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* Signals first: once "listening on" is logged, a SIGTERM must mean a clean stop. */
	srv->signal_fd = open_signal_fd();
	if (!cfg->tls_cert != !cfg->tls_key)
		fatalx(2,
		       "give both --tls-cert and --tls-key, or neither for a self-signed certificate");
	if (cfg->ntls_listen)
		srv->tls = tls_server_new(&(struct tls_config){
			.dir = cfg->dir,
			.cert = cfg->tls_cert,
			.key = cfg->tls_key,
			.handshake_ms = cfg->tls_handshake_timeout_s * 1000,
			.greeting_ms = cfg->greeting_ms,
		});
	else if (cfg->tls_cert || cfg->tls_key)
		fatalx(2, "--tls-cert and --tls-key are for --tls-listen, which is not given");
	listen_all(srv);
	if (cfg->cluster_url) {
		struct cluster_config cc = {
			.url = cfg->cluster_url,
			.node_name = cfg->node_name,
			.listen_fd = srv->nlisten ? srv->listen_fds[0] : -1,
			.ttl_s = cfg->cluster_ttl_s,
			.history = cfg->history,
		};
		srv->env.cluster = srv->cluster = cluster_new(srv->loop, srv->room, &cc);
		/* Its partials' owner records name the node as the cluster does
		 * (the name part of "<name>~<run>"), default name included. */
		const char *id = cluster_node_id(srv->cluster);
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)strcspn(id, "~"), id);
		store_set_node(srv->store, name);
	}
	for (int i = 0; i < srv->nlisten; i++)
		loop_watch(srv->loop, srv->listen_fds[i], LOOP_READABLE,
		           srv->listen_kind[i] == LISTENER_SEED  ? on_accept_seed
		           : srv->listen_kind[i] == LISTENER_TLS ? on_accept_tls
		                                                 : on_accept,
		           srv);
	loop_watch(srv->loop, srv->signal_fd, LOOP_READABLE, on_signal, srv);
	loop_timer_start(srv->loop, &srv->tick, SERVER_TICK_MS, on_tick, srv);
	loop_set_before_sleep(srv->loop, before_sleep, srv);
	if (nofile < cfg->max_clients + 64)
		log_warn("open file limit %llu is below --max-clients %zu",
		         (unsigned long long)nofile, cfg->max_clients);
	return srv;
}

void server_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nconns; i++) {
		conn_release(srv->conns[i]);
		conn_free(srv->conns[i]);
	}
	for (int i = 0; i < srv->nlisten; i++)
		if (srv->listen_fds[i] >= 0)
			close(srv->listen_fds[i]);
	close(srv->signal_fd);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	cluster_free(srv->cluster); /* after the local members left, before the room */
	room_free(srv->room);
	tls_server_free(srv->tls);
	auth_free(srv->auth);
	store_close(srv->store);
	loop_free(srv->loop);
	free(srv->conns);
	free(srv->env.flush.items);
	free(srv->env.dead.items);
	free(srv);
}

/* ---- accepting ---- */

static void table_add(struct server *srv, struct conn *c)
{
	if (srv->nconns == srv->conns_cap) {
		srv->conns_cap = srv->conns_cap ? srv->conns_cap * 2 : 256;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		srv->conns = xrealloc(srv->conns, srv->conns_cap * sizeof *srv->conns);
	}
	c->index = srv->nconns;
	srv->conns[srv->nconns++] = c;
}

static void table_remove(struct server *srv, struct conn *c)
{
	struct conn *last = srv->conns[--srv->nconns];
	srv->conns[c->index] = last;
	last->index = c->index;
}

/* Out of descriptors: accept with the spare one and close at once, so the
 * listener doesn't stay readable and spin the loop. */
static void shed_connection(struct server *srv, int lfd)
{
	struct sockaddr_storage peer;
	if (srv->spare_fd >= 0) {
		close(srv->spare_fd);
		int fd = net_accept(lfd, &peer);
		if (fd >= 0)
			close(fd);
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	log_warn("out of file descriptors: refused a connection");
}

/* From a --seed-listen listener: greeted at once in the seed's dialect; from
 * a --tls-listen one: a TLS handshake first (tls.h); otherwise greeted by its
 * first byte or the grace period. */
static struct conn *adopt(struct server *srv, int fd, const struct sockaddr_storage *peer,
                          enum server_listener kind)
{
	bool seed = kind == LISTENER_SEED;
	struct conn *c = conn_new(&srv->env, fd, peer);

	auth_adopt(srv->auth, c, peer); /* a guest's permissions */
	if (net_set_keepalive(fd, &srv->cfg.keepalive) < 0)
		log_warn("%s: cannot set keepalive: %s", c->peer, strerror(errno));
	/* Output is already batched per loop turn; Nagle would only hold a reply
	 * back behind the client's delayed ACK of an earlier event. */
	net_set_nodelay(fd);
	if (loop_watch(srv->loop, fd, LOOP_READABLE, conn_on_io, c) < 0) {
		log_warn("%s: cannot watch: %s", c->peer, strerror(errno));
		conn_free(c);
		return NULL;
	}
	table_add(srv, c);
	log_info("connect %s (%zu client%s)%s", c->peer, srv->nconns, srv->nconns == 1 ? "" : "s",
	         seed ? " in the seed dialect" : "");
	if (seed) {
		conn_greet_seed(c);
	} else if (kind == LISTENER_TLS) {
		if (tls_server_adopt(srv->tls, c) < 0) {
			log_warn("%s: cannot start TLS: %s", c->peer, strerror(errno));
			conn_close(c, END_ERROR);
		}
	} else {
		loop_timer_start(srv->loop, &c->greet_timer, srv->cfg.greeting_ms,
		                 conn_on_greeting_timer, c);
	}
	return c;
}

struct conn *server_adopt(struct server *srv, int fd, const struct sockaddr_storage *peer)
{
	return adopt(srv, fd, peer, LISTENER_PLAIN);
}

static void accept_from(struct server *srv, int lfd, enum server_listener kind)
{
	for (int i = 0; i < SERVER_ACCEPTS_PER_EVENT && !srv->stopping; i++) {
		struct sockaddr_storage peer;
		int fd = net_accept(lfd, &peer);
		if (fd >= 0) {
			adopt(srv, fd, &peer, kind);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE)
			shed_connection(srv, lfd);
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		         errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
}

static void on_accept(struct loop *loop, int lfd, void *data, int mask)
{
	(void)loop;
	(void)mask;
	accept_from(data, lfd, LISTENER_PLAIN);
}

static void on_accept_seed(struct loop *loop, int lfd, void *data, int mask)
{
	(void)loop;
	(void)mask;
	accept_from(data, lfd, LISTENER_SEED);
}

static void on_accept_tls(struct loop *loop, int lfd, void *data, int mask)
{
	(void)loop;
	(void)mask;
	accept_from(data, lfd, LISTENER_TLS);
}

/* ---- between events ---- */

/* Writes what every connection has queued. New entries may be added while we go. */
static void flush_all(struct server *srv)
{
	struct conn_list *flush = &srv->env.flush;

	for (size_t i = 0; i < flush->n; i++) {
		struct conn *c = flush->items[i];
		c->flush_pending = false;
		conn_flush(c);
	}
	flush->n = 0;
}

/* The one place a connection is freed. conn_close only marked it and listed
 * it here, so whatever code closed it could go on using it. Releasing its
 * stream and leaving the room happen here too; leaving tells the others, which
 * may close more (too slow), so this runs until nothing is left to reap. */
static void reap_dead(struct server *srv)
{
	struct conn_list *dead = &srv->env.dead;
	size_t kept = 0;

	for (size_t i = 0; i < dead->n; i++) {
		struct conn *c = dead->items[i];
		conn_release(c);
		if (c->flush_pending) { /* still listed for a flush: next round */
			dead->items[kept++] = c;
			continue;
		}
		table_remove(srv, c);
		log_info("disconnect %s: %s (%zu client%s)", c->peer, conn_end_text(c->end),
		         srv->nconns, srv->nconns == 1 ? "" : "s");
		conn_free(c);
	}
	dead->n = kept;
}

static void before_sleep(struct loop *loop, void *data)
{
	struct server *srv = data;

	while (srv->env.flush.n || srv->env.dead.n) {
		flush_all(srv);
		reap_dead(srv);
	}
	if (srv->stopping && srv->nconns == 0)
		loop_stop(loop);
	log_flush();
}

/* Idle, stall and drain timeouts: a sweep over the table each tick. The drain
 * timeout always applies, so no connection outlives it once it is closing. */
static void on_tick(struct loop *loop, struct loop_timer *t, void *data)
{
	struct server *srv = data;
	uint64_t now = loop_now(loop), idle_ms = srv->cfg.idle_timeout_s * 1000ull;
	uint64_t stall_ms = srv->cfg.transfer_timeout_s * 1000ull;

	for (size_t i = 0; i < srv->nconns; i++) {
		struct conn *c = srv->conns[i];
		/* Output rings stay while a member is busy; idle, it gives them back. */
		if (!outq_bytes(&c->out))
			outq_trim(&c->out);
		if (c->state == CONN_DRAINING && now - c->drain_since > SERVER_DRAIN_TIMEOUT_MS) {
			log_warn("%s: did not take its last %zu bytes in %d s, closing", c->peer,
			         outq_bytes(&c->out), SERVER_DRAIN_TIMEOUT_MS / 1000);
			conn_close(c, END_DRAIN_TIMEOUT);
		} else if (stall_ms && conn_streaming(c) && now - c->last_io > stall_ms) {
			log_warn("%s: transfer stalled: no byte either way for %u s, closing",
			         c->peer, srv->cfg.transfer_timeout_s);
			conn_close(c, END_STALLED);
		} else if (idle_ms && c->state == CONN_OPEN && !c->stream &&
		           now - c->last_read > idle_ms) {
			conn_close_after_flush(c, END_IDLE);
		}
	}
	if (now >= srv->next_presence) {
		room_presence_flush(srv->room);
		srv->next_presence = now + SERVER_PRESENCE_MS;
	}
	if (now >= srv->next_expiry) {
		xfer_expire_partials(&srv->xfer, srv->cfg.partial_ttl_s);
		srv->next_expiry = now + SERVER_EXPIRY_MS;
	}
	if (srv->stopping && now - srv->stop_started > SERVER_SHUTDOWN_GRACE_MS) {
		log_warn("shutdown: %zu clients did not drain in time", srv->nconns);
		for (size_t i = 0; i < srv->nconns; i++)
			conn_close(srv->conns[i], END_SHUTDOWN);
	}
	loop_timer_start(loop, t, SERVER_TICK_MS, on_tick, srv);
}

/* ---- shutdown ---- */

static void server_begin_stop(struct server *srv, const char *why)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	srv->stop_started = loop_now(srv->loop);
	log_info("%s: shutting down (%zu clients)", why, srv->nconns);
	for (int i = 0; i < srv->nlisten; i++) {
		loop_unwatch(srv->loop, srv->listen_fds[i]);
		close(srv->listen_fds[i]);
		srv->listen_fds[i] = -1;
	}
	for (size_t i = 0; i < srv->nconns; i++) {
		struct conn *c = srv->conns[i];
		if (!conn_alive(c) || c->state == CONN_DRAINING)
			continue;
		if (conn_streaming(c))
			conn_close(c, END_SHUTDOWN); /* a raw byte stream can't take a message */
		else {
			conn_ok(c, "server shutting down");
			conn_close_after_flush(c, END_SHUTDOWN);
		}
	}
}

static void on_signal(struct loop *loop, int fd, void *data, int mask)
{
	(void)loop;
	(void)mask;
	struct server *srv = data;
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	if (si.ssi_signo == SIGHUP) {
		auth_reload(srv->auth);
		for (size_t i = 0; i < srv->nconns; i++)
			auth_refresh(srv->conns[i]);
		return;
	}
	server_begin_stop(srv, strsignal((int)si.ssi_signo));
}

int server_run(struct server *srv)
{
	if (loop_run(srv->loop) < 0) {
		log_error("waiting for events failed: %s; stopping", strerror(errno));
		return 1;
	}
	log_info("stopped");
	return 0;
}

int server_poll(struct server *srv, int max_wait_ms)
{
	return loop_run_once(srv->loop, max_wait_ms);
}
