/* events.h: the JSON argument of each event the gateway emits, as seeds
 * 001 and 003 document them. Each function appends one JSON object to b
 * (which the caller owns) and returns false only when b is full.
 *
 * Seed 001: stream-start, stream-chunk {content, fullResponse, isComplete},
 * stream-complete {fullResponse, timestamp}, stream-error {error}; every
 * one also names its streamId, so clients of a room can tell concurrent
 * replies apart. Seed 003: ai:stream {content, sessionId}, ai:complete
 * {response, sessionId}, ai:error {error}. */
#ifndef GATEWAY_EVENTS_H
#define GATEWAY_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define EVENTS_TS_LEN 32

/* The current time as ISO-8601 UTC with milliseconds (the API's format). */
void events_timestamp(char out[EVENTS_TS_LEN]);

/* {"streamId","roomName"?,"timestamp"}: room NULL for a reply to one socket. */
bool events_stream_start(struct buf *b, const char *stream_id, const char *room, const char *ts);

bool events_stream_chunk(struct buf *b, const char *stream_id, const char *content, size_t clen,
    const char *full, size_t flen, bool complete);

bool events_stream_complete(struct buf *b, const char *stream_id, const char *full, size_t flen,
    const char *ts);

bool events_stream_error(struct buf *b, const char *stream_id, const char *error);

/* {"error","roomName"}: stream-error about a room rather than a stream
 * (a socket refused or removed because another user owns the room). */
bool events_room_error(struct buf *b, const char *room, const char *error);

/* {"message","clientId","timestamp"}: the `connected` event. */
bool events_connected(struct buf *b, const char *client_id, const char *ts);

bool events_ai_stream(struct buf *b, const char *content, size_t len, const char *session_id);
bool events_ai_complete(struct buf *b, const char *full, size_t len, const char *session_id);

/* session_id NULL when the error came before a session was known. */
bool events_ai_error(struct buf *b, const char *error, const char *session_id);

/* {"ok":true,...} / {"ok":false,"error"}: acknowledgements. */
bool events_ack_ok(struct buf *b, const char *room);
bool events_ack_error(struct buf *b, const char *error);

#endif
