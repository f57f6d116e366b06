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

/* Opens an event whose data is a single line the caller appends next, and
 * closes it: the hot path writes JSON straight into the output this way (JSON
 * from json_out.h never holds a CR or LF, so it needs no splitting). id and
 * event as for sse_put_event. */
bool sse_open_line_event(struct buf *b, const char *id, const char *event);
bool sse_close_event(struct buf *b);

/* Appends a block holding only `id: <id>`: WHATWG parsers keep the id for
 * the next event; readers that only look at `data:` blocks skip it. */
bool sse_put_id_block(struct buf *b, const char *id);

/* Appends a comment line (`: text`) and a blank line: a heartbeat that every
 * SSE client ignores. text must not contain CR or LF. */
bool sse_put_comment(struct buf *b, const char *text);

#endif
