/* timefmt.h - RFC 3339 timestamps in local time, with milliseconds and UTC offset. */
#ifndef BOTTLE_TIMEFMT_H
#define BOTTLE_TIMEFMT_H

#include <stddef.h>
#include <time.h>

/* Big enough for "2026-11-22T13:22:05.123+03:00" and a terminating NUL. */
#define TIMEFMT_RFC3339_LEN 40

/* Formats ts (wall-clock time) in the local time zone; returns the length. */
size_t timefmt_rfc3339(char out[TIMEFMT_RFC3339_LEN], const struct timespec *ts);
/* The same for the current time. */
size_t timefmt_now(char out[TIMEFMT_RFC3339_LEN]);

#endif
