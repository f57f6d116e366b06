/* replay.c: resuming a reply from its stored chunks, and following it live.
 *
 * Every delta of a reply is stored with the byte offset where it ended
 * (chunk_ends), in batches while it streams. Event ids are "<reply>:<n>":
 * 0 the start, 1..N the deltas, N+1 the end. A client that lost its
 * connection sends the last id it saw; this replays what came after it and
 * then polls the row until the generation, wherever it runs, has ended. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "replay.h"
#include "log.h"
#include "store.h"
#include "upstream.h"


bool
chat_event_id_parse(const char *id, char *reply_id, size_t len, long *seq)
{
	const char *colon;
	char *end;
	long n;

	if (id == NULL || (colon = strchr(id, ':')) == NULL || (size_t)(colon - id) >= len)
		return false;
	memcpy(reply_id, id, (size_t)(colon - id));
	reply_id[colon - id] = '\0';
	if (!auth_is_uuid(reply_id))
		return false;
	errno = 0;
	n = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || n < 0 || n > 100000000)
		return false;
	*seq = n;
	return true;
}

/* Parses "3,9,14" into ends[]; returns the count or -1. */
static long
parse_ends(const char *csv, size_t **ends)
{
	long n = 0, cap = 0;
	const char *p = csv;

	*ends = NULL;
	while (*p != '\0') {
		char *end;
		unsigned long v = strtoul(p, &end, 10);

		if (end == p)
			goto failed;
		if (n == cap) {
			size_t *grown = realloc(*ends, sizeof(**ends) * (size_t)(cap = cap ? cap * 2 : 64));
			if (grown == NULL)
				goto failed;
			*ends = grown;
		}
		(*ends)[n++] = (size_t)v;
		p = *end == ',' ? end + 1 : end;
	}
	return n;
failed:
	free(*ends);
	*ends = NULL;
	return -1;
}

static const char *
reason_message(const char *code)
{
	static const struct { const char *code, *msg; } reasons[] = {
		{ "worker_died", "The server generating the reply stopped" },
		{ "client_gone", "The client went away" },
		{ "cancelled", "The reply was cancelled" },
		{ "stream_max_duration", "The reply reached the maximum stream duration" },
		{ "upstream_dropped", "The connection to the AI service was lost" },
		{ "upstream_idle_timeout", "The AI service stopped answering" },
		{ "upstream_stream_error", "The AI service reported an error" },
		{ "upstream_protocol_error", "The AI service sent a malformed stream" },
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(reasons[i].code, code) == 0)
			return reasons[i].msg;
	return "The reply did not complete";
}

/* Sleeps up to ms, waking early never; heartbeats keep proxies patient. */
static void
replay_pause(int ms)
{
	(void)poll(NULL, 0, ms);
}

void
chat_replay_init(struct chat_replay *rp, const struct chat_env *env, const char *user_id,
    const char *session_id, const char *reply_id, long after_seq, const struct chat_sink *sink)
{
	const struct config *cfg = env->cfg;

	memset(rp, 0, sizeof(*rp));
	rp->env = env;
	rp->user_id = user_id;
	rp->session_id = session_id;
	rp->sink = sink;
	rp->sent = after_seq;
	rp->stale_s = (cfg->upstream_first_token_timeout > cfg->upstream_idle_timeout
	    ? cfg->upstream_first_token_timeout : cfg->upstream_idle_timeout) + 15;
	rp->t_start_us = clock_now_us();
	(void)snprintf(rp->id, sizeof(rp->id), "%s", reply_id != NULL ? reply_id : "");
}

enum store_rc
chat_replay_read(struct chat_replay *rp, struct store_reply *rep)
{
	enum store_rc rc = store_reply_read(rp->env->store, rp->user_id, rp->session_id,
	    rp->id[0] != '\0' ? rp->id : NULL, rp->stale_s, rep);

	/* Untouched past every timeout of its generator: it will not end by
	 * itself. The ending the client gets is the one the database then
	 * holds, whoever wrote it (this, the sweep, or a late generator). */
	if (rc == STORE_OK && rep->status == REPLY_STREAMING && rep->stale &&
	    store_reply_interrupt_stale(rp->env->store, rep->id, rp->stale_s) == STORE_OK) {
		char id[sizeof(rp->id)];

		(void)snprintf(id, sizeof(id), "%s", rep->id);
		store_reply_free(rep);
		rc = store_reply_read(rp->env->store, rp->user_id, rp->session_id, id, rp->stale_s, rep);
	}
	return rc;
}

/* Ends the stream with outcome o after what the client has seen. */
static void
replay_end(struct chat_replay *rp, const struct chat_outcome *o, long seq)
{
	rp->info.seq = (unsigned long)seq;
	rp->sink->end(rp->sink->ctx, &rp->info, o);
}

