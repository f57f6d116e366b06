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
 * Everything runs on the event loop's thread. */
#ifndef GATEWAY_SESSION_H
#define GATEWAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eio.h"

#define SESSION_PKT_HEADROOM 32    /* free bytes before each packet (LWS_PRE) */
#define SESSION_ROOMS_MAX    16    /* rooms one session may be in */
#define SESSION_USER_MAX     64

enum session_transport { SESSION_POLLING, SESSION_WEBSOCKET };

/* One queued Engine.IO packet (type character included). The payload
 * starts SESSION_PKT_HEADROOM bytes into bytes[] and is NUL-terminated. */
struct session_pkt {
	struct session_pkt *next;
	size_t              len;
	char                bytes[];
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
};

/* Sets the module's settings and hooks (both copied). Call once. */
void session_setup(const struct session_settings *settings, const struct session_hooks *hooks);

/* The settings in force (borrowed). */
const struct session_settings *session_settings(void);

/* Creates a session with fresh sids. Returns NULL on failure (logged). */
struct session *session_new(enum session_transport transport, const char *client_ip,
    int64_t now_ms);

/* The live session of an Engine.IO sid, or NULL. */
struct session *session_find(const char *sid);

/* Queues one encoded Engine.IO packet (copied) and wakes the transport.
 * Returns false if s is closed, or closes s when its queue is full. */
bool session_send(struct session *s, const char *pkt, size_t len);

/* Queues the event `42["name",json]` (json: one argument, or NULL). */
bool session_emit(struct session *s, const char *name, const char *json, size_t len);

/* True if packets wait to be written. */
bool session_pending(const struct session *s);

/* Takes the oldest queued packet; the caller free()s it. NULL if none. */
struct session_pkt *session_pop(struct session *s);

/* The client answered the heartbeat. */
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

/* Sessions with packets queued and a transport ready to take them (a
 * WebSocket, or a held long-poll): what a shutdown waits to flush. */
size_t session_backlog(void);

/* Closes every session (shutdown). */
void session_close_all(const char *reason);

#endif
