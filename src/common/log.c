/* log.c - one line per event on stderr. The level and ident are process-wide
 * settings made once at startup; they are the only state here. */
#include "log.h"
#include "timefmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level log_level = LOG_INFO;
static const char *log_ident = "bottled";
static int log_plain; /* client: "ident: msg", no timestamp */

void log_set_level(enum log_level level) { log_level = level; }
enum log_level log_get_level(void) { return log_level; }

void log_set_ident(const char *ident)
{
	log_ident = ident;
	log_plain = 1;
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_ERROR: return "error: ";
	case LOG_WARN: return "warning: ";
	default: return "";
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	int saved = errno;
	char line[4096], ts[TIMEFMT_RFC3339_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (log_plain) {
		fprintf(stderr, "%s: %s%s\n", log_ident, level_name(level), line);
	} else {
		timefmt_now(ts);
		fprintf(stderr, "%s %s%s\n", ts, level_name(level), line);
	}
	errno = saved;
}

void log_flush(void) { (void)fflush(stderr); }

/* The line of fatal and fatalx; errno is read before anything can change it. */
static void vfatal_line(int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	char line[2048];

	vsnprintf(line, sizeof line, fmt, ap);
	if (with_errno)
		fprintf(stderr, "%s: %s: %s\n", log_ident, line, strerror(saved));
	else
		fprintf(stderr, "%s: %s\n", log_ident, line);
}

void fatal(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfatal_line(1, fmt, ap);
	va_end(ap);
	exit(status);
}

void fatalx(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfatal_line(0, fmt, ap);
	va_end(ap);
	exit(status);
}
