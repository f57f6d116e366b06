/* session.h: Engine.IO sessions of this gateway process.
 *
 * A session is one client connection across its transports (long-polling
 * requests, then maybe a WebSocket): its sids, the packets queued for it,
 * its heartbeat and its rooms. The transport layer (server.c) holds the
 * sockets; this module knows them only as opaque handles and asks for them
 * to be written through hooks, so it has no I/O of its own.
 *
 * Lifetime: session_new() creates, session_close() ends it at once (leaves
 * its rooms, forgets its sid, detaches its transports), and the memory is
 * released by session_reap(), which the main loop calls between events.
 * So a pointer obtained during one event stays valid until that event's
 * handler returns, even if the session closes meanwhile: check s->closed.
 * Everything runs on the event loop's thread.
 *
 * Memory is bounded three ways (session_settings): sessions per client
 * address (session_admit, checked by the handshakes), bytes queued per
 * session, and bytes queued by the whole process. A session over its own
 * bound, or the sessions with the most bytes queued when the process is
 * over its bound, are dropped (session_drop): their queue is freed at once
 * and replaced by a goodbye (Socket.IO DISCONNECT `41`, then Engine.IO
 * close `1`) that the client reads at its next poll; a session that does
 * not come for it within SESSION_DROP_GRACE_MS is closed anyway. A packet
 * alone on an empty queue is always accepted, so one large event (a long
 * reply's last stream-chunk) still reaches a client that keeps up.
 *
 * Pongs count only as the answer to a ping that reached the client (taken
 * by a long-poll response or written to the WebSocket): a client that
 * never reads cannot keep its session alive by posting pongs. */
#ifndef GATEWAY_SESSION_H
#define GATEWAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eio.h"

#define SESSION_PKT_HEADROOM 32    /* free bytes before each packet (LWS_PRE) */
#define SESSION_ROOMS_MAX    16    /* rooms one session may be in */
#define SESSION_USER_MAX     64
#define SESSION_DROP_GRACE_MS 5000 /* a dropped session's goodbye waits this long */
#define SESSION_STREAM_ID_MAX 64   /* bytes of a stream id a chunk is keyed by */

enum session_transport { SESSION_POLLING, SESSION_WEBSOCKET };

enum session_pkt_kind {
	SESSION_PKT_OTHER,
	SESSION_PKT_PING,       /* the server's heartbeat `2` */
	SESSION_PKT_CHUNK,      /* a seed 001 stream-chunk that a later one may replace */
};

/* One queued Engine.IO packet (type character included). The payload
 * starts SESSION_PKT_HEADROOM bytes into bytes[] and is NUL-terminated. */
struct session_pkt {
	struct session_pkt   *next;
	size_t                len;
	enum session_pkt_kind kind;
	size_t                from;    /* CHUNK: where its content starts in fullResponse */
	char                  stream_id[SESSION_STREAM_ID_MAX];   /* CHUNK: its stream */
	char                  bytes[];
};

static inline char *
session_pkt_data(struct session_pkt *p)
{
	return p->bytes + SESSION_PKT_HEADROOM;
}

struct room;

struct session {
	char                 sid[EIO_SID_LEN + 1];      /* Engine.IO sid */
	char                 sio_sid[EIO_SID_LEN + 1];  /* Socket.IO sid of "/" */
	enum session_transport transport;
	void                *poll_wait;     /* the held long-poll GET, or NULL */
	void                *ws;            /* the WebSocket in use, or NULL */
	void                *upgrade_ws;    /* a WebSocket probing to take over polling */
	bool                 upgrading;     /* its probe was answered: no GET is held */
	struct session_pkt  *head, *tail;   /* packets not yet written */
	size_t               queued_bytes;
	bool                 connected;     /* Socket.IO CONNECT to "/" accepted */
	bool                 closed;
	bool                 awaiting_pong;
	bool                 ping_delivered; /* the ping awaiting its pong reached the client */
	bool                 closing;       /* dropped: only its goodbye is left to write */
	const char          *close_reason;  /* why it was dropped (static text), or NULL */
	int64_t              close_deadline_ms;
	size_t               nchunks;       /* SESSION_PKT_CHUNK packets queued */
	int64_t              next_ping_ms;
	int64_t              pong_deadline_ms;
	int64_t              connect_deadline_ms;
	int64_t              upgrade_deadline_ms;
	char                 user_id[SESSION_USER_MAX];  /* from CONNECT auth; "" anonymous */
	char                 client_ip[64];
	struct room         *rooms[SESSION_ROOMS_MAX];   /* in join order */
	int                  nrooms;
	struct session      *hnext;         /* sid table chain */
	struct session      *next, *prev;   /* all live sessions, or the dead list */
};

/* What the transport layer does for sessions. Called on the loop thread;
 * they must not free the session. */
