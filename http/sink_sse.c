/* sink_sse.c: engine events to SSE bytes on an HTTP response. */
#include "sink_sse.h"

#include "chat_limits.h"
#include "http.h"
#include "log.h"
#include "sse.h"


static bool
sink_sse_send(struct sink_sse *s)
{
	bool ok = http_stream_send(s->req, s->out.data, s->out.len);

	buf_reset(&s->out);
	return ok;
}

static bool
sink_sse_open(void *ctx, const struct chat_stream_info *info)
{
	struct sink_sse *s = ctx;

	if (!http_stream_begin(s->req))
		return false;
	/* nginx holds headers back until body bytes follow: a resume that has
	 * nothing to replay yet still answers at once, with a comment. */
	if (info->resumed)
		return sse_put_comment(&s->out, "ping") && sink_sse_send(s);
	if (!s->dialect->start(&s->out, info, s->opts)) {
		log_error("%s: start event too large", s->dialect->name);
		buf_reset(&s->out);
		return true;
	}
	return sink_sse_send(s);
}

static bool
sink_sse_delta(void *ctx, const struct chat_stream_info *info, const char *text, size_t len)
{
	struct sink_sse *s = ctx;

	if (!s->dialect->delta(&s->out, info, s->opts, text, len)) {
		buf_reset(&s->out);
		return true;
	}
	return sink_sse_send(s);
}

static bool
sink_sse_heartbeat(void *ctx)
{
	struct sink_sse *s = ctx;

	if (!sse_put_comment(&s->out, "ping"))
		return true;
	return sink_sse_send(s);
}

static void
sink_sse_end(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *o)
{
	struct sink_sse *s = ctx;

	if (s->dialect->end(&s->out, info, s->opts, o))
		(void)sink_sse_send(s);
	else
		log_error("%s: end event too large", s->dialect->name);
}

void
sink_sse_init(struct sink_sse *s, struct chat_sink *sink, struct request *req,
    const struct dialect *dialect, const void *opts)
{
	s->req = req;
	s->dialect = dialect;
	s->opts = opts;
	buf_init(&s->out, LIMIT_EVENT_BYTES);
	sink->open = sink_sse_open;
	sink->delta = sink_sse_delta;
	sink->heartbeat = sink_sse_heartbeat;
	sink->end = sink_sse_end;
	sink->ctx = s;
}

void
sink_sse_free(struct sink_sse *s)
{
	buf_free(&s->out);
}
