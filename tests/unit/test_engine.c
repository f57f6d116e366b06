/* test_engine.c: unit tests of the chat engine (core/engine.c) and of
 * replay (core/replay.c) against a fake store and a fake upstream
 * (fake_store.c, fake_upstream_client.c): what the sink of a client sees,
 * and what is persisted, for streams that complete, fail before or after
 * they open, are cancelled, lose their client, or are resumed. */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "engine.h"
#include "request.h"
#include "fake_store.h"
#include "fake_upstream_client.h"
#include "json_out.h"
#include "live.h"
#include "replay.h"
#include "reply_status.h"

#define USER    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define SESSION "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define REPLY   "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define EVENTS_MAX 64

/* The end a test recorded (by its text name) is a `done` ending. */
static bool
status_is_done(const char *name)
{
	enum reply_status st;

	return reply_status_parse(name, &st) && reply_status_is_done(st);
}

/* ---- a sink that records what a client would see ---- */

struct event {
	char          kind;        /* o open, d delta, h heartbeat, e end */
	unsigned long seq;
	char          text[256];   /* delta: its text; end: the reply so far */
	char          reply_id[40];
	char          status[16];  /* end */
	char          code[40];    /* end: error_code or "" */
	bool          has_message; /* end: error_message set */
	bool          resumed;     /* open */
	bool          user_message;/* open: user_message_id set */
};

static struct recorder {
	struct event ev[EVENTS_MAX];
	int          n, opens, deltas, heartbeats, ends;
	int          gone_at_delta;   /* > 0: the n-th delta (from 1) returns false */
	bool         gone_at_open;
} rec;

static struct event *
rec_add(char kind, const struct chat_stream_info *info)
{
	struct event *e;

	ck_assert_int_lt(rec.n, EVENTS_MAX);
	e = &rec.ev[rec.n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	if (info != NULL) {
		e->seq = info->seq;
		(void)snprintf(e->reply_id, sizeof(e->reply_id), "%s", info->reply_id);
	}
	return e;
}

static bool
sink_open(void *ctx, const struct chat_stream_info *info)
{
	struct event *e = rec_add('o', info);

	(void)ctx;
	e->resumed = info->resumed;
	e->user_message = info->user_message_id != NULL;
	rec.opens++;
	return !rec.gone_at_open;
}

static bool
sink_delta(void *ctx, const struct chat_stream_info *info, const char *text, size_t len)
{
	struct event *e = rec_add('d', info);

	(void)ctx;
	ck_assert_uint_lt(len, sizeof(e->text));
	memcpy(e->text, text, len);
	/* The reply so far always ends with this delta. */
	ck_assert_uint_ge(info->content_len, len);
	ck_assert(memcmp(info->content + info->content_len - len, text, len) == 0);
	return ++rec.deltas != rec.gone_at_delta;
}

static bool
sink_heartbeat(void *ctx)
{
	(void)ctx;
	rec_add('h', NULL);
	rec.heartbeats++;
	return true;
}

static void
sink_end(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *out)
{
	struct event *e = rec_add('e', info);

	(void)ctx;
	(void)snprintf(e->status, sizeof(e->status), "%s", reply_status_name(out->status));
	(void)snprintf(e->code, sizeof(e->code), "%s", out->error_code != NULL ? out->error_code : "");
	(void)snprintf(e->text, sizeof(e->text), "%.*s", (int)info->content_len, info->content);
	e->has_message = out->error_message != NULL;
	rec.ends++;
}

static const struct chat_sink sink = {
	.open = sink_open, .delta = sink_delta, .heartbeat = sink_heartbeat, .end = sink_end,
};

/* ---- fixture ---- */

static struct config cfg;
static struct chat_env env;
static int upstream_handle;   /* the fake's client is never dereferenced */

static void
setup(void)
{
	memset(&rec, 0, sizeof(rec));
	fake_store_reset();
	fake_upstream_reset();
	memset(&cfg, 0, sizeof(cfg));
	cfg.model = "test-model";
	cfg.allowed_models = "other-model, user-model";
	cfg.temperature = 0.5;
	cfg.max_tokens = 77;
	cfg.history_messages = 10;
	cfg.system_prompt = "You are terse.";
	cfg.heartbeat_interval = 3600;   /* tests that want heartbeats set 0 */
	cfg.upstream_first_token_timeout = 5;
	cfg.upstream_idle_timeout = 3;
	cfg.stream_max_duration = 10;
	env = (struct chat_env){ .cfg = &cfg, .store = NULL,
	    .upstream = (struct upstream *)&upstream_handle, .worker_id = "test:1" };
	fake_store_add_session(SESSION, USER, "[{\"role\":\"user\",\"content\":\"earlier\"},"
	    "{\"role\":\"assistant\",\"content\":\"reply\"}]");
}

static void
teardown(void)
{
	/* Every generation unregisters itself, whatever its ending. */
	ck_assert_int_eq(live_count(), 0);
	fake_upstream_reset();
}

static struct chat_turn
session_turn(const char *content)
{
	return (struct chat_turn){ .route = "test", .user_id = USER, .session_id = SESSION,
		.content = content };
}

static void
script(const char *d0, const char *d1, const char *d2, enum upstream_error end)
{
	fake_upstream.deltas[0] = d0;
	fake_upstream.deltas[1] = d0 != NULL ? d1 : NULL;
	fake_upstream.deltas[2] = d0 != NULL && d1 != NULL ? d2 : NULL;
	fake_upstream.end = end;
}

static int
run(const struct chat_turn *turn, const char **error)
{
	*error = NULL;
	return chat_turn_run(&env, turn, &sink, error);
}

/* The kinds of the recorded events, e.g. "oddde". */
static const char *
kinds(void)
{
	static char k[EVENTS_MAX + 1];

	for (int i = 0; i < rec.n; i++)
		k[i] = rec.ev[i].kind;
	k[rec.n] = '\0';
	return k;
}

static struct event *
last_end(void)
{
	ck_assert_int_eq(rec.ends, 1);
	ck_assert_int_eq(rec.ev[rec.n - 1].kind, 'e');
	return &rec.ev[rec.n - 1];
}

static struct fake_reply
stored(const char *id)
{
	struct fake_reply r;

	ck_assert_ptr_nonnull(id);
	ck_assert_msg(fake_store_get(id, &r), "reply %s not stored", id);
	return r;
}

/* ---- chat_turn_run ---- */

START_TEST(turn_streams_open_deltas_then_one_end)
{
	struct chat_turn t = session_turn("Hi there");
	const char *error;
	struct event *e;

	script("Hel", "lo", " world", UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "oddde");
	ck_assert_uint_eq(rec.ev[0].seq, 0);
	ck_assert(rec.ev[0].user_message);
	ck_assert(!rec.ev[0].resumed);
	ck_assert_str_eq(rec.ev[1].text, "Hel");
	ck_assert_str_eq(rec.ev[2].text, "lo");
	ck_assert_str_eq(rec.ev[3].text, " world");
	for (int i = 1; i <= 3; i++)
		ck_assert_uint_eq(rec.ev[i].seq, (unsigned long)i);
	e = last_end();
	ck_assert_uint_eq(e->seq, 4);
	ck_assert_str_eq(e->status, "complete");
	ck_assert_str_eq(e->code, "");
	ck_assert(!e->has_message);
	ck_assert_str_eq(e->text, "Hello world");
	/* One reply id throughout, the one the store inserted. */
	for (int i = 0; i < rec.n; i++)
		ck_assert_str_eq(rec.ev[i].reply_id, fake_store_reply_id(0));
	ck_assert_int_eq(fake_upstream.calls, 1);
	ck_assert_str_eq(fake_upstream.path, "/chat/completions");
}
END_TEST

START_TEST(turn_persists_the_whole_reply)
{
	struct chat_turn t = session_turn("Hi there");
	const char *error;
	struct fake_reply r;

	script("Hel", "lo", " world", UPSTREAM_OK);
	fake_upstream.prompt_tokens = 12;
	fake_upstream.completion_tokens = 3;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_int_eq(fake_store.begins, 1);
	ck_assert_str_eq(fake_store.last_content, "Hi there");
	ck_assert_int_eq(fake_store.last_history, cfg.history_messages);
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "complete");
	ck_assert_str_eq(r.content, "Hello world");
	ck_assert_str_eq(r.ends, "3,5,11");   /* where each delta ended: replay needs it */
	ck_assert_str_eq(r.error, "");
	ck_assert_str_eq(r.model, "test-model");
	ck_assert_int_eq(r.prompt_tokens, 12);
	ck_assert_int_eq(r.completion_tokens, 3);
	ck_assert_int_eq(r.finishes, 1);
	ck_assert_str_eq(r.worker_id, "test:1");
	ck_assert_int_eq(fake_store.metrics, 1);
	ck_assert_str_eq(fake_store.metric_status, "complete");
	ck_assert_int_eq(fake_store.metric_chunks, 3);
}
END_TEST

