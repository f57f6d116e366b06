/* log.c: one write(2) per line, logfmt, to stderr or an append-only file. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static enum log_level log_threshold = LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

bool
log_open(const char *path, enum log_level level)
{
	int fd;

	log_threshold = level;
	if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0)
		return true;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		log_msg(LOG_ERROR, "cannot open log file %s: %s", path, strerror(errno));
		return false;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return true;
}

bool
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	return false;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

/* Formats the common prefix into line; returns its length. */
static size_t
log_prefix(char *line, size_t size, enum log_level level)
{
	struct timeval tv;
	struct tm tm;
	int n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, size, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s pid=%ld ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000), level_names[level], (long)getpid());
	return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

static void
log_write_line(char *line, size_t len, size_t size)
{
	ssize_t w;

	if (len >= size - 1)
		len = size - 2;  /* truncated: keep room for the newline */
	line[len++] = '\n';
	do
		w = write(log_fd, line, len);
	while (w == -1 && errno == EINTR);
}

/* Appends a quoted, escaped message so one log line stays one line. */
static size_t
log_quote(char *line, size_t len, size_t size, const char *msg)
{
	if (len + 6 >= size)
		return len;
	memcpy(line + len, "msg=\"", 5);
	len += 5;
	for (const char *p = msg; *p != '\0' && len + 4 < size; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			line[len++] = '\\';
			line[len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			line[len++] = ' ';
		} else
			line[len++] = (char)c;
	}
	line[len++] = '"';
	return len;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048], msg[1536];
	va_list ap;
	size_t len;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);  /* truncation is acceptable */
	va_end(ap);
	len = log_prefix(line, sizeof(line), level);
	len = log_quote(line, len, sizeof(line), msg);
	log_write_line(line, len, sizeof(line));
}

void
log_fields(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	size_t len;
	int n;

	if (!log_enabled(level))
		return;
	len = log_prefix(line, sizeof(line), level);
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	log_write_line(line, len, sizeof(line));
}
