/* dialect_seed003.c: seed 003's `data: {"content","sessionId"}` stream. */
#include "dialect.h"

#include "json_out.h"
#include "sse.h"

static bool
seed003_frame(struct buf *out, const struct chat_stream_info *info, struct buf *json)
{
	char id[96];

	return dialect_event_id(id, sizeof(id), info) &&
	    sse_put_event(out, id, NULL, json->data, json->len);
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
	struct buf j;
	bool ok;

	buf_init(&j, len * 6 + 256);
	ok = buf_appendz(&j, "{\"content\":") && json_put_string(&j, text, len) &&
	    buf_appendz(&j, ",\"sessionId\":") && json_put_stringz(&j, opts) &&
	    buf_appendc(&j, '}') && seed003_frame(out, info, &j);
	buf_free(&j);
	return ok;
}

static bool
seed003_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	struct buf j;
	bool ok;

	buf_init(&j, 1024);
	if (chat_outcome_is_done(o))
		ok = buf_appendz(&j, "{\"done\":true,\"sessionId\":") && json_put_stringz(&j, opts) &&
		    buf_appendz(&j, ",\"status\":") && json_put_stringz(&j, o->status) &&
		    buf_appendc(&j, '}');
	else
		ok = buf_appendz(&j, "{\"error\":") && json_put_stringz(&j, o->error_message) &&
		    buf_appendz(&j, ",\"code\":") && json_put_stringz(&j, o->error_code) &&
		    buf_appendz(&j, ",\"sessionId\":") && json_put_stringz(&j, opts) &&
		    buf_appendc(&j, '}');
	ok = ok && seed003_frame(out, info, &j);
	buf_free(&j);
	return ok;
}

const struct dialect dialect_seed003 = {
	.name = "seed003",
	.start = seed003_start,
	.delta = seed003_delta,
	.end = seed003_end,
};
