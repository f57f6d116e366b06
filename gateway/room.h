/* room.h: Socket.IO rooms of this process: which local sessions are in
 * which room, and delivery to them.
 *
 * A room exists while it has members here. Rooms are only local: a
 * broadcast reaches the other gateway processes through relay.c, which
 * publishes it with PostgreSQL NOTIFY and delivers what others publish
 * with room_broadcast(). Loop thread only. */
#ifndef GATEWAY_ROOM_H
#define GATEWAY_ROOM_H

#include <stdbool.h>
#include <stddef.h>

#include "chat_limits.h"

#define ROOM_NAME_MAX LIMIT_SESSION_REF_BYTES   /* bytes; a room is a session reference */

struct session;

struct room {
	char            *name;      /* owned */
	char            *owner;     /* owned; the user who owns it, NULL: nobody (known here) */
	struct session **members;   /* owned array, borrowed sessions */
	size_t           n, cap;
	struct room     *hnext;
};

/* Adds s to the room name (created on first join). Joining twice is a
 * no-op that moves the room to the end of s's list (its current room).
 * False when s is in SESSION_ROOMS_MAX rooms already, or out of memory. */
bool room_join(struct session *s, const char *name);

/* Removes s from the room name, if it is in it. */
void room_leave(struct session *s, const char *name);

/* Removes s from every room (when it closes or leaves the namespace). */
void room_leave_all(struct session *s);

/* True if s is in the room name. */
bool room_has(const struct session *s, const char *name);

/* The room s joined last, or NULL. Borrowed. */
const char *room_current(const struct session *s);

/* Queues the event `42["event",json]` to every local member of the room.
 * Returns how many members it reached. */
size_t room_emit(const char *name, const char *event, const char *json, size_t len);

/* Ownership (seed 001 rooms a user streamed into; the record is in
 * PostgreSQL, see request_room_claim): what this process knows of it,
 * while the room has members here.
 *
 * Records that room `name` belongs to user `owner` (NULL: nobody) and
 * removes every local member authenticated as anyone else (anonymous
 * sockets included), calling evicted(ctx, s, name) for each once it is
 * out. Nothing happens when the room has no members here. `name` must not
 * be a room's own string (the room may go). Returns how many were
 * removed. */
size_t room_set_owner(const char *name, const char *owner,
    void (*evicted)(void *ctx, struct session *s, const char *name), void *ctx);

/* The owner this process knows for the room, or NULL. Borrowed. */
const char *room_owner(const char *name);

/* True if the local members may hear a stream of user_id (NULL or "":
 * anonymous): the room has no known owner, or it is user_id. */
bool room_accepts(const char *name, const char *user_id);

/* Queues a seed 001 stream-chunk (not the last, isComplete one) to every
 * local member: the delta of len bytes that ends the reply so far
 * full/flen. Members that are behind get it merged with their queued
 * chunk of the same stream (session_send_chunk). Returns how many members
 * it reached. All arguments borrowed for the call. */
size_t room_emit_chunk(const char *name, const char *stream_id, size_t len, const char *full,
    size_t flen);

/* Local members of a room (0 when it does not exist here). */
size_t room_size(const char *name);

/* Rooms that exist here. */
size_t room_count(void);

#endif
