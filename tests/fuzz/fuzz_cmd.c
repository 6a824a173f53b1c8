/* fuzz_cmd - the command parser (cmd.c) and the argument word splitter (args.c).
 *
 * Input: a byte for the word buffer size of args_next (1..256), then one
 * command as the framer would hand it. cmd.c is linked with a stand-in command
 * table and conn_err defined here (the real table needs the whole server, and
 * fuzz_server reaches it). Checks:
 *  - cmd_split: the verb is the text before the first space, the argument all
 *    after it, nothing lost;
 *  - cmd_find agrees with a plain ASCII case-insensitive search of the table;
 *  - cmd_execute calls the found handler once with the split argument, or
 *    replies "unknown command: " with the verb made safe (no control bytes),
 *    or "empty command" when there is no verb (spaces before it are skipped);
 *  - args_next: words fit the buffer, hold no NUL, the cursor only moves
 *    forward, args_done agrees; without quotes the words are the runs of
 *    non-spaces; every word survives args_quote and a second args_next. */
#include "fuzz.h"
#include "args.h"
#include "cmd.h"
#include "conn.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

static struct {
	const char *called; /* the stand-in handler that ran */
	int calls;
	const char *arg;
	size_t alen;
	int errs;
	char err[2048];
} rec;

static void record(const char *name, const char *arg, size_t len)
{
	rec.called = name;
	rec.calls++;
	rec.arg = arg;
	rec.alen = len;
}

#define STAND_IN(fn, name)                                                                         \
	static void fn(struct conn *c, const char *arg, size_t len)                                \
	{                                                                                          \
		(void)c;                                                                           \
		record(name, arg, len);                                                            \
	}
STAND_IN(h_echo, "ECHO")
STAND_IN(h_time, "TIME")
STAND_IN(h_help, "HELP")
STAND_IN(h_upload, "UPLOAD")
STAND_IN(h_download, "DOWNLOAD")
STAND_IN(h_x, "X")
STAND_IN(h_dash, "A-B")

