/* sse_reader.h: incremental Server-Sent Events decoder (inbound).
 *
 * Bytes may arrive split anywhere: inside a line, between CR and LF, inside a
 * multi-byte character. Lines end in LF, CR or CRLF; `:` lines are comments;
 * `data:` lines accumulate; a blank line dispatches the event. Lines and
 * events are bounded: a peer exceeding the bound gets an error, not memory. */
#ifndef CHAT_SSE_READER_H
#define CHAT_SSE_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SSE_EVENT_NAME_MAX 64

/* Called once per dispatched event. event is "" when no `event:` line was
 * given; data is NUL-terminated. Return 0 to go on, nonzero to stop parsing
 * (sse_reader_feed then returns that value). */
typedef int (*sse_event_fn)(void *ctx, const char *event, const char *data, size_t len);

struct sse_reader {
	struct buf    line;        /* the current, unterminated line */
	struct buf    data;        /* data lines of the current event */
	char          event[SSE_EVENT_NAME_MAX];
	bool          has_data;
	bool          after_cr;    /* the last byte was CR: a following LF is part of it */
	sse_event_fn  on_event;
	void         *ctx;
};

/* Prepares r; lines and events longer than max bytes are errors. */
void sse_reader_init(struct sse_reader *r, size_t max, sse_event_fn on_event, void *ctx);

/* Frees the buffers; r may be initialised again. */
void sse_reader_free(struct sse_reader *r);

/* Discards any partial state (for a new response). */
void sse_reader_reset(struct sse_reader *r);

/* Feeds n bytes. Returns 0, -1 when a line or event exceeds max, or the
 * nonzero value a callback returned. */
int sse_reader_feed(struct sse_reader *r, const char *p, size_t n);

/* End of input: a pending event is dispatched as if a blank line followed
 * (lenient, for servers that close right after `data: [DONE]`). */
int sse_reader_finish(struct sse_reader *r);

#endif
