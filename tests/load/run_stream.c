/* run_stream.c: N concurrent SSE streams, every content event timestamped.
 *
 * Each stream slot owns one easy handle, prepared once. A slot starts at
 * its place in the ramp (all at once without one), its bytes go through the
 * tool's own SSE scanner, and each content event is stamped on arrival:
 * the first one gives the time to first token, the others the gap to the
 * previous one. A stream counts as completed only with HTTP 200, no error
 * event, the terminal event (seed 000 `done`, OpenAI `[DONE]`, seed 003
 * `{"done":true}`) and, when
 * the directives asked for N tokens, exactly N content events. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* memmem */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "client.h"
#include "clock.h"
#include "evloop.h"
#include "loadtest.h"
#include "sse_scan.h"

#ifndef CURL_WRITEFUNC_ERROR
#define CURL_WRITEFUNC_ERROR 0xFFFFFFFF
#endif

#define STREAM_EVENT_MAX   (256 * 1024)   /* longest SSE line or event */
#define STREAM_PATH_MAX    512
#define STREAM_STEP_MAX_US 50000          /* loop wakes at least this often */
#define STREAM_RETRY_US    200000         /* --sustain: pause after a failure */

struct srun;

struct stream {
	struct srun      *run;
	CURL             *easy;
	struct sse_scan   scan;
	int64_t           t_start;      /* handed to libcurl */
	int64_t           t_headers;    /* status line received */
	int64_t           t_body;       /* first body byte */
	int64_t           t_last;       /* last content event */
	int64_t           now;          /* arrival time of the bytes being scanned */
	uint32_t          tokens;
	long              status;
	bool              open;
	bool              saw_done;
	bool              saw_error;
	bool              bad_frame;    /* scanner refused the bytes */
	char              detail[LT_REASON_TEXT];   /* error text or body head */
	size_t            detail_len;
	char              errbuf[CURL_ERROR_SIZE];
};

struct srun {
	struct lt_result         *r;
	const struct lt_options  *opt;
	struct evloop             loop;
	json_tokener             *tok;
	struct stream            *st;
	const struct lt_users    *users;
	struct curl_slist       **hdrs;       /* one list per user */
	int                       nhdrs;
	char                     *body;       /* the request body, shared */
	int                       open;
	int                       waiting;    /* started, no headers and not done yet */
	bool                      weighed;    /* the server was weighed with all answered */
	int64_t                   sustain_until;  /* 0: one stream per slot */
	/* --sustain: slots whose stream failed wait STREAM_RETRY_US before the
	 * next one (no tight loop of instant 429s). A ring in time order, as
	 * the pause is constant. */
	int                      *retry_slot;
	int64_t                  *retry_at;
	int                       retry_head;
	int                       retry_len;
	int                       nslots;
	sse_scan_event_fn         on_event;   /* the target's dialect */
};

static void
stream_detail(struct stream *s, const char *p, size_t n)
{
	size_t room = sizeof(s->detail) - 1 - s->detail_len;

	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++)
		s->detail[s->detail_len++] = (p[i] == '\n' || p[i] == '\r') ? ' ' : p[i];
	s->detail[s->detail_len] = '\0';
}

