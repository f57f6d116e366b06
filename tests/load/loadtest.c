/* loadtest.c: the load tool's command line, setup and main.
 *
 *   loadtest stream  N concurrent SSE streams; time to first byte and to
 *                    first token, gap between tokens, tokens/s, failures
 *   loadtest list    request rate of GET /api/chat/realtime/sessions
 *   loadtest login   request rate of POST /api/auth/login
 *   loadtest get     request rate of GET PATH
 *   loadtest compare the benchmark table from JSON results
 *
 * Loopback only, bounded in time. Setup (user, token, sessions) happens
 * before the measured window. Exit status: 0 all streams/requests
 * succeeded, 1 some failed, 2 the run could not be carried out. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "client.h"
#include "clock.h"
#include "loadtest.h"
#include "setup.h"

#define LT_EXIT_OK      0
#define LT_EXIT_FAILED  1
#define LT_EXIT_ERROR   2

static void
lt_usage(FILE *f)
{
	fputs(
"usage: loadtest stream|list|login|get [options]\n"
"       loadtest compare RUN.json [RUN.json ...]\n"
"\n"
"Modes\n"
"  stream   opens --streams concurrent SSE streams and reports time to first\n"
"           byte and to first token, the gap between tokens (p50/p90/p99/max),\n"
"           tokens/s, completed and failed streams (with reasons), and the\n"
"           server's memory and CPU (--pids-from).\n"
"  list     GET /api/chat/realtime/sessions on --concurrency keep-alive\n"
"           connections for --duration seconds: req/s and latency percentiles.\n"
"  login    the same for POST /api/auth/login (argon2id: CPU-bound on purpose).\n"
"  get      the same for GET --path (e.g. /healthz), with the bearer token.\n"
"  compare  prints the benchmark table from JSON results (--json-out): stream\n"
"           runs grouped by load (streams, tokens, delay), one table each, the\n"
"           load's --target upstream run as the floor and the runs through\n"
"           the stack or a peer beside it; then list/login runs.\n"
"\n"
"Where (loopback addresses only)\n"
"  --url URL             base URL (default http://127.0.0.1:8080; for --target\n"
"                        upstream the API base, e.g. http://127.0.0.1:8099/v1)\n"
"  --cacert FILE         CA certificate for https (e.g. var/tls/cert.pem)\n"
"  --http2               HTTP/2 over TLS, streams multiplexed over a few\n"
"                        connections (nginx allows 128 streams on each), all\n"
"                        from one address (default HTTP/1.1, one connection\n"
"                        per stream)\n"
"  --connect-timeout S   connect timeout in seconds (default 10)\n"
"\n"
"stream\n"
"  --target T            stack    seed 000 POST /api/chat/realtime/sessions/{id}/stream\n"
"                                 (default; one session per stream, made beforehand)\n"
"                        openai   chatd's POST /v1/chat/completions (stream: true)\n"
"                        upstream the upstream's /chat/completions directly: the\n"
"                                 floor any relay starts from\n"
"                        seed003  seed 003 POST /api/v2/ai/chat/stream {message}\n"
"                                 through the stack (with each user's token)\n"
"                        peer     the same seed 003 route on a peer relay (e.g.\n"
"                                 tests/peer/relay.mjs): no users, no auth, no\n"
"                                 setup; measure it with --service peer=PIDFILE\n"
"  --streams N           concurrent streams (default 100)\n"
"  --tokens N            ask for N tokens ([[tokens=N]]) and require exactly N\n"
"                        content events (default 200; 0: no directive)\n"
"  --delay MS            ask for MS between tokens ([[delay=MS]], default 20;\n"
"                        -1: no directive, the upstream's own --delay-ms)\n"
"  --message TEXT        send TEXT instead of the directives (no token check)\n"
"  --ramp S              spread the N starts evenly over S seconds (default 0)\n"
"  --sustain S           restart each finished stream until S seconds after the\n"
"                        ramp (default 0: one stream per slot)\n"
"  --max-time S          hard cap of the run; streams still open then count as\n"
"                        failed (timeout) (default 120)\n"
"  --api-key KEY         bearer token for --target upstream (a keyed fake)\n"
"  --model NAME          model for openai/upstream requests (default gpt-4o-mini)\n"
"\n"
"list, login, get\n"
"  --concurrency M       connections, each sending its next request as soon as\n"
"                        the previous one is answered (default 50)\n"
"  --duration S          measured seconds (default 10)\n"
"  --warmup S            unmeasured seconds first (default 1)\n"
"  --path PATH           for get (default /healthz)\n"
"  --list-fill N         the list user gets at least N sessions (default 20, one\n"
"                        full page)\n"
"\n"
"Setup (not measured)\n"
"  Each run registers fresh users (lt<run id>-<n>) and logs them in; stream\n"
"  slot i belongs to user i % K. Each user is a distinct client: its requests\n"
"  come from its own random loopback address 127.x.y.z (all of 127/8 is\n"
"  local on Linux), and each login of the login mode from a new one, so\n"
"  per-user and per-address rate limits see many clients, as in real life.\n"
"  --user NAME           use this (reusable) user instead; NAME-1..NAME-K with\n"
"                        --users K\n"
"  --password PW         password of every user (default loadtest-password-1)\n"
"  --users K             simulated users (default: list, login, get 1; stream\n"
"                        enough for --streams-per-user)\n"
"  --streams-per-user P  stream mode: at most P streams per user (default 20:\n"
"                        chatd's streams_per_user, and a fifth of its 100\n"
"                        generations per user and window; --sustain needs\n"
"                        more users or higher limits)\n"
"  --same-addr           every request from the default address (127.0.0.1)\n"
"  --setup-concurrency C setup requests C at a time, users' sessions together\n"
"                        (default 32; registrations and logins at most 4: each\n"
"                        is an argon2id hash)\n"
"\n"
"Server figures (optional)\n"
"  --pids-from DIR       a CHAT_VAR/run directory: samples RSS of chatd (master +\n"
"                        workers), nginx (master + workers) and the fake upstream\n"
"                        every --sample-ms, reports baseline and peak per service\n"
"                        and the CPU seconds each used during the run\n"
"  --pg-pidfile FILE     PostgreSQL's postmaster.pid: the database too\n"
"  --service NAME=FILE   also measure the process in pid file FILE (and its\n"
"                        children) as NAME, e.g. peer=var/bench/peer.pid; up\n"
"                        to 4 times\n"
"  --sample-ms MS        sampling interval (default 100)\n"
"\n"
"Output\n"
"  --json                one JSON object on stdout (the summary goes to stderr)\n"
"  --json-out FILE       also write the JSON object to FILE\n"
"  --label NAME          the run's name in the JSON and in compare's table\n"
"                        (default: target and scheme, e.g. \"stack http\")\n"
"  --sample-cap N        keep at most N samples per figure (reservoir beyond;\n"
"                        default 4194304)\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 all streams or requests succeeded, 1 some failed, 2 the run\n"
"could not be carried out (bad options, setup failed).\n", f);
}

enum {
	OPT_URL = 256, OPT_CACERT, OPT_HTTP2, OPT_CONNECT, OPT_TARGET, OPT_STREAMS, OPT_TOKENS,
	OPT_DELAY, OPT_MESSAGE, OPT_RAMP, OPT_SUSTAIN, OPT_MAXTIME, OPT_APIKEY, OPT_MODEL,
	OPT_CONC, OPT_DURATION, OPT_WARMUP, OPT_PATH, OPT_FILL, OPT_USER, OPT_PASSWORD,
	OPT_USERS, OPT_SETUPCONC, OPT_PIDS, OPT_PGPID, OPT_SAMPLEMS, OPT_JSON, OPT_JSONOUT,
	OPT_SAMPLECAP, OPT_PERUSER, OPT_SAMEADDR, OPT_SERVICE, OPT_LABEL
};

static const struct option lt_longopts[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "http2", no_argument, NULL, OPT_HTTP2 },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "streams", required_argument, NULL, OPT_STREAMS },
	{ "tokens", required_argument, NULL, OPT_TOKENS },
	{ "delay", required_argument, NULL, OPT_DELAY },
	{ "message", required_argument, NULL, OPT_MESSAGE },
	{ "ramp", required_argument, NULL, OPT_RAMP },
	{ "sustain", required_argument, NULL, OPT_SUSTAIN },
	{ "max-time", required_argument, NULL, OPT_MAXTIME },
	{ "api-key", required_argument, NULL, OPT_APIKEY },
	{ "model", required_argument, NULL, OPT_MODEL },
	{ "concurrency", required_argument, NULL, OPT_CONC },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "path", required_argument, NULL, OPT_PATH },
	{ "list-fill", required_argument, NULL, OPT_FILL },
	{ "user", required_argument, NULL, OPT_USER },
	{ "password", required_argument, NULL, OPT_PASSWORD },
	{ "users", required_argument, NULL, OPT_USERS },
	{ "streams-per-user", required_argument, NULL, OPT_PERUSER },
	{ "same-addr", no_argument, NULL, OPT_SAMEADDR },
	{ "setup-concurrency", required_argument, NULL, OPT_SETUPCONC },
	{ "pids-from", required_argument, NULL, OPT_PIDS },
	{ "pg-pidfile", required_argument, NULL, OPT_PGPID },
	{ "sample-ms", required_argument, NULL, OPT_SAMPLEMS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "json-out", required_argument, NULL, OPT_JSONOUT },
	{ "sample-cap", required_argument, NULL, OPT_SAMPLECAP },
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Parses a whole number in [min, max]; logs and returns false otherwise. */
static bool
lt_parse_long(const char *name, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "loadtest: --%s: expected a whole number from %ld to %ld, got '%s'\n",
		    name, min, max, s);
		return false;
	}
	*out = v;
	return true;
}

