/* chat.c: POST /v1/chat/completions: the request, the deterministic reply,
 * the plain response. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "chat.h"
#include "conn.h"
#include "fail.h"
#include "http.h"
#include "json.h"
#include "models.h"
#include "stream.h"
#include "timer.h"
#include "util.h"

#define WORD_PIECE_MAX	16			/* longest token, in bytes */

static uint64_t	completion_ids;

uint64_t
chat_next_id(void)
{
	return ++completion_ids;
}

/* Counts whitespace-separated words. */
static long
count_words(const char *s, size_t n)
{
	long words = 0;
	bool in_word = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (util_is_ws((unsigned char)s[i]))
			in_word = false;
		else if (!in_word) {
			in_word = true;
			words++;
		}
	}
	return words;
}

/* Appends a message's content: a string, or the "text" of each part
 * joined with single spaces. */
static bool
content_text_append(json_object *msg, struct buf *dst)
{
	json_object *content, *part, *text;
	size_t i, n;
	bool first = true;

	if (!json_object_object_get_ex(msg, "content", &content) || content == NULL)
		return true;
	if (json_object_is_type(content, json_type_string))
		return buf_append(dst, json_object_get_string(content),
		    (size_t)json_object_get_string_len(content));
	if (!json_object_is_type(content, json_type_array))
		return true;
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(content, i);
		if (!json_object_is_type(part, json_type_object) ||
		    !json_object_object_get_ex(part, "text", &text) ||
		    !json_object_is_type(text, json_type_string))
			continue;
		if (!first && !BUF_LIT(dst, " "))
			return false;
		first = false;
		if (!buf_append(dst, json_object_get_string(text),
		    (size_t)json_object_get_string_len(text)))
			return false;
	}
	return true;
}

static bool
message_has_role(json_object *msg, const char *role)
{
	json_object *r;

	return json_object_is_type(msg, json_type_object) &&
	    json_object_object_get_ex(msg, "role", &r) &&
	    json_object_is_type(r, json_type_string) &&
	    strcmp(json_object_get_string(r), role) == 0;
}

/* Splits the reply into tokens: each is a run of non-space bytes with the
 * whitespace before it; words longer than WORD_PIECE_MAX bytes are cut at
 * UTF-8 character boundaries; trailing whitespace joins the last token. */
static bool
reply_tokenize(const char *s, size_t n, size_t **ends, size_t *count)
{
	size_t *v = NULL, *nv, cap = 0, cnt = 0, i = 0, p, cut;

	*ends = NULL;
	*count = 0;
	while (i < n) {
		while (i < n && util_is_ws((unsigned char)s[i]))
			i++;
		if (i == n) {
			if (cnt > 0) {
				v[cnt - 1] = n;
				break;
			}
		}
		p = i;
		while (i < n && !util_is_ws((unsigned char)s[i]))
			i++;
		for (;;) {
			cut = i;
			if (i - p > WORD_PIECE_MAX) {
				cut = p + WORD_PIECE_MAX;
				while (cut > p && util_is_utf8_cont((unsigned char)s[cut]))
					cut--;
				if (cut == p)
					cut = p + WORD_PIECE_MAX;
			}
			if (cnt == cap) {
				cap = cap ? cap * 2 : 64;
				if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
					free(v);
					return false;
				}
				v = nv;
			}
			v[cnt++] = cut;
			if (cut == i)
				break;
			p = cut;
		}
	}
	*ends = v;
	*count = cnt;
	return true;
}

static void
chat_free(struct chat *ch)
{
	json_object_put(ch->req);
	free(ch->last);
	free(ch->text);
	free(ch->reply);
	free(ch->tok_end);
	memset(ch, 0, sizeof(*ch));
}

/* True if the request's first message is a system message asking for a
 * chat title (the web UI's naming of new chats). */
static bool
asks_for_title(json_object *messages)
{
	json_object *msg = json_object_array_get_idx(messages, 0), *content;

	if (msg == NULL || !message_has_role(msg, "system") ||
	    !json_object_object_get_ex(msg, "content", &content) ||
	    !json_object_is_type(content, json_type_string))
		return false;
	return strncmp(json_object_get_string(content), "Write a title", 13) == 0;
}

