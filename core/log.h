/* log.h: leveled, line-oriented logging shared by every process.
 *
 * Each call emits exactly one line with a single write(2), so lines from
 * concurrent threads and forked workers never interleave. Lines are logfmt:
 * `ts=... level=... pid=... msg="..."` followed by the caller's fields.
 * Nothing secret may be passed in: callers log ids, never tokens or keys. */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Opens path for appending (NULL or "" or "-": stderr) and sets the level.
 * Returns false if the file cannot be opened; logging then goes to stderr. */
bool log_open(const char *path, enum log_level level);

/* Parses "error", "warn", "info", "debug". Returns false if unknown. */
bool log_level_parse(const char *s, enum log_level *out);

/* True if messages at this level are written (use to skip costly formatting). */
bool log_enabled(enum log_level level);

/* Writes one line: fmt is the human message; keep it short. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Writes one line of raw logfmt fields (the caller formats `k=v k=v`). */
void log_fields(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