static bool
lt_parse_int(const char *name, const char *s, int min, int max, int *out)
{
	long v;

	if (!lt_parse_long(name, s, min, max, &v))
		return false;
	*out = (int)v;
	return true;
}

static bool
lt_parse_secs(const char *name, const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
		fprintf(stderr, "loadtest: --%s: expected seconds from %g to %g, got '%s'\n", name,
		    min, max, s);
		return false;
	}
	*out = v;
	return true;
}

/* Fills opt from argv (argv[1] is the mode). Returns false (logged) on a
 * bad option; *help is set for -h. */
static bool
lt_parse(int argc, char **argv, struct lt_options *opt, bool *help)
{
	bool url_given = false;
	long v;
	int c;

	*opt = (struct lt_options){
		.mode = LT_STREAM, .target = LT_TARGET_STACK, .url = "http://127.0.0.1:8080",
		.connect_ms = 10000, .model = "gpt-4o-mini", .streams = 100, .tokens = 200,
		.delay_ms = 20, .max_time_s = 120, .per_user = 20, .concurrency = 50,
		.duration_s = 10, .warmup_s = 1, .path = "/healthz", .list_fill = 20,
		.password = "loadtest-password-1", .setup_conc = 32,
		.sample_ms = 100,
	};
	*help = false;
	if (strcmp(argv[1], "stream") == 0)
		opt->mode = LT_STREAM;
	else if (strcmp(argv[1], "list") == 0)
		opt->mode = LT_LIST;
	else if (strcmp(argv[1], "login") == 0)
		opt->mode = LT_LOGIN;
	else if (strcmp(argv[1], "get") == 0)
		opt->mode = LT_GET;
	else if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		*help = true;
		return true;
	} else {
		fprintf(stderr, "loadtest: unknown mode '%s' (stream, list, login, get, compare)\n",
		    argv[1]);
		return false;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lt_longopts, NULL)) != -1) {
		bool ok = true;

		switch (c) {
		case OPT_URL:       opt->url = optarg; url_given = true; break;
		case OPT_CACERT:    opt->cacert = optarg; break;
		case OPT_HTTP2:     opt->http2 = true; break;
		case OPT_CONNECT:
			ok = lt_parse_long("connect-timeout", optarg, 1, 600, &v);
			opt->connect_ms = v * 1000;
			break;
		case OPT_TARGET:
			if (strcmp(optarg, "stack") == 0)
				opt->target = LT_TARGET_STACK;
			else if (strcmp(optarg, "openai") == 0)
				opt->target = LT_TARGET_OPENAI;
			else if (strcmp(optarg, "upstream") == 0)
				opt->target = LT_TARGET_UPSTREAM;
			else if (strcmp(optarg, "seed003") == 0)
				opt->target = LT_TARGET_SEED003;
			else if (strcmp(optarg, "peer") == 0)
				opt->target = LT_TARGET_PEER;
			else {
				fprintf(stderr, "loadtest: --target: stack, openai, upstream, seed003 or peer\n");
				ok = false;
			}
			break;
		case OPT_STREAMS:   ok = lt_parse_int("streams", optarg, 1, 100000, &opt->streams); break;
		case OPT_TOKENS:    ok = lt_parse_int("tokens", optarg, 0, 100000, &opt->tokens); break;
		case OPT_DELAY:     ok = lt_parse_int("delay", optarg, -1, 10000, &opt->delay_ms); break;
		case OPT_MESSAGE:   opt->message = optarg; break;
		case OPT_RAMP:      ok = lt_parse_secs("ramp", optarg, 0, 3600, &opt->ramp_s); break;
		case OPT_SUSTAIN:   ok = lt_parse_secs("sustain", optarg, 0, 86400, &opt->sustain_s); break;
		case OPT_MAXTIME:   ok = lt_parse_secs("max-time", optarg, 0.1, 86400, &opt->max_time_s); break;
		case OPT_APIKEY:    opt->api_key = optarg[0] != '\0' ? optarg : NULL; break;
		case OPT_MODEL:     opt->model = optarg; break;
		case OPT_CONC:      ok = lt_parse_int("concurrency", optarg, 1, 100000, &opt->concurrency); break;
		case OPT_DURATION:  ok = lt_parse_secs("duration", optarg, 0.1, 86400, &opt->duration_s); break;
		case OPT_WARMUP:    ok = lt_parse_secs("warmup", optarg, 0, 3600, &opt->warmup_s); break;
		case OPT_PATH:      opt->path = optarg; break;
		case OPT_FILL:      ok = lt_parse_int("list-fill", optarg, 0, 1000, &opt->list_fill); break;
		case OPT_USER:      opt->user = optarg; break;
		case OPT_PASSWORD:  opt->password = optarg; break;
		case OPT_USERS:     ok = lt_parse_int("users", optarg, 1, 100000, &opt->users); break;
		case OPT_SETUPCONC: ok = lt_parse_int("setup-concurrency", optarg, 1, 1024, &opt->setup_conc); break;
		case OPT_PIDS:      opt->pids_from = optarg; break;
		case OPT_PGPID:     opt->pg_pidfile = optarg; break;
		case OPT_SAMPLEMS:  ok = lt_parse_int("sample-ms", optarg, 10, 60000, &opt->sample_ms); break;
		case OPT_JSON:      opt->json = true; break;
		case OPT_JSONOUT:   opt->json_out = optarg; break;
		case OPT_PERUSER:   ok = lt_parse_int("streams-per-user", optarg, 1, 100000, &opt->per_user); break;
		case OPT_SAMEADDR:  opt->same_addr = true; break;
		case OPT_LABEL:     opt->label = optarg; break;
		case OPT_SERVICE: {
			char *eq = strchr(optarg, '=');

			if (eq == NULL || eq == optarg || eq[1] == '\0' ||
			    (size_t)(eq - optarg) >= PROCMON_NAME_MAX) {
				fprintf(stderr, "loadtest: --service: expected NAME=PIDFILE, got '%s'\n",
				    optarg);
				ok = false;
			} else if (opt->nservices == LT_EXTRA_SERVICES) {
				fprintf(stderr, "loadtest: --service: at most %d\n", LT_EXTRA_SERVICES);
				ok = false;
			} else {
				*eq = '\0';   /* argv is ours to cut */
				opt->services[opt->nservices++] = (struct lt_service_opt){ optarg, eq + 1 };
			}
			break;
		}
		case OPT_SAMPLECAP:
			ok = lt_parse_long("sample-cap", optarg, 1000, 1L << 28, &v);
			opt->sample_cap = (size_t)v;
			break;
		case 'h':           *help = true; return true;
		default:            return false;
		}
		if (!ok)
			return false;
	}
	if (optind < argc) {
		fprintf(stderr, "loadtest: unexpected argument '%s'\n", argv[optind]);
		return false;
	}
	if (opt->mode == LT_STREAM && opt->target == LT_TARGET_UPSTREAM && !url_given)
		opt->url = "http://127.0.0.1:8099/v1";
	if (opt->path[0] != '/') {
		fprintf(stderr, "loadtest: --path must start with /\n");
		return false;
	}
	return true;
}

