/* run_requests.c: closed-loop request rate of the non-streamed routes.
 *
 * M connections each send one request, wait for the answer and send the
 * next at once, for the warm-up plus the measured duration. Requests that
 * complete inside the measured window count; their latency runs from the
 * moment the request was handed to libcurl to the end of the response.
 * Connections are kept alive (HTTP/1.1) or multiplexed (HTTP/2), as a
 * browser would. */
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

#define REQ_STEP_MAX_US 50000
#define REQ_BODY_HEAD   160

struct rrun;

struct req {
	struct rrun  *run;
	CURL         *easy;
	int64_t       t_start;
	bool          open;
	char          head[REQ_BODY_HEAD];   /* start of the body, for errors */
	size_t        head_len;
	char          errbuf[CURL_ERROR_SIZE];
};

struct rrun {
	struct lt_result          *r;
	const struct lt_options   *opt;
	struct evloop              loop;
	struct req                *rq;
	struct curl_slist        **hdrs;    /* per user */
	char                     **bodies;  /* per user (login) */
	int                        nusers;
	bool                       fresh_addr;  /* login: a new client each time */
	int64_t                    warm_end;
	int64_t                    end;
};

static size_t
req_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *q = ud;
	size_t n = size * nmemb, room = sizeof(q->head) - 1 - q->head_len;
	size_t k = n < room ? n : room;

	memcpy(q->head + q->head_len, p, k);
	q->head_len += k;
	q->head[q->head_len] = '\0';
	q->run->r->body_bytes += n;
	return n;
}

static bool
req_start(struct rrun *run, struct req *q)
{
	if (run->fresh_addr) {
		char addr[32], iface[40];

		/* Each login from a new client: its own address and connection. */
		client_random_source(addr, sizeof(addr));
		snprintf(iface, sizeof(iface), "host!%s", addr);
		curl_easy_setopt(q->easy, CURLOPT_INTERFACE, iface);
	}
	q->head_len = 0;
	q->head[0] = '\0';
	q->errbuf[0] = '\0';
	q->t_start = clock_us();
	if (!evloop_add(&run->loop, q->easy))
		return false;
	q->open = true;
	return true;
}

static void
req_on_done(void *ctx, CURL *e, CURLcode rc)
{
	struct rrun *run = ctx;
	struct lt_result *r = run->r;
	struct req *q = NULL;
	int64_t now = clock_us();
	long status = 0;
	char key[LT_REASON_KEY];

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&q);
	q->open = false;
	if (now >= run->warm_end && now <= run->end) {
		r->started++;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK) {
			lt_result_fail(r, "curl_error",
			    q->errbuf[0] != '\0' ? q->errbuf : curl_easy_strerror(rc));
		} else if (status != 200) {
			snprintf(key, sizeof(key), "http_%ld", status);
			lt_result_fail(r, key, q->head);
		} else {
			r->completed++;
			samples_add(&r->latency, now - q->t_start);
		}
	}
	if (now < run->end)
		req_start(run, q);
}

static struct curl_slist *
req_headers(const char *bearer, bool json)
{
	struct curl_slist *l = NULL, *h;
	char auth[4096];
	int n;

	if (bearer != NULL) {
		n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
		if (n < 0 || (size_t)n >= sizeof(auth) || (l = curl_slist_append(l, auth)) == NULL)
			return NULL;
	}
	if ((h = curl_slist_append(l, json ? "Content-Type: application/json" :
	    "Accept: application/json")) == NULL) {
		curl_slist_free_all(l);
		return NULL;
	}
	return h;
}

/* {"username": …, "password": …} of one user. */
static char *
req_login_body(const struct lt_options *opt, const char *name)
{
	json_object *o = json_object_new_object();
	char *out;

	json_object_object_add(o, "username", json_object_new_string(name));
	json_object_object_add(o, "password", json_object_new_string(opt->password));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static double
req_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

bool
lt_run_requests(struct lt_result *r, const struct lt_users *users)
{
	const struct lt_options *opt = r->opt;
	struct client c = { opt->url, opt->cacert, opt->http2, opt->connect_ms, NULL };
	struct rrun run = { .r = r, .opt = opt };
	const char *path;
	int nconn = opt->concurrency;
	bool login = opt->mode == LT_LOGIN, ok = false;
	double cpu0;

	run.loop.epfd = -1;
	path = opt->mode == LT_LIST ? "/api/chat/realtime/sessions" :
	    login ? "/api/auth/login" : opt->path;
	run.nusers = users->n;
	run.fresh_addr = login && !opt->same_addr;
	if ((run.rq = calloc((size_t)nconn, sizeof(*run.rq))) == NULL ||
	    (run.hdrs = calloc((size_t)run.nusers, sizeof(*run.hdrs))) == NULL ||
	    (run.bodies = calloc((size_t)run.nusers, sizeof(*run.bodies))) == NULL)
		goto nomem;
	for (int u = 0; u < run.nusers; u++) {
		if ((run.hdrs[u] = req_headers(login ? NULL : users->tokens[u], login)) == NULL)
			goto nomem;
		if (login && (run.bodies[u] = req_login_body(opt, users->names[u])) == NULL)
			goto nomem;
	}
	for (int i = 0; i < nconn; i++) {
		struct req *q = &run.rq[i];

		q->run = &run;
		c.source = users->addrs != NULL ? users->addrs[i % run.nusers] : NULL;
		if ((q->easy = curl_easy_init()) == NULL || !client_setup(&c, q->easy, path))
			goto nomem;
		curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, run.hdrs[i % run.nusers]);
		if (login)
			curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, run.bodies[i % run.nusers]);
		curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, req_on_body);
		curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
		curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
		curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
		curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, 30000L);
	}
	if (!evloop_init(&run.loop, req_on_done, &run, opt->http2 ? nconn / 100 + 1 : 0,
	    (long)nconn + 16))
		goto done;

	if (!procmon_begin(&r->mon))
		fprintf(stderr, "loadtest: the memory sampler did not start: %s\n", strerror(errno));
	cpu0 = req_cpu_s();
	r->begin_at = clock_us();
	run.warm_end = r->begin_at + (int64_t)(opt->warmup_s * 1e6);
	run.end = run.warm_end + (int64_t)(opt->duration_s * 1e6);
	for (int i = 0; i < nconn; i++)
		if (!req_start(&run, &run.rq[i]))
			goto done;
	for (;;) {
		int64_t now = clock_us();

		if (now >= run.end)
			break;
		if (!evloop_step(&run.loop, run.end - now < REQ_STEP_MAX_US ? run.end - now :
		    REQ_STEP_MAX_US))
			goto done;
	}
	r->end_at = clock_us();
	r->window_s = (double)(run.end - run.warm_end) / 1e6;
	r->client_cpu_s = req_cpu_s() - cpu0;
	procmon_end(&r->mon);
	ok = true;
	goto done;
nomem:
	fprintf(stderr, "loadtest: out of memory preparing %d connections\n", nconn);
done:
	if (run.rq != NULL) {
		for (int i = 0; i < nconn; i++) {
			if (run.rq[i].easy == NULL)
				continue;
			if (run.rq[i].open)
				evloop_remove(&run.loop, run.rq[i].easy);
			curl_easy_cleanup(run.rq[i].easy);
		}
		free(run.rq);
	}
	evloop_free(&run.loop);
	for (int u = 0; u < run.nusers; u++) {
		if (run.hdrs != NULL)
			curl_slist_free_all(run.hdrs[u]);
		if (run.bodies != NULL)
			free(run.bodies[u]);
	}
	free(run.hdrs);
	free(run.bodies);
	return ok;
}
