/* dialect.h: wire formats of a streamed reply, one small encoder each.
 *
 * A dialect turns the engine's events into bytes (whole SSE events). It is
 * plugged into the engine through sink_sse.c; adding one touches no engine
 * code. Each function appends to out and returns false only if out is full. */
#ifndef CHAT_DIALECT_H
#define CHAT_DIALECT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "engine.h"

struct dialect {
	const char *name;
	bool (*start)(struct buf *out, const struct chat_stream_info *info);
	bool (*delta)(struct buf *out, const struct chat_stream_info *info, const char *text, size_t len);
	bool (*end)(struct buf *out, const struct chat_stream_info *info, const struct chat_outcome *o);
};

/* Seed 000: `data: {"type":"start"|"content"|"done"|"error",...}` with ids. */
extern const struct dialect dialect_seed000;

/* Writes the SSE id of an event: "<reply id>:<seq>" (resumable position). */
bool dialect_event_id(char *out, size_t len, const struct chat_stream_info *info);

#endif