/* The prompt: system prompt, the stored history, the new message. */
START_TEST(turn_builds_the_prompt)
{
	struct chat_turn t = session_turn("And now?");
	json_object *req, *msgs, *m, *v;
	const char *error;
	static const char *const want[][2] = {
		{ "system", "You are terse." }, { "user", "earlier" },
		{ "assistant", "reply" }, { "user", "And now?" },
	};

	script("ok", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "model", &v));
	ck_assert_str_eq(json_object_get_string(v), "test-model");
	ck_assert(json_object_object_get_ex(req, "temperature", &v));
	ck_assert(json_object_get_double(v) == 0.5);
	ck_assert(json_object_object_get_ex(req, "max_tokens", &v));
	ck_assert_int_eq(json_object_get_int(v), 77);
	ck_assert(json_object_object_get_ex(req, "stream", &v) && json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(req, "messages", &msgs));
	ck_assert_uint_eq(json_object_array_length(msgs), 4);
	for (size_t i = 0; i < 4; i++) {
		m = json_object_array_get_idx(msgs, i);
		ck_assert(json_object_object_get_ex(m, "role", &v));
		ck_assert_str_eq(json_object_get_string(v), want[i][0]);
		ck_assert(json_object_object_get_ex(m, "content", &v));
		ck_assert_str_eq(json_object_get_string(v), want[i][1]);
	}
	json_object_put(req);
}
END_TEST

/* A model stored in the settings that allowed_models no longer allows is
 * not asked for: the server's own is. */
START_TEST(turn_prompt_settings_model_no_longer_allowed)
{
	struct chat_turn t = session_turn("x");
	json_object *req, *v;
	const char *error;

	fake_store.settings_json = "{\"model\":\"retired-model\"}";
	script("ok", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "model", &v));
	ck_assert_str_eq(json_object_get_string(v), "test-model");
	json_object_put(req);
}
END_TEST

