/* sse_scan.h: an incremental Server-Sent Events scanner for the load tool.
 *
 * Written for the tool rather than shared with the server, so that a bug in
 * chatd's own SSE code cannot hide itself in the measurements. Bytes may be
 * split anywhere (inside a line, between CR and LF); lines end in LF, CRLF
 * or CR; `:` lines are comments; `data:` lines accumulate and a blank line
 * dispatches the event. Lines and events are bounded. */
#ifndef LOAD_SSE_SCAN_H
#define LOAD_SSE_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_SCAN_EVENT_MAX 32

/* Called once per dispatched event: event is "" when no `event:` line came,
 * data (NUL-terminated, without the final newline) is borrowed until the
 * callback returns. Return false to stop scanning. */
typedef bool (*sse_scan_event_fn)(void *ctx, const char *event, const char *data, size_t len);

/* Called once per comment line (heartbeats such as `: ping`). */
typedef void (*sse_scan_comment_fn)(void *ctx);

struct sse_scan {
	char                *line;       /* owned: the current unterminated line */
	size_t               line_len;
	size_t               line_alloc;
	char                *data;       /* owned: the data lines of the event */
	size_t               data_len;
	size_t               data_alloc;
	size_t               max;        /* longest line or event, in bytes */
	char                 event[SSE_SCAN_EVENT_MAX];
	bool                 has_data;
	bool                 after_cr;   /* last byte was CR: skip one LF */
	sse_scan_event_fn    on_event;
	sse_scan_comment_fn  on_comment; /* may be NULL */
	void                *ctx;
};

/* Prepares s. Allocates nothing until a line has to be buffered. */
void sse_scan_init(struct sse_scan *s, size_t max, sse_scan_event_fn on_event,
    sse_scan_comment_fn on_comment, void *ctx);

/* Frees the buffers; s may be initialised again. NULL-safe. */
void sse_scan_free(struct sse_scan *s);

/* Forgets any partial line or event (a new response), keeps the buffers. */
void sse_scan_reset(struct sse_scan *s);

/* Scans n bytes. Returns false when a line or an event exceeds max, memory
 * runs out, or a callback asked to stop; the scanner is then unusable until
 * reset. */
bool sse_scan_feed(struct sse_scan *s, const char *p, size_t n);

#endif
