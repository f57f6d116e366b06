/* metrics.c: the shared-memory scoreboard and its two renderings. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "json_out.h"
#include "log.h"
#include "upstream.h"

/* Histogram upper bounds in seconds (Prometheus `le`), shared by both. */
static const double duration_bounds[] = { 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300 };
static const double ttfb_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10 };
#define NDUR  (sizeof(duration_bounds) / sizeof(duration_bounds[0]))
#define NTTFB (sizeof(ttfb_bounds) / sizeof(ttfb_bounds[0]))

/* Statuses counted per route; anything else lands in "other". */
static const int tracked_status[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413,
	415, 429, 500, 502, 503, 504 };
#define NSTATUS (sizeof(tracked_status) / sizeof(tracked_status[0]) + 1)

/* Upstream failures by kind: slot e - 1 for UPSTREAM_CONNECT..UPSTREAM_DROPPED
 * (labelled with upstream_error_code), the last slot "other". */
#define NUPCODES ((size_t)UPSTREAM_DROPPED + 1)

struct histogram {
	atomic_uint_least64_t buckets[16];   /* cumulative per bound; last = +Inf */
	atomic_uint_least64_t count;
	atomic_uint_least64_t sum_us;
};

struct worker_slot {
	atomic_int            pid;           /* 0: free */
	unsigned              generation;
	int                   threads;
	atomic_int            busy;
	atomic_int            streams;       /* open on the worker's event loop */
	atomic_uint_least64_t requests;
	int64_t               started;       /* unix time */
};

struct scoreboard {
	int64_t               started;
	atomic_uint_least64_t respawns;
	atomic_uint_least64_t streams_started;
	atomic_uint_least64_t streams_completed;
	atomic_uint_least64_t streams_error;
	atomic_uint_least64_t tokens_prompt;
	atomic_uint_least64_t tokens_completion;
	atomic_uint_least64_t upstream_errors[NUPCODES];
	atomic_uint_least64_t requests[METRICS_MAX_ROUTES + 1][NSTATUS];
	struct histogram      duration;
	struct histogram      ttfb;
	struct worker_slot    workers[METRICS_MAX_WORKERS];
};

static struct scoreboard *sb;
static enum metrics_scope scope;
static const char *const *route_names;
static int nroutes;

/* The labels every series of this process carries: empty for chatd (its
 * series predate the gateway's and dashboards use them as they are), or
 * frontend="gateway". lbl_set is the whole set with its braces, for a
 * series without labels of its own; lbl_head precedes other labels. */
static const char *lbl_set = "";
static const char *lbl_head = "";

/* Each daemon keeps its own scoreboard and is its own scrape target, rather
 * than the gateway mapping a named segment of chatd's:
 * - chatd and the gateway start, reload and crash independently (separate
 *   systemd units, possibly separate hosts, several gateways per host). A
 *   segment owned by one of them would either reset the other's counters
 *   when it restarts or outlive a dead writer, and a version mismatch of
 *   its layout during an upgrade would corrupt both; Prometheus already
 *   handles a counter that resets with its process (rate(), increase()).
 * - One target per process is Prometheus's own model: `up` then says when
 *   the gateway is down, which a shared segment served by chatd would hide
 *   behind chatd's healthy scrape.
 * - nginx exposes both on the same loopback-only rule (/metrics and
 *   /gateway/metrics), so the operator adds one line to the scrape config,
 *   and the gateway's series carry frontend="gateway": sum() without the
 *   label aggregates both front ends, by (frontend) separates them.
 * chatd maps the segment shared because its workers are forks of one
 * master; for the gateway (one process) it is simply its memory. */
bool
metrics_init(enum metrics_scope s)
{
	void *p = mmap(NULL, sizeof(*sb), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		log_error("metrics: cannot map the shared segment (%zu bytes)", sizeof(*sb));
		return false;
	}
	sb = p;  /* zero-filled by the kernel */
	sb->started = (int64_t)time(NULL);
	scope = s;
	lbl_set = s == METRICS_SCOPE_GATEWAY ? "{frontend=\"gateway\"}" : "";
	lbl_head = s == METRICS_SCOPE_GATEWAY ? "frontend=\"gateway\"," : "";
	return true;
}

void
metrics_free(void)
{
	struct scoreboard *p = sb;

	if (p == NULL)
		return;
	sb = NULL;
	if (munmap(p, sizeof(*p)) != 0)
		log_error("metrics: cannot unmap the shared segment");
}

