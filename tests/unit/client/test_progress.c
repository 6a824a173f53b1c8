/* Unit tests for progress.c: the bar fits every width (20, 40, 62, 80, 200
 * columns and all in between) and gives up its fields in the documented
 * order; units are binary everywhere; the rewind after a resize; the final
 * line says the same things after an automatic resume and after a rerun. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "progress.h"
#include "utf8.h"

#define MIB (1024.0 * 1024.0)

/* 45 MiB of 100 MiB at 10 MiB/s: 5.5 s left. */
static void sample(struct progress *p)
{
	progress_init(p, (uint64_t)(100 * MIB), 0, 0);
	progress_sample(p, (uint64_t)(10 * MIB), 1.0);
}

static const char *bar_at(char *out, size_t outsz, const char *label, int width)
{
	struct progress p;

	sample(&p);
	return progress_bar(out, outsz, &p, label, (uint64_t)(45 * MIB), width);
}

static bool has(const char *s, const char *what) { return strstr(s, what) != NULL; }

static void bar_fits_every_width(void **state)
{
	static const char *const labels[] = { "upload report.pdf", "x", "",
		                              "download a-rather-long-file-name-that-goes-on.bin",
		                              "upload \xc3\xa9t\xc3\xa9-caf\xc3\xa9.txt" };
	char out[1024];
	(void)state;

	for (size_t l = 0; l < sizeof labels / sizeof labels[0]; l++) {
		for (int w = 0; w <= 300; w++) {
			bar_at(out, sizeof out, labels[l], w);
			assert_true(progress_columns(out) <= w);
			assert_null(strchr(out, '\n'));
			if (w >= 4) /* the percentage is the last thing to go */
				assert_true(has(out, "45%"));
		}
	}
}

static void bar_at_200_and_80_has_everything(void **state)
{
	char out[1024];
	(void)state;

	bar_at(out, sizeof out, "upload report.pdf", 200);
	assert_int_equal(progress_columns(out), 200); /* the bar takes the room */
	assert_true(has(out, "upload report.pdf  45% [#"));
	assert_true(has(out, "] 45.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:06"));
	bar_at(out, sizeof out, "upload report.pdf", 80);
	assert_int_equal(progress_columns(out), 80);
	assert_true(has(out, "upload report.pdf  45% [#"));
	assert_true(has(out, "] 45.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:06"));
}

static void bar_at_62_shortens_first(void **state)
{
	char out[1024];
	(void)state;

	bar_at(out, sizeof out, "upload report.pdf", 62);
	assert_true(progress_columns(out) <= 62);
	assert_true(has(out, "upload report.pdf  45% [#")); /* name and bar kept */
	assert_true(has(out, "] 45.0 MiB  10.0 MiB/s"));    /* the total went */
	assert_false(has(out, "100.0 MiB"));
	assert_true(has(out, "0:06"));
}

static void bar_at_40_drops_the_bar(void **state)
{
	char out[1024];
	(void)state;

	bar_at(out, sizeof out, "upload report.pdf", 40);
	assert_true(progress_columns(out) <= 40);
	assert_null(strchr(out, '['));
	assert_string_equal(out, "upload report.pdf  45%  10.0 MiB/s  0:06");
}

static void bar_at_20_keeps_name_and_percent(void **state)
{
	char out[1024];
	(void)state;

	bar_at(out, sizeof out, "get f.bin", 20);
	assert_string_equal(out, "get f.bin  45%  0:06");
	bar_at(out, sizeof out, "upload report.pdf", 20);
	assert_string_equal(out, "upload repor...  45%"); /* cut last of all */
	bar_at(out, sizeof out, "upload report.pdf", 25);
	assert_string_equal(out, "upload report.pdf  45%");
	bar_at(out, sizeof out, "download a-rather-long-file-name.bin", 20);
	assert_true(progress_columns(out) <= 20);
	assert_true(has(out, "..."));
	assert_true(has(out, " 45%"));
	bar_at(out, sizeof out, "upload report.pdf", 4);
	assert_string_equal(out, " 45%");
	bar_at(out, sizeof out, "upload report.pdf", 3);
	assert_string_equal(out, "");
}

static void bar_drops_in_order(void **state)
{
	/* Going narrower, a field once gone never comes back. */
	static const char *const fields[] = { " / ", "ETA", "[", "MiB ", "/s", ":" };
	char out[1024];
	bool gone[sizeof fields / sizeof fields[0]] = { false };
	(void)state;

	for (int w = 200; w >= 4; w--) {
		bar_at(out, sizeof out, "upload report.pdf", w);
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			bool now = !has(out, fields[i]);
			assert_false(gone[i] && !now);
			gone[i] = now;
			if (now) /* and everything less important went before it */
				for (size_t j = 0; j < i; j++)
					assert_true(gone[j]);
		}
	}
}

