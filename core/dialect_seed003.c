/* dialect_seed003.c: seed 003's `data: {"content","sessionId"}` stream.
 * opts is the sessionId the client knows. */
#include "dialect.h"

#include "json_out.h"
#include "sse.h"

static bool
seed003_open(struct buf *out, const struct chat_stream_info *info)
{
	char id[96];

	return dialect_event_id(id, sizeof(id), info) && sse_open_line_event(out, id, NULL);
}

/* Seed 003 has no start event; the stream opens with the first delta. */
static bool
seed003_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	(void)out;
	(void)info;
	(void)opts;
	return true;
}

static bool
seed003_delta(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const char *text, size_t len)
{
	return seed003_open(out, info) &&
	    buf_appendz(out, "{\"content\":") && json_put_string(out, text, len) &&
	    buf_appendz(out, ",\"sessionId\":") && json_put_stringz(out, opts) &&
	    buf_appendc(out, '}') && sse_close_event(out);
}

static bool
seed003_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	if (!seed003_open(out, info))
		return false;
	if (chat_outcome_is_done(o))
		return buf_appendz(out, "{\"done\":true,\"sessionId\":") && json_put_stringz(out, opts) &&
		    buf_appendz(out, ",\"status\":") && json_put_stringz(out, reply_status_name(o->status)) &&
		    buf_appendc(out, '}') && sse_close_event(out);
	return buf_appendz(out, "{\"error\":") && json_put_stringz(out, o->error_message) &&
	    buf_appendz(out, ",\"code\":") && json_put_stringz(out, o->error_code) &&
	    buf_appendz(out, ",\"sessionId\":") && json_put_stringz(out, opts) &&
	    buf_appendc(out, '}') && sse_close_event(out);
}

const struct dialect dialect_seed003 = {
	.name = "seed003",
	.start = seed003_start,
	.delta = seed003_delta,
	.end = seed003_end,
};
