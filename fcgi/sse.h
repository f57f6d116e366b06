/* sse.h: Server-Sent Events framing (WHATWG), outbound.
 *
 * An event is written into a buffer as a whole, so the caller can hand it to
 * the transport in one write and flush: clients that split reads on blank
 * lines never see half an event. */
#ifndef CHAT_SSE_H
#define CHAT_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Appends one event: optional `id:` and `event:` lines (NULL to omit; they
 * must not contain CR or LF, else false), then one `data:` line per line of
 * data, then the blank line. */
bool sse_put_event(struct buf *b, const char *id, const char *event,
    const char *data, size_t n);

/* Appends a comment line (`: text`) and a blank line: a heartbeat that every
 * SSE client ignores. text must not contain CR or LF. */
bool sse_put_comment(struct buf *b, const char *text);

#endif