void
metrics_set_routes(const char *const *names, int n)
{
	route_names = names;
	nroutes = n < METRICS_MAX_ROUTES ? n : METRICS_MAX_ROUTES;
}

int
metrics_worker_claim(pid_t pid, unsigned generation, int threads)
{
	if (sb == NULL)
		return -1;
	for (int i = 0; i < METRICS_MAX_WORKERS; i++) {
		int expected = 0;
		if (atomic_compare_exchange_strong(&sb->workers[i].pid, &expected, (int)pid)) {
			struct worker_slot *w = &sb->workers[i];
			w->generation = generation;
			w->threads = threads;
			atomic_store(&w->busy, 0);
			atomic_store(&w->streams, 0);
			atomic_store(&w->requests, 0);
			w->started = (int64_t)time(NULL);
			return i;
		}
	}
	return -1;
}

void
metrics_worker_release(pid_t pid)
{
	if (sb == NULL)
		return;
	for (int i = 0; i < METRICS_MAX_WORKERS; i++)
		if (atomic_load(&sb->workers[i].pid) == (int)pid)
			atomic_store(&sb->workers[i].pid, 0);
}

void
metrics_worker_streams(int slot, int delta)
{
	if (sb != NULL && slot >= 0 && slot < METRICS_MAX_WORKERS)
		atomic_fetch_add(&sb->workers[slot].streams, delta);
}

void
metrics_worker_busy(int slot, int delta)
{
	if (sb != NULL && slot >= 0)
		atomic_fetch_add(&sb->workers[slot].busy, delta);
}

void
metrics_worker_request(int slot)
{
	if (sb != NULL && slot >= 0)
		atomic_fetch_add(&sb->workers[slot].requests, 1);
}

void
metrics_respawn(void)
{
	if (sb != NULL)
		atomic_fetch_add(&sb->respawns, 1);
}

static size_t
status_index(int status)
{
	for (size_t i = 0; i < NSTATUS - 1; i++)
		if (tracked_status[i] == status)
			return i;
	return NSTATUS - 1;
}

void
metrics_request(int route, int status)
{
	if (sb == NULL)
		return;
	if (route < 0 || route >= nroutes)
		route = METRICS_MAX_ROUTES;  /* unmatched */
	atomic_fetch_add(&sb->requests[route][status_index(status)], 1);
}

static void
histogram_observe(struct histogram *h, const double *bounds, size_t n, double v)
{
	for (size_t i = 0; i < n; i++)
		if (v <= bounds[i])
			atomic_fetch_add(&h->buckets[i], 1);
	atomic_fetch_add(&h->buckets[n], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, (uint_least64_t)(v * 1e6));
}

void
metrics_stream_started(void)
{
	if (sb != NULL)
		atomic_fetch_add(&sb->streams_started, 1);
}

void
metrics_stream_ended(enum metric_stream_end end, double duration_s, double ttfb_s)
{
	if (sb == NULL)
		return;
	atomic_fetch_add(end == STREAM_END_COMPLETED ? &sb->streams_completed : &sb->streams_error, 1);
	histogram_observe(&sb->duration, duration_bounds, NDUR, duration_s);
	if (ttfb_s >= 0)
		histogram_observe(&sb->ttfb, ttfb_bounds, NTTFB, ttfb_s);
}

void
metrics_upstream_error(enum upstream_error e)
{
	size_t i = e >= UPSTREAM_CONNECT && e <= UPSTREAM_DROPPED ? (size_t)e - 1 : NUPCODES - 1;

	if (sb == NULL)
		return;
	atomic_fetch_add(&sb->upstream_errors[i], 1);
}

void
metrics_tokens(long prompt, long completion)
{
	if (sb == NULL)
		return;
	if (prompt > 0)
		atomic_fetch_add(&sb->tokens_prompt, (uint_least64_t)prompt);
	if (completion > 0)
		atomic_fetch_add(&sb->tokens_completion, (uint_least64_t)completion);
}