struct session_hooks {
	/* Packets were queued: write them when the transport allows. */
	void (*wake)(struct session *s);
	/* s is closing: let go of s->ws, s->poll_wait and s->upgrade_ws
	 * (close them, or answer a held GET), and clear the pointers. */
	void (*detach)(struct session *s);
	/* The probing WebSocket did not finish the upgrade in time: close it
	 * and clear s->upgrade_ws; the session goes on polling. */
	void (*upgrade_expired)(struct session *s);
};

struct session_settings {
	long   ping_interval_ms;
	long   ping_timeout_ms;
	long   connect_timeout_ms;   /* a CONNECT must come within this */
	long   upgrade_timeout_ms;   /* a probe must end in an upgrade within this */
	size_t max_queue_bytes;      /* a client that reads slower is dropped */
	size_t max_total_bytes;      /* queued by all sessions; 0: unbounded */
	size_t sessions_per_address; /* live sessions per client address; 0: unbounded */
};

/* Sets the module's settings and hooks (both copied). Call once. */
void session_setup(const struct session_settings *settings, const struct session_hooks *hooks);

/* The settings in force (borrowed). */
const struct session_settings *session_settings(void);

/* Creates a session with fresh sids. Returns NULL on failure (logged). */
struct session *session_new(enum session_transport transport, const char *client_ip,
    int64_t now_ms);

/* True if client_ip may open one more session (sessions_per_address). */
bool session_admit(const char *client_ip);

/* The live session of an Engine.IO sid, or NULL. */
struct session *session_find(const char *sid);

/* Queues one encoded Engine.IO packet (copied) and wakes the transport.
 * Returns false if s is closed or closing, or drops s (session_drop) when
 * its queue is full; may drop other sessions when the process's queues
 * are full. */
bool session_send(struct session *s, const char *pkt, size_t len);

/* A seed 001 stream-chunk being delivered, to one session or a room's
 * members. Every stream-chunk carries the whole reply so far, so a member
 * that does not read would queue the reply's length squared: once a
 * session's queue holds half its bound, a chunk replaces the older queued
 * chunk of its stream instead (its content then spans both deltas, from
 * where the replaced one started). The client sees fewer stream-chunk
 * events whose contents still add up to fullResponse. The last chunk
 * (isComplete) is never merged: send it with session_emit.
 * Borrows stream_id and full until session_chunk_free; caches encodings. */
struct session_chunk {
	const char *stream_id;
	const char *full;
	size_t      flen;
	size_t      from;        /* where this chunk's own delta starts */
	struct buf  enc;         /* the packet as is (from) */
	bool        enc_done;
	struct buf  merged;      /* the packet from merged_from */
	size_t      merged_from;
	bool        merged_done;
};

/* Prepares c for the delta of len bytes that ends full/flen. */
void session_chunk_init(struct session_chunk *c, const char *stream_id, size_t len,
    const char *full, size_t flen);

/* Frees c's encodings (not what it borrows). */
void session_chunk_free(struct session_chunk *c);

/* Queues c to s like session_send, merging as described above. */
bool session_send_chunk(struct session *s, struct session_chunk *c);

/* Drops s: frees its queue, leaves its rooms and ends its Socket.IO
 * connection, then queues the goodbye (`41`, `1`) and wakes the
 * transport; s closes once the goodbye is written (session_sent) or after
 * SESSION_DROP_GRACE_MS. reason: static text, logged and given as the
 * WebSocket close reason. */
void session_drop(struct session *s, const char *reason);

/* The transport wrote (or put into a response) what it popped: closes a
 * dropped session whose goodbye is out. s may be closed on return. */
void session_sent(struct session *s);

/* Queues the event `42["name",json]` (json: one argument, or NULL). */
bool session_emit(struct session *s, const char *name, const char *json, size_t len);

/* True if packets wait to be written. */
bool session_pending(const struct session *s);

/* Takes the oldest queued packet; the caller free()s it. NULL if none. */
struct session_pkt *session_pop(struct session *s);

/* The client answered the heartbeat; ignored unless the ping was
 * delivered (session_pop took it). */
void session_pong(struct session *s, int64_t now_ms);

/* Ends s now (reason for the log). Idempotent; never frees memory. */
void session_close(struct session *s, const char *reason);

/* Frees the sessions closed since the last call. Call only from the main
 * loop, outside every callback. */
void session_reap(void);

/* Sends heartbeats and enforces the timeouts; call every ~250 ms. */
void session_tick(int64_t now_ms);

/* Live sessions. */
size_t session_count(void);

/* Bytes queued by every live session. */
size_t session_queued_total(void);

/* Sessions dropped for their queue (their own bound or the process's)
 * since start. */
size_t session_dropped_count(void);

/* Sessions with packets queued and a transport ready to take them (a
 * WebSocket, or a held long-poll): what a shutdown waits to flush. */
size_t session_backlog(void);

/* Closes every session (shutdown). */
void session_close_all(const char *reason);

#endif
