/* resume_stream.h: a stored reply resumed (and followed) as the SSE
 * response of a request (GET …/sessions/{id}/stream).
 *
 * The first read and what it brings are answered on the calling thread.
 * When the reply is still being generated and the front end has an event
 * loop, the request is then detached: the loop follows the reply, reading
 * it again through the work queue whenever its generator says it stored
 * more (NOTIFY chat_reply) or, failing that, every CHAT_REPLAY_POLL_MS. No
 * thread waits for a follower. */
#ifndef CHAT_RESUME_STREAM_H
#define CHAT_RESUME_STREAM_H

struct request;

/* Resumes the reply reply_id (NULL: the session's latest) of session
 * session_id owned by r's caller after event after_seq (-1: from the
 * start), giving back the caller's stream slot (0: none) when it ends.
 * Returns like chat_replay_run: 200 (sent, or under way on the loop), 204
 * nothing more to send, or an error status with *error (nothing sent). */
int resume_stream_run(struct request *r, const char *session_id, const char *reply_id,
    long after_seq, long long slot, const char **error);

#endif