static json_object *
stream_parse(struct srun *run, const char *data, size_t len)
{
	json_object *o;

	if (len > (size_t)INT32_MAX)
		return NULL;
	json_tokener_reset(run->tok);
	o = json_tokener_parse_ex(run->tok, data, (int)len);
	if (o != NULL && json_tokener_get_error(run->tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static void
stream_token(struct stream *s)
{
	struct lt_result *r = s->run->r;

	if (s->tokens == 0)
		samples_add(&r->ttfb_token, s->now - s->t_start);
	else
		samples_add(&r->gap, s->now - s->t_last);
	s->t_last = s->now;
	s->tokens++;
	r->tokens++;
	if (r->first_token_at == 0)
		r->first_token_at = s->now;
	r->last_token_at = s->now;
}

static void
stream_error_text(struct stream *s, json_object *o)
{
	json_object *e, *m;
	const char *text;

	s->saw_error = true;
	if (s->detail_len > 0 || !json_object_object_get_ex(o, "error", &e))
		return;
	/* seed 000: "error": "text"; OpenAI: "error": {"message": "text"} */
	if (json_object_is_type(e, json_type_object) &&
	    json_object_object_get_ex(e, "message", &m))
		e = m;
	text = json_object_get_string(e);
	stream_detail(s, text, strlen(text));
}

/* Seed 000: {"type":"start"|"content"|"done"|"error", ...} */
static bool
stream_on_seed000(void *ctx, const char *event, const char *data, size_t len)
{
	static const char fast[] = "{\"type\":\"content\"";
	struct stream *s = ctx;
	json_object *o, *v;
	const char *type;

	(void)event;
	/* Fast path for the common event: the client shares the cores with
	 * the server, so it should not spend them building JSON trees. A
	 * raw `{"type":"content"` can only be the object's first member. */
	if (len > sizeof(fast) - 1 && memcmp(data, fast, sizeof(fast) - 1) == 0) {
		stream_token(s);
		return true;
	}
	if ((o = stream_parse(s->run, data, len)) == NULL)
		return true;   /* not ours to judge; a missing `done` will show */
	type = json_object_object_get_ex(o, "type", &v) ? json_object_get_string(v) : "";
	if (strcmp(type, "content") == 0)
		stream_token(s);
	else if (strcmp(type, "done") == 0)
		s->saw_done = true;
	else if (strcmp(type, "error") == 0)
		stream_error_text(s, o);
	json_object_put(o);
	return true;
}

/* OpenAI chunks: choices[0].delta.content (non-empty) is a token; the role
 * chunk's "" and the usage chunk's empty choices are not. */
static bool
stream_on_openai(void *ctx, const char *event, const char *data, size_t len)
{
	static const char fast[] = "\"delta\":{\"content\":\"";
	struct stream *s = ctx;
	json_object *o, *v, *c0, *delta, *content;
	const char *hit;

	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		s->saw_done = true;
		return true;
	}
	/* Fast path (see stream_on_seed000): a delta whose first member is a
	 * non-empty content string. Inside a JSON string the quotes would be
	 * escaped, so the pattern cannot come from content. The role chunk
	 * ({"role":…,"content":""}) and anything unusual take the full
	 * parse. */
	if (strcmp(event, "error") != 0 &&
	    (hit = memmem(data, len, fast, sizeof(fast) - 1)) != NULL &&
	    (size_t)(hit - data) + sizeof(fast) - 1 < len && hit[sizeof(fast) - 1] != '"' &&
	    memmem(data, len, "\"error\"", 7) == NULL) {
		stream_token(s);
		return true;
	}
	if ((o = stream_parse(s->run, data, len)) == NULL)
		return true;
	if (strcmp(event, "error") == 0 || json_object_object_get_ex(o, "error", &v)) {
		stream_error_text(s, o);
	} else if (json_object_object_get_ex(o, "choices", &v) &&
	    json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0 &&
	    (c0 = json_object_array_get_idx(v, 0)) != NULL &&
	    json_object_object_get_ex(c0, "delta", &delta) &&
	    json_object_object_get_ex(delta, "content", &content) &&
	    json_object_is_type(content, json_type_string) &&
	    json_object_get_string_len(content) > 0) {
		stream_token(s);
	}
	json_object_put(o);
	return true;
}

/* Seed 003: {"content":"…","sessionId":…} per token, {"done":true,…} at
 * the end, {"error":…} on failure; no event names. */
static bool
stream_on_seed003(void *ctx, const char *event, const char *data, size_t len)
{
	static const char fast[] = "{\"content\":\"";
	struct stream *s = ctx;
	json_object *o, *v;

	(void)event;
	/* Fast path (see stream_on_seed000): a non-empty content string as
	 * the object's first member. */
	if (len > sizeof(fast) && memcmp(data, fast, sizeof(fast) - 1) == 0 &&
	    data[sizeof(fast) - 1] != '"') {
		stream_token(s);
		return true;
	}
	if ((o = stream_parse(s->run, data, len)) == NULL)
		return true;
	if (json_object_object_get_ex(o, "error", &v))
		stream_error_text(s, o);
	else if (json_object_object_get_ex(o, "done", &v) && json_object_get_boolean(v))
		s->saw_done = true;
	else if (json_object_object_get_ex(o, "content", &v) &&
	    json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
		stream_token(s);
	json_object_put(o);
	return true;
}

static void
stream_on_comment(void *ctx)
{
	struct stream *s = ctx;

	s->run->r->heartbeats++;
}

static size_t
stream_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct stream *s = ud;
	struct lt_result *r = s->run->r;
	size_t n = size * nmemb;

	s->now = clock_us();
	r->body_bytes += n;
	if (s->t_body == 0) {
		s->t_body = s->now;
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
		if (s->status == 200)
			samples_add(&r->ttfb_body, s->t_body - s->t_start);
	}
	if (s->status != 200) {
		stream_detail(s, p, n);   /* the error body, for the report */
		return n;
	}
	if (!sse_scan_feed(&s->scan, p, n)) {
		s->bad_frame = true;
		return CURL_WRITEFUNC_ERROR;
	}
	return n;
}

/* A started stream got its headers or ended without them. Once every
 * stream was started and none waits for its answer any more, the server
 * holds all of them, not only in its listen queue (a slow start-up would
 * weigh part of them): weigh it again, once (see stream_start). */
static void
stream_answered(struct srun *run)
{
	if (--run->waiting == 0 && run->r->started >= (uint64_t)run->nslots && !run->weighed) {
		run->weighed = true;
		procmon_mark_pss(&run->r->mon);
	}
}

/* Stamps the response's first header line (our clock, not libcurl's:
 * libcurl's transfer timers start late for multiplexed HTTP/2 streams). */
static size_t
stream_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct stream *s = ud;

	(void)p;
	if (s->t_headers == 0) {
		s->t_headers = clock_us();
		stream_answered(s->run);
	}
	return size * nmemb;
}

static const char *
stream_curl_key(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:      return "connect_failed";
	case CURLE_OPERATION_TIMEDOUT:   return "curl_timeout";
	case CURLE_RECV_ERROR:           return "recv_error";
	case CURLE_SEND_ERROR:           return "send_error";
	case CURLE_GOT_NOTHING:          return "empty_reply";
	case CURLE_PARTIAL_FILE:         return "partial_body";
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:         return "http2_error";
	case CURLE_SSL_CONNECT_ERROR:    return "tls_error";
	default:                         return "curl_error";
	}
}

