/* chat.h: the Socket.IO application of the gateway: the default
 * namespace, seed 001's and seed 003's events, and the generations they
 * start on the core's chat engine.
 *
 * Seed 001 (no auth, the anonymous rate limit): `connected` on connect;
 * `join-room` {roomName, participantName}; `leave-room` {roomName};
 * `stream-chat` {messages, roomName?} streams a stateless reply to the
 * socket, or to the room it names or joined last, as stream-start,
 * stream-chunk, stream-complete or stream-error. A generation queued by
 * POST /openai/chatCompletion/stream/start streams to room sessionId.
 * Seed 003: `ai:chat` {message, sessionId?, token?} → ai:stream,
 * ai:complete, ai:error, persisted like POST /api/v2/ai/chat/stream. A
 * token in the CONNECT auth payload ({"token"}) authenticates the socket.
 *
 * Generations run on one upstream_multi driven by the event loop (loop.h);
 * the engine's database calls are short blocking round trips on the
 * loop's thread. Loop thread only. */
#ifndef GATEWAY_CHAT_H
#define GATEWAY_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct config;
struct session;
struct store;

/* Prepares the engine environment and the upstream driver. cfg, store and
 * gateway_id are borrowed until chat_shutdown. False on failure (logged). */
bool chat_setup(const struct config *cfg, struct store *store, const char *gateway_id);

/* One Socket.IO packet (an Engine.IO message's data) from s. May close s. */
void chat_on_message(struct session *s, const char *p, size_t n);

/* The periodic work: upstream deadlines and retries, relay expiry. */
void chat_tick(int64_t now_ms);

/* New generations are refused from now on (SIGTERM); running ones go on. */
void chat_drain(void);

/* Generations running in this process. */
size_t chat_streams(void);

/* Claims queued REST generations (rooms_pg's jobs hook). */
void chat_claim_jobs(void);

/* Appends the process's figures as a JSON object (GET /gateway/status). */
bool chat_status(struct buf *b);

/* Aborts every generation (their end events go out, replies are stored
 * as interrupted) and frees the upstream driver. */
void chat_shutdown(void);

#endif
