/* upstream_multi.c: the event-loop driver: many transfers on one multi handle.
 *
 * The Socket.IO gateway runs every stream of its process in one event loop.
 * It tells this driver about socket readiness and timer expiry; the driver
 * tells it which sockets to watch and when to fire the timer. Each job is a
 * struct upstream of its own (easy handle, parser, result) without a multi;
 * attempts, retries and deadlines are those of upstream.c (upstream_attempt.h). */
#include "upstream_multi.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "upstream_attempt.h"

struct upstream_job {
	struct upstream       *u;
	struct upstream_multi *m;
	void                 (*done)(void *ctx);
	void                  *ctx;
	bool                   running;      /* in the multi; else waiting to retry */
	bool                   pause_req;    /* the reader is behind: stop receiving */
	bool                   paused;       /* pause_req as applied to libcurl */
	int64_t                retry_at_us;
	int64_t                next_tick_us;
	struct upstream_job   *next;
};

struct upstream_multi {
	const struct config        *cfg;
	CURLM                      *multi;
	struct upstream_multi_hooks hooks;
	struct upstream_job        *jobs;
	bool                        in_curl;        /* inside curl_multi_socket_action */
	bool                        pause_pending;  /* a job asked to pause or resume */
};

static int
multi_on_socket(CURL *easy, curl_socket_t fd, int what, void *ctx, void *sockp)
{
	struct upstream_multi *m = ctx;

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_REMOVE)
		m->hooks.unwatch(m->hooks.ctx, (int)fd);
	else
		m->hooks.watch(m->hooks.ctx, (int)fd, what == CURL_POLL_IN || what == CURL_POLL_INOUT,
		    what == CURL_POLL_OUT || what == CURL_POLL_INOUT);
	return 0;
}

static int
multi_on_timer(CURLM *multi, long timeout_ms, void *ctx)
{
	struct upstream_multi *m = ctx;

	(void)multi;
	m->hooks.timer(m->hooks.ctx, timeout_ms);
	return 0;
}

struct upstream_multi *
upstream_multi_new(const struct config *cfg, const struct upstream_multi_hooks *hooks)
{
	struct upstream_multi *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->cfg = cfg;
	m->hooks = *hooks;
	if ((m->multi = curl_multi_init()) == NULL ||
	    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, multi_on_socket) != CURLM_OK ||
	    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m) != CURLM_OK ||
	    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, multi_on_timer) != CURLM_OK ||
	    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m) != CURLM_OK) {
		if (m->multi != NULL)
			curl_multi_cleanup(m->multi);
		free(m);
		return NULL;
	}
	return m;
}

