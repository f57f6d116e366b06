/* buf.c: growable byte buffers for input, output and formatting. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

size_t
buf_live(const struct buf *b)
{
	return b->len - b->off;
}

bool
buf_reserve_max(struct buf *b, size_t extra, size_t max)
{
	size_t need, ncap;
	char *p;

	if (b->cap - b->len >= extra)
		return true;
	if (b->off > 0) {
		/* Reclaim the consumed front before growing. */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= extra)
			return true;
	}
	if (extra > max || b->len > max - extra)
		return false;
	need = b->len + extra;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	if ((p = realloc(b->data, ncap)) == NULL)
		return false;
	b->data = p;
	b->cap = ncap;
	return true;
}

bool
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return true;
	if (!buf_reserve_max(b, n, OUT_MAX))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

bool
buf_appendz(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

bool
buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n, pass;

	for (pass = 0; pass < 2; pass++) {
		room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return false;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return true;
		}
		if (!buf_reserve_max(b, (size_t)n + 1, OUT_MAX))
			return false;
	}
	return false;
}

void
buf_drop_front(struct buf *b, size_t n)
{
	if (n >= buf_live(b)) {
		b->len = b->off = 0;
		return;
	}
	memmove(b->data, b->data + b->off + n, buf_live(b) - n);
	b->len = buf_live(b) - n;
	b->off = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = b->off = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

char *
buf_steal(struct buf *b, size_t *len)
{
	char *s;

	if (b->off > 0)
		buf_drop_front(b, 0);
	if (!buf_reserve_max(b, 1, OUT_MAX + 1))
		return NULL;
	b->data[b->len] = '\0';
	s = b->data;
	*len = b->len;
	memset(b, 0, sizeof(*b));
	return s;
}