/* Classifies a stream that ended (capped: still open at the run's cap). */
static void
stream_finish(struct stream *s, CURLcode rc, int64_t now, bool capped)
{
	struct srun *run = s->run;
	struct lt_result *r = run->r;
	const struct lt_options *opt = run->opt;
	char key[LT_REASON_KEY], text[LT_REASON_TEXT];

	s->open = false;
	run->open--;
	if (s->t_headers == 0)
		stream_answered(run);
	if (s->status == 0)
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
	samples_add(&r->duration, now - s->t_start);
	if (!capped) {
		curl_off_t tcp = 0, tls = 0;
		long fresh = 0;

		/* libcurl's phase timers, from the same start as ours. Only new
		 * connections have a connect (and TLS) phase. */
		curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &fresh);
		curl_easy_getinfo(s->easy, CURLINFO_CONNECT_TIME_T, &tcp);
		curl_easy_getinfo(s->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
		if (fresh > 0 && tcp > 0)
			samples_add(&r->connect, (int64_t)tcp);
		if (fresh > 0 && tls > 0)
			samples_add(&r->handshake, (int64_t)tls);
		if (s->t_headers > 0)
			samples_add(&r->headers, s->t_headers - s->t_start);
	}
	if (capped) {
		snprintf(text, sizeof(text), "still open after --max-time %g s (%u tokens)",
		    opt->max_time_s, s->tokens);
		lt_result_fail(r, "timeout", text);
	} else if (s->bad_frame) {
		lt_result_fail(r, "bad_sse", "an SSE line or event exceeded 256 KiB");
	} else if (rc != CURLE_OK) {
		snprintf(text, sizeof(text), "%.160s (after %u tokens)",
		    s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(rc), s->tokens);
		lt_result_fail(r, stream_curl_key(rc), text);
	} else if (s->status != 200) {
		snprintf(key, sizeof(key), "http_%ld", s->status);
		lt_result_fail(r, key, s->detail);
	} else if (s->saw_error) {
		lt_result_fail(r, "error_event", s->detail);
	} else if (!s->saw_done) {
		snprintf(text, sizeof(text), "the stream ended without its terminal event "
		    "(after %u tokens)", s->tokens);
		lt_result_fail(r, "no_done", text);
	} else if (opt->tokens > 0 && opt->message == NULL && s->tokens != (uint32_t)opt->tokens) {
		snprintf(text, sizeof(text), "%u content events, %d expected", s->tokens,
		    opt->tokens);
		lt_result_fail(r, "token_count", text);
	} else {
		r->completed++;
	}
}

