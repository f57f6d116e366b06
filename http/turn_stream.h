/* turn_stream.h: a chat turn streamed as the SSE response of a request.
 *
 * The one place where the streamed routes (seeds 000, 002, 003, the OpenAI
 * endpoint) start a turn. When the front end has an event loop
 * (r->io.detach), only the turn's blocking part (storing the message,
 * building the prompt) runs on the calling thread: the upstream transfer,
 * the events and the ending run on the loop, and r is detached. Without a
 * loop the whole turn runs here, as chat_turn_run. */
#ifndef CHAT_TURN_STREAM_H
#define CHAT_TURN_STREAM_H

#include <stddef.h>

#include "dialect.h"
#include "engine.h"

struct request;
struct store;
struct workq;

/* Streams turn to r with dialect d. opts (opts_len bytes) is the dialect's
 * route data; it and every string of turn are copied, so all of them are
 * borrowed for the call only. Returns 200 once the stream is under way or
 * done, or the error status with a client message in *error (nothing was
 * sent: the caller renders it). */
int turn_stream_run(struct request *r, const struct chat_turn *turn, const struct dialect *d,
    const void *opts, size_t opts_len, const char **error);

/* Takes the caller's concurrent-stream slot (request_stream_slot_take) for
 * a stream that does not go through turn_stream_run (a resume): 200 and
 * *slot to give back with request_stream_slot_release, or the error status
 * with *error (a 429 gets its Retry-After header). */
int turn_stream_slot_take(struct request *r, long long *slot, const char **error);

/* Gives a slot back (0: none): through the work queue q when there is one
 * (a loop must not wait for the database), else at once. */
void turn_stream_slot_release(struct workq *q, struct store *store, long long slot);

#endif
