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

struct config;
struct store;
struct upstream;

/* What a sink is told about the stream; borrowed for the call only. */
struct chat_stream_info {
	const char    *session_id;
	const char    *reply_id;          /* the assistant message */
	const char    *user_message_id;   /* NULL if the turn answered a stored message */
	unsigned long  seq;               /* number of this event within the stream (start = 0) */
	unsigned long  chunk_index;       /* deltas before this one */
	const char    *content;           /* the reply so far, including this delta */
	size_t         content_len;
};

/* How the stream ended; borrowed for the call only. */
struct chat_outcome {
	const char *status;          /* complete, cancelled, interrupted, error */
	const char *error_code;      /* NULL when complete */
	const char *error_message;   /* for the client; NULL when complete */
	long        prompt_tokens;   /* -1 if unknown */
	long        completion_tokens;
	const char *finish_reason;   /* "" if unknown */
};

/* A sink receives, in order: open (once, when the upstream accepted the
 * request), delta (per content delta), heartbeat (on quiet intervals), then
 * exactly one end. If the upstream fails before open, nothing is called and
 * chat_turn_run returns the HTTP status for the caller to render.
 * open and delta return false when the client has gone; the engine then
 * keeps generating (and persisting) unless the request says otherwise. */
struct chat_sink {
	bool (*open)(void *ctx, const struct chat_stream_info *info);
	bool (*delta)(void *ctx, const struct chat_stream_info *info, const char *text, size_t len);
	void (*heartbeat)(void *ctx);
	void (*end)(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *out);
	void *ctx;
};

/* Resources of the calling thread. */
struct chat_env {
	const struct config *cfg;
	struct store        *store;
	struct upstream     *upstream;
};

struct chat_turn {
	const char *route;           /* label for metrics */
	const char *user_id;         /* NULL: anonymous */
	const char *session_id;
	const char *content;         /* NULL: answer the last stored user message */
	bool        stop_when_client_leaves;
};

/* Runs one turn. Returns 200 if the stream opened (the sink got its end), or
 * the error status (404 unknown session, 400 nothing to answer, 503 database,
 * 502/504 upstream) with a client message in *error. */
int chat_turn_run(const struct chat_env *env, const struct chat_turn *turn,
    const struct chat_sink *sink, const char **error);

#endif
