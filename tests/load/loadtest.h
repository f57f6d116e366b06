/* loadtest.h: what the load tool's parts share: the options of a run, the
 * figures it collects, and the entry points of each mode.
 *
 * The tool: loadtest.c (command line, setup, main), run_stream.c (N
 * concurrent SSE streams), run_requests.c (closed-loop request rate of the
 * non-streamed routes), result.c (summary and JSON), compare.c (the
 * benchmark table from two or more JSON results). */
#ifndef LOAD_LOADTEST_H
#define LOAD_LOADTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "procmon.h"
#include "samples.h"

enum lt_mode {
	LT_STREAM,      /* N concurrent SSE streams */
	LT_LIST,        /* GET /api/chat/realtime/sessions */
	LT_LOGIN,       /* POST /api/auth/login */
	LT_GET          /* GET of any path (e.g. /healthz) */
};

enum lt_target {
	LT_TARGET_STACK,    /* seed 000 stream through nginx and chatd */
	LT_TARGET_OPENAI,   /* chatd's OpenAI-compatible /v1/chat/completions */
	LT_TARGET_UPSTREAM, /* the (fake) upstream directly: the relay's floor */
	LT_TARGET_SEED003,  /* seed 003 POST /api/v2/ai/chat/stream through the stack */
	LT_TARGET_PEER      /* the same route on a peer relay (tests/peer): no users,
	                     * no auth */
};

/* Targets whose streams need no user, token or session. */
#define LT_TARGET_ANON(t) ((t) == LT_TARGET_UPSTREAM || (t) == LT_TARGET_PEER)

#define LT_EXTRA_SERVICES 4

/* A process measured besides those of --pids-from (--service NAME=FILE). */
struct lt_service_opt {
	const char *name;
	const char *pidfile;
};

struct lt_options {
	enum lt_mode    mode;
	enum lt_target  target;
	const char     *url;            /* base URL (loopback only) */
	const char     *cacert;
	bool            http2;
	long            connect_ms;
	const char     *api_key;        /* bearer for --target upstream */
	const char     *model;
	const char     *label;          /* the run's name in the table, or NULL */
	/* stream mode */
	int             streams;        /* concurrent streams */
	int             tokens;         /* [[tokens=N]]; 0: no directive, no check */
	int             delay_ms;       /* [[delay=MS]]; <0: no directive */
	const char     *message;        /* replaces the directives when set */
	double          ramp_s;         /* spread the starts over this long */
	double          sustain_s;      /* restart finished streams for this long */
	double          max_time_s;     /* hard cap of the measured window */
	int             per_user;       /* streams per user when users is 0 */
	/* request modes */
	int             concurrency;
	double          duration_s;
	double          warmup_s;
	const char     *path;           /* LT_GET */
	int             list_fill;      /* sessions the list user should have */
	/* setup */
	const char     *user;           /* NULL: fresh users for each run */
	int             users;          /* 0: as many as per_user asks for */
	bool            same_addr;      /* every request from 127.0.0.1 */
	const char     *password;
	int             setup_conc;
	/* server processes */
	const char     *pids_from;      /* CHAT_VAR/run */
	const char     *pg_pidfile;     /* PostgreSQL's postmaster.pid */
	int             sample_ms;
	struct lt_service_opt services[LT_EXTRA_SERVICES];
	int             nservices;
	/* output */
	bool            json;           /* JSON on stdout, summary on stderr */
	const char     *json_out;       /* JSON into this file as well */
	size_t          sample_cap;
};

/* The simulated users of a run, made during setup. */
struct lt_users {
	int     n;
	char  **names;          /* owned */
	char  **tokens;         /* owned; NULL for --target upstream */
	char  **addrs;          /* owned: each user's client address; NULL with
	                         * --same-addr */
};

#define LT_REASONS_MAX   32
#define LT_REASON_KEY    48
#define LT_REASON_TEXT   200

/* Why streams or requests failed: a key (e.g. "http_502", "no_done"),
 * how often, and the first example's details. */
struct lt_reason {
	char      key[LT_REASON_KEY];
	uint64_t  count;
	char      example[LT_REASON_TEXT];
};

struct lt_result {
	const struct lt_options *opt;   /* borrowed */
	char            started_at[32]; /* ISO-8601 UTC */
	int             users;          /* simulated users */
	/* outcome */
	uint64_t        started;        /* streams or requests started */
	uint64_t        completed;
	uint64_t        failed;
	struct lt_reason reasons[LT_REASONS_MAX];
	int             nreasons;
	/* stream mode */
	uint64_t        tokens;         /* content events received */
	uint64_t        heartbeats;     /* SSE comments received */
	uint64_t        body_bytes;
	int             peak_open;      /* most streams open at once (client side) */
	struct samples  ttfb_body;      /* request start to first body byte */
	struct samples  ttfb_token;     /* request start to first content event */
	struct samples  gap;            /* between consecutive content events */
	struct samples  duration;       /* request start to end of stream */
	struct samples  connect;        /* request start to TCP connected (new
	                                 * connections only; libcurl's timer) */
	struct samples  handshake;      /* request start to TLS established */
	struct samples  headers;        /* request start to response headers */
	int64_t         first_token_at; /* µs, clock_us() */
	int64_t         last_token_at;
	/* request modes */
	struct samples  latency;
	double          window_s;       /* measured window (after warm-up) */
	/* the run */
	int64_t         begin_at;       /* start of the measured window */
	int64_t         end_at;
	double          client_cpu_s;   /* this process, user + system */
	struct procmon  mon;            /* services (--pids-from) and machine */
};

/* Initialises r for opt (borrowed for r's lifetime). */
void lt_result_init(struct lt_result *r, const struct lt_options *opt);

/* Frees the samples and stops the monitor. */
void lt_result_free(struct lt_result *r);

/* Counts one failure under key; detail (may be NULL) is kept for the first
 * one of each key. */
void lt_result_fail(struct lt_result *r, const char *key, const char *detail);

/* Prints the human summary to f. */
void lt_result_print(struct lt_result *r, FILE *f);

/* Writes the JSON object (one line) to f. Returns false on a write error. */
bool lt_result_json(struct lt_result *r, FILE *f);

/* Runs the stream mode; setup done by the caller: stream slot i belongs to
 * user i % users->n and uses sessions[i] (NULL for targets that need
 * none). Returns false when the run could not be carried out (failed
 * streams are a result, not an error). */
bool lt_run_stream(struct lt_result *r, const struct lt_users *users, char **sessions);

/* Runs the list, login or get mode; connection i belongs to user
 * i % users->n (its token, or its credentials for login). Returns false
 * when the run could not be carried out. */
bool lt_run_requests(struct lt_result *r, const struct lt_users *users);

/* The benchmark table from result files: argv[0] is the upstream-direct
 * stream run, the rest stack stream runs and list/login runs in any order.
 * Returns the process exit status. */
int lt_compare(int argc, char **argv);

#endif
