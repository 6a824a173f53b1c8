/* commands.c - the command table and the handlers of the basic and chat
 * commands. Handlers answer through conn_ok/conn_err and never touch sockets. */
#include "auth.h"
#include "cluster.h"
#include "cmd.h"
#include "conn.h"
#include "escape.h"
#include "files.h"
#include "perms.h"
#include "room.h"
#include "timefmt.h"
#include "tpkt.h"
#include "wire.h"
#include "xfer.h"
#include "xmalloc.h"

#include <stdint.h>
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
			char shown[CMD_UNKNOWN_MAX];
			conn_err(c, "%s", cmd_unknown_text(shown, sizeof shown, arg, len));
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

/* A connection that said ROLE files is out of the chat until ROLE chat. */
static bool chatting(struct conn *c)
{
	if (conn_in_chat(c))
		return true;
	conn_err(c, "not in the chat: this connection said ROLE files; ROLE chat joins");
	return false;
}

/* A member may post (SAY, ME, TELL) a text of this length. */
static bool may_post(struct conn *c, size_t len)
{
	if (!chatting(c))
		return false;
	if (len > WIRE_SAY_MAX) {
		conn_err(c, "message too long (at most %zu bytes)", (size_t)WIRE_SAY_MAX);
		return false;
	}
	return true;
}

static void cmd_say(struct conn *c, const char *arg, size_t len)
{
	if (!may_post(c, len))
		return;
	room_say(c->env->room, &c->member, arg, len);
	conn_reply(c, "OK", "", 0);
}

static void cmd_me(struct conn *c, const char *arg, size_t len)
{
	if (!may_post(c, len))
		return;
	room_action(c->env->room, &c->member, arg, len);
	conn_reply(c, "OK", "", 0);
}

/* "TELL <nick> <text>": only that member gets "PRIVATE <from> <text>". */
static void cmd_tell(struct conn *c, const char *arg, size_t len)
{
	if (!chatting(c))
		return;
	const char *sp = memchr(arg, ' ', len);
	if (!sp || sp == arg || sp + 1 == arg + len) {
		conn_err(c, "usage: TELL <nick> <text>");
		return;
	}
	size_t nlen = (size_t)(sp - arg), tlen = len - nlen - 1;
	if (!may_post(c, tlen))
		return;
	if (!room_tell(c->env->room, &c->member, arg, nlen, sp + 1, tlen)) {
		char shown[4 * NICK_MAX_BYTES + 8];
		escape_text(shown, sizeof shown, arg,
		            nlen < NICK_MAX_BYTES ? nlen : NICK_MAX_BYTES);
		conn_err(c, "no such nick: %s", shown);
		return;
	}
	conn_reply(c, "OK", "", 0);
}

/* A count or an offset: the argument is not NUL-terminated. */
static bool parse_number(const char *s, size_t len, uint64_t *out)
{
	char word[24];
	if (len == 0 || len >= sizeof word)
		return false;
	memcpy(word, s, len);
	word[len] = '\0';
	return wire_parse_u63(word, out);
}

/* The words after HISTORY SINCE: "<epoch> <offset>". */
static bool parse_position(const char *arg, size_t len, char epoch[17], uint64_t *offset)
{
	const char *sp = memchr(arg, ' ', len);
	if (!sp || sp - arg != 16)
		return false;
	for (int i = 0; i < 16; i++)
		if (!arg[i] || !strchr("0123456789abcdef", arg[i]))
			return false;
	memcpy(epoch, arg, 16);
	epoch[16] = '\0';
	return parse_number(sp + 1, len - 17, offset);
}

/* "HISTORY [n]" replays the last n kept messages (all by default);
 * "HISTORY SINCE <epoch> <offset>" what came after that one. Each is a
 * HISTORY event; the reply says where the history stands:
 * "OK <epoch> <last offset>", and for SINCE "complete" or "incomplete".
 * As a TPKT connection's first command it also joins the room, without the
 * newcomer's replay: the client asked for what it wants to see. */