/* The user's settings beat the server's; the turn's own beat both. */
START_TEST(turn_prompt_settings_override)
{
	struct chat_turn t = session_turn("x");
	json_object *req, *msgs, *v;
	const char *error;

	fake_store.settings_json = "{\"model\":\"user-model\",\"system_prompt\":\"Be kind.\","
	    "\"temperature\":1.5}";
	script("ok", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "model", &v));
	ck_assert_str_eq(json_object_get_string(v), "user-model");
	ck_assert(json_object_object_get_ex(req, "temperature", &v));
	ck_assert(json_object_get_double(v) == 1.5);
	ck_assert(json_object_object_get_ex(req, "messages", &msgs));
	ck_assert(json_object_object_get_ex(json_object_array_get_idx(msgs, 0), "content", &v));
	ck_assert_str_eq(json_object_get_string(v), "Be kind.");
	json_object_put(req);

	t.model = "turn-model";
	t.has_temperature = true;
	t.temperature = 0.0;
	t.max_tokens = 5;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "model", &v));
	ck_assert_str_eq(json_object_get_string(v), "turn-model");
	ck_assert(json_object_object_get_ex(req, "temperature", &v));
	ck_assert(json_object_get_double(v) == 0.0);
	ck_assert(json_object_object_get_ex(req, "max_tokens", &v));
	ck_assert_int_eq(json_object_get_int(v), 5);
	json_object_put(req);
	/* The stored model is the one asked. */
	ck_assert_str_eq(stored(fake_store_reply_id(1)).model, "turn-model");
}
END_TEST

/* content NULL: answer the last stored message, one more history row, no
 * new user message in the prompt. */
START_TEST(turn_answers_the_stored_message)
{
	struct chat_turn t = session_turn(NULL);
	json_object *req, *msgs;
	const char *error;

	script("ok", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert(fake_store.last_content_null);
	ck_assert_int_eq(fake_store.last_history, cfg.history_messages + 1);
	ck_assert(!rec.ev[0].user_message);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "messages", &msgs));
	ck_assert_uint_eq(json_object_array_length(msgs), 3);   /* system + 2 stored */
	json_object_put(req);
}
END_TEST

START_TEST(turn_unknown_session_is_404)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	t.session_id = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";
	script("never", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 404);
	ck_assert_ptr_nonnull(error);
	ck_assert_int_eq(rec.n, 0);
	ck_assert_int_eq(fake_upstream.calls, 0);

	/* Someone else's session is unknown too. */
	t.session_id = SESSION;
	t.user_id = NULL;
	ck_assert_int_eq(run(&t, &error), 404);
	ck_assert_int_eq(rec.n, 0);
	ck_assert_int_eq(fake_upstream.calls, 0);
}
END_TEST

START_TEST(turn_database_down_is_503)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	fake_store.begin_rc = STORE_UNAVAILABLE;
	script("never", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 503);
	ck_assert_ptr_nonnull(error);
	ck_assert_int_eq(rec.n, 0);
	ck_assert_int_eq(fake_upstream.calls, 0);
}
END_TEST

/* A send that lost the race for its Idempotency-Key is retried once. */
START_TEST(turn_conflict_is_retried_once)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	fake_store.begin_rc = STORE_CONFLICT;
	ck_assert_int_eq(run(&t, &error), 409);
	ck_assert_int_eq(fake_store.begins, 2);
	ck_assert_int_eq(rec.n, 0);
}
END_TEST

/* The upstream fails before the stream opens: the caller renders a status,
 * the sink got nothing, the placeholder reply is closed as an error. */
START_TEST(turn_upstream_error_before_open_is_502)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	fake_upstream.fail = UPSTREAM_HTTP;
	fake_upstream.http_status = 500;
	ck_assert_int_eq(run(&t, &error), 502);
	ck_assert_ptr_nonnull(error);
	ck_assert_int_eq(rec.n, 0);
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "error");
	ck_assert_str_eq(r.error, "upstream_http_error");
	ck_assert_uint_eq(r.len, 0);
	ck_assert_str_eq(fake_store.metric_status, "error");
}
END_TEST

START_TEST(turn_first_token_timeout_is_504)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	fake_upstream.fail = UPSTREAM_TIMEOUT_FIRST_TOKEN;
	fake_upstream.ticks_before_open = 3;
	ck_assert_int_eq(run(&t, &error), 504);
	ck_assert_ptr_nonnull(error);
	ck_assert_int_eq(rec.n, 0);   /* not even a heartbeat before the open */
	ck_assert_str_eq(stored(fake_store_reply_id(0)).status, "error");
}
END_TEST

/* The connection drops mid-stream: the client gets an error end after the
 * deltas it saw, and the partial reply is kept as interrupted. */
START_TEST(turn_dropped_mid_stream_keeps_the_partial_reply)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;
	struct event *e;

	script("Par", "tial", NULL, UPSTREAM_DROPPED);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "odde");
	e = last_end();
	ck_assert_str_eq(e->status, "interrupted");
	ck_assert_str_eq(e->code, "upstream_dropped");
	ck_assert(e->has_message);
	ck_assert_uint_eq(e->seq, 3);
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "interrupted");
	ck_assert_str_eq(r.error, "upstream_dropped");
	ck_assert_str_eq(r.content, "Partial");
	ck_assert_str_eq(r.ends, "3,7");
}
END_TEST

