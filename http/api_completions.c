/* api_completions.c: the stateless routes, where the client sends the whole
 * conversation: seed 004's /api/chat, seed 001's /openai/chatCompletion and
 * the OpenAI-compatible /v1/chat/completions (streamed or not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "buf.h"
#include "chat_limits.h"
#include "config.h"
#include "conversation.h"
#include "dialect.h"
#include "engine.h"
#include "handlers.h"
#include "json_in.h"
#include "request.h"
#include "sink_collect.h"
#include "sink_sse.h"
#include "turn_stream.h"

json_object *
handler_messages(struct request *r, json_object *arr, const char *field, int *status)
{
	char err[160];
	json_object *out;
	enum conversation_rc rc = conversation_clean(arr, field, &out, err, sizeof(err));

	if (rc != CONVERSATION_OK)
		*status = http_error(r, rc == CONVERSATION_NO_MEMORY ? 500 : 400, err);
	return out;
}

json_object *
handler_body_messages(struct request *r, json_object *body, int *status)
{
	json_object *arr, *messages;

	if (!json_object_object_get_ex(body, "messages", &arr) || arr == NULL) {
		*status = handler_bad_field(r, "messages", "missing field");
		return NULL;
	}
	if ((messages = handler_messages(r, arr, "messages", status)) == NULL)
		return NULL;
	if (json_object_array_length(messages) == 0) {
		json_object_put(messages);
		*status = handler_bad_field(r, "messages", "must not be empty");
		return NULL;
	}
	return messages;
}

/* Runs a stateless turn to its end without streaming. */
static int
collect_run(struct request *r, struct chat_turn *turn, struct sink_collect *col)
{
	struct chat_env env = { .cfg = r->cfg, .store = r->store, .upstream = r->upstream, .worker_id = r->worker_id };
	struct chat_sink sink;
	const char *err = NULL;
	int status;

	sink_collect_init(col, &sink);
	turn->route = r->route_name;
	turn->user_id = r->authed ? r->user_id : NULL;
	turn->stop_when_client_leaves = true;
	status = chat_turn_run(&env, turn, &sink, &err);
	if (status != 200)
		return http_error(r, status, err);
	if (!col->done)
		return http_error(r, col->error == UPSTREAM_TIMEOUT_IDLE ||
		    col->error == UPSTREAM_MAX_DURATION ? 504 : 502, col->error_message);
	return 200;
}

/* An OpenAI chat.completion object from a collected reply. */
static json_object *
completion_object(const struct sink_collect *col)
{
	json_object *o = json_object_new_object(), *choices, *choice, *message, *usage;
	char id[64];

	if (o == NULL)
		return NULL;
	(void)snprintf(id, sizeof(id), "chatcmpl-%s", col->reply_id);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "object", json_object_new_string("chat.completion"));
	json_object_object_add(o, "created", json_object_new_int64(col->created));
	json_object_object_add(o, "model", json_object_new_string(col->model));
	choices = json_object_new_array();
	choice = json_object_new_object();
	message = json_object_new_object();
	json_object_object_add(message, "role", json_object_new_string("assistant"));
	json_object_object_add(message, "content",
	    json_object_new_string_len(col->content.data != NULL ? col->content.data : "",
	        (int)col->content.len));
	json_object_object_add(message, "refusal", NULL);
	json_object_object_add(choice, "index", json_object_new_int(0));
	json_object_object_add(choice, "message", message);
	json_object_object_add(choice, "logprobs", NULL);
	json_object_object_add(choice, "finish_reason", json_object_new_string(col->finish_reason));
	json_object_array_add(choices, choice);
	json_object_object_add(o, "choices", choices);
	usage = json_object_new_object();
	long pt = col->prompt_tokens > 0 ? col->prompt_tokens : 0;
	long ct = col->completion_tokens > 0 ? col->completion_tokens : 0;
	json_object_object_add(usage, "prompt_tokens", json_object_new_int64(pt));
	json_object_object_add(usage, "completion_tokens", json_object_new_int64(ct));
	json_object_object_add(usage, "total_tokens", json_object_new_int64(pt + ct));
	json_object_object_add(o, "usage", usage);
	return o;
}

/* ISO-8601 UTC with milliseconds, like every timestamp of the API. */
static void
iso_now(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	(void)snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000) % 1000);
}

/* Seed 004: {message, history?} -> {reply, timestamp}. */
int
api_chat004(struct request *r)
{
	json_object *body, *history, *messages = NULL, *m, *resp;
	const char *message, *err;
	struct sink_collect col;
	char ts[80];
	size_t len;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	memset(&col, 0, sizeof(col));
	if (!json_in_string(body, "message", JSON_REQUIRED, LIMIT_CONTENT_BYTES, &message, &len, &err)) {
		status = handler_bad_field(r, "message", err);
		goto done;
	}
	if (len == 0) {
		status = handler_bad_field(r, "message", "must not be empty");
		goto done;
	}
	if (json_object_object_get_ex(body, "history", &history) && history != NULL) {
		if ((messages = handler_messages(r, history, "history", &status)) == NULL)
			goto done;
	} else if ((messages = json_object_new_array()) == NULL) {
		status = http_error(r, 500, "Out of memory");
		goto done;
	}
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("user"));
	json_object_object_add(m, "content", json_object_new_string_len(message, (int)len));
	json_object_array_add(messages, m);

	struct chat_turn turn = { .messages = messages, .add_system_prompt = true };
	if ((status = collect_run(r, &turn, &col)) != 200)
		goto done;
	iso_now(ts, sizeof(ts));
	resp = json_object_new_object();
	json_object_object_add(resp, "reply",
	    json_object_new_string_len(col.content.data != NULL ? col.content.data : "", (int)col.content.len));
	json_object_object_add(resp, "timestamp", json_object_new_string(ts));
	status = http_reply_json(r, 200, resp);
