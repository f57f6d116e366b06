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

/* opts is the route's own data for its dialect (see each declaration). */
struct dialect {
	const char *name;
	bool (*start)(struct buf *out, const struct chat_stream_info *info, const void *opts);
	bool (*delta)(struct buf *out, const struct chat_stream_info *info, const void *opts,
	    const char *text, size_t len);
	bool (*end)(struct buf *out, const struct chat_stream_info *info, const void *opts,
	    const struct chat_outcome *o);
};

/* Seed 000: `data: {"type":"start"|"content"|"done"|"error",...}` with ids.
 * opts: const struct dialect_seed000_opts *. The seed's own readers split
 * each read on blank lines and JSON.parse whatever follows `data: `, so on
 * the POST stream every id travels in a block of its own just before its
 * event (WHATWG parsers keep the id for the next event); EventSource-style
 * GET resumes use the ordinary `id:` + `data:` block. */
struct dialect_seed000_opts {
	bool id_in_own_block;
};
extern const struct dialect dialect_seed000;

/* Seed 002: named events start, chunk (chunk_index, is_final), end, error.
 * opts: the conversation id the client knows (const char *). */
extern const struct dialect dialect_seed002;

/* Seed 003: `data: {"content","sessionId"}`, `data: {"done":true,...}`,
 * `data: {"error"}`. opts: the sessionId the client knows (const char *). */
extern const struct dialect dialect_seed003;

/* OpenAI chat.completion.chunk stream ending in `data: [DONE]`.
 * opts: const struct dialect_openai_opts *. */
struct dialect_openai_opts {
	bool include_usage;     /* the client asked stream_options.include_usage */
};
extern const struct dialect dialect_openai;

/* Writes the SSE id of an event: "<reply id>:<seq>" (resumable position). */
bool dialect_event_id(char *out, size_t len, const struct chat_stream_info *info);

#endif