static void cmd_history(struct conn *c, const char *arg, size_t len)
{
	struct room *room = c->env->room;
	uint64_t n = SIZE_MAX, after;
	char epoch[17];
	bool since = len >= 6 && strncasecmp(arg, "SINCE ", 6) == 0;

	if (since ? !parse_position(arg + 6, len - 6, epoch, &after)
	          : len && !parse_number(arg, len, &n)) {
		conn_err(c, "usage: HISTORY [<count>] | HISTORY SINCE <epoch> <offset>");
		return;
	}
	conn_enter_chat(c, false);
	if (since) {
		bool whole = room_replay_since(room, &c->member, epoch, after);
		conn_ok(c, "%s %llu %s", room_epoch(room),
		        (unsigned long long)room_last_offset(room),
		        whole ? "complete" : "incomplete");
		return;
	}
	room_replay_last(room, &c->member, n > SIZE_MAX ? SIZE_MAX : (size_t)n);
	conn_ok(c, "%s %llu", room_epoch(room), (unsigned long long)room_last_offset(room));
}

/* "OFFSETS on": room messages come as "@<offset> MSG ..." (and ACTION), so a
 * client knows the last one it saw when it reconnects. May come first. */
static void cmd_offsets(struct conn *c, const char *arg, size_t len)
{
	if (len == 2 && strncasecmp(arg, "on", 2) == 0)
		c->member.offsets = true;
	else if (len == 3 && strncasecmp(arg, "off", 3) == 0)
		c->member.offsets = false;
	else {
		conn_err(c, "usage: OFFSETS on|off");
		return;
	}
	conn_ok(c, "%s %llu", room_epoch(c->env->room),
	        (unsigned long long)room_last_offset(c->env->room));
}

static void nick_reply(struct conn *c, int result)
{
	switch (result) {
	case NICK_OK: conn_ok(c, "%s", c->member.nick); break;
	case NICK_EMPTY: conn_err(c, "nickname required"); break;
	case ROOM_NICK_TAKEN: conn_err(c, "nickname in use"); break;
	default:
		conn_err(c, "invalid nickname: 1-%d letters, digits or _-.[]", NICK_MAX_CHARS);
		break;
	}
}

/* The cluster's answer to a NICK (from a Redis reply): m is looked up again,
 * so its connection is open; a pause that ran out answered already. */
static void nick_claimed(struct member *m, enum cluster_claim_result r, const char *nick,
                         size_t len)
{
	struct conn *c = conn_of_member(m);
	if (!c || !c->paused)
		return;
	if (r == CLUSTER_TAKEN) {
		conn_err(c, "nickname in use");
	} else { /* claimed, or Redis is away: decided here, claimed when it is back */
		int st = room_rename(c->env->room, m, nick, len);
		if (st != NICK_OK && r == CLUSTER_CLAIMED)
			cluster_unclaim(c->env->cluster, nick, len);
		nick_reply(c, st);
	}
	conn_pause_end(c);
}

static void nick_unanswered(struct conn *c)
{
	conn_err(c, "the cluster did not answer; try again");
}