START_TEST(turn_error_event_mid_stream)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	script("Some", NULL, NULL, UPSTREAM_STREAM_ERROR);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "ode");
	ck_assert_str_eq(last_end()->status, "error");
	ck_assert_str_eq(last_end()->code, "upstream_stream_error");
	ck_assert(!status_is_done(last_end()->status));
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "error");
	ck_assert_str_eq(r.content, "Some");
}
END_TEST

static void
cancel_at(int step, int when)
{
	if (step == when) {
		ck_assert_int_eq(live_count(), 1);
		ck_assert(live_cancel(fake_store_reply_id(0)));
	}
}

static void cancel_before_delta_2(int step) { cancel_at(step, 2); }
static void cancel_before_open(int step) { cancel_at(step, -1); }

/* A cancel (the NOTIFY handler calls live_cancel) stops the transfer at the
 * next callback; the client gets a `done` with the partial reply. */
START_TEST(turn_cancel_mid_stream)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;
	struct event *e;

	script("one ", "two ", "three", UPSTREAM_OK);
	fake_upstream.hook = cancel_before_delta_2;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_int_eq(fake_upstream.wakeups, 1);   /* the transfer was woken */
	ck_assert_int_eq(fake_upstream.deltas_taken, 2);
	ck_assert_str_eq(kinds(), "odde");
	e = last_end();
	ck_assert_str_eq(e->status, "cancelled");
	ck_assert_str_eq(e->code, "cancelled");
	ck_assert(status_is_done(e->status));
	ck_assert_str_eq(e->text, "one two ");
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "cancelled");
	ck_assert_str_eq(r.content, "one two ");
	/* Once it ended, nothing is left to cancel. */
	ck_assert(!live_cancel(fake_store_reply_id(0)));
}
END_TEST

/* Cancelled while waiting for the first token: the stream opens only to
 * end, so the client sees its usual ending, not an HTTP error. */
START_TEST(turn_cancel_before_open)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	script("never", NULL, NULL, UPSTREAM_OK);
	fake_upstream.hook = cancel_before_open;
	fake_upstream.ticks_before_open = 1;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "oe");
	ck_assert_str_eq(last_end()->status, "cancelled");
	ck_assert_int_eq(fake_upstream.deltas_taken, 0);
	ck_assert_str_eq(stored(fake_store_reply_id(0)).status, "cancelled");
}
END_TEST

/* The client leaves: the generation goes on and is stored whole; the sink
 * hears nothing more, not even an end. */
START_TEST(turn_client_gone_keeps_generating)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	script("a", "b", "c", UPSTREAM_OK);
	rec.gone_at_delta = 1;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "od");
	ck_assert_int_eq(fake_upstream.deltas_taken, 3);
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "complete");
	ck_assert_str_eq(r.content, "abc");
	ck_assert_str_eq(r.ends, "1,2,3");
}
END_TEST

START_TEST(turn_client_gone_stops_when_asked)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	t.stop_when_client_leaves = true;
	script("a", "b", "c", UPSTREAM_OK);
	rec.gone_at_delta = 2;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "odd");
	ck_assert_int_eq(fake_upstream.deltas_taken, 1);
	r = stored(fake_store_reply_id(0));
	ck_assert_str_eq(r.status, "interrupted");
	ck_assert_str_eq(r.error, "client_gone");
	ck_assert_str_eq(r.content, "ab");
}
END_TEST

START_TEST(turn_client_gone_at_open_stops_when_asked)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	t.stop_when_client_leaves = true;
	script("a", "b", NULL, UPSTREAM_OK);
	rec.gone_at_open = true;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "o");
	ck_assert_int_eq(fake_upstream.deltas_taken, 0);
	ck_assert_str_eq(stored(fake_store_reply_id(0)).status, "interrupted");
}
END_TEST

/* A resumed client follows the reply from the database: the generator
 * then stores it in small batches, so the follower is never far behind. */
static void
followed_and_slow(int step)
{
	struct fake_reply r;

	if (step == 0)
		ck_assert(live_follow(fake_store_reply_id(0)));
	if (step == 2) {
		ck_assert(fake_store_get(fake_store_reply_id(0), &r));
		ck_assert_str_eq(r.content, "ab");   /* stored while streaming */
		ck_assert_str_eq(r.ends, "1,2");
		ck_assert_str_eq(r.status, "streaming");
	}
	if (step > 0)   /* longer than the followed batch interval (200 ms) */
		(void)nanosleep(&(struct timespec){ 0, 220 * 1000 * 1000 }, NULL);
}

START_TEST(turn_persists_in_batches_while_followed)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	script("a", "b", "c", UPSTREAM_OK);
	fake_upstream.hook = followed_and_slow;
	ck_assert_int_eq(run(&t, &error), 200);
	r = stored(fake_store_reply_id(0));
	ck_assert_int_eq(r.appends, 2);
	ck_assert_str_eq(r.content, "abc");
	ck_assert_str_eq(r.ends, "1,2,3");
	ck_assert_str_eq(r.status, "complete");
}
END_TEST

/* Heartbeats on quiet ticks, but only once the stream is open. */
START_TEST(turn_heartbeats_only_after_open)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	cfg.heartbeat_interval = 0;
	script("a", "b", NULL, UPSTREAM_OK);
	fake_upstream.ticks_before_open = 3;
	fake_upstream.ticks_between = 1;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "ohdhde");
}
END_TEST

