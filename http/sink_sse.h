/* sink_sse.h: the engine's sink for an HTTP Server-Sent Events response.
 *
 * Encodes each engine event with a dialect into one buffer and writes and
 * flushes it as a whole; sends `: ping` comments as heartbeats. The response
 * headers go out when the engine opens the stream. */
#ifndef CHAT_SINK_SSE_H
#define CHAT_SINK_SSE_H

#include "buf.h"
#include "dialect.h"
#include "engine.h"

struct request;

struct sink_sse {
	struct request       *req;
	const struct dialect *dialect;
	const void           *opts;    /* the dialect's route data; borrowed */
	struct buf            out;     /* reused for every event */
};

/* Binds a sink to req and dialect (with its opts, borrowed for the sink's
 * life); free with sink_sse_free(). */
void sink_sse_init(struct sink_sse *s, struct chat_sink *sink, struct request *req,
    const struct dialect *dialect, const void *opts);
void sink_sse_free(struct sink_sse *s);

#endif
