/* dialect_seed002.c: seed 002's named SSE events (start, chunk, end, error). */
#include "dialect.h"

#include "json_out.h"
#include "sse.h"

/* One named event with an id, built in a scratch buffer. */
static bool
seed002_event(struct buf *out, const struct chat_stream_info *info, const char *name,
    struct buf *json)
{
	char id[96];

	return dialect_event_id(id, sizeof(id), info) &&
	    sse_put_event(out, id, name, json->data, json->len);
}

static bool
seed002_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	struct buf j;
	bool ok;

	buf_init(&j, 1024);
	ok = buf_appendz(&j, "{\"conversation_id\":") && json_put_stringz(&j, opts) &&
	    buf_appendz(&j, ",\"status\":\"processing\"}") &&
	    seed002_event(out, info, "start", &j);
	buf_free(&j);
	return ok;
}

static bool
seed002_chunk(struct buf *out, const struct chat_stream_info *info, const char *text, size_t len,
    bool is_final)
{
	struct buf j;
	bool ok;

	buf_init(&j, len * 6 + 128);
	ok = buf_appendz(&j, "{\"type\":\"content\",\"content\":") &&
	    json_put_string(&j, text, len) &&
	    buf_printf(&j, ",\"chunk_index\":%lu,\"is_final\":%s}", info->chunk_index,
	        is_final ? "true" : "false") &&
	    seed002_event(out, info, "chunk", &j);
	buf_free(&j);
	return ok;
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
	struct buf j;
	bool ok;

	buf_init(&j, 1024);
	if (chat_outcome_is_done(o))
		ok = seed002_chunk(out, info, "", 0, true) &&
		    buf_appendz(&j, "{\"conversation_id\":") && json_put_stringz(&j, opts) &&
		    buf_appendz(&j, ",\"status\":") &&
		    json_put_stringz(&j, o->status[1] == 'o' ? "completed" : o->status) &&
		    buf_appendz(&j, ",\"message_count\":1}") &&
		    seed002_event(out, info, "end", &j);
	else
		ok = buf_appendz(&j, "{\"error\":") && json_put_stringz(&j, o->error_message) &&
		    buf_appendz(&j, ",\"code\":") && json_put_stringz(&j, o->error_code) &&
		    buf_appendz(&j, ",\"conversation_id\":") && json_put_stringz(&j, opts) &&
		    buf_appendz(&j, ",\"status\":\"error\"}") &&
		    seed002_event(out, info, "error", &j);
	buf_free(&j);
	return ok;
}

const struct dialect dialect_seed002 = {
	.name = "seed002",
	.start = seed002_start,
	.delta = seed002_delta,
	.end = seed002_end,
};
