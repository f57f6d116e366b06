/* engine.c: prompt building, the upstream relay, and persistence of a turn. */
#include "engine.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "chat_limits.h"
#include "clock.h"
#include "config.h"
#include "json_in.h"
#include "json_out.h"
#include "live.h"
#include "metrics.h"
#include "log.h"
#include "replay.h"
#include "reply_retry.h"
#include "request.h"
#include "spend.h"
#include "store.h"
#include "upstream.h"
#include "workq.h"

#define PERSIST_EVERY_US 1000000     /* batch interval for a streaming reply */
#define PERSIST_FOLLOWED_US 200000   /* ... while a resumed client follows it */
#define TICK_MS          250

struct chat_turn_state {
	const struct chat_env   *env;
	const struct chat_turn  *turn;
	const struct chat_sink  *sink;
	struct store_turn        st;
	struct chat_stream_info  info;
	struct buf               content;      /* the whole reply so far */
	size_t                   persisted;    /* bytes of content already stored */
	struct buf               chunk_ends;   /* "{3,9,..." of unstored chunks */
	int64_t                  last_persist_us;
	int64_t                  last_write_us;
	struct live_gen          gen;          /* cancel flag, registered while running */
	struct buf               clean;        /* a delta made valid UTF-8 */
	bool                     client_gone;
	bool                     truncated;

	/* With a work queue (env->workq): the store is written off the loop. */
	bool                     persist_busy;    /* a batch is being stored */
	bool                     finish_waiting;  /* the end waits for that batch */
	struct chat_outcome      out;             /* the ending, once decided */
	long long                slot;            /* the caller's stream slot, 0: none */
	void                   (*finish_cb)(void *ctx, int status, const char *error);
	void                    *finish_ctx;

	/* The upstream request and its result. */
	char                    *body;         /* the request's JSON text, owned */
	size_t                   body_len;
	char                    *model;        /* info.model borrows it */
	struct upstream_stream_ops ops;
	struct upstream_result   res;
	int64_t                  t_start;
	char                     stateless_id[37];
};

/* Adds model and temperature: the turn's own, else the user's settings, else
 * the server's defaults. Returns the system prompt to use (borrowed from
 * *settings_out or cfg). */
