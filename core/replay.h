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
#include "store.h"

/* How often a follower reads the reply again when nothing wakes it sooner. */
#define CHAT_REPLAY_POLL_MS 250

/* Replays a reply to the sink and follows it live until it ends (polling the
 * database, so the generation may run on any worker of any host): start (if
 * after_seq < 0), the deltas after after_seq, then the end. reply_id NULL
 * means the session's latest reply. Returns 200 when something was sent,
 * 204 when the reply ended and the client has seen all of it, 404 when there
 * is no such reply for this owner, 503 without a database. env, the strings
 * and sink are borrowed for the call; *error points to a static message. */
int chat_replay_run(const struct chat_env *env, const char *user_id, const char *session_id,
    const char *reply_id, long after_seq, const struct chat_sink *sink, const char **error);

/* The same, one read at a time, for an event loop (which reads off the
 * loop and decides when to read again: on a NOTIFY that the generator
 * stored more, or after CHAT_REPLAY_POLL_MS):
 *   chat_replay_init       once; every argument borrowed until free;
 *   chat_replay_read       one read of the reply (blocking: off the loop);
 *   chat_replay_step       sends what that read brought (takes rep);
 *                          CHAT_REPLAY_WAIT: read again later;
 *                          CHAT_REPLAY_DONE: *status as chat_replay_run's;
 *   chat_replay_heartbeat  a comment when the client heard nothing for
 *                          heartbeat_interval; false once it is gone;
 *   chat_replay_free       always, at the end. */
struct chat_replay {
	const struct chat_env  *env;
	const char             *user_id, *session_id;
	const struct chat_sink *sink;
	char                    id[40];        /* the reply; "" until the first read names it */
	bool                    named;
	bool                    opened;
	bool                    follows;       /* the reply was live when first read */
	long                    sent;          /* last event seq the client has */
	int                     stale_s;
	int64_t                 t_start_us, last_write_us;
	struct chat_stream_info info;
	struct store_reply      seen;          /* the row info.content points into */
};

enum chat_replay_state { CHAT_REPLAY_WAIT, CHAT_REPLAY_DONE };

void chat_replay_init(struct chat_replay *rp, const struct chat_env *env, const char *user_id,
    const char *session_id, const char *reply_id, long after_seq, const struct chat_sink *sink);
enum store_rc chat_replay_read(struct chat_replay *rp, struct store_reply *rep);
enum chat_replay_state chat_replay_step(struct chat_replay *rp, enum store_rc rc,
    struct store_reply *rep, int *status, const char **error);
bool chat_replay_heartbeat(struct chat_replay *rp);
/* Reads, steps and waits on this thread until done; returns the status. */
int chat_replay_follow(struct chat_replay *rp, const char **error);
void chat_replay_free(struct chat_replay *rp);

/* Parses an event id "<reply uuid>:<seq>" (from Last-Event-ID) into
 * reply_id (len bytes, NUL-terminated) and *seq. False if id is malformed;
 * the outputs are then unspecified. */
bool chat_event_id_parse(const char *id, char *reply_id, size_t len, long *seq);

#endif
