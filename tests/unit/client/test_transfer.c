/* Unit tests for the pure parts of file transfer: the resume token, command
 * arguments (name quoting), --limit-rate values and the token bucket, the
 * reconnect backoff, shell quoting for the resume hint, the key's path, and
 * the progress texts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "progress.h"
#include "transfer.h"
#include "userkey.h"

/* sha256("hello world\n") */
#define SHA_HELLO "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"

/* ---- token ---- */

static void token_is_prefix_of_sha256_over_key_and_fields(void **state)
{
	unsigned char key[TRANSFER_KEY_LEN];
	char tok[TRANSFER_TOKEN_HEX + 1];
	(void)state;

	for (int i = 0; i < TRANSFER_KEY_LEN; i++)
		key[i] = (unsigned char)i;
	/* Expected values: Python's hashlib over key || 0 || name || 0 || size || 0 || sha. */
	transfer_token(key, "notes.txt", 12, SHA_HELLO, tok);
	assert_string_equal(tok, "b128a5d2e713e8cc2cd128b01477468e");
	transfer_token(key, "my notes.txt", 12, SHA_HELLO, tok);
	assert_string_equal(tok, "18973019c70cae61e303bb48751aade7");
}

static void token_depends_on_every_field(void **state)
{
	unsigned char key[TRANSFER_KEY_LEN] = { 0 };
	char a[TRANSFER_TOKEN_HEX + 1], b[TRANSFER_TOKEN_HEX + 1];
	(void)state;

	transfer_token(key, "x", 1, SHA_HELLO, a);
	assert_int_equal(strlen(a), TRANSFER_TOKEN_HEX);
	transfer_token(key, "x", 1, SHA_HELLO, b);
	assert_string_equal(a, b); /* stable */
	transfer_token(key, "x", 2, SHA_HELLO, b);
	assert_string_not_equal(a, b);
	transfer_token(key, "y", 1, SHA_HELLO, b);
	assert_string_not_equal(a, b);
	key[31] = 1;
	transfer_token(key, "x", 1, SHA_HELLO, b);
	assert_string_not_equal(a, b);
	/* The separators keep "x" + size 11 apart from "x1" + size 1. */
	key[31] = 0;
	transfer_token(key, "x1", 1, SHA_HELLO, a);
	transfer_token(key, "x", 11, SHA_HELLO, b);
	assert_string_not_equal(a, b);
}

/* ---- command arguments ---- */

static void upload_args_quote_names_when_needed(void **state)
{
	char out[600];
	(void)state;

	assert_true(transfer_upload_args(out, sizeof out, "notes.txt", 12, SHA_HELLO, "tok") > 0);
	assert_string_equal(out, "notes.txt 12 " SHA_HELLO " tok");
	transfer_upload_args(out, sizeof out, "my notes.txt", 0, SHA_HELLO, "t");
	assert_string_equal(out, "\"my notes.txt\" 0 " SHA_HELLO " t");
	transfer_upload_args(out, sizeof out, "say \"hi\"", 1, SHA_HELLO, "t");
	assert_string_equal(out, "\"say \\\"hi\\\"\" 1 " SHA_HELLO " t");
	transfer_upload_args(out, sizeof out, "back\\slash", 1, SHA_HELLO, "t");
	assert_string_equal(out, "\"back\\\\slash\" 1 " SHA_HELLO " t");
	assert_int_equal(transfer_upload_args(out, 10, "notes.txt", 12, SHA_HELLO, "t"), -1);
}

static void download_args_offset_and_digest(void **state)
{
	char out[600];
	(void)state;

	transfer_download_args(out, sizeof out, "notes.txt", 0, NULL);
	assert_string_equal(out, "notes.txt");
	transfer_download_args(out, sizeof out, "a b", 0, NULL);
	assert_string_equal(out, "\"a b\"");
	transfer_download_args(out, sizeof out, "notes.txt", 5, NULL);
	assert_string_equal(out, "notes.txt 5");
	transfer_download_args(out, sizeof out, "notes.txt", 5, SHA_HELLO);
	assert_string_equal(out, "notes.txt 5 " SHA_HELLO);
}

