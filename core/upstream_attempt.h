/* upstream_attempt.h: the pieces both upstream drivers share (internal).
 *
 * One transfer is a series of attempts on a struct upstream: begin it, set
 * up an attempt, run it (upstream.c blocks on the client's own multi handle;
 * upstream_multi.c runs many on an event loop's), classify its end and maybe
 * retry. Only upstream.c and upstream_multi.c include this header (and so
 * curl.h); everything here runs on the thread that owns the struct upstream. */
#ifndef CHAT_UPSTREAM_ATTEMPT_H
#define CHAT_UPSTREAM_ATTEMPT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "openai_chunk.h"
#include "sse_reader.h"
#include "upstream.h"

struct upstream {
	const struct config *cfg;
	CURL               *easy;
	CURLM              *multi;
	char               *auth_header;     /* "Authorization: Bearer ..."; secret */
	struct sse_reader   reader;
	struct openai_chunk_parser *chunks;

	/* State of the transfer in progress. */
	const struct upstream_stream_ops *ops;
	struct upstream_result *res;
	struct buf         *collect;         /* upstream_post: the response body */
	struct buf          errbody;
	bool                streaming;
	bool                stop;            /* a callback or the parser ended it */
	enum upstream_error stop_error;
	long                retry_after_ms;  /* from the last response, -1 if none */
	int64_t             t_start_us;
	int64_t             t_last_delta_us;

	/* The transfer's request (borrowed from the caller until it ends). */
	char               *url;             /* owned, exactly as long as it is */
	const char         *content_type;
	const char         *body;
	size_t              body_len;
	struct curl_slist  *headers;         /* of the attempt in progress */
	int                 attempt;
	int64_t             retry_wait_ms;   /* set when upstream_attempt_end asks for a retry */
};

enum upstream_attempt_outcome { UPSTREAM_ATTEMPT_FINISHED, UPSTREAM_ATTEMPT_RETRY };

/* A client for a driver that runs its transfers on a multi handle of its
 * own (upstream_multi.c): as upstream_new, without the client's multi.
 * Freed with upstream_free. */
struct upstream *upstream_new_easy(const struct config *cfg);

/* Starts a transfer: resets *res and remembers the request (path, body and
 * content_type are borrowed until the transfer ends). Returns false
 * (res->error set) if the URL does not fit. u->ops, u->streaming and
 * u->collect are the caller's to set before. */
bool upstream_transfer_begin(struct upstream *u, const char *path, const char *content_type,
    const char *body, size_t len, struct upstream_result *res);

/* Prepares u->easy for the next attempt. False (res->error set) on failure. */
bool upstream_attempt_setup(struct upstream *u);

/* Classifies an attempt that ended with libcurl's rc (and u->stop_error)
 * and decides on a retry: only before the stream opened, for connect
 * failures, 429 and 5xx, within the retries and the first-token budget. On
 * UPSTREAM_ATTEMPT_RETRY, u->retry_wait_ms says how long to wait. */
enum upstream_attempt_outcome upstream_attempt_end(struct upstream *u, CURLcode rc);

/* The budget check of a running attempt at now (clock_now_us): the error
 * once a deadline passed, UPSTREAM_OK otherwise. */
enum upstream_error upstream_deadline(struct upstream *u, int64_t now);

/* Calls ops->on_tick if due at now, then sets *next_tick. False if it asked
 * to stop. */
bool upstream_tick(struct upstream *u, int64_t now, int64_t *next_tick);

#endif