static bool
prompt_settings(const struct config *cfg, const struct chat_turn *turn, const char *settings_json,
    json_object *req, const char **system_prompt_out, json_object **settings_out)
{
	json_object *settings = NULL, *v;
	const char *model = cfg->model, *system = cfg->system_prompt;
	double temperature = cfg->temperature;

	if (settings_json != NULL && (settings = json_tokener_parse(settings_json)) != NULL) {
		/* A stored model that allowed_models no longer allows is
		 * not paid for: the server's own applies. */
		if (json_object_object_get_ex(settings, "model", &v) && json_object_is_type(v, json_type_string) &&
		    spend_model_allowed(cfg->allowed_models, cfg->model, json_object_get_string(v)))
			model = json_object_get_string(v);
		if (json_object_object_get_ex(settings, "system_prompt", &v) && json_object_is_type(v, json_type_string))
			system = json_object_get_string(v);
		if (json_object_object_get_ex(settings, "temperature", &v) &&
		    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
			temperature = json_object_get_double(v);
	}
	if (turn->model != NULL)
		model = turn->model;
	if (turn->has_temperature)
		temperature = turn->temperature;
	*system_prompt_out = system;
	*settings_out = settings;  /* keeps model/system alive */
	return json_object_object_add(req, "model", json_object_new_string(model)) == 0 &&
	    json_object_object_add(req, "temperature", json_object_new_double(temperature)) == 0;
}

static bool
prompt_add(json_object *messages, const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	if (m == NULL)
		return false;
	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", json_object_new_string(content));
	return json_object_array_add(messages, m) == 0;
}

/* True if the client's own conversation starts with a system message. */
static bool
starts_with_system(json_object *messages)
{
	json_object *first = json_object_array_get_idx(messages, 0), *role;

	return first != NULL && json_object_object_get_ex(first, "role", &role) &&
	    json_object_is_type(role, json_type_string) &&
	    (strcmp(json_object_get_string(role), "system") == 0 ||
	     strcmp(json_object_get_string(role), "developer") == 0);
}

/* Builds the upstream request body. Returns a new object or NULL. */
static json_object *
prompt_build(const struct config *cfg, const struct chat_turn *turn, const char *settings_json,
    const char *history_json)
{
	json_object *req = json_object_new_object(), *messages = NULL, *history = NULL;
	json_object *settings = NULL, *opts, *from;
	const char *system;

	if (req == NULL || !prompt_settings(cfg, turn, settings_json, req, &system, &settings))
		goto failed;
	if ((messages = json_object_new_array()) == NULL)
		goto failed;
	if (history_json != NULL) {
		if ((history = json_tokener_parse(history_json)) == NULL ||
		    !json_object_is_type(history, json_type_array))
			goto failed;
		from = history;
	} else
		from = turn->messages;
	if (system[0] != '\0' && (turn->session_id != NULL ||
	    (turn->add_system_prompt && !starts_with_system(from))) &&
	    !prompt_add(messages, "system", system))
		goto failed;
	for (size_t i = 0; from != NULL && i < json_object_array_length(from); i++)
		json_object_array_add(messages, json_object_get(json_object_array_get_idx(from, i)));
	if (turn->session_id != NULL && turn->content != NULL &&
	    !prompt_add(messages, "user", turn->content))
		goto failed;
	json_object_object_add(req, "messages", messages);
	messages = NULL;
	json_object_object_add(req, "max_tokens",
	    json_object_new_int(turn->max_tokens > 0 ? turn->max_tokens : cfg->max_tokens));
	json_object_object_add(req, "stream", json_object_new_boolean(1));
	if ((opts = json_object_new_object()) == NULL)
		goto failed;
	json_object_object_add(opts, "include_usage", json_object_new_boolean(1));
	json_object_object_add(req, "stream_options", opts);
	json_object_put(history);
	json_object_put(settings);
	return req;
failed:
	json_object_put(messages);
	json_object_put(history);
	json_object_put(settings);
	json_object_put(req);
	return NULL;
}

/* A random (version 4) UUID: the id of a stateless turn's reply. */
static void
random_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t o = 0;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		memset(b, 0, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

/* A resumed client follows this reply: tell it (on any host) that more is
 * stored, so it reads now rather than at its next poll. */
static void
turn_tell_followers(struct chat_turn_state *ts)
{
	if (atomic_load(&ts->gen.followed) &&
	    store_notify_reply(ts->env->store, ts->st.reply_id) != STORE_OK)
		log_debug("reply %s: followers not told (they poll)", ts->st.reply_id);
}

/* Stores the content not yet persisted, with its chunk boundaries, on the
 * calling thread. */
static void
turn_persist_now(struct chat_turn_state *ts)
{
	enum store_rc rc;

	if (ts->content.len == ts->persisted || ts->turn->session_id == NULL)
		return;
	if (!buf_appendc(&ts->chunk_ends, '}'))
		return;
	rc = store_reply_append(ts->env->store, ts->st.reply_id, ts->content.data + ts->persisted,
	    ts->content.len - ts->persisted, ts->chunk_ends.data);
	if (rc == STORE_OK) {
		ts->persisted = ts->content.len;
		buf_reset(&ts->chunk_ends);
		turn_tell_followers(ts);
	} else {
		/* Keep the pending text and retry at the next batch; drop the brace. */
		ts->chunk_ends.len--;
		ts->chunk_ends.data[ts->chunk_ends.len] = '\0';
		log_warn("reply %s: batch not stored (%d), will retry", ts->st.reply_id, (int)rc);
	}
	ts->last_persist_us = clock_now_us();
}

/* A batch on its way to the database through the work queue: a copy of
 * the text and chunk ends, so the loop may go on appending. */
struct persist_job {
	struct chat_turn_state *ts;
	char                   *text;
	size_t                  len;
	char                   *chunk_ends;     /* "{...}" */
	size_t                  ends_taken;     /* bytes of ts->chunk_ends it covers */
	enum store_rc           rc;
};

static void turn_finish_submit(struct chat_turn_state *ts);

/* Work queue thread: the due batches of many replies, in one statement
 * (the streams of one process share its store). Reads nothing of each ts
 * but what stays fixed in a turn. */
static void
persist_jobs_work(void **args, size_t n)
{
	struct store_reply_batch batches[WORKQ_BATCH_MAX] = { { 0 } };
	struct persist_job *first = args[0];
	enum store_rc rc;

	for (size_t i = 0; i < n; i++) {
		struct persist_job *job = args[i];

		batches[i] = (struct store_reply_batch){ job->ts->st.reply_id, job->text, job->len,
			job->chunk_ends };
	}
	rc = store_reply_append_many(first->ts->env->store, n, batches);
	for (size_t i = 0; i < n; i++) {
		struct persist_job *job = args[i];

		if ((job->rc = rc) == STORE_OK)
			turn_tell_followers(job->ts);
	}
}

/* Loop thread: the batch is stored (or not: then it stays pending). */
static void
persist_job_done(void *arg)
{
	struct persist_job *job = arg;
	struct chat_turn_state *ts = job->ts;

	ts->persist_busy = false;
	if (job->rc == STORE_OK) {
		struct buf *ends = &ts->chunk_ends;

		ts->persisted += job->len;
		/* Drop the chunk ends it stored; what came since starts a list. */
		memmove(ends->data, ends->data + job->ends_taken, ends->len - job->ends_taken + 1);
		ends->len -= job->ends_taken;
		if (ends->len > 0)
			ends->data[0] = '{';
	} else
		log_warn("reply %s: batch not stored (%d), will retry", ts->st.reply_id, (int)job->rc);
	free(job->text);
	free(job->chunk_ends);
	free(job);
	if (ts->finish_waiting) {
		ts->finish_waiting = false;
		turn_finish_submit(ts);
	}
}

/* Stores the pending batch: on the calling thread, or with a work queue
 * through it (one batch at a time; a batch due meanwhile waits for the
 * next tick). */
static void
turn_persist(struct chat_turn_state *ts)
{
	struct persist_job *job;
	size_t len = ts->content.len - ts->persisted;

	if (ts->env->workq == NULL) {
		turn_persist_now(ts);
		return;
	}
	if (ts->persist_busy || len == 0 || ts->turn->session_id == NULL)
		return;
	ts->last_persist_us = clock_now_us();
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->text = malloc(len)) == NULL ||
	    (job->chunk_ends = malloc(ts->chunk_ends.len + 2)) == NULL)
		goto failed;
	job->ts = ts;
	job->len = len;
	memcpy(job->text, ts->content.data + ts->persisted, len);
	memcpy(job->chunk_ends, ts->chunk_ends.data, ts->chunk_ends.len);
	memcpy(job->chunk_ends + ts->chunk_ends.len, "}", 2);
	job->ends_taken = ts->chunk_ends.len;
	if (!workq_submit_batched(ts->env->workq, persist_jobs_work, persist_job_done, job))
		goto failed;
	ts->persist_busy = true;
	return;
failed:
	/* Out of memory: the batch stays pending for the next tick. */
	if (job != NULL) {
		free(job->text);
		free(job->chunk_ends);
		free(job);
	}
}

