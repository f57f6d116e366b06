/* upstream.c: libcurl client for the OpenAI-compatible API, streamed or not. */
#include "upstream.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "chat_limits.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "openai_chunk.h"
#include "sse_reader.h"
#include "upstream_attempt.h"

#define UPSTREAM_ERRBODY    16384       /* kept of a non-2xx body, for the log */
#define BACKOFF_BASE_MS     500
#define BACKOFF_MAX_MS      8000
#define RETRY_AFTER_MAX_MS  30000
#define UPSTREAM_URL_MAX    2048        /* base URL + path */
/* libcurl's receive buffer for a streamed reply (its default is 16 KiB per
 * easy handle, held for the whole stream): one SSE event of a token is a
 * few hundred bytes, and a handle lives as long as its stream, so at
 * thousands of slow streams the default was most of chatd's memory per
 * stream. A burst only takes more reads. */
#define UPSTREAM_STREAM_RECV_BUFFER 2048

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
	switch (e) {
	case UPSTREAM_OK:                  return "OK";
	case UPSTREAM_CONNECT:             return "The AI service is unreachable";
	case UPSTREAM_HTTP:
		if (http_status == 429)
			return "The AI service is rate limiting requests; try again later";
		if (http_status == 401 || http_status == 403)
			return "The AI service refused the server's credentials";
		if (http_status >= 400 && http_status < 500)
			return "The AI service rejected the request";
		return "The AI service failed";
	case UPSTREAM_TIMEOUT_CONNECT:     return "Timed out connecting to the AI service";
	case UPSTREAM_TIMEOUT_FIRST_TOKEN: return "The AI service did not start answering in time";
	case UPSTREAM_TIMEOUT_IDLE:        return "The AI service stopped answering";
	case UPSTREAM_MAX_DURATION:        return "The reply reached the maximum stream duration";
	case UPSTREAM_STREAM_ERROR:        return "The AI service reported an error";
	case UPSTREAM_PROTOCOL:            return "The AI service sent a malformed stream";
	case UPSTREAM_DROPPED:             return "The connection to the AI service was lost";
	case UPSTREAM_ABORTED:             return "The reply was cancelled";
	}
	return "Upstream error";
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

/* One SSE event from the upstream. */
static int
upstream_on_event(void *ctx, const char *event, const char *data, size_t len)
{
	struct upstream *u = ctx;
	struct upstream_result *res = u->res;
	struct openai_chunk c;

	if (!openai_chunk_parse(u->chunks, event, data, len, &c)) {
		u->stop_error = UPSTREAM_PROTOCOL;
		return 1;
	}
	if (c.error) {
		log_warn("upstream stream error: %s", c.error_message);
		u->stop_error = UPSTREAM_STREAM_ERROR;
		return 1;
	}
	if (c.done) {
		res->done = true;
		return 0;
	}
	if (c.finish_reason[0] != '\0')
		memcpy(res->finish_reason, c.finish_reason, sizeof(res->finish_reason));
	if (c.prompt_tokens >= 0)
		res->prompt_tokens = c.prompt_tokens;
	if (c.completion_tokens >= 0)
		res->completion_tokens = c.completion_tokens;
	if (c.content != NULL) {
		int64_t now = clock_now_us();

		/* A delta refused by the engine (a cancel) is not counted. */
		if (u->ops->on_delta(u->ops->ctx, c.content, c.content_len) != 0) {
			u->stop_error = UPSTREAM_ABORTED;
			return 1;
		}
		u->t_last_delta_us = now;
		if (res->deltas++ == 0)
			res->ttft_ms = (double)(now - u->t_start_us) / 1000.0;
	}
	return 0;
}

