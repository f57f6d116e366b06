/* turn_stream.c: a streamed turn, handed to the front end's loop. */
#include "turn_stream.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "http.h"
#include "log.h"
#include "replay.h"
#include "request.h"
#include "sink_sse.h"
#include "upstream.h"
#include "upstream_multi.h"
#include "upstream_loop.h"
#include "workq.h"

/* Everything a turn on the loop needs, owned: the request outlives the
 * handler that started it. */
struct turn_job {
	struct request          req;         /* the loop's request (see http_request_move) */
	struct chat_env         env;
	struct chat_turn        turn;        /* its strings point at the copies below */
	char                   *method;
	char                   *user_id, *session_id, *content, *idempotency_key, *model;
	json_object            *messages;    /* a reference */
	void                   *opts;
	struct sink_sse         sse;
	struct chat_sink        sink;        /* the SSE encoder's */
	struct chat_sink        outer;       /* the engine's: sink, plus throttling */
	struct upstream_job    *upjob;       /* the transfer, while it runs */
	bool                    throttled;   /* upstream paused for a slow client */
	struct chat_turn_state *ts;
	struct request_slot_holder slot;     /* what turn.slot_ask points to */
};

/* A slot on its way back, through the work queue (the loop never waits
 * for the database). */
struct slot_release {
	struct store *store;
	long long     slot;
};

static void
slot_release_work(void *arg)
{
	struct slot_release *sr = arg;

	request_stream_slot_release(sr->store, sr->slot);
	free(sr);
}

void
turn_stream_slot_release(struct workq *q, struct store *store, long long slot)
{
	struct slot_release *sr;

	if (slot <= 0)
		return;
	if (q != NULL && (sr = malloc(sizeof(*sr))) != NULL) {
		sr->store = store;
		sr->slot = slot;
		if (workq_submit(q, slot_release_work, NULL, sr))
			return;
		free(sr);
	}
	request_stream_slot_release(store, slot);
}

static void
turn_job_free(struct turn_job *job)
{
	if (job == NULL)
		return;
	sink_sse_free(&job->sse);
	http_request_free(&job->req);
	json_object_put(job->messages);
	free(job->method);
	free(job->user_id);
	free(job->session_id);
	free(job->content);
	free(job->idempotency_key);
	free(job->model);
	free(job->opts);
	free(job);
}