/* Batches are large unless someone follows the reply from the database. */
static int64_t
persist_interval(const struct chat_turn_state *ts)
{
	return atomic_load(&ts->gen.followed) ? PERSIST_FOLLOWED_US : PERSIST_EVERY_US;
}

static int
turn_on_open(void *ctx)
{
	struct chat_turn_state *ts = ctx;

	ts->info.seq = 0;
	if (!ts->sink->open(ts->sink->ctx, &ts->info)) {
		ts->client_gone = true;
		if (ts->turn->stop_when_client_leaves)
			return 1;
	}
	ts->last_write_us = clock_now_us();
	return 0;
}

static int
turn_on_delta(void *ctx, const char *text, size_t len)
{
	struct chat_turn_state *ts = ctx;
	char num[24];
	int n;

	if (atomic_load(&ts->gen.cancel))
		return 1;
	if (ts->truncated)
		return 0;
	/* Storage and framing need valid UTF-8: a delta that is not (a split
	 * character, a NUL) is repaired before it goes anywhere. */
	if (!utf8_valid(text, len)) {
		buf_reset(&ts->clean);
		if (!utf8_sanitize(&ts->clean, text, len))
			return 0;
		text = ts->clean.data;
		len = ts->clean.len;
		if (len == 0)
			return 0;
	}
	if (!buf_append(&ts->content, text, len)) {
		ts->truncated = true;  /* the reply outgrew LIMIT_REPLY_BYTES: keep what fits */
		return 0;
	}
	n = snprintf(num, sizeof(num), "%s%zu", ts->chunk_ends.len == 0 ? "{" : ",",
	    ts->content.len);
	if (n > 0)
		(void)buf_append(&ts->chunk_ends, num, (size_t)n);
	ts->info.seq++;
	ts->info.content = ts->content.data;
	ts->info.content_len = ts->content.len;
	if (!ts->client_gone && !ts->sink->delta(ts->sink->ctx, &ts->info, text, len)) {
		ts->client_gone = true;
		if (ts->turn->stop_when_client_leaves)
			return 1;
	}
	ts->info.chunk_index++;
	ts->last_write_us = clock_now_us();
	if (ts->last_write_us - ts->last_persist_us >= persist_interval(ts))
		turn_persist(ts);
	return 0;
}