static void cmd_nick(struct conn *c, const char *arg, size_t len)
{
	if (!chatting(c) || !auth_nick_allowed(c, arg, len))
		return;
	struct room *room = c->env->room;
	struct member *holder = room_holder(room, arg, len);
	/* In a cluster Redis says first whether the name is free on every node:
	 * the reply waits for it, and so do the commands behind it. */
	if (c->env->cluster && nick_check(arg, len) == NICK_OK &&
	    (!holder || holder == &c->member) &&
	    cluster_claim(c->env->cluster, &c->member, arg, len, nick_claimed)) {
		conn_pause(c, CLUSTER_CLAIM_TIMEOUT_MS + 1000, nick_unanswered);
		return;
	}
	nick_reply(c, room_rename(room, &c->member, arg, len));
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

/* "ROLE files": this connection moves files and is no chatter (no JOIN or
 * LEAVE for it, not in WHO); "ROLE chat": back in the room. */
static void cmd_role(struct conn *c, const char *arg, size_t len)
{
	if (len >= 5 && strncasecmp(arg, "files", 5) == 0 && (len == 5 || arg[5] == ' ')) {
		if (len > 6 && !conn_speak_for(c, arg + 6, len - 6)) {
			char shown[4 * NICK_MAX_BYTES + 8];
			escape_text(shown, sizeof shown, arg + 6,
			            len - 6 < NICK_MAX_BYTES ? len - 6 : NICK_MAX_BYTES);
			conn_err(c, "no member %s on your host", shown);
			return;
		}
		conn_leave_chat(c);
		conn_ok(c, "files");
	} else if (len == 4 && strncasecmp(arg, "chat", 4) == 0) {
		if (!auth_may(c, PERM_CHAT, "ROLE chat"))
			return;
		conn_enter_chat(c, true);
		conn_ok(c, "chat %s", c->member.nick);
	} else {
		conn_err(c, "usage: ROLE chat|files [<nick>]");
	}
}

const struct cmd_def cmd_table[] = {
	{ "ECHO", "ECHO <text>", "reply with the text", cmd_echo, 0 },
	{ "TIME", "TIME", "the server's local time, RFC 3339 with milliseconds", cmd_time, 0 },
	{ "QUIT", "QUIT", "say goodbye and close the connection", cmd_quit, 0 },
	{ "EXIT", "EXIT", "the same as QUIT", cmd_quit, 0 },
	{ "CLOSE", "CLOSE", "the same as QUIT", cmd_quit, 0 },
	{ "HELP", "HELP [command]", "list the commands, or explain one", cmd_help, 0 },
	{ "AUTH", "AUTH <name> <token>",
	  "sign in to an account: its name becomes your nickname, its permissions yours", auth_cmd,
	  CMD_BEFORE_JOIN },
	{ "SAY", "SAY <text>", "send the text to everyone else in the room", cmd_say, CMD_CHATS },
	{ "ME", "ME <action>", "tell the room what you do: the others see ACTION <you> <action>",
	  cmd_me, CMD_CHATS },
	{ "TELL", "TELL <nick> <text>", "a private message: only <nick> gets PRIVATE <you> <text>",
	  cmd_tell, CMD_CHATS },
	{ "NICK", "NICK <name>", "change your nickname", cmd_nick, CMD_CHATS },
	{ "WHO", "WHO", "count and list the people in the room", cmd_who, CMD_CHATS },
	{ "HISTORY", "HISTORY [<count>] | HISTORY SINCE <epoch> <offset>",
	  "the room's last messages again, or those after the last one you saw", cmd_history,
	  CMD_BEFORE_JOIN | CMD_CHATS },
	{ "OFFSETS", "OFFSETS on|off", "room messages come as \"@<offset> MSG ...\"", cmd_offsets,
	  CMD_BEFORE_JOIN | CMD_CHATS },
	{ "ROLE", "ROLE chat|files [<nick>]",
	  "files: this connection only moves files and is not in the room; chat: it is", cmd_role,
	  CMD_BEFORE_JOIN },
	{ "LIST", WIRE_LIST_USAGE,
	  "the stored files: a count, then one \"<size> <name>\" line each", xfer_cmd_list,
	  CMD_READS },
	{ "UPLOAD", WIRE_UPLOAD_USAGE,
	  "store a file: after \"OK <offset>\", send the bytes from that offset", xfer_cmd_upload,
	  CMD_WRITES },
	{ "DOWNLOAD", WIRE_DOWNLOAD_USAGE,
	  "fetch a file: \"OK <size> <offset> <sha256>\", then the bytes from that offset",
	  xfer_cmd_download, CMD_READS },
	{ "DELETE", WIRE_DELETE_USAGE, "delete a stored file; the room is told", files_cmd_delete,
	  CMD_WRITES },
	{ "RENAME", WIRE_RENAME_USAGE,
	  "rename a stored file (never over another one); the room is told", files_cmd_rename,
	  CMD_WRITES },
	{ NULL, NULL, NULL, NULL, 0 },
};