/* ---- rates and the limiter ---- */

static void parse_rate_suffixes_and_junk(void **state)
{
	uint64_t r = 0;
	(void)state;

	assert_int_equal(ratelimit_parse("100", &r), 0);
	assert_int_equal(r, 100);
	assert_int_equal(ratelimit_parse("10k", &r), 0);
	assert_int_equal(r, 10240);
	assert_int_equal(ratelimit_parse("2M", &r), 0);
	assert_int_equal(r, 2 * 1024 * 1024);
	assert_int_equal(ratelimit_parse("1.5K", &r), 0);
	assert_int_equal(r, 1536);
	assert_int_equal(ratelimit_parse("1g", &r), 0);
	assert_int_equal(r, 1024ULL * 1024 * 1024);
	static const char *const bad[] = { "",    "0",   "-1",  "+5",  "k",
		                           "10x", "1kk", "0.5", "nan", "1e30" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ratelimit_parse(bad[i], &r), -1);
}

static void limiter_grants_at_the_rate(void **state)
{
	struct ratelimit l;
	double t = 100.0, total = 0;
	(void)state;

	ratelimit_init(&l, 1000, t); /* quantum: 100 bytes */
	assert_int_equal(ratelimit_take(&l, 1000, t), 100);
	assert_int_equal(ratelimit_take(&l, 1000, t), 0);
	assert_true(fabs(ratelimit_wait(&l, 1000, t) - 0.1) < 1e-9);
	assert_int_equal(ratelimit_take(&l, 1000, t + 0.05), 0);
	assert_int_equal(ratelimit_take(&l, 1000, t + 0.1), 100);
	/* Small wants go as soon as they fit. */
	assert_true(ratelimit_wait(&l, 10, t + 0.11) < 1e-9);
	/* Ten seconds of a sender that takes whenever it may: about 10000 bytes. */
	ratelimit_init(&l, 1000, t);
	for (double now = t; now < t + 10; now += 0.01)
		total += (double)ratelimit_take(&l, 65531, now);
	assert_true(total >= 9800 && total <= 10300);
	/* Idle time saves up at most the burst. */
	ratelimit_init(&l, 1000, t);
	assert_true(ratelimit_take(&l, 65531, t + 60) <= 200);
}

static void limiter_debt_for_downloads(void **state)
{
	struct ratelimit l;
	(void)state;

	ratelimit_init(&l, 1000, 0);
	ratelimit_spend(&l, 5100, 0); /* 100 tokens - 5100: a debt of 5000 */
	assert_true(fabs(ratelimit_wait(&l, 1, 0) - 5.001) < 1e-9);
	assert_true(ratelimit_wait(&l, 1, 5.001) < 1e-9);
}

static void limiter_off_means_no_limit(void **state)
{
	struct ratelimit l;
	(void)state;

	ratelimit_init(&l, 0, 0);
	assert_int_equal(ratelimit_take(&l, 65531, 0), 65531);
	assert_int_equal(ratelimit_take(&l, 65531, 0), 65531);
	ratelimit_spend(&l, 1 << 30, 0);
	assert_true(ratelimit_wait(&l, 1, 0) == 0);
}

/* ---- reconnecting ---- */

static void backoff_doubles_up_to_five_seconds(void **state)
{
	static const int want[] = { 250, 500, 1000, 2000, 4000, 5000, 5000 };
	(void)state;

	for (int i = 0; i < 7; i++)
		assert_int_equal(transfer_backoff_ms(i), want[i]);
	assert_int_equal(transfer_backoff_ms(1000), 5000);
	assert_int_equal(transfer_backoff_ms(-3), 250);
}