static bool
stream_start(struct srun *run, struct stream *s)
{
	s->t_headers = s->t_body = s->t_last = 0;
	s->tokens = 0;
	s->status = 0;
	s->saw_done = s->saw_error = s->bad_frame = false;
	s->detail_len = 0;
	s->detail[0] = '\0';
	s->errbuf[0] = '\0';
	sse_scan_reset(&s->scan);
	s->t_start = clock_us();
	run->r->started++;
	if (!evloop_add(&run->loop, s->easy)) {
		lt_result_fail(run->r, "client_error", "curl_multi_add_handle failed");
		return false;
	}
	s->open = true;
	run->waiting++;
	if (++run->open > run->r->peak_open) {
		run->r->peak_open = run->open;
		/* Every slot busy for the first time: the moment to weigh the
		 * server (PSS, see procmon.h). */
		if (run->open == run->nslots)
			procmon_mark_pss(&run->r->mon);
	}
	return true;
}

static void
stream_on_done(void *ctx, CURL *e, CURLcode rc)
{
	struct srun *run = ctx;
	struct stream *s = NULL;
	int64_t now = clock_us();
	uint64_t failed = run->r->failed;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
	stream_finish(s, rc, now, false);
	if (run->sustain_until == 0 || now >= run->sustain_until)
		return;
	if (run->r->failed == failed) {
		stream_start(run, s);
	} else if (run->retry_len < run->nslots) {
		int k = (run->retry_head + run->retry_len++) % run->nslots;

		run->retry_slot[k] = (int)(s - run->st);
		run->retry_at[k] = now + STREAM_RETRY_US;
	}
}

/* Restarts the slots whose pause is over; returns µs until the next one
 * is due (or max_wait). */
static int64_t
stream_retry_due(struct srun *run, int64_t now, int64_t max_wait)
{
	while (run->retry_len > 0) {
		int k = run->retry_head;

		if (run->retry_at[k] > now)
			return run->retry_at[k] - now < max_wait ? run->retry_at[k] - now : max_wait;
		run->retry_head = (run->retry_head + 1) % run->nslots;
		run->retry_len--;
		if (now < run->sustain_until)
			stream_start(run, &run->st[run->retry_slot[k]]);
	}
	return max_wait;
}

