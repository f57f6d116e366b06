/* dialect_openai.c: OpenAI's chat.completion.chunk stream, for the official
 * SDKs: a role chunk, content chunks, a finish chunk, the usage chunk when
 * asked for, then `data: [DONE]`. Errors are `data: {"error":{...}}`. */
#include "dialect.h"

#include <string.h>

#include "json_out.h"
#include "sse.h"

/* The fields every chunk starts with. */
static bool
openai_head(struct buf *j, const struct chat_stream_info *info)
{
	return buf_appendz(j, "{\"id\":\"chatcmpl-") && buf_appendz(j, info->reply_id) &&
	    buf_printf(j, "\",\"object\":\"chat.completion.chunk\",\"created\":%ld,\"model\":",
	        info->created) &&
	    json_put_stringz(j, info->model != NULL ? info->model : "");
}

static bool
openai_emit(struct buf *out, struct buf *j)
{
	return sse_put_event(out, NULL, NULL, j->data, j->len);
}

static bool
openai_start(struct buf *out, const struct chat_stream_info *info, const void *opts)
{
	struct buf j;
	bool ok;

	(void)opts;
	buf_init(&j, 1024);
	ok = openai_head(&j, info) &&
	    buf_appendz(&j, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	        "\"logprobs\":null,\"finish_reason\":null}]}") &&
	    openai_emit(out, &j);
	buf_free(&j);
	return ok;
}

static bool
openai_delta(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const char *text, size_t len)
{
	struct buf j;
	bool ok;

	(void)opts;
	buf_init(&j, len * 6 + 512);
	ok = openai_head(&j, info) &&
	    buf_appendz(&j, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":") &&
	    json_put_string(&j, text, len) &&
	    buf_appendz(&j, "},\"logprobs\":null,\"finish_reason\":null}]}") &&
	    openai_emit(out, &j);
	buf_free(&j);
	return ok;
}

static bool
openai_end(struct buf *out, const struct chat_stream_info *info, const void *opts,
    const struct chat_outcome *o)
{
	const struct dialect_openai_opts *oo = opts;
	const char *finish = o->finish_reason != NULL && o->finish_reason[0] ? o->finish_reason : "stop";
	struct buf j;
	bool ok;

	buf_init(&j, 1024);
	if (!chat_outcome_is_done(o)) {
		ok = buf_appendz(&j, "{\"error\":{\"message\":") && json_put_stringz(&j, o->error_message) &&
		    buf_appendz(&j, ",\"type\":\"server_error\",\"param\":null,\"code\":") &&
		    json_put_stringz(&j, o->error_code) && buf_appendz(&j, "}}") &&
		    openai_emit(out, &j);
		buf_free(&j);
		return ok;
	}
	ok = openai_head(&j, info) &&
	    buf_appendz(&j, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":") &&
	    json_put_stringz(&j, strcmp(o->status, "cancelled") == 0 ? "stop" : finish) &&
	    buf_appendz(&j, "}]}") && openai_emit(out, &j);
	if (ok && oo != NULL && oo->include_usage) {
		long pt = o->prompt_tokens > 0 ? o->prompt_tokens : 0;
		long ct = o->completion_tokens > 0 ? o->completion_tokens : 0;

		buf_reset(&j);
		ok = openai_head(&j, info) &&
		    buf_printf(&j, ",\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,"
		        "\"completion_tokens\":%ld,\"total_tokens\":%ld}}", pt, ct, pt + ct) &&
		    openai_emit(out, &j);
	}
	ok = ok && sse_put_event(out, NULL, NULL, "[DONE]", 6);
	buf_free(&j);
	return ok;
}

const struct dialect dialect_openai = {
	.name = "openai",
	.start = openai_start,
	.delta = openai_delta,
	.end = openai_end,
};
