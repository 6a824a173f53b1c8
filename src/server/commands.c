/* commands.c - the command table and the handlers of the basic and chat
 * commands. Handlers answer through conn_ok/conn_err and never touch sockets. */
#include "cmd.h"
#include "conn.h"
#include "room.h"
#include "timefmt.h"
#include "tpkt.h"
#include "wire.h"
#include "xfer.h"
#include "xmalloc.h"

#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

static void cmd_echo(struct conn *c, const char *arg, size_t len) { conn_reply(c, "OK", arg, len); }

static void cmd_time(struct conn *c, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	char now[TIMEFMT_RFC3339_LEN];
	timefmt_now(now);
	conn_ok(c, "%s", now);
}

static void cmd_quit(struct conn *c, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	conn_ok(c, "bye");
	conn_close_after_flush(c, END_QUIT);
}

static void cmd_help(struct conn *c, const char *arg, size_t len)
{
	if (len) {
		const struct cmd_def *d = cmd_find(arg, len);
		if (!d) {
			conn_err(c, "no such command: %.*s", (int)(len < 64 ? len : 64), arg);
			return;
		}
		conn_ok(c, "%s: %s", d->usage, d->summary);
		return;
	}
	char text[512];
	size_t n = 0;
	for (const struct cmd_def *d = cmd_table; d->name && n < sizeof text; d++)
		n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", n ? " " : "", d->name);
	conn_reply(c, "OK", text, n < sizeof text ? n : sizeof text - 1);
}

static void cmd_say(struct conn *c, const char *arg, size_t len)
{
	if (len > WIRE_SAY_MAX) {
		conn_err(c, "message too long (at most %zu bytes)", (size_t)WIRE_SAY_MAX);
		return;
	}
	room_say(c->env->room, &c->member, arg, len);
	conn_ok(c, "%s", "");
}

static void cmd_nick(struct conn *c, const char *arg, size_t len)
{
	switch (room_rename(c->env->room, &c->member, arg, len)) {
	case NICK_OK: conn_ok(c, "%s", c->member.nick); break;
	case NICK_EMPTY: conn_err(c, "nickname required"); break;
	case ROOM_NICK_TAKEN: conn_err(c, "nickname in use"); break;
	default: conn_err(c, "invalid nickname"); break;
	}
}

/* "OK <count> <nick> ...": the count is exact; the list stops where a TPKT
 * frame would overflow (docs/protocol.md). */
static void cmd_who(struct conn *c, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	struct room *room = c->env->room;
	size_t count = room_count(room), cap = TPKT_MAX_PAYLOAD - 4, n;
	char *text = xmalloc(cap);

	n = (size_t)snprintf(text, cap, "%zu", count);
	for (size_t i = 0; i < count; i++) {
		const char *nick = room_member(room, i)->nick;
		size_t l = strlen(nick);
		if (n + 1 + l > cap)
			break;
		text[n++] = ' ';
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted, no NUL */
		memcpy(text + n, nick, l);
		n += l;
	}
	conn_reply(c, "OK", text, n);
	free(text);
}

const struct cmd_def cmd_table[] = {
	{ "ECHO", "ECHO <text>", "reply with the text", cmd_echo },
	{ "TIME", "TIME", "the server's local time, RFC 3339 with milliseconds", cmd_time },
	{ "QUIT", "QUIT", "say goodbye and close the connection", cmd_quit },
	{ "EXIT", "EXIT", "the same as QUIT", cmd_quit },
	{ "CLOSE", "CLOSE", "the same as QUIT", cmd_quit },
	{ "HELP", "HELP [command]", "list the commands, or explain one", cmd_help },
	{ "SAY", "SAY <text>", "send the text to everyone else in the room", cmd_say },
	{ "NICK", "NICK <name>", "change your nickname", cmd_nick },
	{ "WHO", "WHO", "count and list the people in the room", cmd_who },
	{ "LIST", WIRE_LIST_USAGE,
	  "the stored files: a count, then one \"<size> <name>\" line each", xfer_cmd_list },
	{ "UPLOAD", WIRE_UPLOAD_USAGE,
	  "store a file: after \"OK <offset>\", send the bytes from that offset", xfer_cmd_upload },
	{ "DOWNLOAD", WIRE_DOWNLOAD_USAGE,
	  "fetch a file: \"OK <size> <offset> <sha256>\", then the bytes from that offset",
	  xfer_cmd_download },
	{ NULL, NULL, NULL, NULL },
};