/* The request body, owned by the caller. */
static char *
stream_body(const struct lt_options *opt)
{
	json_object *o = json_object_new_object(), *msgs, *m;
	char message[256];
	const char *text = opt->message;
	char *out;

	if (text == NULL) {
		int n = 0;

		message[0] = '\0';
		if (opt->tokens > 0)
			n = snprintf(message, sizeof(message), "[[tokens=%d]]", opt->tokens);
		if (opt->delay_ms >= 0)
			snprintf(message + n, sizeof(message) - (size_t)n, "%s[[delay=%d]]",
			    n > 0 ? " " : "", opt->delay_ms);
		text = message[0] != '\0' ? message : "Hello";
	}
	if (opt->target == LT_TARGET_STACK) {
		json_object_object_add(o, "content", json_object_new_string(text));
	} else if (opt->target == LT_TARGET_SEED003 || opt->target == LT_TARGET_PEER) {
		json_object_object_add(o, "message", json_object_new_string(text));
	} else {
		json_object_object_add(o, "model", json_object_new_string(opt->model));
		json_object_object_add(o, "stream", json_object_new_boolean(1));
		msgs = json_object_new_array();
		m = json_object_new_object();
		json_object_object_add(m, "role", json_object_new_string("user"));
		json_object_object_add(m, "content", json_object_new_string(text));
		json_object_array_add(msgs, m);
		json_object_object_add(o, "messages", msgs);
	}
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static struct curl_slist *
stream_headers(const char *bearer)
{
	struct curl_slist *l = NULL, *h;
	char auth[4096];
	int n;

	if (bearer != NULL) {
		n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
		if (n < 0 || (size_t)n >= sizeof(auth) || (l = curl_slist_append(l, auth)) == NULL)
			return NULL;
	}
	if ((h = curl_slist_append(l, "Content-Type: application/json")) == NULL)
		goto failed;
	l = h;
	if ((h = curl_slist_append(l, "Accept: text/event-stream")) == NULL)
		goto failed;
	return h;
failed:
	curl_slist_free_all(l);
	return NULL;
}

static bool
stream_prepare(struct srun *run, struct stream *s, int slot, char **sessions)
{
	const struct lt_options *opt = run->opt;
	const struct lt_users *users = run->users;
	/* Over HTTP/2 the streams share the default address: libcurl 7.88
	 * waits for a pending connection (PIPEWAIT) only when it could use
	 * it, and one bound to another user's address it cannot, so with an
	 * address per user every stream would open its own connection. */
	struct client c = { opt->url, opt->cacert, opt->http2, opt->connect_ms,
	    users->addrs != NULL && !opt->http2 ? users->addrs[slot % users->n] : NULL };
	char path[STREAM_PATH_MAX];
	int n;

	s->run = run;
	sse_scan_init(&s->scan, STREAM_EVENT_MAX, run->on_event, stream_on_comment, s);
	if ((s->easy = curl_easy_init()) == NULL)
		return false;
	switch (opt->target) {
	case LT_TARGET_STACK:
		n = snprintf(path, sizeof(path), "/api/chat/realtime/sessions/%s/stream",
		    sessions[slot]);
		break;
	case LT_TARGET_OPENAI:
		n = snprintf(path, sizeof(path), "/v1/chat/completions");
		break;
	case LT_TARGET_SEED003:
	case LT_TARGET_PEER:
		n = snprintf(path, sizeof(path), "/api/v2/ai/chat/stream");
		break;
	default:
		/* --url is the API base, like OPENAI_BASE_URL (…/v1). */
		n = snprintf(path, sizeof(path), "/chat/completions");
		break;
	}
	if (n < 0 || (size_t)n >= sizeof(path) || !client_setup(&c, s->easy, path))
		return false;
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, run->body);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, run->hdrs[slot % run->nhdrs]);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, stream_on_body);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, stream_on_header);
	curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
	return true;
}

static double
stream_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