static bool
render_histogram(struct buf *out, const char *name, const char *help, struct histogram *h,
    const double *bounds, size_t n)
{
	bool ok = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);

	for (size_t i = 0; ok && i < n; i++)
		ok = buf_printf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, lbl_head, bounds[i],
		    (unsigned long long)atomic_load(&h->buckets[i]));
	return ok && buf_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n%s_sum%s %.6f\n%s_count%s %llu\n",
	    name, lbl_head, (unsigned long long)atomic_load(&h->buckets[n]), name, lbl_set,
	    (double)atomic_load(&h->sum_us) / 1e6, name, lbl_set,
	    (unsigned long long)atomic_load(&h->count));
}

static bool
render_counter(struct buf *out, const char *name, const char *help, uint_least64_t v)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s%s %llu\n", name, help, name, name,
	    lbl_set, (unsigned long long)v);
}

/* Workers alive, busy threads and threads in all. */
static void
pool_totals(int *workers, int *busy, int *threads, int *streams)
{
	*workers = *busy = *threads = *streams = 0;
	for (int i = 0; i < METRICS_MAX_WORKERS; i++)
		if (atomic_load(&sb->workers[i].pid) != 0) {
			(*workers)++;
			*busy += atomic_load(&sb->workers[i].busy);
			*threads += sb->workers[i].threads;
			*streams += atomic_load(&sb->workers[i].streams);
		}
}

bool
metrics_render_prometheus(struct buf *out)
{
	int workers, busy, threads, streams;
	bool ok;

	if (sb == NULL)
		return buf_appendz(out, "# metrics unavailable\n");
	ok = render_counter(out, "stream_chat_started_total", "Streams started.",
	        atomic_load(&sb->streams_started)) &&
	    render_counter(out, "stream_chat_completed_total", "Streams that ended with their reply complete (or cancelled by the user).",
	        atomic_load(&sb->streams_completed)) &&
	    render_counter(out, "stream_chat_error_total", "Streams that ended with an error event.",
	        atomic_load(&sb->streams_error)) &&
	    render_histogram(out, "stream_chat_duration_seconds", "Duration of streams.",
	        &sb->duration, duration_bounds, NDUR) &&
	    render_histogram(out, "stream_chat_ttfb_seconds", "Time from the request to the first token.",
	        &sb->ttfb, ttfb_bounds, NTTFB) &&
	    buf_appendz(out, "# HELP chat_tokens_total Tokens counted by the upstream.\n"
	        "# TYPE chat_tokens_total counter\n") &&
	    buf_printf(out, "chat_tokens_total{%sdirection=\"in\"} %llu\n"
	        "chat_tokens_total{%sdirection=\"out\"} %llu\n",
	        lbl_head, (unsigned long long)atomic_load(&sb->tokens_prompt), lbl_head,
	        (unsigned long long)atomic_load(&sb->tokens_completion)) &&
	    buf_appendz(out, "# HELP chat_upstream_errors_total Upstream failures by kind.\n"
	        "# TYPE chat_upstream_errors_total counter\n");
	for (size_t i = 0; ok && i < NUPCODES; i++)
		ok = buf_printf(out, "chat_upstream_errors_total{%skind=\"%s\"} %llu\n", lbl_head,
		    i < NUPCODES - 1 ? upstream_error_code((enum upstream_error)(i + 1)) : "other",
		    (unsigned long long)atomic_load(&sb->upstream_errors[i]));
	/* The HTTP routes and the worker pool are chatd's; a gateway has
	 * neither (its sessions and streams are its own gauges). */
	if (scope == METRICS_SCOPE_GATEWAY)
		return ok;
	ok = ok && buf_appendz(out, "# HELP chat_http_requests_total Requests by route and status.\n"
	    "# TYPE chat_http_requests_total counter\n");
	for (int r = 0; ok && r <= METRICS_MAX_ROUTES; r++) {
		const char *name = r < nroutes ? route_names[r] : r == METRICS_MAX_ROUTES ? "unmatched" : NULL;
		bool seen = false;
		if (name == NULL)
			continue;
		/* Routes that share a label (two login paths) are one series. */
		for (int q = 0; q < r && q < nroutes && !seen; q++)
			seen = strcmp(route_names[q], name) == 0;
		if (seen)
			continue;
		for (size_t s = 0; ok && s < NSTATUS; s++) {
			unsigned long long v = atomic_load(&sb->requests[r][s]);
			for (int q = r + 1; q < nroutes; q++)
				if (strcmp(route_names[q], name) == 0)
					v += atomic_load(&sb->requests[q][s]);
			char code[8];
			if (v == 0)
				continue;
			if (s < NSTATUS - 1)
				(void)snprintf(code, sizeof(code), "%d", tracked_status[s]);
			else
				memcpy(code, "other", 6);
			ok = buf_printf(out, "chat_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
			    name, code, v);
		}
	}
	pool_totals(&workers, &busy, &threads, &streams);
	return ok && buf_printf(out,
	    "# HELP chat_pool_workers Worker processes alive.\n# TYPE chat_pool_workers gauge\nchat_pool_workers %d\n"
	    "# HELP chat_pool_threads Request threads in all workers.\n# TYPE chat_pool_threads gauge\nchat_pool_threads %d\n"
	    "# HELP chat_pool_busy_threads Threads serving the short part of a request.\n# TYPE chat_pool_busy_threads gauge\nchat_pool_busy_threads %d\n"
	    "# HELP chat_pool_streams Streams open on the workers' event loops.\n# TYPE chat_pool_streams gauge\nchat_pool_streams %d\n"
	    "# HELP chat_pool_respawns_total Workers restarted after dying or being recycled.\n# TYPE chat_pool_respawns_total counter\nchat_pool_respawns_total %llu\n",
	    workers, threads, busy, streams, (unsigned long long)atomic_load(&sb->respawns));
}

