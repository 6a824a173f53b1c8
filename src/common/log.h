/* log.h - timestamped log lines on stderr, with a verbosity threshold. */
#ifndef BOTTLE_LOG_H
#define BOTTLE_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Lines above this level are dropped; -q lowers it, -v raises it. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Prefix each line with "name: " instead of a timestamp (the client does). */
void log_set_ident(const char *ident);

/* Writes out lines still buffered. The server buffers stderr and calls this
 * before its loop sleeps: one write a loop turn, not one a line. */
void log_flush(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Startup failures: print "ident: message" (with strerror(errno) for fatal) and exit(status). */
_Noreturn void fatal(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void fatalx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
