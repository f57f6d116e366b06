/* upstream.h: the OpenAI-compatible API client (libcurl).
 *
 * Only upstream*.c include curl.h. One struct upstream per thread: it
 * keeps its connections to the upstream alive between requests. The API key
 * is sent in the Authorization header and nowhere else: it never appears in
 * a result, an error message or a log line. The event-loop driver of the
 * same client is upstream_multi.h. */
#ifndef CHAT_UPSTREAM_H
#define CHAT_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct config;
struct upstream;

enum upstream_error {
	UPSTREAM_OK = 0,
	UPSTREAM_CONNECT,           /* could not connect (after retries) */
	UPSTREAM_HTTP,              /* non-2xx status (after retries for 429/5xx) */
	UPSTREAM_TIMEOUT_CONNECT,
	UPSTREAM_TIMEOUT_FIRST_TOKEN,
	UPSTREAM_TIMEOUT_IDLE,
	UPSTREAM_MAX_DURATION,
	UPSTREAM_STREAM_ERROR,      /* an error object or event mid-stream */
	UPSTREAM_PROTOCOL,          /* malformed stream */
	UPSTREAM_DROPPED,           /* the connection closed before [DONE] */
	UPSTREAM_ABORTED,           /* a callback asked to stop (cancel) */
};

/* A short stable code for the error ("upstream_timeout", ...), used in
 * terminal events, logs and metrics. */
const char *upstream_error_code(enum upstream_error e);

/* A message fit for a client: generic, never the upstream's own text. */
const char *upstream_error_message(enum upstream_error e, int http_status);

/* The HTTP status a client gets when the failure happens before the stream
 * started: 504 for timeouts, 502 otherwise. */
int upstream_error_http_status(enum upstream_error e);

struct upstream_result {
	enum upstream_error error;
	int    http_status;            /* the upstream's last status, 0 if none */
	int    attempts;
	bool   opened;                 /* on_open was called */
	bool   done;                   /* [DONE] seen */
	long   prompt_tokens;          /* -1 if unknown */
	long   completion_tokens;
	long   deltas;
	char   finish_reason[32];
	double ttft_ms;                /* request to first delta, -1 if none */
};

/* Callbacks of a streamed completion. Each returns 0 to go on, nonzero to
 * abort the transfer (the result is then UPSTREAM_ABORTED). */
struct upstream_stream_ops {
	/* The upstream answered 200: the stream is open; called once, before any
	 * delta. Retries are no longer possible after this. */
	int (*on_open)(void *ctx);
	/* One content delta (valid UTF-8 not guaranteed; may split a character). */
	int (*on_delta)(void *ctx, const char *text, size_t len);
	/* Called at least every tick_ms while the transfer runs and while waiting
	 * between retries: heartbeats, cancel checks. */
	int (*on_tick)(void *ctx);
	void *ctx;
	int   tick_ms;
};

/* libcurl's process-wide setup: once, before any thread starts, after
 * fork. False if libcurl could not initialise. */
bool upstream_global_init(void);

/* Undoes upstream_global_init, after every client is freed. */
void upstream_global_cleanup(void);

/* Creates the per-thread client. Returns NULL on failure. Call after fork. */
struct upstream *upstream_new(const struct config *cfg);
void upstream_free(struct upstream *u);

/* POSTs body (JSON, with "stream": true) to base_url + path and streams the
 * reply through ops. Blocks until the end. Retries connect failures, 429 and
 * 5xx with exponential backoff and jitter, honouring Retry-After, but only
 * before on_open. */
void upstream_stream(struct upstream *u, const char *path, const char *body, size_t len,
    const struct upstream_stream_ops *ops, struct upstream_result *res);

/* POSTs body (content_type) to base_url + path and collects the response
 * (bounded) into out, with the same retries. Returns the result; on success
 * res->http_status is 2xx and out holds the body. auth_bearer overrides the
 * API key when not NULL. */
void upstream_post(struct upstream *u, const char *path, const char *content_type,
    const char *body, size_t len, struct buf *out, struct upstream_result *res);

/* Makes a waiting upstream_stream() call its on_tick soon. Thread-safe. */
void upstream_wakeup(struct upstream *u);

/* GETs base_url + path within timeout_ms, the body into out (bounded by
 * its max; NULL: discarded). True if it answered 2xx in full. */
bool upstream_get(struct upstream *u, const char *path, long timeout_ms, struct buf *out);

/* Probes base_url + "/models" with a short timeout: true if it answers 2xx. */
bool upstream_probe(struct upstream *u);

#endif