static int
turn_on_tick(void *ctx)
{
	struct chat_turn_state *ts = ctx;
	int64_t now = clock_now_us();

	if (atomic_load(&ts->gen.cancel))
		return 1;
	if (ts->last_write_us == 0)
		return 0;  /* not open yet: nothing to keep alive */
	if (!ts->client_gone &&
	    now - ts->last_write_us >= (int64_t)ts->env->cfg->heartbeat_interval * 1000000) {
		if (!ts->sink->heartbeat(ts->sink->ctx)) {
			ts->client_gone = true;
			if (ts->turn->stop_when_client_leaves)
				return 1;
		}
		ts->last_write_us = now;
	}
	if (now - ts->last_persist_us >= persist_interval(ts))
		turn_persist(ts);
	return 0;
}

/* Maps the upstream's ending to the reply's status. */
static void
turn_outcome(const struct chat_turn_state *ts, const struct upstream_result *res,
    struct chat_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->prompt_tokens = res->prompt_tokens;
	out->completion_tokens = res->completion_tokens;
	out->finish_reason = res->finish_reason;
	out->error = res->error;
	if (res->error == UPSTREAM_OK) {
		out->status = REPLY_COMPLETE;
		return;
	}
	out->error_code = upstream_error_code(res->error);
	out->error_message = upstream_error_message(res->error, res->http_status);
	if (res->error == UPSTREAM_ABORTED && atomic_load(&ts->gen.cancel)) {
		out->status = REPLY_CANCELLED;
		out->error_code = "cancelled";
	} else if (res->error == UPSTREAM_ABORTED) {
		out->status = REPLY_INTERRUPTED;
		out->error_code = "client_gone";
		out->error_message = "The client went away";
	}
	else if (res->error == UPSTREAM_DROPPED || res->error == UPSTREAM_TIMEOUT_IDLE ||
	    res->error == UPSTREAM_MAX_DURATION)
		out->status = REPLY_INTERRUPTED;
	else
		out->status = REPLY_ERROR;
}

/* The stream's figures, as the end statement records them. */
static void
turn_metric_fill(const struct chat_turn_state *ts, struct store_stream_metric *m)
{
	const struct upstream_result *res = &ts->res;

	*m = (struct store_stream_metric){
		.route = ts->turn->route,
		.user_id = ts->turn->user_id,
		.session_id = ts->turn->session_id,
		.message_id = ts->turn->session_id != NULL ? ts->info.reply_id : NULL,
		.status = ts->out.status,
		.ttfb_ms = res->ttft_ms,
		.duration_ms = (double)(clock_now_us() - ts->t_start) / 1000.0,
		.chunks = res->deltas,
		.prompt_tokens = res->prompt_tokens,
		.completion_tokens = res->completion_tokens,
	};
}

/* Gives the turn's stream slot back, on the calling thread (blocking). */
static void
turn_slot_release(struct chat_turn_state *ts)
{
	if (ts->slot > 0 && store_stream_slot_release(ts->env->store, ts->slot) != STORE_OK)
		log_warn("stream slot %lld not released: it lapses by age", ts->slot);
	ts->slot = 0;
}

