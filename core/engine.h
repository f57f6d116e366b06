/* engine.h: the chat engine: one turn of a conversation, streamed to a sink.
 *
 * Given a session, a new user message and a sink, the engine builds the
 * prompt (system prompt + recent history + the new message), streams the
 * upstream's deltas to the sink, persists the reply in batches and its figures
 * at the end. It knows nothing of wire formats: each dialect is a sink. */
#ifndef CHAT_ENGINE_H
#define CHAT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "reply_status.h"
#include "upstream.h"

struct config;
struct store;
struct store_slot_ask;
struct workq;

/* What a sink is told about the stream; borrowed for the call only. */
struct chat_stream_info {
	const char    *session_id;
	const char    *reply_id;          /* the assistant message */
	const char    *user_message_id;   /* NULL if the turn answered a stored message */
	unsigned long  seq;               /* number of this event within the stream (start = 0) */
	unsigned long  chunk_index;       /* deltas before this one */
	const char    *content;           /* the reply so far, including this delta */
	size_t         content_len;
	bool           resumed;           /* replay after a Last-Event-ID: the client
	                                   * already has the start event */
	const char    *model;             /* the model asked of the upstream */
	long           created;           /* unix time the turn started */
};

/* How the stream ended; borrowed for the call only. */
struct chat_outcome {
	enum reply_status status;    /* complete, cancelled, interrupted, error */
	enum upstream_error error;   /* the upstream's failure; UPSTREAM_OK when none
	                              * or not known (an ending replayed from the database) */
	const char *error_code;      /* NULL when complete */
	const char *error_message;   /* for the client; NULL when complete */
	long        prompt_tokens;   /* -1 if unknown */
	long        completion_tokens;
	const char *finish_reason;   /* "" if unknown */
};

/* True when the end is a `done` (complete, or cancelled with its partial
 * reply); otherwise it is an `error`. */
static inline bool
chat_outcome_is_done(const struct chat_outcome *o)
{
	return reply_status_is_done(o->status);
}

/* A sink receives, in order: open (once, when the upstream accepted the
 * request), delta (per content delta), heartbeat (on quiet intervals), then
 * exactly one end. If the upstream fails before open, nothing is called and
 * chat_turn_run returns the HTTP status for the caller to render.
 * open and delta return false when the client has gone; the engine then
 * keeps generating (and persisting) unless the request says otherwise. */
struct chat_sink {
	bool (*open)(void *ctx, const struct chat_stream_info *info);
	bool (*delta)(void *ctx, const struct chat_stream_info *info, const char *text, size_t len);
	bool (*heartbeat)(void *ctx);
	void (*end)(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *out);
	void *ctx;
};

/* Resources of the calling thread. */
struct chat_env {
	const struct config *cfg;
	struct store        *store;
	struct upstream     *upstream;
	const char          *worker_id;  /* "host:pid", tags replies in flight */
	struct workq        *workq;      /* NULL: store on the calling thread; else
	                                  * batches and the ending are stored by its
	                                  * threads (an event loop's turns) */
};

/* A turn is either of a stored session (session_id set: history comes from
 * the database and the reply is stored) or stateless (messages set: the
 * client sends the whole conversation, nothing but metrics is stored). */
struct chat_turn {
	const char  *route;           /* label for metrics */
	const char  *user_id;         /* NULL: anonymous */
	const char  *session_id;
	const char  *content;         /* NULL: answer the last stored user message */
	const char  *idempotency_key; /* NULL if none */
	struct json_object *messages; /* stateless: [{"role","content"},...], borrowed */
	bool         add_system_prompt; /* stateless: prepend the user's system prompt */
	const char  *model;           /* NULL: the user's setting or the default */
	bool         has_temperature; /* false: the user's setting or the default */
	double       temperature;
	int          max_tokens;      /* <= 0: the configured max_tokens */
	bool         stop_when_client_leaves;
	/* The caller's concurrent-stream slot, which the engine owns from
	 * chat_turn_prepare on and gives back in the statement that stores
	 * the end (or when the turn fails): a session turn takes slot_ask's
	 * (NULL: none) in the statement that stores the message (at the cap
	 * the turn fails with 429); a stateless turn's caller took slot (0:
	 * none). */
	const struct store_slot_ask *slot_ask;
	long long    slot;
};

/* Runs one turn. Returns 200 if the stream opened (the sink got its end), or
 * the error status (404 unknown session, 400 nothing to answer, 429 at the
 * stream cap, 503 database, 502/504 upstream) with a client message in
 * *error. A send whose
 * idempotency_key is known replays and follows the earlier generation
 * instead (chat_replay_run, replay.h). */
int chat_turn_run(const struct chat_env *env, const struct chat_turn *turn,
    const struct chat_sink *sink, const char **error);

/* The same turn in three steps, for an event loop that runs the upstream
 * transfer itself (the gateway, with upstream_multi_stream):
 *   chat_turn_prepare  stores the message, builds the prompt (blocking DB);
 *                      200 and *state, or an error status with *error;
 *                      turn and sink must stay valid until finish;
 *   chat_turn_upstream the request body, the callbacks and the result to
 *                      hand to the upstream driver;
 *   chat_turn_finish   after the transfer ended: persists, records, sends
 *                      the sink its end; frees state; returns like run.
 * chat_turn_attached is non-NULL when an Idempotency-Key named an earlier
 * reply: then nothing is to be sent upstream; replay it and call finish. */
struct chat_turn_state;
struct upstream_stream_ops;
struct upstream_result;
int chat_turn_prepare(const struct chat_env *env, const struct chat_turn *turn,
    const struct chat_sink *sink, struct chat_turn_state **state, const char **error);
const char *chat_turn_attached(const struct chat_turn_state *state);
void chat_turn_upstream(struct chat_turn_state *state, const char **body, size_t *len,
    const struct upstream_stream_ops **ops, struct upstream_result **res);
int chat_turn_finish(struct chat_turn_state *state, const char **error);

/* chat_turn_finish for an event loop whose env has a workq: the store is
 * written by its threads, then on the loop the sink gets its end (or not:
 * an error status before the stream opened) and done(ctx, status, error)
 * runs; state is freed by then. Without a workq it runs at once. */
void chat_turn_finish_async(struct chat_turn_state *state,
    void (*done)(void *ctx, int status, const char *error), void *ctx);

#endif