static size_t
upstream_on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct upstream *u = ctx;
	size_t len = size * n;
	char value[64];

	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		u->retry_after_ms = -1;  /* a new response (after 100-continue, say) */
		return len;
	}
	if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		/* End of the headers: a 2xx stream is open from here on, so
		 * heartbeats can start before the first body byte. */
		long status = 0;
		(void)curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &status);
		u->res->http_status = (int)status;
		if (u->streaming && status >= 200 && status <= 299 && !u->res->opened) {
			u->res->opened = true;
			if (u->ops->on_open(u->ops->ctx) != 0) {
				u->stop_error = UPSTREAM_ABORTED;
				return 0;
			}
		}
		return len;
	}
	if (len > 15 && strncasecmp(p, "retry-after-ms:", 15) == 0) {
		(void)snprintf(value, sizeof(value), "%.*s", (int)(len - 15), p + 15);
		u->retry_after_ms = strtol(value, NULL, 10);
	} else if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0 && u->retry_after_ms < 0) {
		char *end;
		long secs;

		(void)snprintf(value, sizeof(value), "%.*s", (int)(len - 12), p + 12);
		secs = strtol(value, &end, 10);
		if (end != value && (*end == '\r' || *end == '\n' || *end == '\0' || *end == ' '))
			u->retry_after_ms = secs * 1000;
		else {
			time_t when = curl_getdate(value, NULL);
			if (when > 0)
				u->retry_after_ms = ((long)(when - time(NULL))) * 1000;
		}
	}
	return len;
}

static size_t
upstream_on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct upstream *u = ctx;
	size_t len = size * n;
	long status = 0;

	(void)curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &status);
	u->res->http_status = (int)status;
	if (status < 200 || status > 299) {
		size_t room = UPSTREAM_ERRBODY - u->errbody.len;
		(void)buf_append(&u->errbody, p, len < room ? len : room);
		return len;
	}
	if (!u->streaming) {
		if (!buf_append(u->collect, p, len)) {
			u->stop_error = UPSTREAM_PROTOCOL;
			return CURL_WRITEFUNC_ERROR;
		}
		return len;
	}
	if (!u->res->opened) {
		u->res->opened = true;
		if (u->ops->on_open(u->ops->ctx) != 0) {
			u->stop_error = UPSTREAM_ABORTED;
			return CURL_WRITEFUNC_ERROR;
		}
	}
	if (sse_reader_feed(&u->reader, p, len) != 0) {
		if (u->stop_error == UPSTREAM_OK)
			u->stop_error = UPSTREAM_PROTOCOL;
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

bool
upstream_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void
upstream_global_cleanup(void)
{
	curl_global_cleanup();
}

struct upstream *
upstream_new_easy(const struct config *cfg)
{
	struct upstream *u;
	size_t n;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->cfg = cfg;
	buf_init(&u->errbody, UPSTREAM_ERRBODY);
	sse_reader_init(&u->reader, LIMIT_UPSTREAM_EVENT_BYTES, upstream_on_event, u);
	if ((u->easy = curl_easy_init()) == NULL || (u->chunks = openai_chunk_parser_new()) == NULL)
		goto failed;
	n = strlen(cfg->openai_api_key) + 32;
	if ((u->auth_header = malloc(n)) == NULL)
		goto failed;
	(void)snprintf(u->auth_header, n, "Authorization: Bearer %s", cfg->openai_api_key);
	return u;
failed:
	upstream_free(u);
	return NULL;
}

struct upstream *
upstream_new(const struct config *cfg)
{
	struct upstream *u = upstream_new_easy(cfg);

	if (u != NULL && (u->multi = curl_multi_init()) == NULL) {
		upstream_free(u);
		return NULL;
	}
	return u;
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	if (u->auth_header != NULL) {
		explicit_bzero(u->auth_header, strlen(u->auth_header));
		free(u->auth_header);
	}
	openai_chunk_parser_free(u->chunks);
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi);
	if (u->easy != NULL)
		curl_easy_cleanup(u->easy);
	sse_reader_free(&u->reader);
	buf_free(&u->errbody);
	curl_slist_free_all(u->headers);
	free(u->url);
	free(u);
}

void
upstream_wakeup(struct upstream *u)
{
	(void)curl_multi_wakeup(u->multi);
}

