/* fuzz_server - the whole server through real connections: framing, commands,
 * chat, transfers and teardown.
 *
 * One struct server lives for the whole run: no listeners, storage in a fresh
 * folder under /tmp holding a few files to download, greeting delay 0, fd
 * limit 256, log level LOG_ERROR. Each input is one connection: a socketpair
 * whose one end is given to server_adopt and whose other end is ours. The
 * input is three bytes of settings, then what the client sends:
 *
 *   byte 0  bit 0: max_output 4096     bit 4: the peer looks like 127.0.0.1
 *           bit 1: max_line 16         bit 5: max_clients 0 (server full)
 *           bit 2: max_file_size 4096  bit 6: a second connection first
 *           bit 3: greeted before the  bit 7: ... which never reads and has
 *                  first byte (line)          a small socket buffer
 *   byte 1  bits 0-3: write chunk size, 0 all at once, k: 1 << (k - 1)
 *           bit 4: shut down our writing side and let the server finish first
 *           bit 5: small socket send buffer on the server's end
 *           bits 6-7: max_frame 65535, 5, 16 or 64
 *   byte 2  for the second connection: bit 0: it has begun a resumable
 *           upload (observer_open), bit 1: it speaks TPKT
 *   rest    the client's bytes (0x03 first for TPKT)
 *
 * The bytes are written in chunks, with a loop turn (server_poll) after each
 * and whatever the server writes read back. What comes back must be in the
 * connection's framing (a valid TPKT stream in TPKT mode) and start with the
 * greeting or "ERR server full". Then our end is closed and the server must
 * reap the connection within a bounded number of turns: srv->nconns back to
 * where it was, the room empty again, the fd no longer watched; otherwise it
 * is a ghost connection and we abort. Files the input uploaded are deleted
 * afterwards and the prepared ones restored. */
#include "fuzz.h"
#include "log.h"
#include "room.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_NOFILE 256
#define REAP_FAST_TURNS 200 /* loop turns without waiting */
#define REAP_LIMIT_MS 1500  /* then turns of 5 ms waits, up to this */
#define STALL_TURNS 64      /* turns the server may take no input */

static struct server *srv;
static struct server_config base;
static char dir[] = "/tmp/bottle-fuzz-XXXXXX";
static int store_fd = -1;
static bool trace; /* FUZZ_SERVER_TRACE set: show the traffic, log all */

/* ---- the storage folder ---- */

struct prepared {
	const char *name;
	size_t size;      /* regular files */
	const char *link; /* or a symlink to this */
	bool is_dir;      /* or a folder */
	struct stat sb;   /* as made */
};

static struct prepared files[] = {
	{ .name = "a.txt", .size = 100 },
	{ .name = "big.bin", .size = 70000 }, /* more than one TPKT frame */
	{ .name = "empty", .size = 0 },
	{ .name = "sub", .is_dir = true },
	{ .name = "link", .link = "a.txt" },
};

