/* fuzz_names - nicknames (nick.c) and file names and resume tokens (wire.c), each
 * against an independent reading of its documented rules.
 *
 * Input: a selector byte, then the name. The name is checked as a nick, a file
 * name and a resume id; the selector also splits it into two nicks to compare.
 *  - nick_check: 1..32 code points, at most NICK_MAX_BYTES bytes, well-formed
 *    UTF-8 after the table of Unicode 15 section 3.9 (byte ranges per lead
 *    byte; fuzz.h), ASCII letters, digits and "_-.[]", or a non-ASCII letter
 *    (iswalpha in C.UTF-8);
 *  - nick_fold: writes only into its NICK_MAX_BYTES + 1 bytes (an exact-size
 *    heap buffer, so ASan sees a byte more), returns strlen of what it wrote,
 *    "" for invalid input, a non-empty valid nick for a valid one, and folding
 *    twice changes nothing; ASCII case never matters, and an all-ASCII nick's
 *    key is its lowercase form;
 *  - wire_name_valid: 1..255 bytes, no '/', no byte < 0x20 or 0x7f, not ".",
 *    "..", ".bottle"; wire_token_valid: 8..64 bytes of [A-Za-z0-9_-]. */
#include "fuzz.h"
#include "nick.h"
#include "wire.h"

#include <locale.h>
#include <stdbool.h>
#include <string.h>
#include <wctype.h>

static locale_t utf8;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	return 0;
}

static bool nick_char(unsigned c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       (c != 0 && strchr("_-.[]", (int)c) != NULL);
	return utf8 != (locale_t)0 && iswalpha_l((wint_t)c, utf8);
}

static enum nick_status oracle_nick(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars = 0;
	unsigned cp;

	if (len == 0)
		return NICK_EMPTY;
	if (len > NICK_MAX_BYTES)
		return NICK_INVALID;
	for (size_t pos = 0; pos < len; chars++) {
		size_t l = fuzz_utf8(p + pos, len - pos, &cp);
		if (l == 0 || !nick_char(cp))
			return NICK_INVALID;
		pos += l;
	}
	return chars <= NICK_MAX_CHARS ? NICK_OK : NICK_INVALID;
}

/* nick_fold into an exact-size heap buffer; the key is returned in key. */
static size_t checked_fold(const char *s, size_t len, char key[NICK_MAX_BYTES + 1])
{
	char *out = malloc(NICK_MAX_BYTES + 1);

	CHECK(out != NULL);
	memset(out, 0x55, NICK_MAX_BYTES + 1);
	size_t n = nick_fold(s, len, out);
	CHECK(n <= NICK_MAX_BYTES && out[n] == '\0' && strlen(out) == n);
	memcpy(key, out, n + 1);
	free(out);
	return n;
}

static void check_nick(const char *s, size_t len)
{
	char key[NICK_MAX_BYTES + 1], key2[NICK_MAX_BYTES + 1];
	enum nick_status st = nick_check(s, len);

	CHECK(st == oracle_nick(s, len));
	size_t n = checked_fold(s, len, key);
	if (st != NICK_OK) {
		CHECK(n == 0);
		return;
	}
	CHECK(n > 0);
	CHECK(nick_check(key, n) == NICK_OK); /* a key is a nick itself */
	size_t n2 = checked_fold(key, n, key2);
	CHECK(n2 == n && memcmp(key, key2, n) == 0); /* idempotent */
}

/* Case only: a nick and its ASCII-uppercased form clash; an all-ASCII nick's
 * key is its lowercase form. */
static void check_case(const char *s, size_t len)
{
	char key[NICK_MAX_BYTES + 1], ukey[NICK_MAX_BYTES + 1];
	char *up = malloc(len ? len : 1);
	bool ascii = true;

	CHECK(up != NULL);
	if (nick_check(s, len) != NICK_OK) {
		free(up);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		up[i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
		ascii = ascii && c < 0x80;
	}
	CHECK(nick_check(up, len) == NICK_OK);
	size_t n = checked_fold(s, len, key);
	CHECK(checked_fold(up, len, ukey) == n && strcmp(key, ukey) == 0);
	if (ascii) {
		CHECK(n == len);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			CHECK(key[i] == (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
		}
	}
	free(up);
}

static bool oracle_name(const char *s, size_t len)
{
	if (len < 1 || len > 255)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.') ||
	    (len == 7 && memcmp(s, ".bottle", 7) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool oracle_id(const char *s, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

	if (len < 8 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || !strchr(ok, s[i]))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	size_t cut = fuzz_byte(&in);
	/* An exact copy on the heap: reading past len is an ASan error. */
	char *s = malloc(in.n ? in.n : 1);

	CHECK(s != NULL);
	if (in.n)
		memcpy(s, in.p, in.n);
	check_nick(s, in.n);
	if (cut > in.n)
		cut = in.n;
	check_nick(s, cut);
	check_nick(s + cut, in.n - cut);
	check_case(s, in.n);
	check_case(s + cut, in.n - cut);
	CHECK(wire_name_valid(s, in.n) == oracle_name(s, in.n));
	CHECK(wire_token_valid(s, in.n) == oracle_id(s, in.n));
	CHECK(wire_name_valid(s, cut) == oracle_name(s, cut));
	CHECK(wire_token_valid(s + cut, in.n - cut) == oracle_id(s + cut, in.n - cut));
	free(s);
	return 0;
}