/* Sets up the easy handle for one attempt. */
static bool
upstream_prepare(struct upstream *u, const char *url, const char *content_type, const char *body,
    size_t len, struct curl_slist **headers, long total_timeout_ms)
{
	char ctype[128];
	struct curl_slist *h = NULL, *t;

	curl_easy_reset(u->easy);
	(void)snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	if ((t = curl_slist_append(h, ctype)) == NULL)
		goto failed;
	h = t;
	if (u->cfg->openai_api_key[0] != '\0') {
		if ((t = curl_slist_append(h, u->auth_header)) == NULL)
			goto failed;
		h = t;
	}
	if ((t = curl_slist_append(h, u->streaming ? "Accept: text/event-stream" : "Accept: application/json")) == NULL)
		goto failed;
	h = t;
	/* libcurl would otherwise wait for "100 Continue" on bodies over 1 KiB. */
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto failed;
	h = t;
	*headers = h;
	if (curl_easy_setopt(u->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_CONNECTTIMEOUT_MS,
	        (long)u->cfg->upstream_connect_timeout * 1000) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_TIMEOUT_MS, total_timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, upstream_on_body) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, u) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_HEADERFUNCTION, upstream_on_header) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_HEADERDATA, u) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_USERAGENT, "chatd/" PACKAGE_VERSION) != CURLE_OK ||
	    (u->streaming &&
	     curl_easy_setopt(u->easy, CURLOPT_BUFFERSIZE, (long)UPSTREAM_STREAM_RECV_BUFFER) != CURLE_OK))
		goto failed;
	return true;
failed:
	curl_slist_free_all(h);
	*headers = NULL;
	return false;
}

/* The budget check of a running stream: returns the error once a deadline
 * passed, UPSTREAM_OK otherwise. */
enum upstream_error
upstream_deadline(struct upstream *u, int64_t now)
{
	const struct config *cfg = u->cfg;

	if (now - u->t_start_us > (int64_t)cfg->stream_max_duration * 1000000)
		return UPSTREAM_MAX_DURATION;
	if (!u->streaming)
		return UPSTREAM_OK;
	if (u->res->deltas == 0) {
		if (now - u->t_start_us > (int64_t)cfg->upstream_first_token_timeout * 1000000)
			return UPSTREAM_TIMEOUT_FIRST_TOKEN;
	} else if (now - u->t_last_delta_us > (int64_t)cfg->upstream_idle_timeout * 1000000)
		return UPSTREAM_TIMEOUT_IDLE;
	return UPSTREAM_OK;
}

/* Calls on_tick if due. Returns false if it asked to stop. */
bool
upstream_tick(struct upstream *u, int64_t now, int64_t *next_tick)
{
	if (u->ops == NULL || u->ops->on_tick == NULL || now < *next_tick)
		return true;
	*next_tick = now + (int64_t)u->ops->tick_ms * 1000;
	return u->ops->on_tick(u->ops->ctx) == 0;
}