static void
job_unlink(struct upstream_multi *m, struct upstream_job *j)
{
	for (struct upstream_job **pp = &m->jobs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

/* Ends job j: its result is final. The done callback may start new jobs. */
static void
job_finish(struct upstream_multi *m, struct upstream_job *j)
{
	job_unlink(m, j);
	j->done(j->ctx);
	upstream_free(j->u);
	free(j);
}

static void job_apply_pause(struct upstream_job *j);

/* An attempt of j ended with rc: finish, or schedule the retry. */
static void
job_attempt_ended(struct upstream_multi *m, struct upstream_job *j, CURLcode rc)
{
	if (j->running) {
		(void)curl_multi_remove_handle(m->multi, j->u->easy);
		j->running = false;
	}
	if (upstream_attempt_end(j->u, rc) == UPSTREAM_ATTEMPT_FINISHED)
		job_finish(m, j);
	else
		j->retry_at_us = clock_now_us() + j->u->retry_wait_ms * 1000;
}

static bool
job_launch(struct upstream_multi *m, struct upstream_job *j)
{
	if (!upstream_attempt_setup(j->u))
		return false;
	if (curl_easy_setopt(j->u->easy, CURLOPT_PRIVATE, j) != CURLE_OK ||
	    curl_multi_add_handle(m->multi, j->u->easy) != CURLM_OK) {
		j->u->res->error = UPSTREAM_CONNECT;
		return false;
	}
	j->running = true;
	j->paused = false;  /* a new attempt's easy handle is not paused */
	job_apply_pause(j);
	return true;
}

/* Reaps the transfers libcurl reports as done. */
static void
multi_reap(struct upstream_multi *m)
{
	struct CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		struct upstream_job *j = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		if (j != NULL)
			job_attempt_ended(m, j, msg->data.result);
	}
}

/* Applies a requested pause or resume to libcurl (never from inside one of
 * its callbacks). A resumed transfer's idle timeout starts again: the wait
 * was the reader's, not the upstream's. */
static void
job_apply_pause(struct upstream_job *j)
{
	if (j->pause_req == j->paused || !j->running)
		return;
	if (curl_easy_pause(j->u->easy, j->pause_req ? CURLPAUSE_RECV : CURLPAUSE_CONT) != CURLE_OK)
		return;
	j->paused = j->pause_req;
	if (!j->paused)
		j->u->t_last_delta_us = clock_now_us();
}

/* Runs curl_multi_socket_action, then the pauses its callbacks asked for. */
static void
multi_action(struct upstream_multi *m, curl_socket_t fd, int ev)
{
	int running;

	m->in_curl = true;
	(void)curl_multi_socket_action(m->multi, fd, ev, &running);
	m->in_curl = false;
	if (m->pause_pending) {
		m->pause_pending = false;
		for (struct upstream_job *j = m->jobs; j != NULL; j = j->next)
			job_apply_pause(j);
	}
	multi_reap(m);
}

void
upstream_job_pause(struct upstream_job *j, bool paused)
{
	if (j == NULL)
		return;
	j->pause_req = paused;
	if (j->m->in_curl)
		j->m->pause_pending = true;
	else
		job_apply_pause(j);
}

struct upstream_job *
upstream_multi_stream(struct upstream_multi *m, const char *path, const char *body, size_t len,
    const struct upstream_stream_ops *ops, struct upstream_result *res,
    void (*done)(void *ctx), void *ctx)
{
	struct upstream_job *j = calloc(1, sizeof(*j));

	/* The job's transfers run on the shared multi, not a client's own. */
	if (j == NULL || (j->u = upstream_new_easy(m->cfg)) == NULL) {
		free(j);
		return NULL;
	}
	j->u->ops = ops;
	j->u->streaming = true;
	j->m = m;
	j->done = done;
	j->ctx = ctx;
	j->next = m->jobs;
	m->jobs = j;
	if (!upstream_transfer_begin(j->u, path, "application/json", body, len, res) || !job_launch(m, j)) {
		job_unlink(m, j);
		upstream_free(j->u);
		free(j);
		return NULL;
	}
	return j;
}

void
upstream_multi_socket(struct upstream_multi *m, int fd, bool readable, bool writable)
{
	multi_action(m, (curl_socket_t)fd, (readable ? CURL_CSELECT_IN : 0) |
	    (writable ? CURL_CSELECT_OUT : 0));
}

void
upstream_multi_timeout(struct upstream_multi *m)
{
	multi_action(m, CURL_SOCKET_TIMEOUT, 0);
}

void
upstream_multi_tick(struct upstream_multi *m)
{
	int64_t now = clock_now_us();
	struct upstream_job *j = m->jobs, *next;

	for (; j != NULL; j = next) {
		struct upstream *u = j->u;

		next = j->next;
		if (!j->running) {
			/* Waiting to retry: only a cancel can cut the wait short. */
			if (u->ops->on_tick != NULL && u->ops->on_tick(u->ops->ctx) != 0) {
				u->stop_error = UPSTREAM_ABORTED;
				u->res->error = UPSTREAM_ABORTED;
				job_finish(m, j);
			} else if (now >= j->retry_at_us && !job_launch(m, j))
				job_finish(m, j);
			continue;
		}
		/* Paused for a slow reader, only the whole stream's cap runs. */
		if (j->paused)
			u->stop_error = now - u->t_start_us > (int64_t)u->cfg->stream_max_duration * 1000000
			    ? UPSTREAM_MAX_DURATION : UPSTREAM_OK;
		else
			u->stop_error = upstream_deadline(u, now);
		if (u->stop_error == UPSTREAM_OK && !upstream_tick(u, now, &j->next_tick_us))
			u->stop_error = UPSTREAM_ABORTED;
		if (u->stop_error != UPSTREAM_OK)
			job_attempt_ended(m, j, CURLE_OK);
	}
	multi_reap(m);
}

void
upstream_multi_free(struct upstream_multi *m)
{
	if (m == NULL)
		return;
	while (m->jobs != NULL) {
		struct upstream_job *j = m->jobs;

		if (j->running)
			(void)curl_multi_remove_handle(m->multi, j->u->easy);
		j->running = false;
		j->u->res->error = UPSTREAM_ABORTED;
		job_finish(m, j);
	}
	curl_multi_cleanup(m->multi);
	free(m);
}
