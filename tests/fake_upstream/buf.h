/* buf.h: growable byte buffers for input, output and formatting. */
#ifndef FAKE_UPSTREAM_BUF_H
#define FAKE_UPSTREAM_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* Live bytes are data[off, len); off only moves for output (sent bytes). */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 off;
	size_t	 cap;
};

#define OUT_MAX		(64u * 1024u * 1024u)	/* queued response bytes */
#define BUF_LIT(b, s)	buf_append((b), (s), sizeof(s) - 1)

/* Bytes not yet consumed. */
size_t	buf_live(const struct buf *b);

/* Makes room for extra more bytes without growing past max total.
 * Returns false on overflow or allocation failure (b unchanged). */
bool	buf_reserve_max(struct buf *b, size_t extra, size_t max);

/* Append p[0, n), a C string, or formatted text (at most OUT_MAX bytes in
 * all). Return false on OOM or overflow. */
bool	buf_append(struct buf *b, const void *p, size_t n);
bool	buf_appendz(struct buf *b, const char *s);
bool	buf_appendf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Removes the first n live bytes (input buffers: keeps data at offset 0). */
void	buf_drop_front(struct buf *b, size_t n);

/* Forgets the contents, keeps the storage. */
void	buf_reset(struct buf *b);

/* Frees the storage; b is empty and reusable afterwards. */
void	buf_free(struct buf *b);

/* Hands the bytes to the caller (who frees them) as a NUL-terminated
 * string of *len bytes; b is emptied. NULL on OOM (b unchanged). */
char	*buf_steal(struct buf *b, size_t *len);

#endif
