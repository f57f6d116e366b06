/* sink_collect.c: keeps the end of a turn for a one-piece response. */
#include "sink_collect.h"

#include <stdio.h>
#include <string.h>
#include "chat_limits.h"

static bool
collect_open(void *ctx, const struct chat_stream_info *info)
{
	(void)ctx;
	(void)info;
	return true;
}

static bool
collect_delta(void *ctx, const struct chat_stream_info *info, const char *text, size_t len)
{
	(void)ctx;
	(void)info;
	(void)text;
	(void)len;
	return true;  /* the engine hands over the whole reply at the end */
}

static bool
collect_heartbeat(void *ctx)
{
	(void)ctx;
	return true;
}

static void
collect_end(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *o)
{
	struct sink_collect *s = ctx;

	s->ended = true;
	s->done = chat_outcome_is_done(o);
	(void)buf_append(&s->content, info->content, info->content_len);
	s->status = o->status;
	s->error = o->error;
	(void)snprintf(s->error_message, sizeof(s->error_message), "%s",
	    o->error_message ? o->error_message : "");
	(void)snprintf(s->finish_reason, sizeof(s->finish_reason), "%s",
	    o->finish_reason && o->finish_reason[0] ? o->finish_reason : "stop");
	(void)snprintf(s->reply_id, sizeof(s->reply_id), "%s", info->reply_id);
	(void)snprintf(s->model, sizeof(s->model), "%s", info->model ? info->model : "");
	s->created = info->created;
	s->prompt_tokens = o->prompt_tokens;
	s->completion_tokens = o->completion_tokens;
}

void
sink_collect_init(struct sink_collect *s, struct chat_sink *sink)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->content, LIMIT_REPLY_BYTES);
	sink->open = collect_open;
	sink->delta = collect_delta;
	sink->heartbeat = collect_heartbeat;
	sink->end = collect_end;
	sink->ctx = s;
}

void
sink_collect_free(struct sink_collect *s)
{
	buf_free(&s->content);
}
