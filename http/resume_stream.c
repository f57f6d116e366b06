/* resume_stream.c: a resumed reply, followed on the front end's loop. */
#include "resume_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "dialect.h"
#include "follow.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "replay.h"
#include "sink_sse.h"
#include "turn_stream.h"
#include "workq.h"

/* A follower whose poll also has to wait this long when its generator
 * tells it of every batch (NOTIFY): the poll only covers a lost word. */
#define RESUME_POLL_NOTIFIED_MS 1000

struct resume_job {
	struct request       req;        /* the loop's request (http_request_move) */
	char                *method;
	struct chat_env      env;
	char                *user_id, *session_id;
	struct sink_sse      sse;
	struct chat_sink     sink;
	struct chat_replay   rp;         /* borrows env, the ids and sink */
	long long            slot;
	struct loop_timer   *timer;
	struct follow_waiter waiter;
	bool                 reading;    /* a read is on the work queue */
	bool                 wake_again; /* woken while reading: read once more */
	enum store_rc        rc;         /* the last read's */
	struct store_reply   rep;
};

static void
resume_job_free(struct resume_job *job)
{
	if (job == NULL)
		return;
	follow_remove(&job->waiter);
	loop_timer_free(job->timer);
	chat_replay_free(&job->rp);
	store_reply_free(&job->rep);
	turn_stream_slot_release(job->env.workq, job->env.store, job->slot);
	sink_sse_free(&job->sse);
	http_request_free(&job->req);
	free(job->method);
	free(job->user_id);
	free(job->session_id);
	free(job);
}

/* Loop thread: the response is over. */
static void
resume_job_end(struct resume_job *job, int status)
{
	if (!job->req.headers_sent)
		(void)http_error(&job->req, status == 200 ? 500 : status, "The reply can no longer be read");
	app_finish(&job->req);
	job->req.io.finish(job->req.io.ctx);
	resume_job_free(job);
}

static void resume_job_read(struct resume_job *job);

static void
resume_job_read_work(void *arg)
{
	struct resume_job *job = arg;

	job->rc = chat_replay_read(&job->rp, &job->rep);
}

/* Loop thread: sends what the read brought, then waits for more. */
static void
resume_job_read_done(void *arg)
{
	struct resume_job *job = arg;
	const char *error = NULL;
	int status = 200;

	job->reading = false;
	if (chat_replay_step(&job->rp, job->rc, &job->rep, &status, &error) == CHAT_REPLAY_DONE ||
	    !chat_replay_heartbeat(&job->rp)) {
		resume_job_end(job, status);
		return;
	}
	if (job->wake_again) {
		job->wake_again = false;
		resume_job_read(job);
		return;
	}
	loop_timer_set(job->timer, job->rp.follows ? RESUME_POLL_NOTIFIED_MS : CHAT_REPLAY_POLL_MS);
}

static void
resume_job_read(struct resume_job *job)
{
	if (job->reading) {
		job->wake_again = true;
		return;
	}
	loop_timer_cancel(job->timer);
	job->reading = true;
	if (!workq_submit(job->env.workq, resume_job_read_work, resume_job_read_done, job)) {
		/* Out of memory for a queue entry: read on the loop this once. */
		resume_job_read_work(job);
		resume_job_read_done(job);
	}
}

static void
resume_job_wake(void *arg)
{
	resume_job_read(arg);
}

/* Loop thread: the front end gave job->req its io. */
static void
resume_job_start(void *arg)
{
	struct resume_job *job = arg;

	if ((job->timer = loop_timer_new(resume_job_wake, job)) == NULL) {
		log_error("resume: out of memory for a timer");
		resume_job_end(job, 200);
		return;
	}
	(void)snprintf(job->waiter.reply_id, sizeof(job->waiter.reply_id), "%s", job->rp.id);
	job->waiter.wake = resume_job_wake;
	job->waiter.arg = job;
	follow_add(&job->waiter);
	/* Whatever was stored while the request changed hands. */
	resume_job_read(job);
}

static char *
dup_or_null(const char *s, bool *ok)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		*ok = false;
	return d;
}

int
resume_stream_run(struct request *r, const char *session_id, const char *reply_id,
    long after_seq, long long slot, const char **error)
{
	struct resume_job *job;
	struct store_reply rep;
	enum store_rc rc;
	int status = 200;
	bool ok = true;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		turn_stream_slot_release(NULL, r->store, slot);
		*error = "Out of memory";
		return 500;
	}
	http_request_init(&job->req);
	job->slot = slot;
	job->env = (struct chat_env){ .cfg = r->cfg, .store = r->store, .upstream = r->upstream,
	    .worker_id = r->worker_id, .workq = r->workq };
	job->user_id = dup_or_null(r->user_id, &ok);
	job->session_id = dup_or_null(session_id, &ok);
	job->method = dup_or_null(r->method, &ok);
	if (!ok) {
		resume_job_free(job);
		*error = "Out of memory";
		return 500;
	}
	/* The sink writes to r until (and unless) the loop takes over. */
	sink_sse_init(&job->sse, &job->sink, r, &dialect_seed000, NULL);
	chat_replay_init(&job->rp, &job->env, job->user_id, job->session_id, reply_id, after_seq,
	    &job->sink);
	/* The first read is answered here: 404, 204 or what is stored so far. */
	rc = chat_replay_read(&job->rp, &rep);
	if (chat_replay_step(&job->rp, rc, &rep, &status, error) == CHAT_REPLAY_WAIT &&
	    chat_replay_heartbeat(&job->rp)) {
		/* Live: the loop follows it, or else this thread does. */
		if (job->env.workq != NULL && r->io.detach != NULL &&
		    r->io.detach(r->io.ctx, &job->req, resume_job_start, job)) {
			http_request_move(&job->req, r);
			job->req.method = job->method;
			job->sse.req = &job->req;
			r->detached = true;
			return 200;
		}
		status = chat_replay_follow(&job->rp, error);
	}
	job->env.workq = NULL;  /* the slot goes back from this thread, now */
	resume_job_free(job);
	return status;
}