/* A delta that is not valid UTF-8 is repaired before the client or the
 * database sees it. */
START_TEST(turn_repairs_invalid_utf8)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	script("ok \xff", "caf\xc3", NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "odde");
	for (int i = 1; i <= 2; i++)
		ck_assert_msg(utf8_valid(rec.ev[i].text, strlen(rec.ev[i].text)), "delta %d", i);
	r = stored(fake_store_reply_id(0));
	ck_assert(utf8_valid(r.content, r.len));
	ck_assert(strncmp(r.content, "ok ", 3) == 0);
}
END_TEST

/* A resend with a known Idempotency-Key replays the earlier reply instead
 * of asking the upstream again. */
START_TEST(turn_idempotent_resend_replays)
{
	struct chat_turn t = session_turn("hi");
	const char *error;

	t.idempotency_key = "key-1";
	script("Hel", "lo", NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	memset(&rec, 0, sizeof(rec));
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_int_eq(fake_upstream.calls, 1);
	ck_assert_int_eq(fake_store.nreplies, 1);
	ck_assert_str_eq(kinds(), "odde");
	ck_assert_str_eq(rec.ev[1].text, "Hel");
	ck_assert_str_eq(rec.ev[2].text, "lo");
	ck_assert_str_eq(last_end()->status, "complete");
	ck_assert_str_eq(rec.ev[0].reply_id, fake_store_reply_id(0));

	/* Another key is another turn. */
	t.idempotency_key = "key-2";
	memset(&rec, 0, sizeof(rec));
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_int_eq(fake_upstream.calls, 2);
	ck_assert_int_eq(fake_store.nreplies, 2);
}
END_TEST

/* Stateless turns (the client sends the conversation): a fresh reply id,
 * nothing stored but the metric. */
START_TEST(turn_stateless_stores_nothing)
{
	json_object *msgs = json_tokener_parse("[{\"role\":\"user\",\"content\":\"q\"}]");
	struct chat_turn t = { .route = "test", .messages = msgs, .add_system_prompt = true };
	json_object *req, *sent, *v;
	const char *error;

	script("x", "y", NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "odde");
	ck_assert(auth_is_uuid(rec.ev[0].reply_id));
	ck_assert_int_eq(fake_store.begins, 0);
	ck_assert_int_eq(fake_store.nreplies, 0);
	ck_assert_int_eq(fake_store.metrics, 1);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "messages", &sent));
	ck_assert_uint_eq(json_object_array_length(sent), 2);
	ck_assert(json_object_object_get_ex(json_object_array_get_idx(sent, 0), "role", &v));
	ck_assert_str_eq(json_object_get_string(v), "system");
	json_object_put(req);

	/* Without add_system_prompt the conversation goes as sent. */
	t.add_system_prompt = false;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_ptr_nonnull(req = json_tokener_parse(fake_upstream.body));
	ck_assert(json_object_object_get_ex(req, "messages", &sent));
	ck_assert_uint_eq(json_object_array_length(sent), 1);
	json_object_put(req);
	json_object_put(msgs);
}
END_TEST

/* The database is down when the reply ends: the client still gets its
 * end at once, and the reply is stored when the database is back. */
START_TEST(turn_end_stored_after_the_database_returns)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	script("late", NULL, NULL, UPSTREAM_OK);
	fake_store.append_rc = STORE_UNAVAILABLE;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(kinds(), "ode");
	ck_assert_str_eq(last_end()->status, "complete");
	ck_assert_str_eq(stored(fake_store_reply_id(0)).status, "streaming");
	fake_store.append_rc = STORE_OK;
	for (int i = 0; i < 60; i++) {    /* the retry thread tries every second */
		r = stored(fake_store_reply_id(0));
		if (strcmp(r.status, "streaming") != 0)
			break;
		(void)nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
	ck_assert_str_eq(r.status, "complete");
	ck_assert_str_eq(r.content, "late");
	ck_assert_str_eq(r.ends, "4");
}
END_TEST

/* The stream slot is taken with the turn and given back with its end,
 * each in the one statement that stores them. */
