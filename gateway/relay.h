/* relay.h: seed 001's streamed replies to a room, delivered to the room's
 * members in every gateway process.
 *
 * The process that runs a generation for room R emits the events to R's
 * local members at once and publishes them (rooms_pg.h, NOTIFY sio_room)
 * for the other processes. NOTIFY payloads are bounded (8000 bytes), so a
 * publication carries the delta, never fullResponse: each receiving
 * process rebuilds fullResponse per stream itself. Deltas of one stream
 * are coalesced for RELAY_FLUSH_MS, so a busy stream costs about twenty
 * notifications a second whatever its token rate; all pending
 * publications of the process go out in one round trip. Each payload
 * names the sending gateway, which ignores its own.
 *
 * Payload (JSON): {"g":gateway,"r":room,"s":stream,"n":seq,"k":kind,
 * "o"?:owner,...} with kind "s" start {"t":timestamp}, "c" chunk
 * {"c":delta}, "e" end {"t":timestamp}, "x" error {"e":message}; "o" is
 * the user whose stream it is (absent: anonymous).
 *
 * Ownership: a user's stream makes the room theirs (the claim itself is
 * in PostgreSQL, request_room_claim, made before the stream starts).
 * Every process that runs or receives it first removes the room's local
 * members authenticated as anyone else, telling each with stream-error
 * {error, roomName}; from then on the room's members hear only the
 * owner's streams. Loop thread only. */
#ifndef GATEWAY_RELAY_H
#define GATEWAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_FLUSH_MS 50

struct relay_stream;

/* Remembers this gateway's id (copied). False when out of memory. */
bool relay_setup(const char *gateway_id);

/* Publishes what is pending and frees everything. */
void relay_shutdown(void);

/* A reply of owner (a user id; NULL or "": anonymous) starts streaming to
 * room: an owner's stream first makes the room theirs here
 * (relay_room_owned); then stream-start goes to the local members and is
 * published. Returns the stream (owned by the relay until relay_complete
 * or relay_error), or NULL when out of memory. */
struct relay_stream *relay_begin(const char *room, const char *stream_id, const char *owner);

/* Records that room belongs to owner (NULL or "": to nobody) in this
 * process, removing and telling local members authenticated as anyone
 * else. Does nothing when the room has no local members. room is
 * borrowed. */
void relay_room_owned(const char *room, const char *owner);

/* One delta; full/flen is the reply so far, including it. */
void relay_chunk(struct relay_stream *rs, const char *text, size_t len, const char *full,
    size_t flen);

/* The reply ended well: the last stream-chunk (isComplete) and
 * stream-complete. Frees rs. */
void relay_complete(struct relay_stream *rs, const char *full, size_t flen);

/* The reply failed: stream-error. Frees rs. */
void relay_error(struct relay_stream *rs, const char *error);

/* A publication from any gateway (rooms_pg's room hook). */
void relay_on_notify(const char *payload);

/* Forgets remote streams that went silent (their end was lost). */
void relay_tick(int64_t now_ms);

/* Streams of other processes followed here. */
size_t relay_remote_count(void);

#endif