/* Session turns: stores the user's message and the reply placeholder. */
static int
turn_begin_session(struct chat_turn_state *ts, const char **error)
{
	const struct chat_env *env = ts->env;
	const struct chat_turn *turn = ts->turn;
	int history = env->cfg->history_messages + (turn->content == NULL ? 1 : 0);
	enum store_rc rc;

	rc = store_turn_begin(env->store, turn->user_id, turn->session_id, turn->content, history,
	    turn->idempotency_key, env->worker_id, turn->slot_ask, &ts->st);
	if (rc == STORE_CONFLICT)  /* a concurrent send with the same key won */
		rc = store_turn_begin(env->store, turn->user_id, turn->session_id, turn->content,
		    history, turn->idempotency_key, env->worker_id, turn->slot_ask, &ts->st);
	if (rc == STORE_OK) {
		ts->slot = ts->st.slot;   /* given back with the end */
		return 200;
	}
	if (rc == STORE_LIMITED) {
		log_info("stream cap: %s has %d open", turn->user_id != NULL ? "user" : "address",
		    turn->slot_ask->cap);
		*error = REQUEST_MSG_TOO_MANY_STREAMS;
		return 429;
	}
	*error = rc == STORE_NOT_FOUND ? "Session not found"
	    : rc == STORE_INVALID ? "content is required" : rc == STORE_UNAVAILABLE
	    ? "Database unavailable" : "Internal server error";
	return store_http_status(rc);
}

/* The reply's ending with the text not stored yet (its pointers into ts,
 * valid until ts is freed). False when out of memory. */
static bool
turn_end_fill(struct chat_turn_state *ts, struct reply_end *end)
{
	*end = (struct reply_end){
		.reply_id = ts->st.reply_id,
		.status = ts->out.status,
		.model = ts->info.model,
		.error_code = ts->out.error_code,
		.prompt_tokens = ts->res.prompt_tokens,
		.completion_tokens = ts->res.completion_tokens,
	};
	if (ts->content.len > ts->persisted) {
		/* The state is freed next: its chunk list may keep the brace. */
		if (!buf_appendc(&ts->chunk_ends, '}'))
			return false;
		end->text = ts->content.data + ts->persisted;
		end->len = ts->content.len - ts->persisted;
		end->chunk_ends = ts->chunk_ends.data;
	}
	return true;
}

static void
turn_state_free(struct chat_turn_state *ts)
{
	if (ts == NULL)
		return;
	free(ts->body);
	free(ts->model);
	store_turn_free(&ts->st);
	buf_free(&ts->content);
	buf_free(&ts->chunk_ends);
	buf_free(&ts->clean);
	free(ts);
}

/* Keeps only the request's text and model, and drops what it was built
 * from: a stream holds them for minutes, and the tree, the history and the
 * settings were a few KiB per stream (more with a long history) for
 * nothing once the text exists. False when out of memory. */
static bool
turn_keep_request(struct chat_turn_state *ts, json_object *req)
{
	json_object *model = NULL;
	const char *text, *m;
	size_t len = 0;

	(void)json_object_object_get_ex(req, "model", &model);
	m = json_object_get_string(model);
	if ((text = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len)) == NULL ||
	    (ts->body = strndup(text, len)) == NULL ||
	    (m != NULL && (ts->model = strdup(m)) == NULL))
		return false;
	ts->body_len = len;
	ts->info.model = ts->model;
	free(ts->st.history_json);
	free(ts->st.settings_json);
	ts->st.history_json = ts->st.settings_json = NULL;
	return true;
}