/* Runs one attempt to completion; returns libcurl's result. */
static CURLcode
upstream_run(struct upstream *u)
{
	CURLcode result = CURLE_OK;
	int64_t next_tick = 0;
	int running = 1;

	if (curl_multi_add_handle(u->multi, u->easy) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running) {
		struct CURLMsg *msg;
		int64_t now;
		int left;

		if (curl_multi_perform(u->multi, &running) != CURLM_OK) {
			result = CURLE_FAILED_INIT;
			break;
		}
		while ((msg = curl_multi_info_read(u->multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				result = msg->data.result;
		if (!running || u->stop_error != UPSTREAM_OK)
			break;
		now = clock_now_us();
		if ((u->stop_error = upstream_deadline(u, now)) != UPSTREAM_OK)
			break;
		if (!upstream_tick(u, now, &next_tick)) {
			u->stop_error = UPSTREAM_ABORTED;
			break;
		}
		(void)curl_multi_poll(u->multi, NULL, 0,
		    u->ops != NULL && u->ops->tick_ms > 0 ? u->ops->tick_ms : 1000, NULL);
	}
	/* Removing the handle closes the upstream request if it still runs. */
	(void)curl_multi_remove_handle(u->multi, u->easy);
	return result;
}

static bool
retryable_status(int status)
{
	return status == 429 || status == 408 || status >= 500;
}

static bool
retryable_curl(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	    rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
	    rc == CURLE_GOT_NOTHING || rc == CURLE_SSL_CONNECT_ERROR;
}

/* How long to wait before the next attempt: Retry-After when the upstream
 * gave one, else exponential backoff with jitter. */
static int64_t
backoff_ms(const struct upstream *u, int attempt)
{
	uint32_t jitter = 0;
	int64_t wait_ms;

	if (u->retry_after_ms >= 0)
		return u->retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : u->retry_after_ms;
	wait_ms = (int64_t)BACKOFF_BASE_MS << attempt;
	if (wait_ms > BACKOFF_MAX_MS)
		wait_ms = BACKOFF_MAX_MS;
	/* Full jitter on the upper half spreads a herd of retries. */
	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) != (ssize_t)sizeof(jitter))
		jitter = 0;  /* no entropy yet: no jitter this time */
	return wait_ms / 2 + (int64_t)(jitter % (uint32_t)(wait_ms / 2 + 1));
}

static void
upstream_log_failure(struct upstream *u, CURLcode rc, int attempt)
{
	/* A transfer we stopped ourselves (the user's Stop, a client that
	 * left) is no failure: libcurl's text for it, "Failed writing received
	 * data", would read like one. */
	if (u->res->error == UPSTREAM_ABORTED) {
		log_info("upstream transfer cancelled on attempt %d", attempt + 1);
		return;
	}
	/* Only the status and libcurl's text: the upstream body may echo
	 * fragments of the key in its message. */
	log_warn("upstream attempt %d failed: status=%d curl=\"%s\" error=%s", attempt + 1,
	    u->res->http_status, curl_easy_strerror(rc), upstream_error_code(u->res->error));
}

/* Starts a transfer: resets the result and remembers the request. Returns
 * false (res->error set) if the URL does not fit. */
bool
upstream_transfer_begin(struct upstream *u, const char *path, const char *content_type, const char *body,
    size_t len, struct upstream_result *res)
{
	size_t base = strlen(u->cfg->openai_base_url), plen = strlen(path);

	memset(res, 0, sizeof(*res));
	res->prompt_tokens = res->completion_tokens = -1;
	res->ttft_ms = -1;
	u->res = res;
	u->t_start_us = clock_now_us();
	u->content_type = content_type;
	u->body = body;
	u->body_len = len;
	u->attempt = 0;
	free(u->url);
	u->url = NULL;
	if (base + plen >= UPSTREAM_URL_MAX || (u->url = malloc(base + plen + 1)) == NULL) {
		res->error = UPSTREAM_CONNECT;
		return false;
	}
	memcpy(u->url, u->cfg->openai_base_url, base);
	memcpy(u->url + base, path, plen + 1);
	return true;
}

/* Prepares the easy handle for the next attempt. */
bool
upstream_attempt_setup(struct upstream *u)
{
	long total_ms = (long)u->cfg->stream_max_duration * 1000 + 1000;

	u->res->attempts = u->attempt + 1;
	u->res->http_status = 0;
	u->stop = false;
	u->stop_error = UPSTREAM_OK;
	u->retry_after_ms = -1;
	buf_reset(&u->errbody);
	sse_reader_reset(&u->reader);
	if (u->collect != NULL)
		buf_reset(u->collect);
	curl_slist_free_all(u->headers);
	u->headers = NULL;
	if (!upstream_prepare(u, u->url, u->content_type, u->body, u->body_len, &u->headers, total_ms)) {
		u->res->error = UPSTREAM_CONNECT;
		return false;
	}
	return true;
}

/* Classifies an attempt that ended with libcurl's rc (and stop_error), and
 * decides on a retry: only before the stream opened, for connect failures,
 * 429 and 5xx, within the retries and the first-token budget. On
 * UPSTREAM_ATTEMPT_RETRY, u->retry_wait_ms says how long to wait. */
enum upstream_attempt_outcome
upstream_attempt_end(struct upstream *u, CURLcode rc)
{
	struct upstream_result *res = u->res;
	int attempt = u->attempt;

	curl_slist_free_all(u->headers);
	u->headers = NULL;
	if (u->stop_error == UPSTREAM_OK && rc == CURLE_OK && u->streaming && !res->done &&
	    res->http_status >= 200 && res->http_status < 300)
		(void)sse_reader_finish(&u->reader);  /* a last event without its blank line */
	if (u->stop_error != UPSTREAM_OK) {
		res->error = u->stop_error;
	} else if (res->http_status >= 200 && res->http_status < 300 && rc == CURLE_OK) {
		/* A clean close after finish_reason counts as the end even
		 * from servers that omit [DONE]. */
		res->error = !u->streaming || res->done || res->finish_reason[0] != '\0'
		    ? UPSTREAM_OK : UPSTREAM_DROPPED;
	} else if (res->opened) {
		res->error = UPSTREAM_DROPPED;
	} else if (res->http_status != 0 && (res->http_status < 200 || res->http_status > 299)) {
		res->error = UPSTREAM_HTTP;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		res->error = UPSTREAM_TIMEOUT_CONNECT;
	} else
		res->error = UPSTREAM_CONNECT;

	if (res->error == UPSTREAM_OK)
		return UPSTREAM_ATTEMPT_FINISHED;
	upstream_log_failure(u, rc, attempt);
	if (res->opened || attempt >= u->cfg->upstream_retries || u->stop_error != UPSTREAM_OK)
		return UPSTREAM_ATTEMPT_FINISHED;
	if (res->error == UPSTREAM_HTTP ? !retryable_status(res->http_status)
	    : !(res->error == UPSTREAM_CONNECT || res->error == UPSTREAM_TIMEOUT_CONNECT ||
	        retryable_curl(rc)))
		return UPSTREAM_ATTEMPT_FINISHED;
	u->retry_wait_ms = backoff_ms(u, attempt);
	if (clock_now_us() + u->retry_wait_ms * 1000 - u->t_start_us >
	    (int64_t)u->cfg->upstream_first_token_timeout * 1000000)
		return UPSTREAM_ATTEMPT_FINISHED;  /* the wait alone would pass the deadline */
	u->attempt++;
	return UPSTREAM_ATTEMPT_RETRY;
}

/* Waits wait_ms before a retry, ticking. Returns false if told to stop. */
static bool
blocking_wait(struct upstream *u, int64_t wait_ms)
{
	int64_t until = clock_now_us() + wait_ms * 1000, next_tick = 0;

	for (;;) {
		int64_t now = clock_now_us();
		if (now >= until)
			return true;
		if (!upstream_tick(u, now, &next_tick)) {
			u->res->error = UPSTREAM_ABORTED;
			return false;
		}
		int64_t slice = (until - now) / 1000;
		if (u->ops != NULL && u->ops->tick_ms > 0 && slice > u->ops->tick_ms)
			slice = u->ops->tick_ms;
		(void)curl_multi_poll(u->multi, NULL, 0, (int)(slice > 0 ? slice : 1), NULL);
	}
}

/* The blocking driver: attempts in this thread, on the client's own multi. */
static void
upstream_transfer(struct upstream *u, const char *path, const char *content_type, const char *body,
    size_t len, struct upstream_result *res)
{
	if (!upstream_transfer_begin(u, path, content_type, body, len, res))
		return;
	for (;;) {
		if (!upstream_attempt_setup(u))
			return;
		if (upstream_attempt_end(u, upstream_run(u)) == UPSTREAM_ATTEMPT_FINISHED)
			return;
		if (!blocking_wait(u, u->retry_wait_ms))
			return;
	}
}

void
upstream_stream(struct upstream *u, const char *path, const char *body, size_t len,
    const struct upstream_stream_ops *ops, struct upstream_result *res)
{
	u->ops = ops;
	u->streaming = true;
	u->collect = NULL;
	upstream_transfer(u, path, "application/json", body, len, res);
	u->ops = NULL;
}

void
upstream_post(struct upstream *u, const char *path, const char *content_type, const char *body,
    size_t len, struct buf *out, struct upstream_result *res)
{
	u->ops = NULL;
	u->streaming = false;
	u->collect = out;
	upstream_transfer(u, path, content_type, body, len, res);
	u->collect = NULL;
}

/* GET's body: kept up to out's bound (NULL: discarded). */
static size_t
upstream_get_body(char *p, size_t size, size_t n, void *ctx)
{
	struct buf *out = ctx;

	if (out != NULL && !buf_append(out, p, size * n))
		return CURL_WRITEFUNC_ERROR;
	return size * n;
}

bool
upstream_get(struct upstream *u, const char *path, long timeout_ms, struct buf *out)
{
	char url[2048];
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode rc;
	int n;

	n = snprintf(url, sizeof(url), "%s%s", u->cfg->openai_base_url, path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return false;
	curl_easy_reset(u->easy);
	if (u->cfg->openai_api_key[0] != '\0' && (h = curl_slist_append(NULL, u->auth_header)) == NULL)
		return false;
	if (curl_easy_setopt(u->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, upstream_get_body) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, (void *)out) != CURLE_OK ||
	    curl_easy_setopt(u->easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK) {
		curl_slist_free_all(h);
		return false;
	}
	rc = curl_easy_perform(u->easy);
	if (rc == CURLE_OK)
		(void)curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	return rc == CURLE_OK && status >= 200 && status < 300;
}

bool
upstream_probe(struct upstream *u)
{
	return upstream_get(u, "/models", 2000L, NULL);
}
