/* sse.c: SSE events of a chat stream and their framing: chunked encoding,
 * [[split]] pieces. */
#include <stdio.h>
#include <stdlib.h>

#include "conn.h"
#include "json.h"
#include "sse.h"
#include "stream.h"
#include "util.h"

static struct buf	scratch;	/* one SSE event being formatted */

static const char *
sse_eol(const struct stream *s)
{
	return s->crlf ? "\r\n" : "\n";
}

bool
sse_chunk_append(struct buf *out, bool chunked, const char *p, size_t n)
{
	if (n == 0)
		return true;
	if (!chunked)
		return buf_append(out, p, n);
	return buf_appendf(out, "%zx\r\n", n) && buf_append(out, p, n) &&
	    BUF_LIT(out, "\r\n");
}

static bool
sse_push_piece(struct stream *s, size_t len)
{
	size_t *v, ncap;

	if (s->npieces == s->pieces_cap) {
		ncap = s->pieces_cap ? s->pieces_cap * 2 : 32;
		if ((v = realloc(s->pieces, ncap * sizeof(*v))) == NULL)
			return false;
		s->pieces = v;
		s->pieces_cap = ncap;
	}
	s->pieces[s->npieces++] = len;
	return true;
}

/* Queues one SSE event. Split mode cuts it at 1, 4, 9, 16... (pieces of
 * 1, 3, 5, 7... bytes) and adds a cut inside the first multi-byte character
 * if no cut fell inside one, so the client must reassemble UTF-8. */
static bool
sse_emit(struct conn *c, const char *p, size_t n)
{
	struct stream *s = c->stream;
	size_t k, cut, prev = 0, extra = 0, i;
	bool inside = false;

	if (!s->split)
		return sse_chunk_append(&c->out, s->chunked, p, n);
	for (k = 1; k * k < n; k++)
		if (util_is_utf8_cont((unsigned char)p[k * k]))
			inside = true;
	if (!inside)
		for (i = 0; i + 1 < n && extra == 0; i++)
			if ((unsigned char)p[i] >= 0xC0 && util_is_utf8_cont((unsigned char)p[i + 1]))
				extra = i + 1;
	if (!buf_append(&s->pend, p, n))
		return false;
	for (k = 1; prev < n; k++) {
		cut = k * k < n ? k * k : n;
		if (extra > prev && extra < cut) {
			if (!sse_push_piece(s, extra - prev))
				return false;
			prev = extra;
		}
		if (!sse_push_piece(s, cut - prev))
			return false;
		prev = cut;
	}
	return true;
}

bool
sse_pump(struct conn *c)
{
	struct stream *s = c->stream;
	size_t len;

	while (s->piece_idx < s->npieces) {
		len = s->pieces[s->piece_idx++];
		if (!sse_chunk_append(&c->out, s->chunked, s->pend.data + s->pend.off, len))
			return false;
		s->pend.off += len;
		if (!conn_flush(c))
			return false;
		if (s->split_gap_ms > 0)
			break;
	}
	if (s->piece_idx == s->npieces) {
		buf_reset(&s->pend);
		s->npieces = s->piece_idx = 0;
	}
	return true;
}

/* scratch collects one event: sse_begin, the JSON, then sse_end. */
static bool
sse_begin(const struct stream *s, const char *event)
{
	buf_reset(&scratch);
	if (event && !buf_appendf(&scratch, "event: %s%s", event, sse_eol(s)))
		return false;
	return BUF_LIT(&scratch, "data: ");
}

static bool
sse_end(struct conn *c)
{
	const char *eol = sse_eol(c->stream);

	return buf_appendz(&scratch, eol) && buf_appendz(&scratch, eol) &&
	    sse_emit(c, scratch.data, scratch.len);
}

bool
sse_comment(struct conn *c)
{
	const char *eol = sse_eol(c->stream);

	buf_reset(&scratch);
	return buf_appendf(&scratch, ": ping%s%s", eol, eol) &&
	    sse_emit(c, scratch.data, scratch.len);
}

/* A chunk: head, choices with the given delta and finish_reason, tail. */
bool
sse_choice(struct conn *c, const char *delta_open, const char *tok, size_t tok_len,
    const char *delta_close, const char *finish, bool obfuscation)
{
	struct stream *s = c->stream;
	struct buf *b = &scratch;

	if (!sse_begin(s, NULL) || !buf_append(b, s->head, s->head_len) ||
	    !BUF_LIT(b, "\"choices\":[{\"index\":0,\"delta\":") ||
	    !buf_appendz(b, delta_open) ||
	    (tok && !json_escape_append(b, tok, tok_len)) ||
	    !buf_appendz(b, delta_close) ||
	    !buf_appendf(b, ",\"logprobs\":null,\"finish_reason\":%s%s%s}]",
	    finish ? "\"" : "", finish ? finish : "null", finish ? "\"" : ""))
		return false;
	/* Real OpenAI sends "usage":null on every chunk with include_usage. */
	if (s->include_usage && !BUF_LIT(b, ",\"usage\":null"))
		return false;
	if (obfuscation && !BUF_LIT(b, ",\"obfuscation\":\"x\""))
		return false;
	return BUF_LIT(b, "}") && sse_end(c);
}

bool
sse_token(struct conn *c, size_t k)
{
	struct stream *s = c->stream;
	size_t start = k == 0 ? 0 : s->tok_end[k - 1];

	return sse_choice(c, "{\"content\":\"", s->reply + start,
	    s->tok_end[k] - start, "\"}", NULL, true);
}

bool
sse_usage(struct conn *c)
{
	struct stream *s = c->stream;
	struct buf *b = &scratch;

	return sse_begin(s, NULL) && buf_append(b, s->head, s->head_len) &&
	    buf_appendf(b, "\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,"
	    "\"completion_tokens\":%zu,\"total_tokens\":%zu}}", s->prompt_tokens,
	    s->ntok, (size_t)s->prompt_tokens + s->ntok) && sse_end(c);
}

bool
sse_error(struct conn *c)
{
	struct stream *s = c->stream;

	return sse_begin(s, s->error_as_event ? "error" : NULL) &&
	    BUF_LIT(&scratch, "{\"error\":{\"message\":\"fake mid-stream error\","
	    "\"type\":\"server_error\",\"param\":null,\"code\":null}}") && sse_end(c);
}

bool
sse_done(struct conn *c)
{
	return sse_begin(c->stream, NULL) && BUF_LIT(&scratch, "[DONE]") &&
	    sse_end(c);
}

void
sse_free(void)
{
	buf_free(&scratch);
}