START_TEST(turn_slot_taken_with_the_turn_and_back_with_the_end)
{
	struct store_slot_ask ask = { "u:" USER, 2, 360 };
	struct chat_turn t = session_turn("hi");
	const char *error;

	t.slot_ask = &ask;
	script("a", "b", NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(last_end()->status, "complete");
	ck_assert_int_eq(fake_store.slots_taken, 1);
	ck_assert_int_eq(fake_store.slots_released, 1);
	ck_assert_int_eq(fake_store.slots_held, 0);
	ck_assert_int_eq(fake_store.turn_ends, 1);
	ck_assert_int_eq(fake_store.metrics, 1);
}
END_TEST

/* At the cap: 429, nothing stored, nothing sent upstream. */
START_TEST(turn_at_the_stream_cap_is_refused)
{
	struct store_slot_ask ask = { "u:" USER, 1, 360 };
	struct chat_turn t = session_turn("hi");
	const char *error;

	t.slot_ask = &ask;
	fake_store.slots_held = 1;   /* another stream holds the only one */
	ck_assert_int_eq(run(&t, &error), 429);
	ck_assert_str_eq(error, REQUEST_MSG_TOO_MANY_STREAMS);
	ck_assert_int_eq(rec.n, 0);
	ck_assert_int_eq(fake_store.nreplies, 0);
	ck_assert_int_eq(fake_upstream.calls, 0);
	ck_assert_int_eq(fake_store.metrics, 0);
}
END_TEST

/* The end statement fails: the ending goes to the retry thread, and the
 * figures and the slot are still tried on their own. */
START_TEST(turn_end_refused_still_gives_the_slot_back)
{
	struct store_slot_ask ask = { "u:" USER, 2, 360 };
	struct chat_turn t = session_turn("hi");
	const char *error;
	struct fake_reply r;

	t.slot_ask = &ask;
	script("late", NULL, NULL, UPSTREAM_OK);
	fake_store.end_rc = STORE_UNAVAILABLE;
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_str_eq(last_end()->status, "complete");
	ck_assert_int_eq(fake_store.slots_held, 0);
	ck_assert_int_eq(fake_store.metrics, 1);
	for (int i = 0; i < 60; i++) {    /* the retry thread tries every second */
		r = stored(fake_store_reply_id(0));
		if (strcmp(r.status, "streaming") != 0)
			break;
		(void)nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
	ck_assert_str_eq(r.status, "complete");
	ck_assert_str_eq(r.content, "late");
}
END_TEST

/* A stateless turn's slot, taken by its caller, goes back with its end. */
START_TEST(turn_stateless_gives_its_slot_back)
{
	json_object *msgs = json_tokener_parse("[{\"role\":\"user\",\"content\":\"q\"}]");
	struct chat_turn t = { .route = "test", .messages = msgs, .slot = 7 };
	const char *error;

	fake_store.slots_held = 1;
	script("x", NULL, NULL, UPSTREAM_OK);
	ck_assert_int_eq(run(&t, &error), 200);
	ck_assert_int_eq(fake_store.slots_released, 1);
	ck_assert_int_eq(fake_store.slots_held, 0);
	json_object_put(msgs);
}
END_TEST

/* ---- chat_replay_run ---- */

static int
replay(const char *reply_id, long after, const char **error)
{
	*error = NULL;
	return chat_replay_run(&env, USER, SESSION, reply_id, after, &sink, error);
}

START_TEST(replay_after_seq_sends_the_rest_then_the_end)
{
	const char *error;
	struct event *e;

	fake_store_add_reply(SESSION, REPLY, "complete", "Hello world", "3,5,11", "");
	ck_assert_int_eq(replay(REPLY, 1, &error), 200);
	ck_assert_str_eq(kinds(), "odde");
	ck_assert(rec.ev[0].resumed);
	ck_assert_uint_eq(rec.ev[1].seq, 2);
	ck_assert_str_eq(rec.ev[1].text, "lo");
	ck_assert_uint_eq(rec.ev[2].seq, 3);
	ck_assert_str_eq(rec.ev[2].text, " world");
	e = last_end();
	ck_assert_uint_eq(e->seq, 4);
	ck_assert_str_eq(e->status, "complete");
	ck_assert_str_eq(e->text, "Hello world");
	ck_assert_str_eq(e->reply_id, REPLY);
	ck_assert_int_eq(fake_store.follows, 0);   /* nothing to follow */
}
END_TEST

START_TEST(replay_from_the_start)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "complete", "Hello world", "3,5,11", "");
	ck_assert_int_eq(replay(REPLY, -1, &error), 200);
	ck_assert_str_eq(kinds(), "oddde");
	ck_assert(!rec.ev[0].resumed);
	ck_assert_str_eq(rec.ev[1].text, "Hel");
	ck_assert_uint_eq(last_end()->seq, 4);
}
END_TEST

/* reply_id NULL: the session's latest reply. */
START_TEST(replay_latest_reply)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "complete", "old", "3", "");
	fake_store_add_reply(SESSION, "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee", "complete", "new",
	    "3", "");
	ck_assert_int_eq(replay(NULL, -1, &error), 200);
	ck_assert_str_eq(kinds(), "ode");
	ck_assert_str_eq(rec.ev[1].text, "new");
	ck_assert_str_eq(rec.ev[0].reply_id, "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee");
}
END_TEST

START_TEST(replay_unknown_reply_is_404)
{
	const char *error;

	ck_assert_int_eq(replay(REPLY, -1, &error), 404);
	ck_assert_ptr_nonnull(error);
	ck_assert_int_eq(rec.n, 0);
	/* Another owner's reply is unknown too. */
	fake_store_add_reply(SESSION, REPLY, "complete", "Hello", "5", "");
	ck_assert_int_eq(chat_replay_run(&env, NULL, SESSION, REPLY, -1, &sink, &error), 404);
	ck_assert_int_eq(rec.n, 0);
}
END_TEST

/* Seen all of a finished reply, end included (seq n + 1): nothing to send. */
START_TEST(replay_seen_all_is_204)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "complete", "Hello world", "3,5,11", "");
	ck_assert_int_eq(replay(REPLY, 4, &error), 204);
	ck_assert_int_eq(rec.n, 0);
	/* Seen every delta but not the end: the end alone. */
	ck_assert_int_eq(replay(REPLY, 3, &error), 200);
	ck_assert_str_eq(kinds(), "oe");
	ck_assert_uint_eq(last_end()->seq, 4);
}
END_TEST

/* A reply cut short by a dead worker may hold less than the client saw:
 * it gets the ending rather than a 204. */
