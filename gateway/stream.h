/* stream.h: the generations of the gateway, each a chat engine turn whose
 * upstream transfer runs on the process's one upstream_multi.
 *
 * A seed 001 stream is stateless (the client sends the conversation) and
 * goes to one socket or to a room (through relay.h); a seed 003 stream
 * belongs to a stored session and goes to one socket. Each stream reports
 * its own failures through its seed's error event; the caller only
 * validates the request. A stream outlives its socket: a seed 003 reply
 * is generated and stored to the end, a seed 001 reply to a lone socket
 * stops, a reply to a room goes on (members may be in other processes).
 * Loop thread only. */
#ifndef GATEWAY_STREAM_H
#define GATEWAY_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

struct config;
struct store;

/* Creates the upstream driver on the loop. cfg, store, gateway_id are
 * borrowed until stream_shutdown. False on failure (logged). */
bool stream_setup(const struct config *cfg, struct store *store, const char *gateway_id);

/* Aborts every stream (their done callbacks run: replies are stored as
 * interrupted, end events are queued) and frees the driver. */
void stream_shutdown(void);

/* Streams running. */
size_t stream_count(void);

/* Seed 001: streams a reply to messages ([{role, content}], validated; a
 * reference is taken) to room, or when room is NULL to the socket of
 * Engine.IO sid `sid`. user_id NULL: anonymous, counted against the
 * stream cap by client_ip (NULL: a REST job, not counted). route labels
 * metrics. Past the caller's stream cap the seed's error event says so. */
void stream_start_001(const char *sid, const char *room, const char *user_id,
    const char *client_ip, json_object *messages, const char *route);

/* Seed 003: answers message in the stored session session_id of user_id
 * (NULL: anonymous), to the socket of sid; events name the session as
 * session_ref (what the client called it). */
void stream_start_003(const char *sid, const char *user_id, const char *client_ip,
    const char *session_id, const char *session_ref, const char *message);

#endif