static void bar_long_names_and_unknowns(void **state)
{
	struct progress p;
	char out[256];
	(void)state;

	bar_at(out, sizeof out, "upload a-rather-long-file-name-that-goes-on.bin", 100);
	assert_true(has(out, "upload a-rather-long-...  45% ["));
	progress_init(&p, 0, 0, 0);
	progress_bar(out, sizeof out, &p, "x", 0, 80);
	assert_true(has(out, "x 100% ["));
	assert_true(has(out, "--/s  ETA --:--"));
	progress_bar(out, 8, &p, "upload report.pdf", 0, 80); /* a small buffer stays a string */
	assert_true(strlen(out) < 8);
}

static void units_are_binary(void **state)
{
	char out[64];
	(void)state;

	assert_string_equal(progress_bytes(out, sizeof out, 0), "0 B");
	assert_string_equal(progress_bytes(out, sizeof out, 1023), "1023 B");
	assert_string_equal(progress_bytes(out, sizeof out, 1024), "1.0 KiB");
	assert_string_equal(progress_bytes(out, sizeof out, 1536), "1.5 KiB");
	assert_string_equal(progress_bytes(out, sizeof out, 1024 * 1024 - 1), "1.0 MiB");
	assert_string_equal(progress_bytes(out, sizeof out, 3.0 * 1024 * MIB), "3.0 GiB");
	assert_string_equal(progress_bytes(out, sizeof out, 9.2e18), "8.0 EiB");
	assert_string_equal(progress_secs(out, sizeof out, 0.0031), "0.003 s");
	assert_string_equal(progress_secs(out, sizeof out, 2.14), "2.1 s");
	assert_string_equal(progress_secs(out, sizeof out, 3723), "1:02:03");
}

static void rewind_after_a_resize(void **state)
{
	char out[32];
	(void)state;

	assert_string_equal(progress_rewind(out, sizeof out, 0, 80), "");
	assert_string_equal(progress_rewind(out, sizeof out, 77, 80), "\r\x1b[K");
	assert_string_equal(progress_rewind(out, sizeof out, 80, 80), "\r\x1b[K");
	/* 77 columns reflowed at 40: two rows, the cursor on the second */
	assert_string_equal(progress_rewind(out, sizeof out, 77, 40), "\x1b[1A\r\x1b[J");
	assert_string_equal(progress_rewind(out, sizeof out, 197, 20), "\x1b[9A\r\x1b[J");
}

static void final_line_counts_the_same_way(void **state)
{
	char out[256];
	uint64_t at[] = { (uint64_t)(6.8 * MIB), (uint64_t)(8 * MIB) };
	struct progress_end e = { .size = (uint64_t)(10 * MIB),
		                  .moved = (uint64_t)(10 * MIB),
		                  .secs = 2.5,
		                  .verb = "sent" };
	(void)state;

	assert_string_equal(progress_final(out, sizeof out, &e),
	                    "10.0 MiB in 2.5 s (4.0 MiB/s, 33.55 Mbit/s)");
	/* a rerun that started at 6.8 MiB */
	e.moved = e.size - at[0];
	e.resumed = at;
	e.nresumed = 1;
	assert_string_equal(progress_final(out, sizeof out, &e),
	                    "10.0 MiB in 2.5 s, 3.2 MiB sent now (1.3 MiB/s, 10.74 Mbit/s), "
	                    "resumed at 6.8 MiB");
	/* an automatic resume at 8 MiB, on a run that began at 0 */
	e.moved = e.size;
	e.resumed = at + 1;
	e.verb = "received";
	assert_string_equal(progress_final(out, sizeof out, &e),
	                    "10.0 MiB in 2.5 s, 10.0 MiB received now (4.0 MiB/s, 33.55 Mbit/s), "
	                    "resumed at 8.0 MiB");
	e.resumed = at;
	e.nresumed = 2;
	assert_true(has(progress_final(out, sizeof out, &e), "resumed at 6.8 MiB, 8.0 MiB"));
	e.size = e.moved = 0;
	e.secs = 0;
	e.nresumed = 0;
	assert_string_equal(progress_final(out, sizeof out, &e), "0 B in 0.000 s (0 B/s, 0 bit/s)");
	progress_final(out, 10, &e); /* truncated, still a string */
	assert_true(strlen(out) < 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bar_fits_every_width),
		cmocka_unit_test(bar_at_200_and_80_has_everything),
		cmocka_unit_test(bar_at_62_shortens_first),
		cmocka_unit_test(bar_at_40_drops_the_bar),
		cmocka_unit_test(bar_at_20_keeps_name_and_percent),
		cmocka_unit_test(bar_drops_in_order),
		cmocka_unit_test(bar_long_names_and_unknowns),
		cmocka_unit_test(units_are_binary),
		cmocka_unit_test(rewind_after_a_resize),
		cmocka_unit_test(final_line_counts_the_same_way),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
