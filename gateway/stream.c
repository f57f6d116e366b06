/* stream.c: engine turns with their upstream transfers on the event loop,
 * and the sinks that turn them into seed 001 and seed 003 events. */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "config.h"
#include "engine.h"
#include "events.h"
#include "log.h"
#include "relay.h"
#include "request.h"
#include "room.h"
#include "session.h"
#include "upstream.h"
#include "upstream_loop.h"
#include "upstream_multi.h"

#define ID_LEN      EIO_SID_LEN

enum seed { SEED_001, SEED_003 };

struct stream {
	struct stream          *next, *prev;
	enum seed               seed;
	char                    id[ID_LEN + 1];            /* seed 001 streamId */
	char                    sid[EIO_SID_LEN + 1];      /* the socket; "" for a room job */
	char                    room[ROOM_NAME_MAX + 1];   /* seed 001 room; "" for the socket */
	char                    user_id[SESSION_USER_MAX];
	char                    route[48];
	char                    client_ip[LIMIT_CLIENT_IP_BYTES];  /* "": none (a REST job) */
	struct request_slot_holder slot;                   /* what turn.slot_ask points to */
	char                   *session_id;                /* seed 003: owned */
	char                   *session_ref;               /* seed 003: owned */
	char                   *message;                   /* seed 003: owned */
	json_object            *messages;                  /* seed 001: a reference */
	struct chat_turn        turn;                      /* borrows the fields above */
	struct chat_sink        sink;
	struct chat_turn_state *ts;
	struct relay_stream    *relay;                     /* room streams, until their end */
};

static struct chat_env env;
static struct upstream_multi *multi;  /* upstream_loop's, while set up */
static struct stream *streams;
static size_t nstreams;
static bool stopping;                /* stream_shutdown is aborting everything */

#define STOPPED_MSG "The server is restarting; the reply was interrupted"

bool
stream_setup(const struct config *cfg, struct store *store, const char *gateway_id)
{
	env.cfg = cfg;
	env.store = store;
	env.upstream = NULL;   /* no blocking client: transfers run on the multi */
	env.worker_id = gateway_id;
	return (multi = upstream_loop_start(cfg)) != NULL;
}

size_t
stream_count(void)
{
	return nstreams;
}

/* ---- streams ------------------------------------------------------------ */

static void
stream_free(struct stream *st)
{
	if (st->prev != NULL)
		st->prev->next = st->next;
	else if (streams == st)
		streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	nstreams--;
	json_object_put(st->messages);
	free(st->session_id);
	free(st->session_ref);
	free(st->message);
	free(st);
}

static struct stream *
stream_new(enum seed seed, const char *sid, const char *user_id, const char *client_ip,
    const char *route)
{
	struct stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->seed = seed;
	(void)snprintf(st->sid, sizeof(st->sid), "%s", sid != NULL ? sid : "");
	(void)snprintf(st->user_id, sizeof(st->user_id), "%s", user_id != NULL ? user_id : "");
	(void)snprintf(st->route, sizeof(st->route), "%s", route);
	(void)snprintf(st->client_ip, sizeof(st->client_ip), "%s", client_ip != NULL ? client_ip : "");
	if (!eio_sid_generate(st->id, sizeof(st->id))) {
		free(st);
		return NULL;
	}
	st->next = streams;
	if (streams != NULL)
		streams->prev = st;
	streams = st;
	nstreams++;
	return st;
}

/* The socket this stream answers, while it is there and connected. */
static struct session *
stream_socket(const struct stream *st)
{
	struct session *s;

	if (st->sid[0] == '\0' || (s = session_find(st->sid)) == NULL || !s->connected)
		return NULL;
	return s;
}

/* Emits one event to the stream's socket; false if it is gone. */
static bool
emit(const struct stream *st, const char *event, struct buf *json, bool encoded)
{
	struct session *s = stream_socket(st);

	if (s == NULL)
		return false;
	if (!encoded) {
		log_warn("stream %s: %s event too large", st->id, event);
		return true;
	}
	(void)session_emit(s, event, json->data, json->len);
	return true;
}