/* Raises the descriptor limit to the hard limit: every stream holds a
 * socket. Warns when that is still short of need. */
static void
lt_raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need)
		fprintf(stderr, "loadtest: warning: only %ld file descriptors allowed, %ld wanted "
		    "(ulimit -Hn)\n", (long)rl.rlim_cur, need);
}

/* Frees the users. NULL-safe members. */
static void
lt_users_free(struct lt_users *u)
{
	for (int i = 0; i < u->n; i++) {
		if (u->names != NULL)
			free(u->names[i]);
		if (u->tokens != NULL)
			free(u->tokens[i]);
		if (u->addrs != NULL)
			free(u->addrs[i]);
	}
	free(u->names);
	free(u->tokens);
	free(u->addrs);
	memset(u, 0, sizeof(*u));
}

/* Names (and client addresses) of the run's users. Returns false on
 * memory exhaustion. */
static bool
lt_users_make(struct lt_users *u, const struct lt_options *opt)
{
	char name[128], addr[32], run_id[16];
	unsigned long long id;

	memset(u, 0, sizeof(*u));
	u->n = opt->users;
	if (u->n == 0 && opt->mode == LT_STREAM) {
		/* Streams each user will start: one per slot, or with --sustain
		 * about one per stream length (known from the directives). */
		double rounds = 1;

		if (opt->sustain_s > 0) {
			double len = opt->tokens > 0 && opt->delay_ms > 0 ?
			    opt->tokens * opt->delay_ms / 1000.0 : 0.05;

			rounds = opt->sustain_s / (len > 0.05 ? len : 0.05) + 2;
		}
		u->n = (int)((opt->streams * rounds + opt->per_user - 1) / opt->per_user);
		if (u->n > 100000)
			u->n = 100000;
	}
	if (u->n == 0)
		u->n = 1;
	/* A run id in base 36: fresh user names for each run. */
	id = ((unsigned long long)time(NULL) << 16) ^ (unsigned long long)getpid();
	for (int i = (int)sizeof(run_id) - 1; i >= 0; i--)
		run_id[i] = '\0';
	for (int i = 0; id > 0 && i < 12; i++, id /= 36)
		run_id[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[id % 36];
	if ((u->names = calloc((size_t)u->n, sizeof(*u->names))) == NULL ||
	    (u->tokens = calloc((size_t)u->n, sizeof(*u->tokens))) == NULL ||
	    (!opt->same_addr && (u->addrs = calloc((size_t)u->n, sizeof(*u->addrs))) == NULL))
		return false;
	for (int i = 0; i < u->n; i++) {
		if (opt->user != NULL && u->n == 1)
			snprintf(name, sizeof(name), "%.64s", opt->user);
		else if (opt->user != NULL)
			snprintf(name, sizeof(name), "%.50s-%d", opt->user, i + 1);
		else
			snprintf(name, sizeof(name), "lt%s-%d", run_id, i + 1);
		if ((u->names[i] = strdup(name)) == NULL)
			return false;
		if (u->addrs != NULL) {
			client_random_source(addr, sizeof(addr));
			if ((u->addrs[i] = strdup(addr)) == NULL)
				return false;
		}
	}
	return true;
}

/* How many sessions the list user has on the first page (up to 100). */
static int
lt_list_count(const struct client *c, const char *token)
{
	struct client_reply r;
	json_object *o, *s;
	int n = -1;

	if (!client_fetch(c, "GET", "/api/chat/realtime/sessions?limit=100", token, NULL, &r))
		return -1;
	if (r.status == 200 && r.body != NULL && (o = json_tokener_parse(r.body)) != NULL) {
		if (json_object_object_get_ex(o, "sessions", &s) &&
		    json_object_is_type(s, json_type_array))
			n = (int)json_object_array_length(s);
		else if (json_object_is_type(o, json_type_array))
			n = (int)json_object_array_length(o);
		json_object_put(o);
	}
	client_reply_free(&r);
	return n;
}

static void
lt_add_service(struct lt_result *r, const char *name, const char *dir, const char *file,
    bool children)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s%s", dir, file[0] != '\0' ? "/" : "", file);

	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	if (!procmon_add(&r->mon, name, path, children))
		fprintf(stderr, "loadtest: note: %s is not running (%s): not measured\n", name, path);
}

