/* buf.h: a growable byte buffer with a hard size limit.
 *
 * Every buffer that holds client- or upstream-controlled bytes has a maximum,
 * so a hostile peer can make an append fail but never make memory grow without
 * bound. The data is always NUL-terminated for convenience; lengths are
 * authoritative (the bytes may contain NULs). */
#ifndef CHAT_BUF_H
#define CHAT_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char   *data;   /* owned; NULL until the first append */
	size_t  len;    /* bytes in use, excluding the trailing NUL */
	size_t  cap;    /* bytes allocated */
	size_t  max;    /* appends beyond this many bytes fail */
};

/* Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t max);

/* Frees the storage; the buffer is empty and reusable afterwards. NULL-safe. */
void buf_free(struct buf *b);

/* Forgets the contents but keeps the storage for reuse. */
void buf_reset(struct buf *b);

/* Appends n bytes. Returns false (buffer unchanged) on allocation failure or
 * when the result would exceed max. */
bool buf_append(struct buf *b, const void *p, size_t n);
bool buf_appendz(struct buf *b, const char *s);
bool buf_appendc(struct buf *b, char c);
bool buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Transfers the storage to the caller (free() it); the buffer becomes empty.
 * Returns an empty allocated string when nothing was appended, NULL only on
 * allocation failure. */
char *buf_steal(struct buf *b);

#endif
