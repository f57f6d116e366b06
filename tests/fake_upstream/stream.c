/* stream.c: a streamed chat completion: a state machine advanced by the
 * connection's timer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "chat.h"
#include "conn.h"
#include "http.h"
#include "json.h"
#include "sse.h"
#include "stats.h"
#include "stream.h"
#include "timer.h"

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	free(s->reply);
	free(s->tok_end);
	free(s->head);
	free(s->pieces);
	buf_free(&s->pend);
	free(s);
}

void
stream_end(struct conn *c, enum stream_end kind)
{
	stats.streams_active--;
	switch (kind) {
	case END_COMPLETED: stats.streams_completed++; break;
	case END_ERRORED: stats.streams_errored++; break;
	case END_DROPPED: stats.streams_dropped++; break;
	case END_ABORTED: stats.streams_aborted_by_client++; break;
	}
	stream_free(c->stream);
	c->stream = NULL;
	c->state = CS_READ;
}

static bool
stream_write_head(struct conn *c)
{
	struct stream *s = c->stream;

	return buf_appendf(&c->out, "HTTP/1.1 200 OK\r\nServer: fake-upstream\r\n"
	    "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
	    "%sConnection: %s\r\n\r\n",
	    s->chunked ? "Transfer-Encoding: chunked\r\n" : "",
	    c->keep_alive ? "keep-alive" : "close");
}

/* Schedules the next step one token interval (plus any stall-after) after
 * the time this step was due, not after "now", so loop latency does not
 * accumulate over a long stream; a stream that fell a whole interval
 * behind restarts from now instead of bursting to catch up. */
static void
stream_schedule_next(struct stream *s)
{
	uint64_t base = s->next_at, d = (uint64_t)s->delay_ms;

	if (base + d < srv.now)
		base = srv.now;
	if (s->stall_after_k >= 0 && (size_t)s->stall_after_k == s->next_tok)
		d += (uint64_t)s->stall_after_ms;
	s->next_at = base + d;
}

/* Performs one step of the stream; sets next_at or a final phase. */
static bool
stream_step(struct conn *c)
{
	struct stream *s = c->stream;
	size_t k = s->next_tok;

	switch (s->phase) {
	case PH_HEADERS:
		if (!stream_write_head(c))
			return false;
		s->phase = PH_ROLE;
		s->next_at = (s->next_at > srv.now ? s->next_at : srv.now) +
		    (uint64_t)s->stall_first_ms;
		return true;
	case PH_ROLE:
		if (s->comments && !sse_comment(c))
			return false;
		if (!sse_choice(c, "{\"role\":\"assistant\",\"content\":\"\"}",
		    NULL, 0, "", NULL, false))
			return false;
		s->phase = PH_TOKENS;
		stream_schedule_next(s);
		return true;
	case PH_TOKENS:
		break;
	case PH_END:
	case PH_DROP:
		return true;
	}

	if (s->drop_after >= 0 && (size_t)s->drop_after == k) {
		s->phase = PH_DROP;
		return true;
	}
	if (s->error_after >= 0 && (size_t)s->error_after == k) {
		if (!sse_error(c))
			return false;
		s->phase = PH_END;
		s->end_kind = END_ERRORED;
		return true;
	}
	if (s->comments && !sse_comment(c))
		return false;
	if (k < s->ntok) {
		if (!sse_token(c, k))
			return false;
		s->next_tok++;
		stream_schedule_next(s);
		return true;
	}
	if (!sse_choice(c, "{}", NULL, 0, "", s->finish, false))
		return false;
	if (s->include_usage && !sse_usage(c))
		return false;
	if (!sse_done(c))
		return false;
	s->phase = PH_END;
	s->end_kind = END_COMPLETED;
	return true;
}

bool
stream_run(struct conn *c)
{
	struct stream *s = c->stream;
	enum stream_end kind;
	int budget;

	for (budget = 16;; budget--) {
		if (!sse_pump(c))
			return false;
		if (s->piece_idx < s->npieces)
			return timer_arm(c, srv.now + (uint64_t)s->split_gap_ms);
		if (s->phase == PH_END) {
			if (s->chunked && !BUF_LIT(&c->out, "0\r\n\r\n"))
				return false;
			kind = s->end_kind;
			stream_end(c, kind);	/* frees s */
			return conn_response_done(c);
		}
		if (s->phase == PH_DROP) {
			stream_end(c, END_DROPPED);
			c->keep_alive = false;
			return conn_begin_close(c);
		}
		/* With zero delays, yield to other connections now and then. */
		if (s->next_at > srv.now || budget == 0)
			return timer_arm(c, s->next_at > srv.now ? s->next_at : srv.now);
		if (!stream_step(c) || !conn_flush(c))
			return false;
	}
}

bool
stream_start(struct conn *c, struct chat *ch)
{
	struct stream *s;
	struct buf head = { 0 };
	const struct directives *d = &ch->d;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return false;
	if (!buf_appendf(&head, "{\"id\":\"chatcmpl-fake%" PRIu64 "\","
	    "\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":\"",
	    chat_next_id(), (long long)time(NULL)) ||
	    !json_escape_append(&head, ch->model, ch->model_len) ||
	    !BUF_LIT(&head, "\",\"system_fingerprint\":\"fp_fake\",") ||
	    (s->head = buf_steal(&head, &s->head_len)) == NULL) {
		buf_free(&head);
		free(s);
		return false;
	}
	s->reply = ch->reply;
	s->reply_len = ch->reply_len;
	s->tok_end = ch->tok_end;
	s->ntok = ch->ntok;
	ch->reply = NULL;
	ch->tok_end = NULL;
	s->finish = ch->finish;
	s->prompt_tokens = ch->prompt_tokens;
	s->include_usage = ch->include_usage && !d->no_usage;
	s->delay_ms = d->delay >= 0 ? d->delay : srv.delay_ms;
	s->stall_first_ms = d->stall_first > 0 ? d->stall_first : 0;
	s->stall_after_k = d->stall_after_k;
	s->stall_after_ms = d->stall_after_ms;
	s->drop_after = d->drop_after;
	s->error_after = d->error_after;
	if (d->event_error_after >= 0 &&
	    (s->error_after < 0 || d->event_error_after <= s->error_after)) {
		s->error_after = d->event_error_after;
		s->error_as_event = true;
	}
	s->split = d->split.p != NULL;
	s->split_gap_ms = d->split_gap > 0 ? d->split_gap : 0;
	s->crlf = d->crlf;
	s->comments = d->comments;
	s->chunked = !c->req.http10;
	if (!s->chunked)
		c->keep_alive = false;	/* HTTP/1.0: the close ends the body */
	s->phase = PH_HEADERS;
	s->next_at = srv.now + (uint64_t)(d->stall_headers > 0 ? d->stall_headers : 0);

	c->stream = s;
	c->state = CS_STREAM;
	stats.streams_active++;
	http_log_status(c, 200);
	return stream_run(c);
}