int
main(int argc, char **argv)
{
	struct lt_options opt;
	struct lt_result r;
	struct lt_users users = { 0 };
	struct client c;
	char **sessions = NULL, **slot_tokens = NULL, **slot_addrs = NULL;
	const char *why;
	bool help, result_init = false;
	int status = LT_EXIT_ERROR;
	FILE *jf = NULL;

	if (argc >= 2 && strcmp(argv[1], "compare") == 0)
		return lt_compare(argc - 2, argv + 2);
	if (argc < 2) {
		lt_usage(stderr);
		return LT_EXIT_ERROR;
	}
	if (!lt_parse(argc, argv, &opt, &help)) {
		fprintf(stderr, "loadtest: see loadtest --help\n");
		return LT_EXIT_ERROR;
	}
	if (help) {
		lt_usage(stdout);
		return LT_EXIT_OK;
	}
	if (!client_base_ok(opt.url, &why)) {
		fprintf(stderr, "loadtest: --url %s: %s\n", opt.url, why);
		return LT_EXIT_ERROR;
	}
	lt_raise_nofile((long)(opt.mode == LT_STREAM ? opt.streams : opt.concurrency) + 64);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "loadtest: curl_global_init failed\n");
		return LT_EXIT_ERROR;
	}
	lt_result_init(&r, &opt);
	result_init = true;
	if (!lt_users_make(&users, &opt)) {
		fprintf(stderr, "loadtest: out of memory\n");
		goto done;
	}
	r.users = users.n;

	/* ---- setup, outside the measured window */
	c = (struct client){ opt.url, opt.cacert, opt.http2, opt.connect_ms, NULL };
	if (!(opt.mode == LT_STREAM && LT_TARGET_ANON(opt.target))) {
		int64_t t0 = clock_us();

		if (!setup_users(&c, users.names, users.addrs, users.n, opt.password,
		    opt.setup_conc, users.tokens))
			goto done;
		if (users.n >= 50)
			fprintf(stderr, "loadtest: %d users registered and logged in in %.1f s\n",
			    users.n, (double)(clock_us() - t0) / 1e6);
	}
	if (opt.mode == LT_STREAM && opt.target == LT_TARGET_STACK) {
		/* Slot i belongs to user i % K and uses its own session, made
		 * by that user from that user's address. */
		int64_t t0 = clock_us();

		if ((slot_tokens = calloc((size_t)opt.streams, sizeof(*slot_tokens))) == NULL ||
		    (users.addrs != NULL &&
		    (slot_addrs = calloc((size_t)opt.streams, sizeof(*slot_addrs))) == NULL))
			goto done;
		for (int i = 0; i < opt.streams; i++) {
			slot_tokens[i] = users.tokens[i % users.n];
			if (slot_addrs != NULL)
				slot_addrs[i] = users.addrs[i % users.n];
		}
		if (!setup_sessions(&c, slot_tokens, slot_addrs, (size_t)opt.streams, opt.setup_conc,
		    &sessions))
			goto done;
		if (opt.streams >= 1000)
			fprintf(stderr, "loadtest: %d sessions created in %.1f s\n", opt.streams,
			    (double)(clock_us() - t0) / 1e6);
	}
	if (opt.mode == LT_LIST) {
		for (int u = 0; u < users.n; u++) {
			int have;
			size_t need;
			char **ids = NULL, **toks, **addrs = NULL;

			c.source = users.addrs != NULL ? users.addrs[u] : NULL;
			if ((have = lt_list_count(&c, users.tokens[u])) < 0) {
				fprintf(stderr, "loadtest: GET /api/chat/realtime/sessions failed during "
				    "setup\n");
				goto done;
			}
			if (have >= opt.list_fill)
				continue;
			need = (size_t)(opt.list_fill - have);
			if ((toks = calloc(need, sizeof(*toks))) == NULL ||
			    (users.addrs != NULL && (addrs = calloc(need, sizeof(*addrs))) == NULL)) {
				free(toks);
				goto done;
			}
			for (size_t k = 0; k < need; k++) {
				toks[k] = users.tokens[u];
				if (addrs != NULL)
					addrs[k] = users.addrs[u];
			}
			c.source = NULL;
			if (!setup_sessions(&c, toks, addrs, need, opt.setup_conc, &ids)) {
				free(toks);
				free(addrs);
				goto done;
			}
			free(toks);
			free(addrs);
			setup_ids_free(ids, need);
		}
	}
	if (opt.pids_from != NULL) {
		if (opt.mode != LT_STREAM || !LT_TARGET_ANON(opt.target)) {
			lt_add_service(&r, "chatd", opt.pids_from, "chatd.pid", true);
			lt_add_service(&r, "nginx", opt.pids_from, "nginx.pid", true);
		}
		lt_add_service(&r, "upstream", opt.pids_from, "upstream.pid", false);
	}
	if (opt.pg_pidfile != NULL && (opt.mode != LT_STREAM || !LT_TARGET_ANON(opt.target)))
		lt_add_service(&r, "postgres", opt.pg_pidfile, "", true);
	for (int k = 0; k < opt.nservices; k++)
		lt_add_service(&r, opt.services[k].name, opt.services[k].pidfile, "", true);

	/* ---- the measured window */
	if (!(opt.mode == LT_STREAM ? lt_run_stream(&r, &users, sessions) :
	    lt_run_requests(&r, &users)))
		goto done;
	lt_result_print(&r, opt.json ? stderr : stdout);
	if (opt.json && !lt_result_json(&r, stdout))
		goto done;
	if (opt.json_out != NULL) {
		if ((jf = fopen(opt.json_out, "w")) == NULL || !lt_result_json(&r, jf)) {
			fprintf(stderr, "loadtest: %s: %s\n", opt.json_out, strerror(errno));
			goto done;
		}
	}
	status = r.failed > 0 || r.completed == 0 ? LT_EXIT_FAILED : LT_EXIT_OK;
done:
	if (jf != NULL && fclose(jf) != 0 && status != LT_EXIT_ERROR) {
		fprintf(stderr, "loadtest: %s: %s\n", opt.json_out, strerror(errno));
		status = LT_EXIT_ERROR;
	}
	setup_ids_free(sessions, sessions != NULL ? (size_t)opt.streams : 0);
	free(slot_tokens);
	free(slot_addrs);
	lt_users_free(&users);
	if (result_init)
		lt_result_free(&r);
	curl_global_cleanup();
	return status;
}