bool
lt_run_stream(struct lt_result *r, const struct lt_users *users, char **sessions)
{
	const struct lt_options *opt = r->opt;
	struct srun run = { .r = r, .opt = opt, .users = users };
	int nslots = opt->streams, next = 0;
	int64_t ramp_us = (int64_t)(opt->ramp_s * 1e6), deadline;
	double cpu0;
	bool ok = false;

	run.loop.epfd = -1;
	switch (opt->target) {
	case LT_TARGET_STACK:    run.on_event = stream_on_seed000; break;
	case LT_TARGET_SEED003:
	case LT_TARGET_PEER:     run.on_event = stream_on_seed003; break;
	default:                 run.on_event = stream_on_openai; break;
	}
	run.nslots = nslots;
	if ((run.tok = json_tokener_new_ex(32)) == NULL ||
	    (run.body = stream_body(opt)) == NULL ||
	    (run.st = calloc((size_t)nslots, sizeof(*run.st))) == NULL ||
	    (run.retry_slot = calloc((size_t)nslots, sizeof(*run.retry_slot))) == NULL ||
	    (run.retry_at = calloc((size_t)nslots, sizeof(*run.retry_at))) == NULL)
		goto nomem;
	/* One header list per user (for the upstream target all alike). */
	run.nhdrs = users->n;
	if ((run.hdrs = calloc((size_t)run.nhdrs, sizeof(*run.hdrs))) == NULL)
		goto nomem;
	for (int u = 0; u < run.nhdrs; u++) {
		const char *bearer = opt->target == LT_TARGET_UPSTREAM ? opt->api_key :
		    opt->target == LT_TARGET_PEER ? NULL : users->tokens[u];

		if ((run.hdrs[u] = stream_headers(bearer)) == NULL)
			goto nomem;
	}
	for (int i = 0; i < nslots; i++)
		if (!stream_prepare(&run, &run.st[i], i, sessions))
			goto nomem;
	/* Every stream may hold its own connection; keep them all cached. */
	/* HTTP/2: libcurl fills up to 100 streams on a connection before the
	 * server's SETTINGS say more (nginx: 128). */
	if (!evloop_init(&run.loop, stream_on_done, &run, opt->http2 ? nslots / 100 + 1 : 0,
	    (long)nslots + 16))
		goto done;

	if (!procmon_begin(&r->mon))
		fprintf(stderr, "loadtest: the memory sampler did not start: %s\n", strerror(errno));
	cpu0 = stream_cpu_s();
	r->begin_at = clock_us();
	deadline = r->begin_at + (int64_t)(opt->max_time_s * 1e6);
	if (opt->sustain_s > 0)
		run.sustain_until = r->begin_at + ramp_us + (int64_t)(opt->sustain_s * 1e6);
	for (;;) {
		int64_t now = clock_us(), wait;

		while (next < nslots && r->begin_at + ramp_us * next / nslots <= now)
			stream_start(&run, &run.st[next++]);
		wait = stream_retry_due(&run, now, STREAM_STEP_MAX_US);
		if (next == nslots && run.open == 0 &&
		    (run.retry_len == 0 || now >= run.sustain_until))
			break;
		if (now >= deadline) {
			for (int i = 0; i < nslots; i++) {
				if (!run.st[i].open)
					continue;
				evloop_remove(&run.loop, run.st[i].easy);
				stream_finish(&run.st[i], CURLE_OK, now, true);
			}
			break;
		}
		if (deadline - now < wait)
			wait = deadline - now;
		if (next < nslots && r->begin_at + ramp_us * next / nslots - now < wait)
			wait = r->begin_at + ramp_us * next / nslots - now;
		if (!evloop_step(&run.loop, wait))
			goto done;
	}
	r->end_at = clock_us();
	r->client_cpu_s = stream_cpu_s() - cpu0;
	procmon_end(&r->mon);
	ok = true;
	goto done;
nomem:
	fprintf(stderr, "loadtest: out of memory preparing %d streams\n", nslots);
done:
	if (run.st != NULL) {
		for (int i = 0; i < nslots; i++) {
			if (run.st[i].easy != NULL) {
				if (run.st[i].open)
					evloop_remove(&run.loop, run.st[i].easy);
				curl_easy_cleanup(run.st[i].easy);
			}
			sse_scan_free(&run.st[i].scan);
		}
		free(run.st);
	}
	evloop_free(&run.loop);
	if (run.hdrs != NULL) {
		for (int u = 0; u < run.nhdrs; u++)
			curl_slist_free_all(run.hdrs[u]);
		free(run.hdrs);
	}
	free(run.body);
	free(run.retry_slot);
	free(run.retry_at);
	if (run.tok != NULL)
		json_tokener_free(run.tok);
	return ok;
}
