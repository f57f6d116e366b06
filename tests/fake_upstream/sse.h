/* sse.h: SSE events of a chat stream and their framing: chunked encoding, [[split]] pieces. */
#ifndef FAKE_UPSTREAM_SSE_H
#define FAKE_UPSTREAM_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct conn;

/* Each queues one event on c's stream: a ": ping" comment; a chunk with the
 * given delta (delta_open, tok JSON-escaped, delta_close) and finish_reason
 * (NULL: null); token k of the reply; the usage chunk; the mid-stream error;
 * "[DONE]". Return false on OOM. */
bool	sse_comment(struct conn *c);
bool	sse_choice(struct conn *c, const char *delta_open, const char *tok,
    size_t tok_len, const char *delta_close, const char *finish,
    bool obfuscation);
bool	sse_token(struct conn *c, size_t k);
bool	sse_usage(struct conn *c);
bool	sse_error(struct conn *c);
bool	sse_done(struct conn *c);

/* Appends p as one chunked-encoding chunk (raw for HTTP/1.0). */
bool	sse_chunk_append(struct buf *out, bool chunked, const char *p, size_t n);

/* Sends pending split pieces, each as its own chunk and send() call. With a
 * gap only one piece goes per call. Returns false if c must be destroyed. */
bool	sse_pump(struct conn *c);

/* Frees the formatting buffer (at exit). */
void	sse_free(void);

#endif
