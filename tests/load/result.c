/* result.c: a run's figures as a human summary and as one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "loadtest.h"

#define LT_SAMPLE_CAP_DEFAULT (4u * 1024u * 1024u)

static const char *
lt_mode_name(enum lt_mode m)
{
	switch (m) {
	case LT_STREAM: return "stream";
	case LT_LIST:   return "list";
	case LT_LOGIN:  return "login";
	default:        return "get";
	}
}

static const char *
lt_target_name(enum lt_target t)
{
	switch (t) {
	case LT_TARGET_STACK:  return "stack";
	case LT_TARGET_OPENAI: return "openai";
	case LT_TARGET_SEED003: return "seed003";
	case LT_TARGET_PEER:   return "peer";
	default:               return "upstream";
	}
}

void
lt_result_init(struct lt_result *r, const struct lt_options *opt)
{
	size_t cap = opt->sample_cap > 0 ? opt->sample_cap : LT_SAMPLE_CAP_DEFAULT;
	time_t now = time(NULL);
	struct tm tm;

	memset(r, 0, sizeof(*r));
	r->opt = opt;
	samples_init(&r->ttfb_body, cap);
	samples_init(&r->ttfb_token, cap);
	samples_init(&r->gap, cap);
	samples_init(&r->duration, cap);
	samples_init(&r->connect, cap);
	samples_init(&r->handshake, cap);
	samples_init(&r->headers, cap);
	samples_init(&r->latency, cap);
	procmon_init(&r->mon, opt->sample_ms);
	gmtime_r(&now, &tm);
	strftime(r->started_at, sizeof(r->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
lt_result_free(struct lt_result *r)
{
	if (r == NULL)
		return;
	samples_free(&r->ttfb_body);
	samples_free(&r->ttfb_token);
	samples_free(&r->gap);
	samples_free(&r->duration);
	samples_free(&r->connect);
	samples_free(&r->handshake);
	samples_free(&r->headers);
	samples_free(&r->latency);
	procmon_free(&r->mon);
}

void
lt_result_fail(struct lt_result *r, const char *key, const char *detail)
{
	struct lt_reason *x = NULL;

	r->failed++;
	for (int i = 0; i < r->nreasons; i++) {
		if (strcmp(r->reasons[i].key, key) == 0) {
			x = &r->reasons[i];
			break;
		}
	}
	if (x == NULL) {
		/* Past the table's end, the last row collects the rest. */
		if (r->nreasons == LT_REASONS_MAX) {
			x = &r->reasons[LT_REASONS_MAX - 1];
			snprintf(x->key, sizeof(x->key), "other");
		} else {
			x = &r->reasons[r->nreasons++];
			snprintf(x->key, sizeof(x->key), "%s", key);
			snprintf(x->example, sizeof(x->example), "%s", detail != NULL ? detail : "");
		}
	}
	x->count++;
}

static double
lt_ms(uint32_t us)
{
	return (double)us / 1000.0;
}

static double
lt_window_s(const struct lt_result *r)
{
	if (r->opt->mode != LT_STREAM)
		return r->window_s;
	return r->end_at > r->begin_at ? (double)(r->end_at - r->begin_at) / 1e6 : 0;
}

static void
lt_print_samples(FILE *f, const char *label, struct samples *s, const char *what)
{
	if (s->seen == 0) {
		fprintf(f, "  %-12s none\n", label);
		return;
	}
	fprintf(f, "  %-12s p50 %7.1f  p90 %7.1f  p99 %7.1f  max %7.1f ms  (%llu %s)\n", label,
	    lt_ms(samples_pct(s, 50)), lt_ms(samples_pct(s, 90)), lt_ms(samples_pct(s, 99)),
	    lt_ms(s->max), (unsigned long long)s->seen, what);
}