/* Reports a failure with the seed's error event. */
static void
stream_fail(struct stream *st, const char *error)
{
	struct buf b;

	if (error == NULL)
		error = "The reply failed";
	if (st->relay != NULL) {
		relay_error(st->relay, error);
		st->relay = NULL;
		return;
	}
	buf_init(&b, LIMIT_EVENT_BYTES);
	if (st->seed == SEED_001)
		(void)emit(st, "stream-error", &b, events_stream_error(&b, st->id, error));
	else
		(void)emit(st, "ai:error", &b, events_ai_error(&b, error, st->session_ref));
	buf_free(&b);
}

/* Seed 001 sink. Room streams always go on: members may be listening in
 * other processes. */
static bool
s001_alive(void *ctx)
{
	struct stream *st = ctx;

	return st->relay != NULL || stream_socket(st) != NULL;
}

static bool
s001_open(void *ctx, const struct chat_stream_info *info)
{
	(void)info;
	return s001_alive(ctx);
}

static bool
s001_delta(void *ctx, const struct chat_stream_info *info, const char *text, size_t len)
{
	struct stream *st = ctx;
	struct session_chunk c;
	struct session *s;

	if (st->relay != NULL) {
		relay_chunk(st->relay, text, len, info->content, info->content_len);
		return true;
	}
	if ((s = stream_socket(st)) == NULL)
		return false;
	/* A socket that is behind gets it merged with its queued chunk. */
	session_chunk_init(&c, st->id, len, info->content, info->content_len);
	(void)session_send_chunk(s, &c);
	session_chunk_free(&c);
	return true;
}

static void
s001_end(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *out)
{
	struct stream *st = ctx;
	char ts[EVENTS_TS_LEN];
	struct buf b;

	if (!chat_outcome_is_done(out)) {
		stream_fail(st, stopping ? STOPPED_MSG : out->error_message);
		return;
	}
	if (st->relay != NULL) {
		relay_complete(st->relay, info->content, info->content_len);
		st->relay = NULL;
		return;
	}
	events_timestamp(ts);
	buf_init(&b, LIMIT_EVENT_BYTES);
	if (emit(st, "stream-chunk", &b, events_stream_chunk(&b, st->id, "", 0, info->content,
	    info->content_len, true))) {
		buf_reset(&b);
		(void)emit(st, "stream-complete", &b,
		    events_stream_complete(&b, st->id, info->content, info->content_len, ts));
	}
	buf_free(&b);
}

/* Seed 003 sink. */
static bool
s003_alive(void *ctx)
{
	return stream_socket(ctx) != NULL;
}

static bool
s003_open(void *ctx, const struct chat_stream_info *info)
{
	(void)info;
	return s003_alive(ctx);
}

static bool
s003_delta(void *ctx, const struct chat_stream_info *info, const char *text, size_t len)
{
	struct stream *st = ctx;
	struct buf b;
	bool alive;

	(void)info;
	buf_init(&b, LIMIT_EVENT_BYTES);
	alive = emit(st, "ai:stream", &b, events_ai_stream(&b, text, len, st->session_ref));
	buf_free(&b);
	return alive;
}

static void
s003_end(void *ctx, const struct chat_stream_info *info, const struct chat_outcome *out)
{
	struct stream *st = ctx;
	struct buf b;

	if (!chat_outcome_is_done(out)) {
		stream_fail(st, stopping ? STOPPED_MSG : out->error_message);
		return;
	}
	buf_init(&b, LIMIT_EVENT_BYTES);
	(void)emit(st, "ai:complete", &b,
	    events_ai_complete(&b, info->content, info->content_len, st->session_ref));
	buf_free(&b);
}

/* The upstream transfer ended: persist, record, end the events. */
static void
stream_done(void *ctx)
{
	struct stream *st = ctx;
	const char *err = NULL;
	int status;

	status = chat_turn_finish(st->ts, &err);
	st->ts = NULL;
	if (status != 200)
		stream_fail(st, err);
	else if (st->relay != NULL)
		stream_fail(st, "The reply was interrupted");
	stream_free(st);
}

/* The caller's concurrent-stream slot, as chatd's streams take it
 * (request_turn_slot); the engine gives it back with the end. A room job started over REST by an anonymous caller has no
 * address here: it is not counted. Returns 200, or the refusal. */
