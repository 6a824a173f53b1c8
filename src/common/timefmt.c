/* timefmt.c - RFC 3339 formatting for TIME replies and log lines. */
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>

size_t timefmt_rfc3339(char out[TIMEFMT_RFC3339_LEN], const struct timespec *ts)
{
	struct tm tm;
	time_t secs = ts->tv_sec;

	if (!localtime_r(&secs, &tm)) {
		out[0] = '\0';
		return 0;
	}
	long off = tm.tm_gmtoff; /* seconds east of UTC */
	char sign = off < 0 ? '-' : '+';
	off = labs(off);
	int n = snprintf(out, TIMEFMT_RFC3339_LEN,
	                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ld%c%02ld:%02ld", tm.tm_year + 1900,
	                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	                 ts->tv_nsec / 1000000L, sign, off / 3600, (off / 60) % 60);
	return n < 0 ? 0 : (size_t)n;
}

size_t timefmt_now(char out[TIMEFMT_RFC3339_LEN])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return timefmt_rfc3339(out, &ts);
}