static void
lt_print_services(struct lt_result *r, FILE *f)
{
	double busy = r->mon.busy_end_s - r->mon.busy_begin_s;
	/* The monitor covers the whole run, warm-up included. */
	double win = r->end_at > r->begin_at ? (double)(r->end_at - r->begin_at) / 1e6 : 0;
	double known = r->client_cpu_s;

	for (int i = 0; i < r->mon.n; i++)
		known += r->mon.svc[i].cpu_end_s - r->mon.svc[i].cpu_begin_s;
	fprintf(f, "  machine      %d CPUs busy %.2f s of %.2f s (%.0f%%); %.2f s of that outside "
	    "the tool%s\n", r->mon.cpus, busy, win * r->mon.cpus,
	    win > 0 ? 100.0 * busy / (win * r->mon.cpus) : 0, busy - known,
	    r->mon.n > 0 ? " and the services below" : "");
	if (r->mon.n == 0)
		return;
	fprintf(f, "  server       %-10s %5s %11s %11s %11s %11s %11s %7s\n", "service", "procs",
	    "RSS before", "RSS peak", "RSS +peak", "PSS before", "PSS +full", "CPU s");
	for (int i = 0; i < r->mon.n; i++) {
		const struct procmon_service *s = &r->mon.svc[i];

		fprintf(f, "               %-10s %5d %7.1f MiB %7.1f MiB %7.1f MiB %7.1f MiB %7.1f MiB "
		    "%7.2f\n", s->name, s->peak_procs, (double)s->base_rss_kib / 1024,
		    (double)s->peak_rss_kib / 1024,
		    ((double)s->peak_rss_kib - (double)s->base_rss_kib) / 1024,
		    (double)s->base_pss_kib / 1024,
		    s->mark_pss_kib > 0 ?
		    ((double)s->mark_pss_kib - (double)s->base_pss_kib) / 1024 : 0.0,
		    s->cpu_end_s - s->cpu_begin_s);
	}
}

void
lt_result_print(struct lt_result *r, FILE *f)
{
	const struct lt_options *o = r->opt;
	double win = lt_window_s(r);

	if (o->mode == LT_STREAM) {
		fprintf(f, "loadtest stream: %d streams -> %s (%s%s)", o->streams, o->url,
		    lt_target_name(o->target), o->http2 ? ", HTTP/2" : "");
		if (o->message != NULL)
			fprintf(f, ", message \"%s\"", o->message);
		else
			fprintf(f, ", %d tokens x %d ms", o->tokens, o->delay_ms);
		fprintf(f, ", ramp %.1f s", o->ramp_s);
		if (o->sustain_s > 0)
			fprintf(f, ", sustained %.1f s", o->sustain_s);
		fprintf(f, "\n  streams      %llu started, %llu completed, %llu failed; "
		    "peak %d open at once\n", (unsigned long long)r->started,
		    (unsigned long long)r->completed, (unsigned long long)r->failed, r->peak_open);
		if (r->connect.seen > 0)
			lt_print_samples(f, "TCP connect", &r->connect, "connections");
		if (r->handshake.seen > 0)
			lt_print_samples(f, "TLS done", &r->handshake, "connections");
		lt_print_samples(f, "headers", &r->headers, "streams");
		lt_print_samples(f, "TTFB byte", &r->ttfb_body, "streams");
		lt_print_samples(f, "TTFB token", &r->ttfb_token, "streams");
		lt_print_samples(f, "token gap", &r->gap, "gaps");
		lt_print_samples(f, "duration", &r->duration, "streams");
		fprintf(f, "  throughput   %llu tokens in %.2f s = %.0f tokens/s; %llu heartbeats; "
		    "%.1f MiB received\n", (unsigned long long)r->tokens, win,
		    win > 0 ? (double)r->tokens / win : 0, (unsigned long long)r->heartbeats,
		    (double)r->body_bytes / 1048576.0);
	} else {
		fprintf(f, "loadtest %s: %d connections -> %s%s%s for %.1f s (+%.1f s warm-up)\n",
		    lt_mode_name(o->mode), o->concurrency, o->url,
		    o->mode == LT_GET ? o->path : "", o->http2 ? " (HTTP/2)" : "", o->duration_s,
		    o->warmup_s);
		fprintf(f, "  requests     %llu completed, %llu failed in %.2f s = %.0f req/s\n",
		    (unsigned long long)r->completed, (unsigned long long)r->failed, win,
		    win > 0 ? (double)r->completed / win : 0);
		lt_print_samples(f, "latency", &r->latency, "requests");
	}
	fprintf(f, "  client       %.2f s CPU (this tool, same machine)\n", r->client_cpu_s);
	lt_print_services(r, f);
	for (int i = 0; i < r->nreasons; i++)
		fprintf(f, "  failed       %-14s %6llu  e.g. %s\n", r->reasons[i].key,
		    (unsigned long long)r->reasons[i].count, r->reasons[i].example);
}