int
chat_turn_prepare(const struct chat_env *env, const struct chat_turn *turn,
    const struct chat_sink *sink, struct chat_turn_state **out, const char **error)
{
	struct chat_turn_state *ts;
	json_object *req = NULL;
	int status;

	*out = NULL;
	if ((ts = calloc(1, sizeof(*ts))) == NULL) {
		*error = "Out of memory";
		return 500;
	}
	ts->env = env;
	ts->turn = turn;
	ts->sink = sink;
	ts->slot = turn->slot;   /* a stateless turn's; a session turn's comes with it */
	ts->t_start = clock_now_us();
	buf_init(&ts->content, LIMIT_REPLY_BYTES);
	buf_init(&ts->chunk_ends, LIMIT_CHUNK_ENDS_BYTES);
	buf_init(&ts->clean, LIMIT_REPLY_BYTES);

	if (turn->session_id != NULL) {
		if ((status = turn_begin_session(ts, error)) != 200)
			goto failed;
		if (ts->st.attached_reply_id != NULL) {
			*out = ts;  /* the caller replays the earlier reply */
			return 200;
		}
		ts->info.reply_id = ts->st.reply_id;
	} else {
		enum store_rc rc = turn->user_id != NULL
		    ? store_settings_get(env->store, turn->user_id, &ts->st.settings_json) : STORE_OK;
		if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
			*error = "Database unavailable";
			status = store_http_status(rc);
			goto failed;
		}
		random_uuid(ts->stateless_id);
		ts->info.reply_id = ts->stateless_id;
	}
	ts->info.session_id = turn->session_id;
	ts->info.user_message_id = ts->st.user_message_id;
	ts->info.content = "";
	ts->info.created = (long)time(NULL);
	ts->last_persist_us = ts->t_start;

	if ((req = prompt_build(env->cfg, turn, ts->st.settings_json, ts->st.history_json)) == NULL ||
	    !turn_keep_request(ts, req)) {
		json_object_put(req);
		*error = "Internal server error";
		status = 500;
		if (turn->session_id != NULL)
			(void)store_reply_finish(env->store, ts->st.reply_id, REPLY_ERROR, NULL, -1, -1, "prompt");
		goto failed;
	}
	json_object_put(req);
	ts->ops.on_open = turn_on_open;
	ts->ops.on_delta = turn_on_delta;
	ts->ops.on_tick = turn_on_tick;
	ts->ops.ctx = ts;
	ts->ops.tick_ms = TICK_MS;
	live_register(&ts->gen, ts->info.reply_id, env->upstream);
	metrics_stream_started();
	*out = ts;
	return 200;
failed:
	turn_slot_release(ts);
	turn_state_free(ts);
	return status;
}

const char *
chat_turn_attached(const struct chat_turn_state *ts)
{
	return ts->st.attached_reply_id;
}

void
chat_turn_upstream(struct chat_turn_state *ts, const char **body, size_t *len,
    const struct upstream_stream_ops **ops, struct upstream_result **res)
{
	*body = ts->body;
	*len = ts->body_len;
	*ops = &ts->ops;
	*res = &ts->res;
}

/* The ending is decided: unregisters the generation and counts it. */
static void
turn_finish_begin(struct chat_turn_state *ts)
{
	const struct upstream_result *res = &ts->res;

	live_unregister(&ts->gen);
	turn_outcome(ts, res, &ts->out);
	metrics_stream_ended(chat_outcome_is_done(&ts->out) ? STREAM_END_COMPLETED : STREAM_END_ERROR,
	    (double)(clock_now_us() - ts->t_start) / 1e6, res->ttft_ms >= 0 ? res->ttft_ms / 1000.0 : -1);
	if (res->error != UPSTREAM_OK && res->error != UPSTREAM_ABORTED)
		metrics_upstream_error(res->error);
	metrics_tokens(res->prompt_tokens, res->completion_tokens);
}

/* Stores the rest of the reply, its ending and its figures, gives the
 * stream slot back and tells the followers: one statement (blocking). If
 * the database does not take it, each part goes its own way: the ending to
 * the retry thread, stored once the database is back; the figures and the
 * slot are tried once more. */
static void
turn_finish_store(struct chat_turn_state *ts)
{
	struct store *store = ts->env->store;
	struct store_stream_metric m;
	struct reply_end end;
	bool session = ts->turn->session_id != NULL, have_end = false;
	enum store_rc rc;

	if (session && !(have_end = turn_end_fill(ts, &end)))
		log_error("reply %s: out of memory for its end", ts->st.reply_id);
	turn_metric_fill(ts, &m);
	rc = store_turn_end(store, have_end ? &end : NULL, &m, ts->slot,
	    atomic_load(&ts->gen.followed));
	if (rc == STORE_OK) {
		ts->slot = 0;
		return;
	}
	log_warn("reply %s: end not stored (%d): its parts go on alone", session ? ts->st.reply_id : "-",
	    (int)rc);
	if (have_end && !reply_retry_enqueue(store, &end))
		have_end = false;
	if (session && !have_end)
		log_error("reply %s: final status %s not stored", ts->st.reply_id,
		    reply_status_name(ts->out.status));
	if (store_metric_insert(store, &m) != STORE_OK)
		log_warn("stream metric not stored for reply %s", session ? ts->st.reply_id : "-");
	turn_slot_release(ts);
}

