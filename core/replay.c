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

#define FOLLOW_POLL_MS 250

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

int
chat_replay_run(const struct chat_env *env, const char *user_id, const char *session_id,
    const char *reply_id, long after_seq, const struct chat_sink *sink, const char **error)
{
	const struct config *cfg = env->cfg;
	int stale_s = (cfg->upstream_first_token_timeout > cfg->upstream_idle_timeout
	    ? cfg->upstream_first_token_timeout : cfg->upstream_idle_timeout) + 15;
	int64_t t_start = clock_now_us(), last_write = 0;
	struct chat_stream_info info;
	struct store_reply rep, seen = { 0 };  /* seen: the row info.content points into */
	char id[40] = "";
	bool opened = false;
	long sent = after_seq;
	int status = 200;

	memset(&info, 0, sizeof(info));
	for (;;) {
		size_t *ends = NULL;
		long n;
		bool final;
		enum store_rc rc;

		rc = store_reply_read(env->store, user_id, session_id, id[0] ? id : reply_id,
		    stale_s, &rep);
		if (rc != STORE_OK) {
			if (!opened) {
				*error = rc == STORE_NOT_FOUND ? "No reply to resume"
				    : "Database unavailable";
				return store_http_status(rc);
			}
			/* The row vanished (session deleted) or the database is
			 * gone: end the stream rather than spin. */
			struct chat_outcome o = { .status = REPLY_ERROR, .error_code = "replay_failed",
				.error_message = "The reply can no longer be read", .prompt_tokens = -1,
				.completion_tokens = -1, .finish_reason = "" };
			info.seq = (unsigned long)(sent + 1);
			sink->end(sink->ctx, &info, &o);
			store_reply_free(&seen);
			return 200;
		}
		/* The new row holds at least the text of the one before. */
		info.content = rep.content;
		if (info.content_len > rep.content_len)
			info.content_len = rep.content_len;
		store_reply_free(&seen);
		if (id[0] == '\0') {
			(void)snprintf(id, sizeof(id), "%s", rep.id);
			/* Ask the generator, wherever it runs, for smaller batches. */
			if (rep.status == REPLY_STREAMING && !rep.stale)
				(void)store_notify_follow(env->store, rep.id);
		}
		if ((n = parse_ends(rep.chunk_ends, &ends)) < 0) {
			store_reply_free(&rep);
			*error = "Internal server error";
			return opened ? 200 : 500;
		}
		final = rep.status != REPLY_STREAMING || rep.stale;
		info.session_id = session_id;
		info.reply_id = id;
		if (!opened) {
			/* 204 only for a reply stored whole: one cut short by a
			 * dead worker may hold less than the client already saw. */
			if (final && sent >= n + 1 && !rep.stale &&
			    strcmp(rep.error, "worker_died") != 0) {
				free(ends);
				store_reply_free(&rep);
				return 204;  /* seen it all: eventsource stops on 204 */
			}
			info.seq = 0;
			info.content = "";
			info.resumed = sent >= 0;
			if (!sink->open(sink->ctx, &info))
				goto gone;
			opened = true;
			last_write = clock_now_us();
			if (sent < 0)
				sent = 0;
		}
		for (long i = sent + 1; i <= n; i++) {
			size_t from = i >= 2 ? ends[i - 2] : 0, to = ends[i - 1];

			if (to > rep.content_len || from > to)
				break;  /* a batch still in flight: next poll */
			info.seq = (unsigned long)i;
			info.chunk_index = (unsigned long)(i - 1);
			info.content = rep.content;
			info.content_len = to;
			if (!sink->delta(sink->ctx, &info, rep.content + from, to - from))
				goto gone;
			sent = i;
			last_write = clock_now_us();
		}
		if (final && sent >= n) {
			struct chat_outcome o = { .status = rep.stale ? REPLY_INTERRUPTED : rep.status,
				.prompt_tokens = -1, .completion_tokens = -1, .finish_reason = "" };
			const char *code = rep.stale ? "worker_died" : rep.error;

			if (o.status != REPLY_COMPLETE) {
				o.error_code = code[0] ? code : reply_status_name(o.status);
				o.error_message = reason_message(o.error_code);
			}
			/* The end's id follows whatever the client has seen. */
			info.seq = (unsigned long)((sent > n ? sent : n) + 1);
			info.content = rep.content;
			info.content_len = rep.content_len;
			sink->end(sink->ctx, &info, &o);
			goto out;
		}
		free(ends);
		seen = rep;   /* info.content still points into it */
		if (clock_now_us() - t_start > (int64_t)cfg->stream_max_duration * 1000000) {
			struct chat_outcome o = { .status = REPLY_INTERRUPTED, .error_code = "stream_max_duration",
				.error_message = reason_message("stream_max_duration"),
				.prompt_tokens = -1, .completion_tokens = -1, .finish_reason = "" };
			info.seq = (unsigned long)(sent + 1);
			sink->end(sink->ctx, &info, &o);
			store_reply_free(&seen);
			return 200;
		}
		if (clock_now_us() - last_write >= (int64_t)cfg->heartbeat_interval * 1000000) {
			if (!sink->heartbeat(sink->ctx)) {
				store_reply_free(&seen);
				return 200;
			}
			last_write = clock_now_us();
		}
		replay_pause(FOLLOW_POLL_MS);
		continue;
gone:
		log_debug("replay of %s: client gone", id);
out:
		free(ends);
		store_reply_free(&rep);
		return status;
	}
}