static json_object *
lt_json_samples(struct samples *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "n", json_object_new_int64((int64_t)s->seen));
	json_object_object_add(o, "p50", json_object_new_double(lt_ms(samples_pct(s, 50))));
	json_object_object_add(o, "p90", json_object_new_double(lt_ms(samples_pct(s, 90))));
	json_object_object_add(o, "p99", json_object_new_double(lt_ms(samples_pct(s, 99))));
	json_object_object_add(o, "max", json_object_new_double(lt_ms(s->max)));
	json_object_object_add(o, "mean", json_object_new_double(samples_mean(s) / 1000.0));
	return o;
}

static json_object *
lt_json_services(struct lt_result *r)
{
	json_object *all = json_object_new_object();

	for (int i = 0; i < r->mon.n; i++) {
		const struct procmon_service *s = &r->mon.svc[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "pid", json_object_new_int(s->pid));
		json_object_object_add(o, "procs_base", json_object_new_int(s->base_procs));
		json_object_object_add(o, "procs_peak", json_object_new_int(s->peak_procs));
		json_object_object_add(o, "rss_base_kib", json_object_new_int64((int64_t)s->base_rss_kib));
		json_object_object_add(o, "rss_peak_kib", json_object_new_int64((int64_t)s->peak_rss_kib));
		json_object_object_add(o, "rss_end_kib", json_object_new_int64((int64_t)s->end_rss_kib));
		json_object_object_add(o, "pss_base_kib", json_object_new_int64((int64_t)s->base_pss_kib));
		json_object_object_add(o, "pss_full_kib", json_object_new_int64((int64_t)s->mark_pss_kib));
		json_object_object_add(o, "pss_end_kib", json_object_new_int64((int64_t)s->end_pss_kib));
		json_object_object_add(o, "cpu_s", json_object_new_double(s->cpu_end_s - s->cpu_begin_s));
		json_object_object_add(all, s->name, o);
	}
	return all;
}