/* Tells the client how it ended; returns the status as chat_turn_finish. */
static int
turn_finish_client(struct chat_turn_state *ts, const char **error)
{
	const struct upstream_result *res = &ts->res;

	if (!res->opened && ts->out.status != REPLY_CANCELLED) {
		*error = ts->out.error_message;
		return upstream_error_http_status(res->error);
	}
	/* Cancelled while still waiting for the upstream: the stream opens
	 * only to end, so the client sees its usual ending. */
	if (!res->opened && !ts->sink->open(ts->sink->ctx, &ts->info))
		ts->client_gone = true;
	ts->info.seq++;
	ts->info.content = ts->content.data != NULL ? ts->content.data : "";
	ts->info.content_len = ts->content.len;
	if (!ts->client_gone)
		ts->sink->end(ts->sink->ctx, &ts->info, &ts->out);
	return 200;
}

int
chat_turn_finish(struct chat_turn_state *ts, const char **error)
{
	int status;

	if (ts->st.attached_reply_id != NULL) {
		turn_slot_release(ts);   /* the replay is over */
		turn_state_free(ts);
		return 200;
	}
	turn_finish_begin(ts);
	turn_finish_store(ts);
	status = turn_finish_client(ts, error);
	turn_state_free(ts);
	return status;
}

static void
finish_job_work(void *arg)
{
	turn_finish_store(arg);
}

/* Loop thread: the ending is stored; the client learns it last, so a
 * client that reads the session at once finds the reply complete. */
static void
finish_job_done(void *arg)
{
	struct chat_turn_state *ts = arg;
	void (*cb)(void *, int, const char *) = ts->finish_cb;
	void *ctx = ts->finish_ctx;
	const char *error = NULL;
	int status = turn_finish_client(ts, &error);

	turn_state_free(ts);
	cb(ctx, status, error);
}

static void
turn_finish_submit(struct chat_turn_state *ts)
{
	if (!workq_submit(ts->env->workq, finish_job_work, finish_job_done, ts)) {
		log_warn("reply %s: no memory to queue its end: storing it on the loop", ts->st.reply_id);
		finish_job_work(ts);
		finish_job_done(ts);
	}
}

void
chat_turn_finish_async(struct chat_turn_state *ts,
    void (*done)(void *ctx, int status, const char *error), void *ctx)
{
	if (ts->st.attached_reply_id != NULL || ts->env->workq == NULL) {
		const char *error = NULL;
		int status = chat_turn_finish(ts, &error);

		done(ctx, status, error);
		return;
	}
	turn_finish_begin(ts);
	ts->finish_cb = done;
	ts->finish_ctx = ctx;
	if (ts->persist_busy)
		ts->finish_waiting = true;  /* persist_job_done submits it */
	else
		turn_finish_submit(ts);
}

int
chat_turn_run(const struct chat_env *env, const struct chat_turn *turn,
    const struct chat_sink *sink, const char **error)
{
	struct chat_turn_state *ts;
	const struct upstream_stream_ops *ops;
	struct upstream_result *res;
	const char *body;
	size_t len;
	int status;

	if ((status = chat_turn_prepare(env, turn, sink, &ts, error)) != 200)
		return status;
	if (chat_turn_attached(ts) != NULL) {
		status = chat_replay_run(env, turn->user_id, turn->session_id, chat_turn_attached(ts),
		    -1, sink, error);
		(void)chat_turn_finish(ts, error);
		return status;
	}
	chat_turn_upstream(ts, &body, &len, &ops, &res);
	upstream_stream(env->upstream, "/chat/completions", body, len, ops, res);
	return chat_turn_finish(ts, error);
}
