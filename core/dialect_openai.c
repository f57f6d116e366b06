/* dialect_openai.c: OpenAI's chat.completion.chunk stream, for the official
 * SDKs: a role chunk, content chunks, a finish chunk, the usage chunk when
 * asked for, then `data: [DONE]`. Errors are `data: {"error":{...}}`. */
#include "dialect.h"

#include <string.h>

#include "json_out.h"
#include "sse.h"

/* Opens a chunk event with the fields every chunk starts with. */
static bool
openai_open(struct buf *out, const struct chat_stream_info *info)
{
	return sse_open_line_event(out, NULL, NULL) &&
	    buf_appendz(out, "{\"id\":\"chatcmpl-") && buf_appendz(out, info->reply_id) &&
	    buf_printf(out, "\",\"object\":\"chat.completion.chunk\",\"created\":%ld,\"model\":",
	        info->created) &&
	    json_put_stringz(out, info->model != NULL ? info->model : "");
}

static bool
openai_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	(void)opts;
	return openai_open(out, info) &&
	    buf_appendz(out, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	        "\"logprobs\":null,\"finish_reason\":null}]}") && sse_close_event(out);
}

static bool
openai_delta(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const char *text, size_t len)
{
	(void)opts;
	return openai_open(out, info) &&
	    buf_appendz(out, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":") &&
	    json_put_string(out, text, len) &&
	    buf_appendz(out, "},\"logprobs\":null,\"finish_reason\":null}]}") && sse_close_event(out);
}

static bool
openai_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	const struct dialect_openai_opts *oo = opts;
	const char *finish = o->finish_reason != NULL && o->finish_reason[0] ? o->finish_reason : "stop";
	long pt = o->prompt_tokens > 0 ? o->prompt_tokens : 0;
	long ct = o->completion_tokens > 0 ? o->completion_tokens : 0;

	if (!chat_outcome_is_done(o))
		return sse_open_line_event(out, NULL, NULL) &&
		    buf_appendz(out, "{\"error\":{\"message\":") && json_put_stringz(out, o->error_message) &&
		    buf_appendz(out, ",\"type\":\"server_error\",\"param\":null,\"code\":") &&
		    json_put_stringz(out, o->error_code) && buf_appendz(out, "}}") && sse_close_event(out);
	if (!(openai_open(out, info) &&
	    buf_appendz(out, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":") &&
	    json_put_stringz(out, o->status == REPLY_CANCELLED ? "stop" : finish) &&
	    buf_appendz(out, "}]}") && sse_close_event(out)))
		return false;
	if (oo != NULL && oo->include_usage &&
	    !(openai_open(out, info) &&
	    buf_printf(out, ",\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,"
	        "\"completion_tokens\":%ld,\"total_tokens\":%ld}}", pt, ct, pt + ct) &&
	    sse_close_event(out)))
		return false;
	return sse_put_event(out, NULL, NULL, "[DONE]", 6);
}

const struct dialect dialect_openai = {
	.name = "openai",
	.start = openai_start,
	.delta = openai_delta,
	.end = openai_end,
};