bool
metrics_render_status(struct buf *out, bool json)
{
	int workers, busy, threads, streams;
	int64_t now = (int64_t)time(NULL);
	unsigned long long total = 0;
	bool ok, first = true;

	if (sb == NULL)
		return buf_appendz(out, json ? "{}" : "unavailable\n");
	pool_totals(&workers, &busy, &threads, &streams);
	for (int i = 0; i < METRICS_MAX_WORKERS; i++)
		if (atomic_load(&sb->workers[i].pid) != 0)
			total += atomic_load(&sb->workers[i].requests);
	if (!json) {
		ok = buf_printf(out,
		    "pool:                 chatd\nstart since:          %lld\nworkers:              %d\n"
		    "total threads:        %d\nbusy threads:         %d\nidle threads:         %d\n"
		    "open streams:         %d\n"
		    "requests (live workers): %llu\nrespawns:             %llu\n"
		    "streams started:      %llu\n\n%-8s %-6s %-8s %-6s %-10s %s\n",
		    (long long)(now - sb->started), workers, threads, busy, threads - busy, streams, total,
		    (unsigned long long)atomic_load(&sb->respawns),
		    (unsigned long long)atomic_load(&sb->streams_started),
		    "pid", "gen", "threads", "busy", "requests", "uptime");
		for (int i = 0; ok && i < METRICS_MAX_WORKERS; i++) {
			struct worker_slot *w = &sb->workers[i];
			int pid = atomic_load(&w->pid);
			if (pid != 0)
				ok = buf_printf(out, "%-8d %-6u %-8d %-6d %-10llu %llds\n", pid, w->generation,
				    w->threads, atomic_load(&w->busy),
				    (unsigned long long)atomic_load(&w->requests), (long long)(now - w->started));
		}
		return ok;
	}
	ok = buf_printf(out, "{\"pool\":\"chatd\",\"start_since\":%lld,\"workers\":%d,\"total_threads\":%d,"
	    "\"busy_threads\":%d,\"idle_threads\":%d,\"open_streams\":%d,\"requests\":%llu,\"respawns\":%llu,"
	    "\"streams_started\":%llu,\"processes\":[",
	    (long long)(now - sb->started), workers, threads, busy, threads - busy, streams, total,
	    (unsigned long long)atomic_load(&sb->respawns),
	    (unsigned long long)atomic_load(&sb->streams_started));
	for (int i = 0; ok && i < METRICS_MAX_WORKERS; i++) {
		struct worker_slot *w = &sb->workers[i];
		int pid = atomic_load(&w->pid);
		if (pid == 0)
			continue;
		ok = buf_printf(out, "%s{\"pid\":%d,\"generation\":%u,\"threads\":%d,\"busy\":%d,"
		    "\"streams\":%d,\"requests\":%llu,\"uptime\":%lld}", first ? "" : ",", pid, w->generation,
		    w->threads, atomic_load(&w->busy), atomic_load(&w->streams),
		    (unsigned long long)atomic_load(&w->requests),
		    (long long)(now - w->started));
		first = false;
	}
	return ok && buf_appendz(out, "]}");
}