const struct cmd_def cmd_table[] = {
	{ "ECHO", "ECHO <text>", "", h_echo, 0 },
	{ "TIME", "TIME", "", h_time, 0 },
	{ "HELP", "HELP [command]", "", h_help, 0 },
	{ "UPLOAD", "UPLOAD ...", "", h_upload, 0 },
	{ "DOWNLOAD", "DOWNLOAD ...", "", h_download, 0 },
	{ "X", "X", "", h_x, 0 },
	{ "A-B", "A-B", "", h_dash, 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};

/* cmd_execute tells the connection a command came; nothing to check here. */
void conn_first_command(struct conn *c); /* conn.h's, which this program leaves out */
void conn_first_command(struct conn *c) { (void)c; }
/* auth.h's, which this program leaves out: every command is permitted here
 * (fuzz_server runs the real check). */
bool auth_permits(struct conn *c, const struct cmd_def *d);
bool auth_permits(struct conn *c, const struct cmd_def *d)
{
	(void)c;
	(void)d;
	return true;
}

void conn_err(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	(void)c;
	rec.errs++;
	va_start(ap, fmt);
	int n = vsnprintf(rec.err, sizeof rec.err, fmt, ap);
	va_end(ap);
	CHECK(n >= 0 && (size_t)n < sizeof rec.err);
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static const struct cmd_def *oracle_find(const char *verb, size_t vlen)
{
	for (const struct cmd_def *d = cmd_table; d->name; d++) {
		size_t i = 0;
		while (i < vlen && d->name[i] &&
		       ascii_lower((unsigned char)d->name[i]) ==
		               ascii_lower((unsigned char)verb[i]))
			i++;
		if (i == vlen && d->name[i] == '\0')
			return d;
	}
	return NULL;
}

static void check_cmd(const char *line, size_t len)
{
	const char *verb, *arg;
	size_t vlen, alen;

	/* cmd_execute skips spaces before the verb. */
	while (len && *line == ' ') {
		line++;
		len--;
	}
	cmd_split(line, len, &verb, &vlen, &arg, &alen);
	CHECK(verb == line && vlen <= len);
	CHECK(vlen == 0 || memchr(verb, ' ', vlen) == NULL);
	if (vlen < len) {
		CHECK(line[vlen] == ' ' && arg == line + vlen + 1 && alen == len - vlen - 1);
	} else {
		CHECK(arg == line + len && alen == 0);
	}

	const struct cmd_def *d = cmd_find(verb, vlen);
	CHECK(d == oracle_find(verb, vlen));

	memset(&rec, 0, sizeof rec);
	struct conn c;
	memset(&c, 0, sizeof c);
	cmd_execute(&c, line, len);
	if (vlen == 0) {
		CHECK(rec.calls == 0 && rec.errs == 1 &&
		      strncmp(rec.err, "empty command", 13) == 0);
		return;
	}
	if (d) {
		CHECK(rec.calls == 1 && rec.errs == 0 && strcmp(rec.called, d->name) == 0);
		CHECK(rec.arg == arg && rec.alen == alen);
		return;
	}
	static const char prefix[] = "unknown command: ";
	CHECK(rec.calls == 0 && rec.errs == 1);
	CHECK(strncmp(rec.err, prefix, sizeof prefix - 1) == 0);
	const char *shown = rec.err + sizeof prefix - 1;
	CHECK(strlen(shown) <= 4 * 64 + 7);
	for (const char *p = shown; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	/* Plain printable verbs (no backslash) are shown as they are, up to 64 bytes. */
	bool plain = true;
	for (size_t i = 0; i < vlen && i < 64; i++)
		plain = plain && (unsigned char)verb[i] >= 0x20 && (unsigned char)verb[i] < 0x7f &&
		        verb[i] != '\\';
	if (plain)
		CHECK(strlen(shown) == (vlen < 64 ? vlen : 64) &&
		      memcmp(shown, verb, strlen(shown)) == 0);
}

/* A word from args_next, quoted and split again, is the same word. */
static void check_quote(const char *word, size_t n)
{
	size_t qcap = 4 * n + 4;
	char *q = malloc(qcap), *back = malloc(n + 1), small[8];
	struct args a;

	CHECK(q && back);
	int ql = args_quote(word, q, qcap);
	CHECK(ql >= 0 && (size_t)ql < qcap && q[ql] == '\0' && strlen(q) == (size_t)ql);
	/* A buffer too small fails cleanly; one big enough gives the same text. */
	int sl = args_quote(word, small, sizeof small);
	CHECK(sl == -1 || (sl == ql && strcmp(small, q) == 0));
	CHECK(sl != -1 || (size_t)ql >= sizeof small - 1);
	args_init(&a, q, (size_t)ql);
	CHECK(args_next(&a, back, n + 1) == (int)n);
	CHECK(memcmp(back, word, n) == 0 && back[n] == '\0');
	CHECK(args_next(&a, back, n + 1) == -1);
	CHECK(args_done(&a));
	free(q);
	free(back);
}

static void check_args(const char *text, size_t len, size_t outsz)
{
	char *out = malloc(outsz);
	struct args a;
	bool plain = memchr(text, '"', len) == NULL && memchr(text, '\0', len) == NULL;
	size_t opos = 0; /* where the oracle's next word starts */

	CHECK(out != NULL);
	args_init(&a, text, len);
	for (size_t round = 0;; round++) {
		CHECK(round <= len + 1);
		const char *before = a.p;
		bool done = args_done(&a);
		int n = args_next(&a, out, outsz);
		CHECK(a.p >= before && a.p <= text + len && a.end == text + len);
		CHECK(done == (n == -1));
		if (n == -1) {
			CHECK(args_done(&a));
			break;
		}
		/* The oracle for quote-free text: the next run of non-spaces. */
		while (plain && opos < len && text[opos] == ' ')
			opos++;
		size_t ostart = opos;
		while (plain && opos < len && text[opos] != ' ')
			opos++;
		if (n == -2) {
			CHECK(!plain || opos - ostart + 1 > outsz);
			break;
		}
		CHECK(n >= 0 && (size_t)n < outsz && out[n] == '\0' && strlen(out) == (size_t)n);
		CHECK(a.p > before);
		if (plain)
			CHECK((size_t)n == opos - ostart &&
			      memcmp(out, text + ostart, (size_t)n) == 0);
		check_quote(out, (size_t)n);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	size_t outsz = (size_t)fuzz_byte(&in) + 1;
	const char *line = (const char *)in.p;
	const char *verb, *arg;
	size_t vlen, alen;

	check_cmd(line, in.n);
	cmd_split(line, in.n, &verb, &vlen, &arg, &alen);
	check_args(arg, alen, outsz);
	check_args(line, in.n, 300);
	return 0;
}
