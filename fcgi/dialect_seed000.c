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

/* Wraps the JSON as one SSE event with its id. */
static bool
seed000_frame(struct buf *out, struct buf *json, const struct chat_stream_info *info,
    const void *opts)
{
	const struct dialect_seed000_opts *o = opts;
	char id[96];

	if (!dialect_event_id(id, sizeof(id), info))
		return false;
	if (o != NULL && o->id_in_own_block)
		return buf_appendz(out, "id: ") && buf_appendz(out, id) && buf_append(out, "\n\n", 2) &&
		    sse_put_event(out, NULL, NULL, json->data, json->len);
	return sse_put_event(out, id, NULL, json->data, json->len);
}

static bool
seed000_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	struct buf j;
	bool ok;

	buf_init(&j, 1024);
	ok = buf_appendz(&j, "{\"type\":\"start\",\"session_id\":") &&
	    json_put_stringz(&j, info->session_id) &&
	    buf_appendz(&j, ",\"message_id\":") && json_put_stringz(&j, info->reply_id) &&
	    buf_appendc(&j, '}') && seed000_frame(out, &j, info, opts);
	buf_free(&j);
	return ok;
}

static bool
seed000_delta(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const char *text, size_t len)
{
	struct buf j;
	bool ok;

	buf_init(&j, len * 6 + 64);
	ok = buf_appendz(&j, "{\"type\":\"content\",\"content\":") &&
	    json_put_string(&j, text, len) && buf_appendc(&j, '}') &&
	    seed000_frame(out, &j, info, opts);
	buf_free(&j);
	return ok;
}

static bool
seed000_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	struct buf j;
	bool ok;

	buf_init(&j, info->content_len * 6 + 1024);
	if (chat_outcome_is_done(o))
		ok = buf_appendz(&j, "{\"type\":\"done\",\"message_id\":") &&
		    json_put_stringz(&j, info->reply_id) &&
		    buf_appendz(&j, ",\"full_content\":") &&
		    json_put_string(&j, info->content, info->content_len) &&
		    buf_appendz(&j, ",\"status\":") && json_put_stringz(&j, o->status) &&
		    buf_appendc(&j, '}');
	else
		ok = buf_appendz(&j, "{\"type\":\"error\",\"error\":") &&
		    json_put_stringz(&j, o->error_message) &&
		    buf_appendz(&j, ",\"code\":") && json_put_stringz(&j, o->error_code) &&
		    buf_appendz(&j, ",\"message_id\":") && json_put_stringz(&j, info->reply_id) &&
		    buf_appendz(&j, ",\"status\":") && json_put_stringz(&j, o->status) &&
		    buf_appendc(&j, '}');
	ok = ok && seed000_frame(out, &j, info, opts);
	buf_free(&j);
	return ok;
}

const struct dialect dialect_seed000 = {
	.name = "seed000",
	.start = seed000_start,
	.delta = seed000_delta,
	.end = seed000_end,
};