static void shell_quote_for_the_resume_hint(void **state)
{
	char out[128];
	(void)state;

	assert_string_equal(transfer_shell_quote("notes.txt", out, sizeof out), "notes.txt");
	assert_string_equal(transfer_shell_quote("127.0.0.1:4000", out, sizeof out),
	                    "127.0.0.1:4000");
	assert_string_equal(transfer_shell_quote("[::1]:4000", out, sizeof out), "[::1]:4000");
	assert_string_equal(transfer_shell_quote("my notes", out, sizeof out), "'my notes'");
	assert_string_equal(transfer_shell_quote("it's", out, sizeof out), "'it'\\''s'");
	assert_string_equal(transfer_shell_quote("$HOME", out, sizeof out), "'$HOME'");
	assert_string_equal(transfer_shell_quote("", out, sizeof out), "''");
}

static void key_path_follows_xdg(void **state)
{
	char out[64];
	(void)state;

	assert_int_equal(userkey_path("/st", "/home/u", out, sizeof out), 0);
	assert_string_equal(out, "/st/bottle/key");
	assert_int_equal(userkey_path("relative", "/home/u", out, sizeof out), 0);
	assert_string_equal(out, "/home/u/.local/state/bottle/key");
	assert_int_equal(userkey_path("", "/home/u", out, sizeof out), 0);
	assert_string_equal(out, "/home/u/.local/state/bottle/key");
	assert_int_equal(userkey_path(NULL, NULL, out, sizeof out), -1);
	assert_int_equal(userkey_path(NULL, "", out, sizeof out), -1);
	assert_int_equal(userkey_path(NULL, "/a/very/long/home/folder/name/here", out, 20), -1);
}

/* ---- progress ---- */

static void progress_units_and_times(void **state)
{
	char out[64];
	(void)state;

	assert_string_equal(progress_bytes(out, sizeof out, 0), "0 B");
	assert_string_equal(progress_bytes(out, sizeof out, 1023), "1023 B");
	assert_string_equal(progress_bytes(out, sizeof out, 1536), "1.5 KiB");
	assert_string_equal(progress_bytes(out, sizeof out, 100.0 * 1024 * 1024), "100.0 MiB");
	assert_string_equal(progress_bytes(out, sizeof out, 3.0 * 1024 * 1024 * 1024), "3.0 GiB");
	assert_string_equal(progress_eta(out, sizeof out, 5), "0:05");
	assert_string_equal(progress_eta(out, sizeof out, 754), "12:34");
	assert_string_equal(progress_eta(out, sizeof out, 3723), "1:02:03");
	assert_string_equal(progress_eta(out, sizeof out, -1), "--:--");
	assert_string_equal(progress_eta(out, sizeof out, 1e12), "--:--");
}

static void progress_rate_is_smoothed(void **state)
{
	struct progress p;
	(void)state;

	progress_init(&p, 10000000, 0, 0);
	assert_true(p.rate == 0);
	progress_sample(&p, 1000000, 1.0);
	assert_true(fabs(p.rate - 1e6) < 1);
	progress_sample(&p, 3000000, 2.0); /* 2e6 this second: 0.7 * 1e6 + 0.3 * 2e6 */
	assert_true(fabs(p.rate - 1.3e6) < 1);
	progress_sample(&p, 9000000, 2.01); /* too soon to count */
	assert_true(fabs(p.rate - 1.3e6) < 1);
}

static void progress_bar_fits_its_width(void **state)
{
	struct progress p;
	char out[256];
	(void)state;

	progress_init(&p, 100 * 1024 * 1024, 0, 0);
	progress_sample(&p, 45 * 1024 * 1024, 1.0);
	progress_bar(out, sizeof out, &p, "upload notes.txt", 45 * 1024 * 1024, 79);
	assert_true(strlen(out) <= 79);
	assert_non_null(strstr(out, "upload notes.txt  45% ["));
	assert_non_null(strstr(out, "45.0 MiB / 100.0 MiB"));
	assert_non_null(strstr(out, "ETA 0:01"));
	assert_non_null(strchr(out, '#'));
	progress_bar(out, sizeof out, &p, "upload notes.txt", 45 * 1024 * 1024, 40);
	assert_null(strchr(out, '[')); /* too narrow for a bar */
	/* Long names are cut with "..." */
	progress_bar(out, sizeof out, &p, "upload a-rather-long-file-name-that-goes-on.bin", 0,
	             100);
	assert_non_null(strstr(out, "...   0%"));
	/* Unknown rate, empty file */
	progress_init(&p, 0, 0, 0);
	progress_bar(out, sizeof out, &p, "x", 0, 80);
	assert_non_null(strstr(out, "100%"));
	assert_non_null(strstr(out, "ETA --:--"));
}

