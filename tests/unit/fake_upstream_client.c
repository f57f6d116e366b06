/* fake_upstream_client.c: the upstream_* functions of core/upstream.h that
 * the engine and live.c call, playing a script (fake_upstream_client.h). */
#include "fake_upstream_client.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake_upstream_state fake_upstream;
static atomic_int wakeups;

void
fake_upstream_reset(void)
{
	free(fake_upstream.body);
	memset(&fake_upstream, 0, sizeof(fake_upstream));
	fake_upstream.prompt_tokens = fake_upstream.completion_tokens = -1;
	atomic_store(&wakeups, 0);
}

/* The error texts and statuses mirror core/upstream.c: the engine passes
 * them through, and the tests check that it does. */
const char *
upstream_error_code(enum upstream_error e)
{
	switch (e) {
	case UPSTREAM_OK:                  return "ok";
	case UPSTREAM_CONNECT:             return "upstream_unreachable";
	case UPSTREAM_HTTP:                return "upstream_http_error";
	case UPSTREAM_TIMEOUT_CONNECT:     return "upstream_connect_timeout";
	case UPSTREAM_TIMEOUT_FIRST_TOKEN: return "upstream_first_token_timeout";
	case UPSTREAM_TIMEOUT_IDLE:        return "upstream_idle_timeout";
	case UPSTREAM_MAX_DURATION:        return "stream_max_duration";
	case UPSTREAM_STREAM_ERROR:        return "upstream_stream_error";
	case UPSTREAM_PROTOCOL:            return "upstream_protocol_error";
	case UPSTREAM_DROPPED:             return "upstream_dropped";
	case UPSTREAM_ABORTED:             return "cancelled";
	}
	return "upstream_error";
}

const char *
upstream_error_message(enum upstream_error e, int http_status)
{
	(void)http_status;
	return e == UPSTREAM_OK ? "OK" : "fake upstream failure";
}

int
upstream_error_http_status(enum upstream_error e)
{
	switch (e) {
	case UPSTREAM_TIMEOUT_CONNECT:
	case UPSTREAM_TIMEOUT_FIRST_TOKEN:
	case UPSTREAM_TIMEOUT_IDLE:
	case UPSTREAM_MAX_DURATION:
		return 504;
	default:
		return 502;
	}
}

void
upstream_wakeup(struct upstream *u)
{
	(void)u;
	atomic_fetch_add(&wakeups, 1);
}

/* Runs n ticks; false when one asked to stop. */
static bool
ticks(const struct upstream_stream_ops *ops, int n)
{
	for (int i = 0; i < n; i++)
		if (ops->on_tick(ops->ctx) != 0)
			return false;
	return true;
}

void
upstream_stream(struct upstream *u, const char *path, const char *body, size_t len,
    const struct upstream_stream_ops *ops, struct upstream_result *res)
{
	struct fake_upstream_state *f = &fake_upstream;

	(void)u;
	memset(res, 0, sizeof(*res));
	res->prompt_tokens = res->completion_tokens = -1;
	res->ttft_ms = -1;
	res->attempts = 1;
	f->calls++;
	(void)snprintf(f->path, sizeof(f->path), "%s", path);
	free(f->body);
	if ((f->body = malloc(len + 1)) != NULL) {
		memcpy(f->body, body, len);
		f->body[len] = '\0';
	}
	if (f->hook != NULL)
		f->hook(-1);
	if (!ticks(ops, f->ticks_before_open))
		goto aborted;
	if (f->fail != UPSTREAM_OK) {
		res->error = f->fail;
		res->http_status = f->http_status;
		goto out;
	}
	res->http_status = 200;
	res->opened = true;
	if (ops->on_open(ops->ctx) != 0)
		goto aborted;
	for (int i = 0; f->deltas[i] != NULL; i++) {
		size_t n = f->delta_len[i] != 0 ? f->delta_len[i] : strlen(f->deltas[i]);

		if (f->hook != NULL)
			f->hook(i);
		if (!ticks(ops, f->ticks_between))
			goto aborted;
		if (ops->on_delta(ops->ctx, f->deltas[i], n) != 0)
			goto aborted;
		if (res->deltas++ == 0)
			res->ttft_ms = 1.0;
		f->deltas_taken++;
	}
	res->error = f->end;
	if (f->end == UPSTREAM_OK) {
		res->done = true;
		res->prompt_tokens = f->prompt_tokens;
		res->completion_tokens = f->completion_tokens;
		(void)snprintf(res->finish_reason, sizeof(res->finish_reason), "stop");
	}
	goto out;
aborted:
	res->error = UPSTREAM_ABORTED;
out:
	f->wakeups = atomic_load(&wakeups);
}