/* A title as a model would write it: the message's first six words. */
static bool
title_append(struct buf *b, const char *text, size_t len)
{
	size_t i = 0, words = 0;

	while (i < len && words < 6) {
		while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t'))
			i++;
		size_t start = i;
		while (i < len && text[i] != ' ' && text[i] != '\n' && text[i] != '\t')
			i++;
		if (i > start && ((words > 0 && !BUF_LIT(b, " ")) || !buf_append(b, text + start, i - start)))
			return false;
		words += i > start;
	}
	return true;
}

/* Builds ch->reply from the request and directives, then its tokens. */
static bool
chat_build_reply(struct chat *ch, json_object *messages)
{
	struct buf b = { 0 };
	json_object *msg = NULL;
	const char *s;
	size_t i, n, len = 0;
	bool ok = true;
	long t;

	if (ch->d.request) {
		s = json_object_to_json_string_length(ch->req, JSON_C_TO_STRING_PLAIN, &len);
		ok = s != NULL && buf_append(&b, s, len);
	} else if (ch->d.system) {
		ok = BUF_LIT(&b, "System prompt: ");
		n = json_object_array_length(messages);
		for (i = 0; i < n; i++) {
			msg = json_object_array_get_idx(messages, i);
			if (message_has_role(msg, "system"))
				break;
		}
		if (ok)
			ok = i < n ? content_text_append(msg, &b) : BUF_LIT(&b, "(none)");
	} else if (ch->d.tokens >= 0) {
		for (t = 0; ok && t < ch->d.tokens; t++)
			ok = buf_appendf(&b, t == 0 ? "t%ld" : " t%ld", t);
	} else if (ch->d.raw.p) {
		ok = buf_append(&b, ch->d.raw.p, ch->d.raw.n);
	} else if (asks_for_title(messages)) {
		ok = title_append(&b, ch->text, ch->text_len);
	} else {
		ok = BUF_LIT(&b, "You said: ") && buf_append(&b, ch->text, ch->text_len);
	}
	if (!ok || (ch->reply = buf_steal(&b, &ch->reply_len)) == NULL) {
		buf_free(&b);
		return false;
	}
	if (!reply_tokenize(ch->reply, ch->reply_len, &ch->tok_end, &ch->ntok))
		return false;
	ch->finish = "stop";
	if (ch->max_tokens >= 0 && ch->ntok > (size_t)ch->max_tokens) {
		ch->ntok = (size_t)ch->max_tokens;
		ch->finish = "length";
	}
	return true;
}

/* Returns the completion's text length after max_tokens truncation. */
static size_t
chat_reply_len(const struct chat *ch)
{
	return ch->ntok == 0 ? 0 : ch->tok_end[ch->ntok - 1];
}

static bool
chat_respond_full(struct conn *c, struct chat *ch)
{
	json_object *root, *choices = NULL, *choice = NULL, *message = NULL;
	json_object *usage = NULL;
	size_t clen = chat_reply_len(ch);
	char id[64];
	bool ok;

	if (snprintf(id, sizeof(id), "chatcmpl-fake%" PRIu64, chat_next_id()) >=
	    (int)sizeof(id))
		return false;
	if ((root = json_object_new_object()) == NULL)
		return false;
	/* Each container is attached before it is filled: root owns all. */
	ok = json_add(root, "id", json_object_new_string(id)) &&
	    json_add(root, "object", json_object_new_string("chat.completion")) &&
	    json_add(root, "created", json_object_new_int64((int64_t)time(NULL))) &&
	    json_add(root, "model", json_object_new_string_len(ch->model,
	    (int)ch->model_len)) &&
	    json_add(root, "choices", choices = json_object_new_array()) &&
	    json_append(choices, choice = json_object_new_object()) &&
	    json_add(choice, "index", json_object_new_int(0)) &&
	    json_add(choice, "message", message = json_object_new_object()) &&
	    json_add(message, "role", json_object_new_string("assistant")) &&
	    json_add(message, "content", json_object_new_string_len(
	    clen ? ch->reply : "", (int)clen)) &&
	    json_add_null(choice, "logprobs") &&
	    json_add(choice, "finish_reason", json_object_new_string(ch->finish)) &&
	    json_add(root, "usage", usage = json_object_new_object()) &&
	    json_add(usage, "prompt_tokens", json_object_new_int64(ch->prompt_tokens)) &&
	    json_add(usage, "completion_tokens", json_object_new_int64((int64_t)ch->ntok)) &&
	    json_add(usage, "total_tokens",
	    json_object_new_int64(ch->prompt_tokens + (int64_t)ch->ntok));
	if (!ok) {
		json_object_put(root);
		return false;
	}
	return http_respond_json(c, 200, root, NULL);
}

