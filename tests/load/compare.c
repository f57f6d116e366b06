/* compare.c: the benchmark table. Reads the JSON results of one stream run
 * straight against the upstream (the floor for relaying: what any relay
 * would see) and of the same load through the stack (and through a peer
 * relay, e.g. the Node one in tests/peer), and prints them side by side
 * with what each adds: time to first token, gap per chunk, CPU per token
 * and memory per open stream. Stream runs are grouped by their load
 * (streams, tokens, delay): one table per load, each against the upstream
 * run of that load when there is one (e.g. the benchmark's main load, then
 * its held streams). List and login runs add their request rates. Nothing
 * here asserts: targets are reported as met or missed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "loadtest.h"

#define CMP_RUNS_MAX 12

/* Target figures of the performance issue (reported, never asserted). */
#define TARGET_ADDED_TTFB_P99_MS  50.0
#define TARGET_ADDED_GAP_P99_MS   20.0
#define TARGET_LIST_RPS           3000.0
#define TARGET_KIB_PER_STREAM     256.0

struct cmp_run {
	const char  *file;
	json_object *j;
	char         label[40];
	int          group;         /* stream runs: index of its load */
};

/* The processes that relay: chatd and nginx for the stack, the Node
 * process for the peer (only those a run measured count). */
#define CMP_RELAY      "chatd,nginx,peer"
#define CMP_RELAY_CPU  "chatd,nginx,postgres,peer"

/* A number at a dotted path ("gap_ms.p99"); NAN when absent. */
static double
cmp_num(json_object *j, const char *path)
{
	char key[64];
	const char *p = path, *dot;
	json_object *v = j;

	while (v != NULL && *p != '\0') {
		size_t n;

		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(key))
			return NAN;
		memcpy(key, p, n);
		key[n] = '\0';
		if (!json_object_object_get_ex(v, key, &v))
			return NAN;
		p = dot != NULL ? dot + 1 : p + n;
	}
	if (v == NULL || !(json_object_is_type(v, json_type_double) ||
	    json_object_is_type(v, json_type_int)))
		return NAN;
	return json_object_get_double(v);
}