/* strdup that keeps NULL; *ok turns false when out of memory. */
static char *
dup_opt(const char *s, bool *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

/* Loop thread: the client caught up (or left): read the upstream again. */
static void
turn_job_resume(void *arg)
{
	struct turn_job *job = arg;

	job->throttled = false;
	upstream_job_pause(job->upjob, false);
}

/* The SSE sink's delta, then: a client far behind pauses the upstream
 * instead of its events piling up here. */
static bool
turn_job_delta(void *ctx, const struct chat_stream_info *info, const char *text, size_t len)
{
	struct turn_job *job = ctx;
	bool alive = job->sink.delta(job->sink.ctx, info, text, len);

	if (alive && !job->throttled && job->upjob != NULL && job->req.io.throttle != NULL &&
	    job->req.io.throttle(job->req.io.ctx, turn_job_resume, job)) {
		job->throttled = true;
		upstream_job_pause(job->upjob, true);
	}
	return alive;
}

static bool
turn_job_open(void *ctx, const struct chat_stream_info *info)
{
	struct turn_job *job = ctx;

	return job->sink.open(job->sink.ctx, info);
}

static bool
turn_job_heartbeat(void *ctx)
{
	struct turn_job *job = ctx;

	return job->sink.heartbeat(job->sink.ctx);
}

static void
turn_job_end(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *out)
{
	struct turn_job *job = ctx;

	job->sink.end(job->sink.ctx, info, out);
}

static struct turn_job *
turn_job_new(struct request *r, const struct chat_turn *turn, const struct dialect *d,
    const void *opts, size_t opts_len)
{
	struct turn_job *job = calloc(1, sizeof(*job));
	bool ok = true;

	if (job == NULL)
		return NULL;
	http_request_init(&job->req);
	job->env = (struct chat_env){ r->cfg, r->store, NULL, r->worker_id, r->workq };
	job->turn = *turn;
	if (turn->slot_ask != NULL) {
		job->slot.ask = *turn->slot_ask;
		(void)snprintf(job->slot.name, sizeof(job->slot.name), "%s", turn->slot_ask->holder);
		job->slot.ask.holder = job->slot.name;
		job->turn.slot_ask = &job->slot.ask;
	}
	job->turn.user_id = job->user_id = dup_opt(turn->user_id, &ok);
	job->turn.session_id = job->session_id = dup_opt(turn->session_id, &ok);
	job->turn.content = job->content = dup_opt(turn->content, &ok);
	job->turn.idempotency_key = job->idempotency_key = dup_opt(turn->idempotency_key, &ok);
	job->turn.model = job->model = dup_opt(turn->model, &ok);
	job->method = dup_opt(r->method, &ok);
	job->turn.messages = job->messages = json_object_get(turn->messages);
	if (opts_len > 0) {
		if ((job->opts = malloc(opts_len)) == NULL)
			ok = false;
		else
			memcpy(job->opts, opts, opts_len);
	}
	sink_sse_init(&job->sse, &job->sink, &job->req, d, job->opts);
	job->outer = (struct chat_sink){ turn_job_open, turn_job_delta, turn_job_heartbeat,
	    turn_job_end, job };
	if (!ok) {
		turn_job_free(job);
		return NULL;
	}
	return job;
}

/* Loop thread: the turn is stored and its end sent (or, before the stream
 * opened, status is the error to answer). */
static void
turn_job_finished(void *ctx, int status, const char *error)
{
	struct turn_job *job = ctx;

	job->ts = NULL;
	if (status != 200)
		(void)http_error(&job->req, status, error);
	app_finish(&job->req);
	job->req.io.finish(job->req.io.ctx);
	turn_job_free(job);
}

/* Loop thread: the transfer ended (res is final). */
static void
turn_job_done(void *ctx)
{
	struct turn_job *job = ctx;

	job->upjob = NULL;  /* freed by the driver once this returns */
	chat_turn_finish_async(job->ts, turn_job_finished, job);
}

/* Loop thread: the front end gave job->req its io. */
static void
turn_job_start(void *ctx)
{
	struct turn_job *job = ctx;
	const struct upstream_stream_ops *ops;
	struct upstream_result *res;
	struct upstream_multi *multi = upstream_loop_multi();
	const char *body;
	size_t len;

	chat_turn_upstream(job->ts, &body, &len, &ops, &res);
	/* On failure res says why, and the turn ends with that error. */
	if (multi == NULL || (job->upjob = upstream_multi_stream(multi, "/chat/completions", body, len,
	    ops, res, turn_job_done, job)) == NULL) {
		if (multi == NULL)
			res->error = UPSTREAM_CONNECT;
		turn_job_done(job);
	}
}

/* The whole turn on this thread (no loop, or the loop is unavailable). */
static int
turn_stream_here(struct request *r, const struct chat_turn *turn, const struct dialect *d,
    const void *opts, const char **error)
{
	struct chat_env env = { .cfg = r->cfg, .store = r->store, .upstream = r->upstream, .worker_id = r->worker_id };
	struct sink_sse sse;
	struct chat_sink sink;
	int status;

	sink_sse_init(&sse, &sink, r, d, opts);
	status = chat_turn_run(&env, turn, &sink, error);
	sink_sse_free(&sse);
	return status;
}

/* A 429 (the stream cap) says when to come back. Returns status. */
static int
turn_stream_refused(struct request *r, int status)
{
	char retry[16];

	if (status == 429) {
		(void)snprintf(retry, sizeof(retry), "%d", REQUEST_STREAM_RETRY_S);
		(void)http_header(r, "Retry-After", retry);
	}
	return status;
}

int
turn_stream_slot_take(struct request *r, long long *slot, const char **error)
{
	struct request_result res = request_stream_slot_take(r->cfg, r->store,
	    r->authed ? r->user_id : NULL, r->client_ip, r->worker_id, slot);

	if (res.status == 0)
		return 200;
	*error = res.message;
	return turn_stream_refused(r, res.status);
}

int
turn_stream_run(struct request *r, const struct chat_turn *turn_in, const struct dialect *d,
    const void *opts, size_t opts_len, const char **error)
{
	struct request_slot_holder holder;
	struct request_result res;
	struct chat_turn turn = *turn_in;
	struct turn_job *job;
	const char *attached;
	int status;

	/* The stream slot (core/request.c); the engine gives it back with the
	 * end. */
	res = request_turn_slot(r->cfg, r->store, r->authed ? r->user_id : NULL, r->client_ip,
	    r->worker_id, &turn, &holder);
	if (res.status != 0) {
		*error = res.message;
		return turn_stream_refused(r, res.status);
	}
	if (r->io.detach == NULL)
		return turn_stream_refused(r, turn_stream_here(r, &turn, d, opts, error));
	if ((job = turn_job_new(r, &turn, d, opts, opts_len)) == NULL) {
		request_stream_slot_release(r->store, turn.slot);
		*error = "Out of memory";
		return 500;
	}
	/* Reserve the loop first: after prepare, the turn is committed. */
	if (!r->io.detach(r->io.ctx, &job->req, turn_job_start, job)) {
		turn_job_free(job);
		return turn_stream_refused(r, turn_stream_here(r, &turn, d, opts, error));
	}
	if ((status = chat_turn_prepare(&job->env, &job->turn, &job->outer, &job->ts, error)) != 200) {
		turn_job_free(job);
		return turn_stream_refused(r, status);
	}
	if ((attached = chat_turn_attached(job->ts)) != NULL) {
		/* A retried send (same Idempotency-Key): replay the first one's
		 * reply here, as a resume would. */
		struct chat_env env = { .cfg = r->cfg, .store = r->store, .upstream = r->upstream, .worker_id = r->worker_id };
		struct sink_sse sse;
		struct chat_sink sink;
		const char *ignored;

		sink_sse_init(&sse, &sink, r, d, opts);
		status = chat_replay_run(&env, turn.user_id, turn.session_id, attached, -1, &sink,
		    error);
		sink_sse_free(&sse);
		(void)chat_turn_finish(job->ts, &ignored);
		job->ts = NULL;
		turn_job_free(job);
		return status;
	}
	http_request_move(&job->req, r);
	job->req.method = job->method;
	r->detached = true;
	return 200;
}