enum chat_replay_state
chat_replay_step(struct chat_replay *rp, enum store_rc rc, struct store_reply *rep,
    int *status, const char **error)
{
	struct chat_stream_info *info = &rp->info;
	size_t *ends = NULL;
	long n;
	bool final;

	*status = 200;
	if (rc != STORE_OK) {
		if (!rp->opened) {
			*error = rc == STORE_NOT_FOUND ? "No reply to resume" : "Database unavailable";
			*status = store_http_status(rc);
			return CHAT_REPLAY_DONE;
		}
		/* The row vanished (session deleted) or the database is gone:
		 * end the stream rather than spin. */
		struct chat_outcome o = { .status = REPLY_ERROR, .error_code = "replay_failed",
			.error_message = "The reply can no longer be read", .prompt_tokens = -1,
			.completion_tokens = -1, .finish_reason = "" };
		replay_end(rp, &o, rp->sent + 1);
		return CHAT_REPLAY_DONE;
	}
	/* The new row holds at least the text of the one before. */
	info->content = rep->content;
	if (info->content_len > rep->content_len)
		info->content_len = rep->content_len;
	store_reply_free(&rp->seen);
	if (!rp->named) {
		rp->named = true;
		(void)snprintf(rp->id, sizeof(rp->id), "%s", rep->id);
		/* Ask the generator, wherever it runs, for smaller batches (and
		 * word of each). */
		if (rep->status == REPLY_STREAMING && !rep->stale) {
			rp->follows = true;
			(void)store_notify_follow(rp->env->store, rep->id);
		}
	}
	if ((n = parse_ends(rep->chunk_ends, &ends)) < 0) {
		store_reply_free(rep);
		*error = "Internal server error";
		*status = rp->opened ? 200 : 500;
		return CHAT_REPLAY_DONE;
	}
	/* Only the database's status ends a resume (chat_replay_read settles
	 * stale rows): the client's ending is the stored one. */
	final = rep->status != REPLY_STREAMING;
	info->session_id = rp->session_id;
	info->reply_id = rp->id;
	if (!rp->opened) {
		/* 204 only for a reply stored whole: one cut short by a dead
		 * worker may hold less than the client already saw. */
		if (final && rp->sent >= n + 1 && strcmp(rep->error, "worker_died") != 0) {
			free(ends);
			store_reply_free(rep);
			*status = 204;  /* seen it all: eventsource stops on 204 */
			return CHAT_REPLAY_DONE;
		}
		info->seq = 0;
		info->content = "";
		info->resumed = rp->sent >= 0;
		if (!rp->sink->open(rp->sink->ctx, info))
			goto gone;
		rp->opened = true;
		rp->last_write_us = clock_now_us();
		if (rp->sent < 0)
			rp->sent = 0;
	}
	for (long i = rp->sent + 1; i <= n; i++) {
		size_t from = i >= 2 ? ends[i - 2] : 0, to = ends[i - 1];

		if (to > rep->content_len || from > to)
			break;  /* a batch still in flight: next read */
		info->seq = (unsigned long)i;
		info->chunk_index = (unsigned long)(i - 1);
		info->content = rep->content;
		info->content_len = to;
		if (!rp->sink->delta(rp->sink->ctx, info, rep->content + from, to - from))
			goto gone;
		rp->sent = i;
		rp->last_write_us = clock_now_us();
	}
	if (final && rp->sent >= n) {
		struct chat_outcome o = { .status = rep->status,
			.prompt_tokens = -1, .completion_tokens = -1, .finish_reason = "" };
		const char *code = rep->error;

		if (o.status != REPLY_COMPLETE) {
			o.error_code = code[0] ? code : reply_status_name(o.status);
			o.error_message = reason_message(o.error_code);
		}
		/* The end's id follows whatever the client has seen. */
		info->content = rep->content;
		info->content_len = rep->content_len;
		replay_end(rp, &o, (rp->sent > n ? rp->sent : n) + 1);
		goto out;
	}
	free(ends);
	rp->seen = *rep;   /* info->content still points into it */
	memset(rep, 0, sizeof(*rep));
	if (clock_now_us() - rp->t_start_us > (int64_t)rp->env->cfg->stream_max_duration * 1000000) {
		struct chat_outcome o = { .status = REPLY_INTERRUPTED, .error_code = "stream_max_duration",
			.error_message = reason_message("stream_max_duration"),
			.prompt_tokens = -1, .completion_tokens = -1, .finish_reason = "" };
		replay_end(rp, &o, rp->sent + 1);
		return CHAT_REPLAY_DONE;
	}
	return CHAT_REPLAY_WAIT;
gone:
	log_debug("replay of %s: client gone", rp->id);
out:
	free(ends);
	store_reply_free(rep);
	return CHAT_REPLAY_DONE;
}

bool
chat_replay_heartbeat(struct chat_replay *rp)
{
	if (clock_now_us() - rp->last_write_us < (int64_t)rp->env->cfg->heartbeat_interval * 1000000)
		return true;
	rp->last_write_us = clock_now_us();
	return rp->sink->heartbeat(rp->sink->ctx);
}

void
chat_replay_free(struct chat_replay *rp)
{
	store_reply_free(&rp->seen);
}

int
chat_replay_follow(struct chat_replay *rp, const char **error)
{
	struct store_reply rep;
	int status = 200;

	for (;;) {
		enum store_rc rc = chat_replay_read(rp, &rep);

		if (chat_replay_step(rp, rc, &rep, &status, error) == CHAT_REPLAY_DONE ||
		    !chat_replay_heartbeat(rp))
			return status;
		replay_pause(CHAT_REPLAY_POLL_MS);
	}
}

int
chat_replay_run(const struct chat_env *env, const char *user_id, const char *session_id,
    const char *reply_id, long after_seq, const struct chat_sink *sink, const char **error)
{
	struct chat_replay rp;
	int status;

	chat_replay_init(&rp, env, user_id, session_id, reply_id, after_seq, sink);
	status = chat_replay_follow(&rp, error);
	chat_replay_free(&rp);
	return status;
}