static const char *
cmp_str(json_object *j, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(j, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

/* Sum of a service figure over all services, or over the named ones
 * (comma-separated) when only is not NULL. */
static double
cmp_services(json_object *j, const char *field, const char *only)
{
	json_object *svcs;
	double sum = 0;

	if (!json_object_object_get_ex(j, "services", &svcs))
		return NAN;
	json_object_object_foreach(svcs, name, svc) {
		json_object *v;

		if (only != NULL) {
			const char *hit = strstr(only, name);
			size_t n = strlen(name);

			if (hit == NULL || (hit[n] != '\0' && hit[n] != ','))
				continue;
		}
		if (json_object_object_get_ex(svc, field, &v))
			sum += json_object_get_double(v);
	}
	return sum;
}

static bool
cmp_has_service(json_object *j, const char *name)
{
	json_object *svcs, *v;

	return json_object_object_get_ex(j, "services", &svcs) &&
	    json_object_object_get_ex(svcs, name, &v);
}

/* Memory growth per open stream, in KiB: PSS with every stream open minus
 * PSS before (shared pages counted once) when the run has it, else peak
 * RSS minus RSS before. */
static double
cmp_kib_per_stream(json_object *j, const char *only)
{
	bool pss = cmp_services(j, "pss_full_kib", only) > 0;
	double peak = cmp_services(j, pss ? "pss_full_kib" : "rss_peak_kib", only);
	double base = cmp_services(j, pss ? "pss_base_kib" : "rss_base_kib", only);
	double open = cmp_num(j, "streams.peak_open");

	return open > 0 ? (peak - base) / open : NAN;
}

static double
cmp_cpu_us_per_token(json_object *j, const char *only)
{
	double cpu = cmp_services(j, "cpu_s", only), tokens = cmp_num(j, "tokens");

	return tokens > 0 ? cpu * 1e6 / tokens : NAN;
}

static void
cmp_cell(double v, int prec)
{
	if (isnan(v))
		printf(" %11s", "-");
	else
		printf(" %11.*f", prec, v);
}

static void
cmp_added(double a, double b, int prec)
{
	if (isnan(a) || isnan(b)) {
		printf(" %11s %7s", "-", "-");
		return;
	}
	printf(" %+11.*f", prec, a - b);
	if (b > 0)
		printf(" %6.2fx", a / b);
	else
		printf(" %7s", "-");
}

typedef double (*cmp_get_fn)(json_object *j, const void *arg);

static double
cmp_get_path(json_object *j, const void *arg)
{
	const char *path = arg, *dot = strrchr(path, '.');
	char n_path[64];

	/* A percentile of an empty sample set (no TLS on http) is no figure. */
	if (dot != NULL && (size_t)(dot - path) + 3 < sizeof(n_path) &&
	    (dot[1] == 'p' || strcmp(dot, ".max") == 0)) {
		snprintf(n_path, sizeof(n_path), "%.*s.n", (int)(dot - path), path);
		if (cmp_num(j, n_path) == 0)
			return NAN;
	}
	return cmp_num(j, path);
}

/* arg: comma-separated services; NAN when the run measured none of them. */
static bool
cmp_has_any(json_object *j, const char *list)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		if (cmp_has_service(j, t))
			return true;
	return false;
}

static double
cmp_get_cpu_token(json_object *j, const void *arg)
{
	return arg == NULL || cmp_has_any(j, arg) ? cmp_cpu_us_per_token(j, arg) : NAN;
}

static double
cmp_get_kib(json_object *j, const void *arg)
{
	return arg == NULL || cmp_has_any(j, arg) ? cmp_kib_per_stream(j, arg) : NAN;
}

/* The relay's whole memory (PSS of chatd + nginx with every stream open,
 * baseline included) per open stream. */
static double
cmp_get_kib_relay_total(json_object *j, const void *arg)
{
	double v, open = cmp_num(j, "streams.peak_open");

	(void)arg;
	if (!cmp_has_any(j, CMP_RELAY) || !(open > 0))
		return NAN;
	v = cmp_services(j, "pss_full_kib", CMP_RELAY);
	if (!(v > 0))
		v = cmp_services(j, "rss_peak_kib", CMP_RELAY);
	return v / open;
}

static double
cmp_get_kib_relay(json_object *j, const void *arg)
{
	(void)arg;
	return cmp_get_kib(j, CMP_RELAY);
}

static double
cmp_get_service_cpu(json_object *j, const void *arg)
{
	return cmp_has_service(j, arg) ? cmp_services(j, "cpu_s", arg) : NAN;
}

static double
cmp_get_rss_peak_mib(json_object *j, const void *arg)
{
	return cmp_has_any(j, arg) ? cmp_services(j, "rss_peak_kib", arg) / 1024.0 : NAN;
}

static double
cmp_get_pss_peak_mib(json_object *j, const void *arg)
{
	double v = cmp_has_any(j, arg) ? cmp_services(j, "pss_full_kib", arg) : 0;

	return v > 0 ? v / 1024.0 : NAN;
}

/* CPU the machine spent outside the measured services and this tool during
 * the run: other people's work, which skews every figure. */
static double
cmp_get_other_cpu(json_object *j, const void *arg)
{
	double busy = cmp_num(j, "machine_busy_cpu_s"), svc = cmp_services(j, "cpu_s", NULL);

	(void)arg;
	if (isnan(svc))
		svc = 0;
	return busy - svc - cmp_num(j, "client_cpu_s");
}

static double
cmp_get_busy_pct(json_object *j, const void *arg)
{
	double busy = cmp_num(j, "machine_busy_cpu_s"), wall = cmp_num(j, "wall_s");
	double cpus = cmp_num(j, "machine_cpus");

	(void)arg;
	return wall > 0 && cpus > 0 ? 100.0 * busy / (wall * cpus) : NAN;
}

/* One table row: the base run, then each stack run with its addition. */
static void
cmp_row(const char *label, struct cmp_run *base, struct cmp_run **runs, int n, cmp_get_fn get,
    const void *arg, int prec, bool added)
{
	double b = base != NULL ? get(base->j, arg) : NAN;

	printf("%-30s", label);
	cmp_cell(b, prec);
	for (int i = 0; i < n; i++) {
		double a = get(runs[i]->j, arg);

		cmp_cell(a, prec);
		if (added)
			cmp_added(a, b, prec);
		else
			printf(" %11s %7s", "", "");
	}
	printf("\n");
}

static void
cmp_verdict(const char *what, bool known, bool met, const char *value)
{
	printf("  %-44s %-18s %s\n", what, known ? value : "-",
	    !known ? "NOT MEASURED" : met ? "MET" : "MISSED");
}

static bool
cmp_is_upstream(const struct cmp_run *r)
{
	return strcmp(cmp_str(r->j, "target"), "upstream") == 0;
}

/* Two stream runs carry the same load: same streams, tokens and delay. */
static bool
cmp_same_load(const struct cmp_run *a, const struct cmp_run *b)
{
	static const char *const keys[] = { "params.streams", "params.tokens", "params.delay_ms" };

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (cmp_num(a->j, keys[k]) != cmp_num(b->j, keys[k]))
			return false;
	return true;
}

/* One table: the load's upstream run (base, may be NULL) and the others. */
static void
cmp_table(struct cmp_run *base, struct cmp_run **streams, int nstreams)
{
	static const char *const svc_names[] = { "upstream", "chatd", "nginx", "postgres", "peer" };
	json_object *j = base != NULL ? base->j : streams[0]->j;

	printf("%.0f streams x %.0f tokens, %.0f ms apart, started over %.1f s\n\n",
	    cmp_num(j, "params.streams"), cmp_num(j, "params.tokens"), cmp_num(j, "params.delay_ms"),
	    cmp_num(j, "params.ramp_s"));
	printf("%-30s %11s", "", base != NULL ? base->label : "(no floor)");
	for (int i = 0; i < nstreams; i++)
		printf(" %11s %11s %7s", streams[i]->label, "added", "ratio");
	printf("\n");
	cmp_row("streams completed", base, streams, nstreams, cmp_get_path, "streams.completed",
	    0, false);
	cmp_row("streams failed", base, streams, nstreams, cmp_get_path, "streams.failed", 0,
	    false);
	cmp_row("peak open streams", base, streams, nstreams, cmp_get_path, "streams.peak_open",
	    0, false);
	cmp_row("TCP connected p99 ms", base, streams, nstreams, cmp_get_path, "connect_ms.p99",
	    1, true);
	cmp_row("TLS established p99 ms", base, streams, nstreams, cmp_get_path, "tls_ms.p99", 1,
	    false);
	cmp_row("TTFB first byte p50 ms", base, streams, nstreams, cmp_get_path,
	    "ttfb_body_ms.p50", 1, true);
	cmp_row("TTFB first byte p99 ms", base, streams, nstreams, cmp_get_path,
	    "ttfb_body_ms.p99", 1, true);
	cmp_row("TTFB first token p50 ms", base, streams, nstreams, cmp_get_path,
	    "ttfb_token_ms.p50", 1, true);
	cmp_row("TTFB first token p99 ms", base, streams, nstreams, cmp_get_path,
	    "ttfb_token_ms.p99", 1, true);
	cmp_row("TTFB first token max ms", base, streams, nstreams, cmp_get_path,
	    "ttfb_token_ms.max", 1, true);
	cmp_row("gap per chunk p50 ms", base, streams, nstreams, cmp_get_path, "gap_ms.p50", 2,
	    true);
	cmp_row("gap per chunk p99 ms", base, streams, nstreams, cmp_get_path, "gap_ms.p99", 2,
	    true);
	cmp_row("gap per chunk max ms", base, streams, nstreams, cmp_get_path, "gap_ms.max", 2,
	    true);
	cmp_row("stream duration p99 ms", base, streams, nstreams, cmp_get_path,
	    "duration_ms.p99", 1, true);
	cmp_row("tokens received", base, streams, nstreams, cmp_get_path, "tokens", 0, false);
	cmp_row("tokens/s (whole run)", base, streams, nstreams, cmp_get_path, "tokens_per_s", 0,
	    true);
	for (size_t k = 0; k < sizeof(svc_names) / sizeof(svc_names[0]); k++) {
		char label[40];

		snprintf(label, sizeof(label), "CPU s %s", svc_names[k]);
		cmp_row(label, base, streams, nstreams, cmp_get_service_cpu, svc_names[k], 2, false);
	}
	cmp_row("CPU s load client (this tool)", base, streams, nstreams, cmp_get_path,
	    "client_cpu_s", 2, false);
	cmp_row("CPU s other processes (noise)", base, streams, nstreams, cmp_get_other_cpu, NULL,
	    2, false);
	cmp_row("machine busy % (all CPUs)", base, streams, nstreams, cmp_get_busy_pct, NULL, 0,
	    false);
	cmp_row("CPU us per token, all measured", base, streams, nstreams, cmp_get_cpu_token,
	    NULL, 1, true);
	cmp_row("  the relay (chatd+nginx+pg|node)", base, streams, nstreams, cmp_get_cpu_token,
	    CMP_RELAY_CPU, 1, false);
	for (size_t k = 0; k < sizeof(svc_names) / sizeof(svc_names[0]); k++) {
		char label[40];

		snprintf(label, sizeof(label), "RSS peak MiB %s", svc_names[k]);
		cmp_row(label, base, streams, nstreams, cmp_get_rss_peak_mib, svc_names[k], 1, false);
	}
	for (size_t k = 0; k < sizeof(svc_names) / sizeof(svc_names[0]); k++) {
		char label[40];

		snprintf(label, sizeof(label), "PSS all open MiB %s", svc_names[k]);
		cmp_row(label, base, streams, nstreams, cmp_get_pss_peak_mib, svc_names[k], 1, false);
	}
	cmp_row("KiB per open stream (PSS), all", base, streams, nstreams, cmp_get_kib, NULL, 1,
	    true);
	for (size_t k = 0; k < sizeof(svc_names) / sizeof(svc_names[0]); k++) {
		char label[40];

		snprintf(label, sizeof(label), "  %s", svc_names[k]);
		cmp_row(label, base, streams, nstreams, cmp_get_kib, svc_names[k], 1, false);
	}
	cmp_row("  the relay (chatd+nginx|node)", base, streams, nstreams, cmp_get_kib_relay, NULL,
	    1, false);
	cmp_row("relay total KiB / open stream", base, streams, nstreams,
	    cmp_get_kib_relay_total, NULL, 1, false);
}

/* The targets of one stack stream run, against its load's upstream run. */
static void
cmp_targets(const struct cmp_run *base, const struct cmp_run *run)
{
	json_object *a = run->j;
	double failed = cmp_num(a, "streams.failed");
	double bttfb = base != NULL ? cmp_num(base->j, "ttfb_token_ms.p99") : NAN;
	double bgap = base != NULL ? cmp_num(base->j, "gap_ms.p99") : NAN;
	double dttfb = cmp_num(a, "ttfb_token_ms.p99") - bttfb;
	double dgap = cmp_num(a, "gap_ms.p99") - bgap;
	double kib = cmp_get_kib(a, "chatd,nginx");
	char what[80], value[64];

	printf(" %s, %.0f streams x %.0f tokens x %.0f ms:\n", run->label,
	    cmp_num(a, "params.streams"), cmp_num(a, "params.tokens"), cmp_num(a, "params.delay_ms"));
	snprintf(value, sizeof(value), "%.0f failed", failed);
	cmp_verdict("no failed stream", !isnan(failed), failed == 0, value);
	snprintf(what, sizeof(what), "added TTFB p99 < %.0f ms", TARGET_ADDED_TTFB_P99_MS);
	snprintf(value, sizeof(value), "%+.1f ms", dttfb);
	cmp_verdict(what, !isnan(dttfb), dttfb < TARGET_ADDED_TTFB_P99_MS, value);
	snprintf(what, sizeof(what), "added gap per chunk p99 < %.0f ms", TARGET_ADDED_GAP_P99_MS);
	snprintf(value, sizeof(value), "%+.2f ms", dgap);
	cmp_verdict(what, !isnan(dgap), dgap < TARGET_ADDED_GAP_P99_MS, value);
	snprintf(what, sizeof(what), "chatd+nginx memory < %.0f KiB per open stream",
	    TARGET_KIB_PER_STREAM);
	snprintf(value, sizeof(value), "%.1f KiB", kib);
	cmp_verdict(what, !isnan(kib), kib < TARGET_KIB_PER_STREAM, value);
}

int
lt_compare(int argc, char **argv)
{
	struct cmp_run streams[CMP_RUNS_MAX], reqs[CMP_RUNS_MAX];
	int nstreams = 0, nreqs = 0, ngroups = 0, nrelayed = 0, rc = 2;

	for (int i = 0; i < argc; i++) {
		json_object *j = json_object_from_file(argv[i]);
		struct cmp_run *r;
		const char *mode, *target;

		if (j == NULL) {
			fprintf(stderr, "loadtest compare: %s: not a JSON result\n", argv[i]);
			goto done;
		}
		mode = cmp_str(j, "mode");
		target = cmp_str(j, "target");
		if (strcmp(mode, "stream") == 0 && nstreams < CMP_RUNS_MAX) {
			r = &streams[nstreams++];
		} else if (strcmp(mode, "stream") != 0 && nreqs < CMP_RUNS_MAX) {
			r = &reqs[nreqs++];
		} else {
			fprintf(stderr, "loadtest compare: %s: too many runs of its kind\n", argv[i]);
			json_object_put(j);
			goto done;
		}
		r->file = argv[i];
		r->j = j;
		r->group = -1;
		if (cmp_str(j, "label")[0] != '\0')
			snprintf(r->label, sizeof(r->label), "%s", cmp_str(j, "label"));
		else
			snprintf(r->label, sizeof(r->label), "%s%s%s",
			    strcmp(mode, "stream") != 0 ? mode : target,
			    strncmp(cmp_str(j, "url"), "https:", 6) == 0 ? " https" : " http",
			    json_object_get_boolean(json_object_object_get(j, "http2")) ? "/2" : "");
	}
	for (int i = 0; i < nstreams; i++) {
		for (int k = 0; k < i && streams[i].group < 0; k++)
			if (cmp_same_load(&streams[i], &streams[k]))
				streams[i].group = streams[k].group;
		if (streams[i].group < 0)
			streams[i].group = ngroups++;
	}
	for (int i = 0; i < nstreams; i++)
		nrelayed += !cmp_is_upstream(&streams[i]);
	if (nrelayed == 0) {
		fprintf(stderr, "loadtest compare: needs a stream run through the stack (or a peer), "
		    "best with one --target upstream run of the same load\n");
		goto done;
	}

	for (int g = 0; g < ngroups; g++) {
		struct cmp_run *base = NULL, *others[CMP_RUNS_MAX];
		int nothers = 0;

		for (int i = 0; i < nstreams; i++) {
			if (streams[i].group != g)
				continue;
			if (base == NULL && cmp_is_upstream(&streams[i]))
				base = &streams[i];
			else
				others[nothers++] = &streams[i];
		}
		if (nothers == 0)
			continue;
		if (g > 0)
			printf("\n");
		cmp_table(base, others, nothers);
	}

	if (nreqs > 0) {
		printf("\n%-30s %11s %11s %9s %9s %9s %9s %7s\n", "requests", "req/s", "completed",
		    "failed", "p50 ms", "p99 ms", "max ms", "conns");
		for (int i = 0; i < nreqs; i++) {
			json_object *j = reqs[i].j;

			printf("%-30s %11.0f %11.0f %9.0f %9.2f %9.2f %9.2f %7.0f\n", reqs[i].label,
			    cmp_num(j, "requests_per_s"), cmp_num(j, "requests.completed"),
			    cmp_num(j, "requests.failed"), cmp_num(j, "latency_ms.p50"),
			    cmp_num(j, "latency_ms.p99"), cmp_num(j, "latency_ms.max"),
			    cmp_num(j, "params.concurrency"));
		}
	}

	printf("\nTargets (measured and reported, never asserted; peer relays are for "
	    "comparison only):\n");
	for (int i = 0; i < nstreams; i++) {
		const char *target = cmp_str(streams[i].j, "target");
		struct cmp_run *base = NULL;

		if (strcmp(target, "upstream") == 0 || strcmp(target, "peer") == 0)
			continue;
		for (int k = 0; k < nstreams && base == NULL; k++)
			if (streams[k].group == streams[i].group && cmp_is_upstream(&streams[k]))
				base = &streams[k];
		cmp_targets(base, &streams[i]);
	}
	for (int i = 0; i < nreqs; i++) {
		double rps = cmp_num(reqs[i].j, "requests_per_s");
		char what[80], value[64];

		if (strcmp(cmp_str(reqs[i].j, "mode"), "list") != 0)
			continue;
		snprintf(what, sizeof(what), "%s: session list > %.0f req/s", reqs[i].label,
		    TARGET_LIST_RPS);
		snprintf(value, sizeof(value), "%.0f req/s", rps);
		cmp_verdict(what, !isnan(rps), rps > TARGET_LIST_RPS, value);
	}
	rc = 0;
done:
	for (int i = 0; i < nstreams; i++)
		json_object_put(streams[i].j);
	for (int i = 0; i < nreqs; i++)
		json_object_put(reqs[i].j);
	return rc;
}