START_TEST(replay_worker_died_is_never_204)
{
	const char *error;
	struct event *e;

	fake_store_add_reply(SESSION, REPLY, "interrupted", "Hel", "3", "worker_died");
	ck_assert_int_eq(replay(REPLY, 5, &error), 200);
	ck_assert_str_eq(kinds(), "oe");
	e = last_end();
	ck_assert_str_eq(e->status, "interrupted");
	ck_assert_str_eq(e->code, "worker_died");
	ck_assert(e->has_message);
	ck_assert_uint_eq(e->seq, 6);   /* after whatever the client has seen */
}
END_TEST

/* Still 'streaming' but its worker stopped updating it: interrupted, in
 * the database first, so the client's ending is the stored one. */
START_TEST(replay_stale_reply_ends_interrupted)
{
	const char *error;
	struct fake_reply *r, stored;

	r = fake_store_add_reply(SESSION, REPLY, "streaming", "Hel", "3", "");
	r->stale = true;
	ck_assert_int_eq(replay(REPLY, -1, &error), 200);
	ck_assert_str_eq(kinds(), "ode");
	ck_assert_str_eq(last_end()->status, "interrupted");
	ck_assert_str_eq(last_end()->code, "worker_died");
	ck_assert_int_eq(fake_store.follows, 0);
	ck_assert(fake_store_get(REPLY, &stored));
	ck_assert_str_eq(stored.status, "interrupted");
	ck_assert_str_eq(stored.error, "worker_died");
}
END_TEST

/* A reply still generating (elsewhere) is followed until it ends. */
static void
generate_elsewhere(int nth)
{
	if (nth == 1)
		fake_store_grow(REPLY, "lo", NULL);
	else if (nth == 2)
		fake_store_grow(REPLY, " world", "complete");
}

START_TEST(replay_follows_a_live_reply)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "streaming", "Hel", "3", "");
	fake_store.on_read = generate_elsewhere;
	ck_assert_int_eq(replay(REPLY, 0, &error), 200);
	ck_assert_str_eq(kinds(), "oddde");
	ck_assert_str_eq(rec.ev[1].text, "Hel");
	ck_assert_str_eq(rec.ev[2].text, "lo");
	ck_assert_str_eq(rec.ev[3].text, " world");
	ck_assert_str_eq(last_end()->status, "complete");
	ck_assert_uint_eq(last_end()->seq, 4);
	ck_assert_int_eq(fake_store.reads, 3);
	ck_assert_int_eq(fake_store.follows, 1);   /* asked its generator for small batches */
}
END_TEST

/* A batch whose ends are stored before its text (ends ahead of content)
 * waits for the next poll instead of sending bytes that are not there. */
static void
text_arrives(int nth)
{
	struct fake_reply *r = &fake_store.replies[0];   /* replay runs on this thread */

	if (nth == 1) {
		memcpy(r->content + r->len, "lo", 3);
		r->len += 2;
		(void)snprintf(r->status, sizeof(r->status), "complete");
	}
}

START_TEST(replay_waits_for_a_batch_in_flight)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "streaming", "Hel", "3,5", "");
	fake_store.on_read = text_arrives;
	ck_assert_int_eq(replay(REPLY, -1, &error), 200);
	ck_assert_str_eq(kinds(), "odde");
	ck_assert_str_eq(rec.ev[1].text, "Hel");
	ck_assert_str_eq(rec.ev[2].text, "lo");
	ck_assert_str_eq(last_end()->status, "complete");
	ck_assert_int_eq(fake_store.reads, 2);
}
END_TEST

/* The row vanishes while followed (the session was deleted). */
static void
delete_session(int nth)
{
	if (nth == 1)
		fake_store.nreplies = 0;
}

START_TEST(replay_reply_vanishes_while_followed)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "streaming", "Hel", "3", "");
	fake_store.on_read = delete_session;
	ck_assert_int_eq(replay(REPLY, -1, &error), 200);
	ck_assert_str_eq(kinds(), "ode");
	ck_assert_str_eq(last_end()->status, "error");
	ck_assert_str_eq(last_end()->code, "replay_failed");
	ck_assert_uint_eq(last_end()->seq, 2);
	/* The end's content is the reply so far (what the client has), not
	 * the text of a row already freed. */
	ck_assert_str_eq(last_end()->text, "Hel");
}
END_TEST

/* Following a reply that never ends stops at stream_max_duration. */
START_TEST(replay_follow_stops_at_max_duration)
{
	const char *error;

	cfg.stream_max_duration = 0;
	fake_store_add_reply(SESSION, REPLY, "streaming", "Hel", "3", "");
	ck_assert_int_eq(replay(REPLY, -1, &error), 200);
	ck_assert_str_eq(kinds(), "ode");
	ck_assert_str_eq(last_end()->status, "interrupted");
	ck_assert_str_eq(last_end()->code, "stream_max_duration");
	ck_assert_uint_eq(last_end()->seq, 2);
	ck_assert_str_eq(last_end()->text, "Hel");
}
END_TEST

START_TEST(replay_stops_when_the_client_leaves)
{
	const char *error;

	fake_store_add_reply(SESSION, REPLY, "complete", "Hello world", "3,5,11", "");
	rec.gone_at_delta = 1;
	ck_assert_int_eq(replay(REPLY, -1, &error), 200);
	ck_assert_str_eq(kinds(), "od");
}
END_TEST

