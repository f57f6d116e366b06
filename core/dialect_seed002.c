/* dialect_seed002.c: seed 002's named SSE events (start, chunk, end, error).
 * opts is the conversation id the client knows. */
#include "dialect.h"

#include "json_out.h"
#include "sse.h"

/* Opens a named event with its id. */
static bool
seed002_open(struct buf *out, const struct chat_stream_info *info, const char *name)
{
	char id[96];

	return dialect_event_id(id, sizeof(id), info) && sse_open_line_event(out, id, name);
}

static bool
seed002_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	return seed002_open(out, info, "start") &&
	    buf_appendz(out, "{\"conversation_id\":") && json_put_stringz(out, opts) &&
	    buf_appendz(out, ",\"status\":\"processing\"}") && sse_close_event(out);
}

static bool
seed002_chunk(struct buf *out, const struct chat_stream_info *info, const char *text, size_t len,
    bool is_final)
{
	return seed002_open(out, info, "chunk") &&
	    buf_appendz(out, "{\"type\":\"content\",\"content\":") &&
	    json_put_string(out, text, len) &&
	    buf_printf(out, ",\"chunk_index\":%lu,\"is_final\":%s}", info->chunk_index,
	        is_final ? "true" : "false") &&
	    sse_close_event(out);
}

static bool
seed002_delta(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const char *text, size_t len)
{
	(void)opts;
	return seed002_chunk(out, info, text, len, false);
}

/* A successful end is an empty final chunk (is_final: true) and `end`: the
 * last delta cannot know it is the last. */
static bool
seed002_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	if (chat_outcome_is_done(o))
		return seed002_chunk(out, info, "", 0, true) && seed002_open(out, info, "end") &&
		    buf_appendz(out, "{\"conversation_id\":") && json_put_stringz(out, opts) &&
		    buf_appendz(out, ",\"status\":") &&
		    json_put_stringz(out, o->status == REPLY_COMPLETE ? "completed"
		        : reply_status_name(o->status)) &&
		    buf_appendz(out, ",\"message_count\":1}") && sse_close_event(out);
	return seed002_open(out, info, "error") &&
	    buf_appendz(out, "{\"error\":") && json_put_stringz(out, o->error_message) &&
	    buf_appendz(out, ",\"code\":") && json_put_stringz(out, o->error_code) &&
	    buf_appendz(out, ",\"conversation_id\":") && json_put_stringz(out, opts) &&
	    buf_appendz(out, ",\"status\":\"error\"}") && sse_close_event(out);
}

const struct dialect dialect_seed002 = {
	.name = "seed002",
	.start = seed002_start,
	.delta = seed002_delta,
	.end = seed002_end,
};