bool
lt_result_json(struct lt_result *r, FILE *f)
{
	const struct lt_options *o = r->opt;
	json_object *root = json_object_new_object(), *p = json_object_new_object();
	json_object *fail = json_object_new_object(), *counts = json_object_new_object();
	double win = lt_window_s(r);
	int rc;

	json_object_object_add(root, "tool", json_object_new_string("loadtest"));
	json_object_object_add(root, "format", json_object_new_int(1));
	json_object_object_add(root, "mode", json_object_new_string(lt_mode_name(o->mode)));
	json_object_object_add(root, "target", json_object_new_string(
	    o->mode == LT_STREAM ? lt_target_name(o->target) : "stack"));
	json_object_object_add(root, "url", json_object_new_string(o->url));
	if (o->label != NULL)
		json_object_object_add(root, "label", json_object_new_string(o->label));
	json_object_object_add(root, "http2", json_object_new_boolean(o->http2));
	json_object_object_add(root, "started_at", json_object_new_string(r->started_at));
	if (o->mode == LT_STREAM) {
		json_object_object_add(p, "streams", json_object_new_int(o->streams));
		json_object_object_add(p, "tokens", json_object_new_int(o->tokens));
		json_object_object_add(p, "delay_ms", json_object_new_int(o->delay_ms));
		json_object_object_add(p, "ramp_s", json_object_new_double(o->ramp_s));
		json_object_object_add(p, "sustain_s", json_object_new_double(o->sustain_s));
		json_object_object_add(p, "max_time_s", json_object_new_double(o->max_time_s));
		if (o->message != NULL)
			json_object_object_add(p, "message", json_object_new_string(o->message));
	} else {
		json_object_object_add(p, "concurrency", json_object_new_int(o->concurrency));
		json_object_object_add(p, "duration_s", json_object_new_double(o->duration_s));
		json_object_object_add(p, "warmup_s", json_object_new_double(o->warmup_s));
		if (o->mode == LT_GET)
			json_object_object_add(p, "path", json_object_new_string(o->path));
	}
	json_object_object_add(p, "users", json_object_new_int(r->users));
	json_object_object_add(p, "same_addr", json_object_new_boolean(o->same_addr));
	json_object_object_add(root, "params", p);

	json_object_object_add(counts, "started", json_object_new_int64((int64_t)r->started));
	json_object_object_add(counts, "completed", json_object_new_int64((int64_t)r->completed));
	json_object_object_add(counts, "failed", json_object_new_int64((int64_t)r->failed));
	for (int i = 0; i < r->nreasons; i++) {
		json_object *x = json_object_new_object();

		json_object_object_add(x, "count", json_object_new_int64((int64_t)r->reasons[i].count));
		json_object_object_add(x, "example", json_object_new_string(r->reasons[i].example));
		json_object_object_add(fail, r->reasons[i].key, x);
	}
	json_object_object_add(root, "window_s", json_object_new_double(win));
	if (o->mode == LT_STREAM) {
		json_object_object_add(counts, "peak_open", json_object_new_int(r->peak_open));
		json_object_object_add(root, "streams", counts);
		json_object_object_add(root, "ttfb_body_ms", lt_json_samples(&r->ttfb_body));
		json_object_object_add(root, "ttfb_token_ms", lt_json_samples(&r->ttfb_token));
		json_object_object_add(root, "gap_ms", lt_json_samples(&r->gap));
		json_object_object_add(root, "duration_ms", lt_json_samples(&r->duration));
		json_object_object_add(root, "connect_ms", lt_json_samples(&r->connect));
		json_object_object_add(root, "tls_ms", lt_json_samples(&r->handshake));
		json_object_object_add(root, "headers_ms", lt_json_samples(&r->headers));
		json_object_object_add(root, "tokens", json_object_new_int64((int64_t)r->tokens));
		json_object_object_add(root, "tokens_per_s",
		    json_object_new_double(win > 0 ? (double)r->tokens / win : 0));
		json_object_object_add(root, "heartbeats", json_object_new_int64((int64_t)r->heartbeats));
	} else {
		json_object_object_add(root, "requests", counts);
		json_object_object_add(root, "latency_ms", lt_json_samples(&r->latency));
		json_object_object_add(root, "requests_per_s",
		    json_object_new_double(win > 0 ? (double)r->completed / win : 0));
	}
	json_object_object_add(root, "body_bytes", json_object_new_int64((int64_t)r->body_bytes));
	json_object_object_add(root, "failures", fail);
	json_object_object_add(root, "client_cpu_s", json_object_new_double(r->client_cpu_s));
	json_object_object_add(root, "services", lt_json_services(r));
	json_object_object_add(root, "machine_cpus", json_object_new_int(r->mon.cpus));
	json_object_object_add(root, "wall_s", json_object_new_double(
	    r->end_at > r->begin_at ? (double)(r->end_at - r->begin_at) / 1e6 : 0));
	json_object_object_add(root, "machine_busy_cpu_s",
	    json_object_new_double(r->mon.busy_end_s - r->mon.busy_begin_s));
	rc = fprintf(f, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return rc > 0 && fflush(f) == 0;
}