static void make_prepared(struct prepared *f)
{
	if (f->is_dir) {
		CHECK(mkdirat(store_fd, f->name, 0755) == 0 || errno == EEXIST);
	} else if (f->link) {
		CHECK(symlinkat(f->link, store_fd, f->name) == 0);
	} else {
		int fd = openat(store_fd, f->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		CHECK(fd >= 0);
		for (size_t i = 0; i < f->size;) {
			char buf[4096];
			size_t n = f->size - i < sizeof buf ? f->size - i : sizeof buf;
			for (size_t j = 0; j < n; j++)
				buf[j] = (char)((i + j) % 61 == 60 ? '\n' : 'a' + (i + j) % 26);
			CHECK(write(fd, buf, n) == (ssize_t)n);
			i += n;
		}
		close(fd);
	}
	CHECK(fstatat(store_fd, f->name, &f->sb, AT_SYMLINK_NOFOLLOW) == 0);
}

static struct prepared *prepared_named(const char *name)
{
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	return NULL;
}

/* Empties a folder (one level: uploads make no folders). */
static void clear_dir(int at, const char *path)
{
	int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(fd, e->d_name, 0);
	closedir(d);
}

/* Deletes what the input stored and puts back what it replaced. */
static void restore_storage(void)
{
	DIR *d = fdopendir(openat(store_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	struct dirent *e;

	CHECK(d != NULL);
	while ((e = readdir(d))) {
		struct prepared *f = prepared_named(e->d_name);
		struct stat sb;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, ".bottle"))
			continue;
		if (f && fstatat(store_fd, f->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    sb.st_ino == f->sb.st_ino && sb.st_size == f->sb.st_size &&
		    sb.st_mtim.tv_sec == f->sb.st_mtim.tv_sec &&
		    sb.st_mtim.tv_nsec == f->sb.st_mtim.tv_nsec)
			continue;
		if (unlinkat(store_fd, e->d_name, 0) < 0)
			unlinkat(store_fd, e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
	clear_dir(store_fd, ".bottle/partial");
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		struct stat sb;
		if (fstatat(store_fd, files[i].name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			make_prepared(&files[i]);
	}
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_storage(void) { nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

/* Folders left by runs that crashed (libFuzzer exits without atexit then):
 * one whose server lock nobody holds and that is a minute old is stale. */
static void remove_stale(void)
{
	glob_t g;

	if (glob("/tmp/bottle-fuzz-??????", GLOB_NOSORT, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char lock[64];
		struct stat sb;
		snprintf(lock, sizeof lock, "%s/.bottle/lock", g.gl_pathv[i]);
		int fd = open(lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* The server's lock is an fcntl OFD lock (storelock.c), which
		 * flock would not see: probe it the same way. */
		struct flock probe = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fstat(fd, &sb) == 0 && time(NULL) - sb.st_mtime > 60 &&
		    fcntl(fd, F_OFD_SETLK, &probe) == 0)
			nftw(g.gl_pathv[i], remove_one, 16, FTW_DEPTH | FTW_PHYS);
		close(fd);
	}
	globfree(&g);
}

/* ---- setup ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rlimit rl = { FUZZ_NOFILE, FUZZ_NOFILE };
	sigset_t sigs;

	(void)argc;
	(void)argv;
	/* server_new raises the soft limit to the hard one and sizes its fd table
	 * from it: lower both. */
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	remove_stale();
	CHECK(mkdtemp(dir) != NULL);
	store_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(store_fd >= 0);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		make_prepared(&files[i]);
	atexit(remove_storage);
	trace = getenv("FUZZ_SERVER_TRACE") != NULL;
	log_set_level(trace ? LOG_DEBUG : LOG_ERROR);

	server_config_defaults(&base);
	base.nlisten = 0;
	base.dir = dir;
	base.greeting_ms = 0;
	srv = server_new(&base);
	CHECK(srv != NULL && srv->nlisten == 0 && srv->nconns == 0);
	/* server_new blocks SIGINT and SIGTERM for its signalfd: give them back so
	 * that ^C still stops the fuzzer. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &sigs, NULL);
	return 0;
}

/* ---- our end of a connection ---- */

struct peer {
	int fd;                 /* ours */
	int server_fd;          /* the server's end, to check it is unwatched */
	bool reads;             /* false: a client that never reads */
	bool eof;               /* the server closed */
	enum framing_kind kind; /* the framing it must speak to us */
	bool kind_known;
	struct tpkt_decoder dec;
	size_t msgs;    /* TPKT frames seen */
	char first[64]; /* the first line or frame's first bytes */
	size_t first_len;
	bool first_done;
	size_t got;
};

static unsigned char rbuf[65536];

static void trace_bytes(const struct peer *p, const unsigned char *s, size_t n)
{
	fprintf(stderr, "[server -> fd %d, %zu bytes] ", p->fd, n);
	for (size_t i = 0; i < n && i < 512; i++)
		fprintf(stderr, s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' ? "%c" : "\\x%02x",
		        s[i]);
	fprintf(stderr, "%s\n", n > 512 ? "..." : "");
}

static void check_first(const struct peer *p)
{
	static const char ok[] = "OK bottled ", full[] = "ERR server full";

	CHECK((p->first_len >= sizeof ok - 1 && memcmp(p->first, ok, sizeof ok - 1) == 0) ||
	      (p->first_len == sizeof full - 1 && memcmp(p->first, full, sizeof full - 1) == 0));
}

/* Checks what the server sent us: its framing and its first message. */
static void peer_input(struct peer *p, const unsigned char *s, size_t n)
{
	CHECK(p->kind_known); /* nothing is sent before the framing is picked */
	if (p->kind == FRAMING_LINE) {
		for (size_t i = 0; i < n && !p->first_done; i++) {
			if (s[i] == '\n') {
				p->first_done = true;
				check_first(p);
			} else if (p->first_len < sizeof p->first) {
				p->first[p->first_len++] = (char)s[i];
			}
		}
		return;
	}
	for (size_t off = 0; off < n;) {
		const unsigned char *payload;
		size_t used, len;
		enum tpkt_status st = tpkt_decode(&p->dec, s + off, n - off, &used, &payload, &len);
		off += used;
		if (st == TPKT_NEED_MORE)
			break;
		if (st != TPKT_FRAME) {
			fprintf(stderr, "server broke TPKT framing: %s\n", tpkt_strerror(st));
			CHECK(!"the server's TPKT stream is valid");
		}
		if (p->msgs++ == 0) {
			p->first_len = len < sizeof p->first ? len : sizeof p->first;
			memcpy(p->first, payload, p->first_len);
			p->first_done = true;
			check_first(p);
		}
	}
}

static void peer_drain(struct peer *p)
{
	if (!p || !p->reads || p->eof || p->fd < 0)
		return;
	for (;;) {
		ssize_t n = read(p->fd, rbuf, sizeof rbuf);
		if (n > 0) {
			if (trace)
				trace_bytes(p, rbuf, (size_t)n);
			peer_input(p, rbuf, (size_t)n);
			p->got += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			p->eof = true; /* closed, or reset */
		return;
	}
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	tpkt_decoder_free(&p->dec);
}

/* One loop turn, then read what the server wrote. */
static void turn(struct peer *a, struct peer *b, int wait_ms)
{
	CHECK(server_poll(srv, wait_ms) == 0);
	peer_drain(a);
	peer_drain(b);
}

static bool peer_open(struct peer *p, bool inet, bool small_buf, bool reads)
{
	int sv[2];
	struct sockaddr_storage ss;

	memset(p, 0, sizeof *p);
	p->reads = reads;
	tpkt_decoder_init(&p->dec, TPKT_MAX_LEN);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	memset(&ss, 0, sizeof ss);
	if (inet) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(40000);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		ss.ss_family = AF_UNIX;
	}
	if (small_buf) {
		int sz = 4096;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	}
	p->fd = sv[1];
	p->server_fd = sv[0];
	if (!server_adopt(srv, sv[0], &ss)) {
		/* It closed sv[0] itself (conn_free). */
		peer_close(p);
		return false;
	}
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls until the server holds at most `want` connections; aborts if it
 * never does. */
static void reap(size_t want, struct peer *a, struct peer *b, const char *what)
{
	uint64_t start = now_ms();

	for (int i = 0; srv->nconns > want; i++) {
		if (i >= REAP_FAST_TURNS && now_ms() - start > REAP_LIMIT_MS) {
			fprintf(stderr,
			        "ghost connection: %s: the server still holds %zu "
			        "connection(s), %zu expected, after %d loop turns\n",
			        what, srv->nconns, want, i);
			abort();
		}
		turn(a, b, i < REAP_FAST_TURNS ? 0 : 5);
	}
	turn(a, b, 0);
	CHECK(srv->nconns <= want);
}

/* Writes the client's bytes in chunks, a turn after each. */
static void send_all(struct peer *p, struct peer *obs, const uint8_t *s, size_t n, size_t chunk)
{
	int stalled = 0;

	for (size_t pos = 0; pos < n && stalled < STALL_TURNS;) {
		size_t len = chunk && chunk < n - pos ? chunk : n - pos;
		ssize_t w = write(p->fd, s + pos, len);
		if (w > 0) {
			pos += (size_t)w;
			stalled = 0;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			break; /* the server is gone (EPIPE) */
		} else {
			stalled++; /* not reading now (a transfer is busy) */
		}
		turn(p, obs, 0);
	}
}

/* The second connection, set up before the client's: line mode, or TPKT
 * (extra bit 1); with extra bit 0 it has begun a resumable upload of
 * shared.bin (100 bytes of 's', token tokentoken1) and sent 10 bytes of it, so
 * the client can take the upload over. NULL if it could not be adopted. */
static struct peer *observer_open(struct peer *o, uint8_t cfg, uint8_t extra)
{
	static const char upload[] =
		"UPLOAD shared.bin 100 "
		"4f4315674f2f1f05af46fe488463c3b8da0bdb0b58c11bccc6d08f1c252fb677 tokentoken1";
	static const char nick[] = "NICK watcher";
	unsigned char buf[256];
	size_t n = 0;
	bool tpkt = extra & 2;

	if (!peer_open(o, false, cfg & 0x80, !(cfg & 0x80)))
		return NULL;
	o->kind = tpkt ? FRAMING_TPKT : FRAMING_LINE;
	o->kind_known = true;
	if (tpkt) {
		tpkt_encode_header(buf, sizeof nick - 1);
		memcpy(buf + TPKT_HDR_LEN, nick, sizeof nick - 1);
		n = TPKT_HDR_LEN + sizeof nick - 1;
	}
	if (extra & 1) {
		size_t len = sizeof upload - 1;
		if (tpkt) {
			tpkt_encode_header(buf + n, len);
			n += TPKT_HDR_LEN;
		}
		memcpy(buf + n, upload, len);
		n += len;
		if (!tpkt)
			buf[n++] = '\n';
		if (tpkt) {
			tpkt_encode_header(buf + n, 10);
			n += TPKT_HDR_LEN;
		}
		memset(buf + n, 's', 10);
		n += 10;
	}
	if (n)
		CHECK(write(o->fd, buf, n) == (ssize_t)n);
	/* Greeted even when the client will find the server full. */
	srv->cfg.max_clients = base.max_clients;
	for (int i = 0; i < 4; i++)
		turn(o, NULL, 0);
	if (cfg & 0x20)
		srv->cfg.max_clients = 0;
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t cfg = fuzz_byte(&in), run = fuzz_byte(&in), extra = fuzz_byte(&in);
	static const size_t frames[] = { 65535, 5, 16, 64 };
	struct peer main_peer, obs_peer, *obs = NULL;
	size_t before = srv->nconns;

	CHECK(before == 0 && room_count(srv->room) == 0 && srv->env.greeted == 0);
	srv->cfg = base;
	if (cfg & 1)
		srv->cfg.max_output = 4096;
	if (cfg & 2)
		srv->cfg.max_line = 16;
	if (cfg & 4)
		srv->cfg.max_file_size = 4096;
	if (cfg & 0x20)
		srv->cfg.max_clients = 0;
	srv->cfg.max_frame = frames[run >> 6];

	if (cfg & 0x40)
		obs = observer_open(&obs_peer, cfg, extra);
	size_t with_obs = srv->nconns; /* without the client */
	if (!peer_open(&main_peer, cfg & 0x10, run & 0x20, true)) {
		if (obs)
			peer_close(obs);
		reap(before, obs, NULL, "observer");
		restore_storage();
		return 0;
	}
	struct peer *p = &main_peer;

	/* The framing: picked by the first byte, or lines once the greeting timer
	 * (0 ms) fires first. */
	if ((cfg & 8) || in.n == 0) {
		p->kind = FRAMING_LINE;
		p->kind_known = true;
		turn(p, obs, 0);
	} else {
		p->kind = framing_detect(in.p[0]);
		p->kind_known = true;
	}
	size_t chunk = run & 15 ? (size_t)1 << ((run & 15) - 1) : 0;
	send_all(p, obs, in.p, in.n, chunk);

	/* Let it answer everything, and finish if asked to. */
	for (int i = 0, quiet = 0; i < 64 && quiet < 8; i++) {
		size_t got = p->got;
		turn(p, obs, 0);
		quiet = p->got == got ? quiet + 1 : 0;
	}
	if (run & 0x10) {
		shutdown(p->fd, SHUT_WR);
		for (int i = 0; i < 256 && !p->eof; i++)
			turn(p, obs, 0);
	}
	/* Our end closes; the observer, if any, stays to see the LEAVE. */
	int server_fd = p->server_fd;
	peer_close(p);
	reap(with_obs, obs, NULL, "client closed");
	if (obs) {
		peer_close(obs);
		reap(before, NULL, NULL, "client and observer closed");
	}
	CHECK(srv->nconns == before);
	CHECK(loop_get_mask(srv->loop, server_fd) == LOOP_NONE);
	CHECK(room_count(srv->room) == 0 && srv->env.greeted == 0);
	restore_storage();
	return 0;
}
