/* replay.h: resuming a reply from the database and following it live.
 *
 * A reply's deltas are stored with their end offsets; a client that lost its
 * stream names the last event it saw ("<reply uuid>:<seq>") and gets the
 * rest, from any worker of any host. */
#ifndef CHAT_REPLAY_H
#define CHAT_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"

/* Replays a reply to the sink and follows it live until it ends (polling the
 * database, so the generation may run on any worker of any host): start (if
 * after_seq < 0), the deltas after after_seq, then the end. reply_id NULL
 * means the session's latest reply. Returns 200 when something was sent,
 * 204 when the reply ended and the client has seen all of it, 404 when there
 * is no such reply for this owner, 503 without a database. env, the strings
 * and sink are borrowed for the call; *error points to a static message. */
int chat_replay_run(const struct chat_env *env, const char *user_id, const char *session_id,
    const char *reply_id, long after_seq, const struct chat_sink *sink, const char **error);

/* Parses an event id "<reply uuid>:<seq>" (from Last-Event-ID) into
 * reply_id (len bytes, NUL-terminated) and *seq. False if id is malformed;
 * the outputs are then unspecified. */
bool chat_event_id_parse(const char *id, char *reply_id, size_t len, long *seq);

#endif
