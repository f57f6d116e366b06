/* chat_limits.h: the sizes that bound what clients and the upstream can make
 * us hold, each named once with the reason for its value.
 *
 * Not "limits.h": with -Icore that name would shadow the C library's
 * <limits.h> in every file of the build.
 *
 * Every front end (HTTP, Socket.IO) and the core use these names; a number
 * that bounds input or output belongs here, not in the file that checks it.
 * Buffers grow on demand up to their limit: a limit costs nothing until it
 * is used. */
#ifndef CHAT_LIMITS_H
#define CHAT_LIMITS_H

#include <stddef.h>

/* Turns a plain numeric limit into a string literal, for error messages. */
#define LIMIT_TEXT(x)  LIMIT_TEXT_(x)
#define LIMIT_TEXT_(x) #x

/* ---- what clients send ---- */

/* Bytes of one message a client types (and of each message of a client's
 * own conversation). 100,000 bytes (some 25k tokens) is far more than a
 * person writes and stays well under the models' context; the prompt of a
 * turn (system + 10 stored messages + the new one) stays near 1 MiB, the
 * default max_body_size. A plain number: LIMIT_TEXT quotes it. */
#define LIMIT_CONTENT_BYTES 100000

/* Bytes of a client's name for a session or a Socket.IO room ("sessionId",
 * "roomName", "conversation_id"): a UUID is 36; 128 leaves room for the
 * clients' own ids while keeping them cheap to index and echo. */
#define LIMIT_SESSION_REF_BYTES 128

/* Bytes of a participant's display name (voice rooms, Socket.IO chat):
 * what LiveKit and the seeds' clients show; the same 128 as a room name. */
#define LIMIT_PARTICIPANT_BYTES 128

/* Bytes of a model name a client may ask for (/v1/chat/completions,
 * /api/settings): the longest OpenAI names ("gpt-4o-mini-realtime-preview-
 * 2024-12-17") are under 40; 100 leaves room for other servers' names. */
#define LIMIT_MODEL_BYTES 100

/* Bytes of the allowed_models setting: a few dozen names. The refusal of
 * another model quotes the whole list, so this also bounds that message. */
#define LIMIT_MODEL_LIST_BYTES 2048

/* A client address as rate limits and anonymous names key it: an IPv6
 * address in text is at most 45 bytes. */
#define LIMIT_CLIENT_IP_BYTES 64

/* ---- what the upstream sends ---- */

/* Bytes of one SSE event from the upstream: a chunk carries one delta of a
 * few tokens; 1 MiB tolerates odd servers and stops one that never sends a
 * blank line. */
#define LIMIT_UPSTREAM_EVENT_BYTES (1 << 20)

/* Bytes of one assistant reply, as generated, stored and replayed: 4 MiB is
 * some million tokens, beyond any max_tokens the upstream grants; past it
 * the reply is kept as far as it fits. The same bound holds a reply the
 * gateway rebuilds from another host's chunks and a reply collected for a
 * one-piece response. */
#define LIMIT_REPLY_BYTES (4 << 20)

/* Bytes of the "{3,9,…}" list of chunk ends not yet stored: a delta adds at
 * most 9 bytes ("," and an offset under LIMIT_REPLY_BYTES), and the list is
 * stored every second, so 1 MiB is never reached by a working database. */
#define LIMIT_CHUNK_ENDS_BYTES (1 << 20)

/* Bytes of a non-streamed upstream answer we relay or read (the realtime
 * voice session or SDP answer, the /models list): those are a few KiB. */
#define LIMIT_UPSTREAM_ANSWER_BYTES (1 << 20)

/* ---- what we send ---- */

/* Bytes of one encoded event to a client, SSE or Socket.IO frame. The
 * largest event carries the whole reply (an end with full_content, a
 * stream-chunk with the text so far and its delta): at most
 * LIMIT_REPLY_BYTES + LIMIT_UPSTREAM_EVENT_BYTES = 5 MiB of text, which JSON
 * escaping grows at most sixfold (a control character becomes \u00XX) to
 * 30 MiB. 32 MiB holds that, its envelope, and the Engine.IO/Socket.IO
 * framing that wraps the same payload again, so every caller (dialects,
 * gateway streams, rooms, relays, sessions) can use this one bound. */
#define LIMIT_EVENT_BYTES (32 << 20)

/* The bytes a Socket.IO gateway queues for its clients are settings
 * (gateway_session_queue, gateway_queue_total in config.c), as is the
 * number of sessions per address: they depend on the machine. */

/* Bytes of the Prometheus text of /metrics: 64 routes × 18 statuses and the
 * histograms of every worker take some hundred KiB; 4 MiB leaves room for
 * METRICS_MAX_WORKERS. The gateway's /gateway/metrics (some 10 KiB) is
 * bounded by the same number. */
#define LIMIT_METRICS_TEXT_BYTES (4 << 20)

/* Bytes of the pool status page (text or JSON): one line per worker. */
#define LIMIT_STATUS_BYTES (1 << 20)

#endif