done:
	sink_collect_free(&col);
	json_object_put(messages);
	json_object_put(body);
	return status;
}

/* Seed 001: {messages} -> a chat.completion. */
int
api_openai_chat_completion(struct request *r)
{
	json_object *body, *messages = NULL;
	struct sink_collect col;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	memset(&col, 0, sizeof(col));
	if ((messages = handler_body_messages(r, body, &status)) == NULL)
		goto done;
	struct chat_turn turn = { .messages = messages, .add_system_prompt = true };
	if ((status = collect_run(r, &turn, &col)) == 200)
		status = http_reply_json(r, 200, completion_object(&col));
done:
	sink_collect_free(&col);
	json_object_put(messages);
	json_object_put(body);
	return status;
}

/* Reads a boolean member; absent leaves *out. */
static bool
json_in_bool(json_object *obj, const char *key, bool *out)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return true;
	if (!json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

/* OpenAI-compatible: the official SDKs talk to this. */
int
api_v1_chat_completions(struct request *r)
{
	json_object *body, *messages = NULL, *so, *v;
	const char *model = NULL, *err = NULL;
	struct dialect_openai_opts opts = { false };
	struct sink_collect col;
	struct request_result res;
	char refusal[REQUEST_SPEND_MSG_BYTES];
	double temperature = -1, max_tokens = 0, max_completion_tokens = 0;
	bool stream = false;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	memset(&col, 0, sizeof(col));
	if (!json_in_string(body, "model", JSON_OPTIONAL, LIMIT_MODEL_BYTES, &model, NULL, &err)) {
		status = handler_bad_field(r, "model", err);
		goto done;
	}
	/* What the server's key pays for: allowed models only. */
	if ((res = request_model_check(r->cfg, REQUEST_MODEL_CHAT, model, refusal, sizeof(refusal))).status != 0) {
		status = http_error(r, res.status, res.message);
		goto done;
	}
	if (!json_in_double(body, "temperature", JSON_OPTIONAL, 0, 2, &temperature, &err)) {
		status = handler_bad_field(r, "temperature", err);
		goto done;
	}
	if (!json_in_double(body, "max_tokens", JSON_OPTIONAL, 1, 1000000, &max_tokens, &err) ||
	    !json_in_double(body, "max_completion_tokens", JSON_OPTIONAL, 1, 1000000, &max_completion_tokens, &err)) {
		status = handler_bad_field(r, "max_tokens", err);
		goto done;
	}
	if ((res = request_max_tokens_check(r->cfg, "max_tokens", (long long)max_tokens, refusal,
	        sizeof(refusal))).status != 0 ||
	    (res = request_max_tokens_check(r->cfg, "max_completion_tokens", (long long)max_completion_tokens,
	        refusal, sizeof(refusal))).status != 0) {
		status = http_error(r, res.status, res.message);
		goto done;
	}
	if (max_completion_tokens > 0)   /* the newer name wins, as before */
		max_tokens = max_completion_tokens;
	if (!json_in_bool(body, "stream", &stream)) {
		status = handler_bad_field(r, "stream", "must be a boolean");
		goto done;
	}
	if (json_object_object_get_ex(body, "stream_options", &so) && so != NULL &&
	    (!json_object_is_type(so, json_type_object) || !json_in_bool(so, "include_usage", &opts.include_usage))) {
		status = handler_bad_field(r, "stream_options", "must be {\"include_usage\": boolean}");
		goto done;
	}
	if (json_object_object_get_ex(body, "n", &v) && v != NULL && json_object_get_int(v) != 1) {
		status = handler_bad_field(r, "n", "only 1 is supported");
		goto done;
	}
	if ((messages = handler_body_messages(r, body, &status)) == NULL)
		goto done;
	struct chat_turn turn = {
		.route = r->route_name,
		.user_id = r->user_id,
		.messages = messages,
		.add_system_prompt = true,
		.model = model,
		.has_temperature = temperature >= 0,
		.temperature = temperature,
		.max_tokens = (int)max_tokens,
		.stop_when_client_leaves = true,
	};
	if (!stream) {
		if ((status = collect_run(r, &turn, &col)) == 200)
			status = http_reply_json(r, 200, completion_object(&col));
		goto done;
	}
	status = turn_stream_run(r, &turn, &dialect_openai, &opts, sizeof(opts), &err);
	if (status != 200)
		status = http_error(r, status, err);
done:
	sink_collect_free(&col);
	json_object_put(messages);
	json_object_put(body);
	return status;
}