/* A download's data frames, read in pieces of every size, come out of
 * client_next_data as the same bytes, and the reply after them is whole. */
static void next_data_joins_frames_across_reads(void **state)
{
	static unsigned char wire[3 * (TPKT_HDR_LEN + 700) + 64];
	unsigned char want[2100], got[2100];
	size_t n = 0, have = 0;
	(void)state;

	for (size_t i = 0; i < sizeof want; i++)
		want[i] = (unsigned char)(i * 7);
	for (int f = 0; f < 3; f++) {
		tpkt_encode_header(wire + n, 700);
		memcpy(wire + n + TPKT_HDR_LEN, want + f * 700, 700);
		n += TPKT_HDR_LEN + 700;
	}
	tpkt_encode_header(wire + n, 2);
	memcpy(wire + n + TPKT_HDR_LEN, "OK", 2);
	n += TPKT_HDR_LEN + 2;
	for (size_t step = 1; step <= n; step = step * 3 + 1) {
		struct client c = { 0 };
		unsigned char buf[sizeof wire];
		tpkt_decoder_init(&c.dec, TPKT_MAX_LEN);
		c.rbuf = buf;
		have = 0;
		for (size_t off = 0; off < n && have < sizeof want; off += step) {
			size_t len = n - off < step ? n - off : step;
			memcpy(buf, wire + off, len);
			c.roff = 0;
			c.rlen = len;
			const unsigned char *p;
			size_t plen;
			while (have < sizeof want &&
			       client_next_data(&c, &p, &plen) == CLIENT_NEXT_MSG) {
				assert_true(have + plen <= sizeof want);
				memcpy(got + have, p, plen);
				have += plen;
			}
		}
		assert_int_equal(have, sizeof want);
		assert_memory_equal(got, want, sizeof want);
		assert_int_equal(c.data_left, 0);
		tpkt_decoder_free(&c.dec);
	}
}

static void next_data_checks_headers(void **state)
{
	unsigned char buf[8] = { 4, 0, 0, 8, 'a', 'b', 'c', 'd' };
	struct client c = { .rbuf = buf, .rlen = sizeof buf };
	const unsigned char *p;
	size_t len;
	(void)state;

	assert_int_equal(client_next_data(&c, &p, &len), CLIENT_NEXT_BROKEN);
	assert_non_null(strstr(c.error, "version"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_is_prefix_of_sha256_over_key_and_fields),
		cmocka_unit_test(token_depends_on_every_field),
		cmocka_unit_test(upload_args_quote_names_when_needed),
		cmocka_unit_test(download_args_offset_and_digest),
		cmocka_unit_test(parse_rate_suffixes_and_junk),
		cmocka_unit_test(limiter_grants_at_the_rate),
		cmocka_unit_test(limiter_debt_for_downloads),
		cmocka_unit_test(limiter_off_means_no_limit),
		cmocka_unit_test(backoff_doubles_up_to_five_seconds),
		cmocka_unit_test(shell_quote_for_the_resume_hint),
		cmocka_unit_test(key_path_follows_xdg),
		cmocka_unit_test(progress_units_and_times),
		cmocka_unit_test(progress_rate_is_smoothed),
		cmocka_unit_test(progress_bar_fits_its_width),
		cmocka_unit_test(next_data_joins_frames_across_reads),
		cmocka_unit_test(next_data_checks_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