/* What the engine stored, replay gives back: the same deltas and ending. */
START_TEST(replay_of_an_engine_turn)
{
	struct chat_turn t = session_turn("hi");
	const char *error;
	char id[40];

	script("Par", "ti", "al", UPSTREAM_TIMEOUT_IDLE);
	ck_assert_int_eq(run(&t, &error), 200);
	(void)snprintf(id, sizeof(id), "%s", fake_store_reply_id(0));
	memset(&rec, 0, sizeof(rec));
	ck_assert_int_eq(replay(id, 1, &error), 200);
	ck_assert_str_eq(kinds(), "odde");
	ck_assert_str_eq(rec.ev[1].text, "ti");
	ck_assert_str_eq(rec.ev[2].text, "al");
	ck_assert_str_eq(last_end()->status, "interrupted");
	ck_assert_str_eq(last_end()->code, "upstream_idle_timeout");
	ck_assert_uint_eq(last_end()->seq, 4);
	memset(&rec, 0, sizeof(rec));
	ck_assert_int_eq(replay(id, 4, &error), 204);
}
END_TEST

START_TEST(event_id_parse)
{
	char id[40];
	long seq = -1;

	ck_assert(chat_event_id_parse(REPLY ":7", id, sizeof(id), &seq));
	ck_assert_str_eq(id, REPLY);
	ck_assert_int_eq(seq, 7);
	ck_assert(chat_event_id_parse(REPLY ":0", id, sizeof(id), &seq));
	ck_assert_int_eq(seq, 0);
	ck_assert(!chat_event_id_parse(REPLY, id, sizeof(id), &seq));
	ck_assert(!chat_event_id_parse(REPLY ":", id, sizeof(id), &seq));
	ck_assert(!chat_event_id_parse(REPLY ":-1", id, sizeof(id), &seq));
	ck_assert(!chat_event_id_parse(REPLY ":7x", id, sizeof(id), &seq));
	ck_assert(!chat_event_id_parse(REPLY ":99999999999999999999", id, sizeof(id), &seq));
	ck_assert(!chat_event_id_parse("not-a-uuid:7", id, sizeof(id), &seq));
	ck_assert(!chat_event_id_parse(REPLY ":7", id, 10, &seq));
	ck_assert(!chat_event_id_parse(NULL, id, sizeof(id), &seq));
}
END_TEST

static Suite *
engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("turn"), *rc = tcase_create("replay");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, turn_streams_open_deltas_then_one_end);
	tcase_add_test(tc, turn_persists_the_whole_reply);
	tcase_add_test(tc, turn_slot_taken_with_the_turn_and_back_with_the_end);
	tcase_add_test(tc, turn_at_the_stream_cap_is_refused);
	tcase_add_test(tc, turn_end_refused_still_gives_the_slot_back);
	tcase_add_test(tc, turn_stateless_gives_its_slot_back);
	tcase_add_test(tc, turn_builds_the_prompt);
	tcase_add_test(tc, turn_prompt_settings_override);
	tcase_add_test(tc, turn_prompt_settings_model_no_longer_allowed);
	tcase_add_test(tc, turn_answers_the_stored_message);
	tcase_add_test(tc, turn_unknown_session_is_404);
	tcase_add_test(tc, turn_database_down_is_503);
	tcase_add_test(tc, turn_conflict_is_retried_once);
	tcase_add_test(tc, turn_upstream_error_before_open_is_502);
	tcase_add_test(tc, turn_first_token_timeout_is_504);
	tcase_add_test(tc, turn_dropped_mid_stream_keeps_the_partial_reply);
	tcase_add_test(tc, turn_error_event_mid_stream);
	tcase_add_test(tc, turn_cancel_mid_stream);
	tcase_add_test(tc, turn_cancel_before_open);
	tcase_add_test(tc, turn_client_gone_keeps_generating);
	tcase_add_test(tc, turn_client_gone_stops_when_asked);
	tcase_add_test(tc, turn_client_gone_at_open_stops_when_asked);
	tcase_add_test(tc, turn_persists_in_batches_while_followed);
	tcase_add_test(tc, turn_heartbeats_only_after_open);
	tcase_add_test(tc, turn_repairs_invalid_utf8);
	tcase_add_test(tc, turn_idempotent_resend_replays);
	tcase_add_test(tc, turn_stateless_stores_nothing);
	tcase_add_test(tc, turn_end_stored_after_the_database_returns);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(rc, setup, teardown);
	tcase_set_timeout(rc, 20);
	tcase_add_test(rc, replay_after_seq_sends_the_rest_then_the_end);
	tcase_add_test(rc, replay_from_the_start);
	tcase_add_test(rc, replay_latest_reply);
	tcase_add_test(rc, replay_unknown_reply_is_404);
	tcase_add_test(rc, replay_seen_all_is_204);
	tcase_add_test(rc, replay_worker_died_is_never_204);
	tcase_add_test(rc, replay_stale_reply_ends_interrupted);
	tcase_add_test(rc, replay_follows_a_live_reply);
	tcase_add_test(rc, replay_waits_for_a_batch_in_flight);
	tcase_add_test(rc, replay_reply_vanishes_while_followed);
	tcase_add_test(rc, replay_follow_stops_at_max_duration);
	tcase_add_test(rc, replay_stops_when_the_client_leaves);
	tcase_add_test(rc, replay_of_an_engine_turn);
	tcase_add_test(rc, event_id_parse);
	suite_add_tcase(s, rc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(engine_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
