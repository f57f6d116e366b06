/* dialect_seed000.c: the seed-000 stream (`data: {"type": ...}` events). */
#include "dialect.h"

#include <stdio.h>

#include "json_out.h"
#include "sse.h"

bool
dialect_event_id(char *out, size_t len, const struct chat_stream_info *info)
{
	int n = snprintf(out, len, "%s:%lu", info->reply_id, info->seq);

	return n > 0 && (size_t)n < len;
}

/* Opens the event with its id: in a block of its own on the POST stream
 * (see dialect.h), on the event itself otherwise. */
static bool
seed000_open(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	const struct dialect_seed000_opts *o = opts;
	char id[96];

	if (!dialect_event_id(id, sizeof(id), info))
		return false;
	if (o != NULL && o->id_in_own_block)
		return sse_put_id_block(out, id) && sse_open_line_event(out, NULL, NULL);
	return sse_open_line_event(out, id, NULL);
}

static bool
seed000_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	return seed000_open(out, info, opts) &&
	    buf_appendz(out, "{\"type\":\"start\",\"session_id\":") &&
	    json_put_stringz(out, info->session_id) &&
	    buf_appendz(out, ",\"message_id\":") && json_put_stringz(out, info->reply_id) &&
	    buf_appendc(out, '}') && sse_close_event(out);
}

static bool
seed000_delta(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const char *text, size_t len)
{
	return seed000_open(out, info, opts) &&
	    buf_appendz(out, "{\"type\":\"content\",\"content\":") &&
	    json_put_string(out, text, len) && buf_appendc(out, '}') && sse_close_event(out);
}

static bool
seed000_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	if (!seed000_open(out, info, opts))
		return false;
	if (chat_outcome_is_done(o))
		return buf_appendz(out, "{\"type\":\"done\",\"message_id\":") &&
		    json_put_stringz(out, info->reply_id) &&
		    buf_appendz(out, ",\"full_content\":") &&
		    json_put_string(out, info->content, info->content_len) &&
		    buf_appendz(out, ",\"status\":") && json_put_stringz(out, reply_status_name(o->status)) &&
		    buf_appendc(out, '}') && sse_close_event(out);
	return buf_appendz(out, "{\"type\":\"error\",\"error\":") &&
	    json_put_stringz(out, o->error_message) &&
	    buf_appendz(out, ",\"code\":") && json_put_stringz(out, o->error_code) &&
	    buf_appendz(out, ",\"message_id\":") && json_put_stringz(out, info->reply_id) &&
	    buf_appendz(out, ",\"status\":") && json_put_stringz(out, reply_status_name(o->status)) &&
	    buf_appendc(out, '}') && sse_close_event(out);
}

const struct dialect dialect_seed000 = {
	.name = "seed000",
	.start = seed000_start,
	.delta = seed000_delta,
	.end = seed000_end,
};