static int
stream_slot(struct stream *st, const char **err)
{
	const char *user = st->user_id[0] != '\0' ? st->user_id : NULL;
	struct request_result res;

	if (user == NULL && st->client_ip[0] == '\0')
		return 200;
	res = request_turn_slot(env.cfg, env.store, user, st->client_ip, env.worker_id, &st->turn,
	    &st->slot);
	if (res.status != 0) {
		*err = res.message;
		return res.status;
	}
	return 200;
}

/* Prepares the turn and starts its transfer; reports failures itself and
 * frees st then. */
static void
stream_launch(struct stream *st)
{
	const struct upstream_stream_ops *ops;
	struct upstream_result *res;
	const char *body, *err = NULL;
	size_t len;
	int status;

	if ((status = stream_slot(st, &err)) == 200)
		status = chat_turn_prepare(&env, &st->turn, &st->sink, &st->ts, &err);
	if (status != 200) {
		log_info("stream %s: not started (%d %s)", st->id, status, err != NULL ? err : "");
		stream_fail(st, err);
		stream_free(st);
		return;
	}
	chat_turn_upstream(st->ts, &body, &len, &ops, &res);
	if (upstream_multi_stream(multi, "/chat/completions", body, len, ops, res, stream_done, st) == NULL) {
		/* done will never run: end the turn here (it records the failure). */
		status = chat_turn_finish(st->ts, &err);
		st->ts = NULL;
		stream_fail(st, status != 200 ? err : "Upstream unavailable");
		stream_free(st);
	}
}

void
stream_start_001(const char *sid, const char *room, const char *user_id, const char *client_ip,
    json_object *messages, const char *route)
{
	struct stream *st = stream_new(SEED_001, sid, user_id, client_ip, route);
	char ts[EVENTS_TS_LEN];
	struct buf b;

	if (st == NULL) {
		log_error("stream: out of memory");
		return;
	}
	st->messages = json_object_get(messages);
	st->turn = (struct chat_turn){
		.route = st->route,
		.user_id = st->user_id[0] != '\0' ? st->user_id : NULL,
		.messages = st->messages,
		.add_system_prompt = true,
		.temperature = -1,
		/* A lone socket that leaves stops its reply: nobody else can
		 * see a stateless one. */
		.stop_when_client_leaves = room == NULL,
	};
	st->sink = (struct chat_sink){ s001_open, s001_delta, s001_alive, s001_end, st };
	/* stream-start goes out at once (the seed's "AI is typing"). */
	if (room != NULL) {
		(void)snprintf(st->room, sizeof(st->room), "%s", room);
		if ((st->relay = relay_begin(st->room, st->id, st->user_id)) == NULL) {
			log_error("stream: out of memory");
			stream_free(st);
			return;
		}
	} else {
		events_timestamp(ts);
		buf_init(&b, 4096);
		(void)emit(st, "stream-start", &b, events_stream_start(&b, st->id, NULL, ts));
		buf_free(&b);
	}
	stream_launch(st);
}

void
stream_start_003(const char *sid, const char *user_id, const char *client_ip,
    const char *session_id, const char *session_ref, const char *message)
{
	struct stream *st = stream_new(SEED_003, sid, user_id, client_ip, "gw_ai_chat");

	if (st == NULL || (st->session_id = strdup(session_id)) == NULL ||
	    (st->session_ref = strdup(session_ref)) == NULL || (st->message = strdup(message)) == NULL) {
		log_error("stream: out of memory");
		if (st != NULL)
			stream_free(st);
		return;
	}
	/* The reply is stored: it goes on when the socket leaves. */
	request_turn_session(&st->turn, st->route, st->user_id, st->session_id, st->message, NULL);
	st->sink = (struct chat_sink){ s003_open, s003_delta, s003_alive, s003_end, st };
	stream_launch(st);
}

void
stream_shutdown(void)
{
	/* Aborting runs every done callback: replies end as interrupted. */
	stopping = true;
	upstream_loop_stop();
	multi = NULL;
	while (streams != NULL) {
		/* Only a stream whose transfer never started could be left. */
		stream_free(streams);
	}
}