bool
chat_handle(struct conn *c)
{
	struct chat ch;
	json_object *messages, *v, *msg;
	struct buf tmp = { 0 };
	char err[160];
	size_t i, n;
	bool ok = false, failed;
	long stall;

	memset(&ch, 0, sizeof(ch));
	ch.max_tokens = -1;
	ch.req = json_parse_body(c->req.body.data, buf_live(&c->req.body));
	if (ch.req == NULL || !json_object_is_type(ch.req, json_type_object)) {
		chat_free(&ch);
		return http_error(c, 400, "We could not parse the JSON body of your "
		    "request. (HINT: This likely means you aren't using your HTTP "
		    "library correctly.)", "invalid_request_error", NULL, NULL, NULL);
	}
	if (!json_object_object_get_ex(ch.req, "messages", &messages) ||
	    !json_object_is_type(messages, json_type_array) ||
	    (n = json_object_array_length(messages)) == 0) {
		chat_free(&ch);
		return http_error(c, 400, "Missing required parameter: 'messages'.",
		    "invalid_request_error", "messages", "missing_required_parameter",
		    NULL);
	}

	ch.model = DEFAULT_MODEL;
	ch.model_len = strlen(DEFAULT_MODEL);
	if (json_object_object_get_ex(ch.req, "model", &v) &&
	    json_object_is_type(v, json_type_string)) {
		ch.model = json_object_get_string(v);
		ch.model_len = (size_t)json_object_get_string_len(v);
	}
	if (json_object_object_get_ex(ch.req, "stream", &v))
		ch.stream = json_object_get_boolean(v);
	if (json_object_object_get_ex(ch.req, "stream_options", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "include_usage", &v))
		ch.include_usage = json_object_get_boolean(v);
	if ((json_object_object_get_ex(ch.req, "max_completion_tokens", &v) ||
	    json_object_object_get_ex(ch.req, "max_tokens", &v)) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
		ch.max_tokens = json_object_get_int64(v) > COUNT_MAX ? COUNT_MAX :
		    (long)json_object_get_int64(v);

	/* Prompt "tokens": words over all messages; LAST: the last user turn. */
	for (i = 0; i < n; i++) {
		msg = json_object_array_get_idx(messages, i);
		if (!json_object_is_type(msg, json_type_object))
			continue;
		buf_reset(&tmp);
		if (!content_text_append(msg, &tmp))
			goto out;
		ch.prompt_tokens += count_words(tmp.data, tmp.len);
		if (message_has_role(msg, "user")) {
			free(ch.last);
			if ((ch.last = buf_steal(&tmp, &ch.last_len)) == NULL)
				goto out;
		}
	}
	if (ch.prompt_tokens < 1)
		ch.prompt_tokens = 1;
	if (ch.last == NULL && (ch.last = util_strndup("", 0)) == NULL)
		goto out;

	if (!directives_parse(ch.last, ch.last_len, &ch.d, &ch.text, &ch.text_len,
	    err, sizeof(err))) {
		ok = http_error(c, 400, err, "invalid_request_error", "messages",
		    NULL, NULL);
		goto out;
	}

	/* Held-back plain responses wait for both stalls. */
	stall = (ch.d.stall_headers > 0 ? ch.d.stall_headers : 0) +
	    (ch.d.stall_first > 0 ? ch.d.stall_first : 0);
	if (!ch.stream || ch.d.status >= 0)
		c->defer_ms = stall;
	if (!fail_maybe(c, &ch.d, ch.text, ch.text_len, &failed))
		goto out;
	if (failed) {
		ok = true;
		goto out;
	}
	if (!chat_build_reply(&ch, messages))
		goto out;

	if (ch.stream) {
		ok = stream_start(c, &ch);
	} else if (ch.d.drop_after >= 0) {
		/* A plain request that "drops" gets no response at all. */
		http_log_request(c, "drop");
		c->defer_drop = true;
		c->state = CS_WAIT;
		ok = timer_arm(c, srv.now + (uint64_t)stall);
		c->defer_ms = 0;
	} else {
		ok = chat_respond_full(c, &ch);
	}
out:
	c->defer_ms = 0;
	buf_free(&tmp);
	chat_free(&ch);
	return ok;
}
