/* chat.c: the default namespace and the seeds' events: validation,
 * authentication, rate limits; the generations themselves are stream.c's. */
#include "chat.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "chat_limits.h"
#include "config.h"
#include "conversation.h"
#include "events.h"
#include "json_in.h"
#include "json_out.h"
#include "live.h"
#include "log.h"
#include "ratelimit.h"
#include "relay.h"
#include "request.h"
#include "room.h"
#include "rooms_pg.h"
#include "session.h"
#include "sio.h"
#include "store.h"
#include "stream.h"

#define JOBS_PER_CLAIM   16
#define SMALL_EVENT      8192

static const struct config *cfg;
static struct store *store;
static const char *gateway_id;
static bool draining;

bool
chat_setup(const struct config *c, struct store *st, const char *id)
{
	cfg = c;
	store = st;
	gateway_id = id;
	return stream_setup(c, st, id);
}

void
chat_tick(int64_t now_ms)
{
	relay_tick(now_ms);
}

void
chat_drain(void)
{
	draining = true;
}

size_t
chat_streams(void)
{
	return stream_count();
}

void
chat_shutdown(void)
{
	stream_shutdown();
}

/* ---- replies to one socket ----------------------------------------------- */

static void
emit_small(struct session *s, const char *event, struct buf *b, bool encoded)
{
	if (encoded)
		(void)session_emit(s, event, b->data, b->len);
	buf_reset(b);
}

static void
stream_error(struct session *s, const char *error)
{
	struct buf b;

	buf_init(&b, SMALL_EVENT);
	emit_small(s, "stream-error", &b, events_stream_error(&b, NULL, error));
	buf_free(&b);
}

static void
ai_error(struct session *s, const char *error, const char *session_ref)
{
	struct buf b;

	buf_init(&b, SMALL_EVENT);
	emit_small(s, "ai:error", &b, events_ai_error(&b, error, session_ref));
	buf_free(&b);
}

/* stream-error {error, roomName}: a room refused to this socket. */
static void
room_error(struct session *s, const char *room, const char *error)
{
	struct buf b;

	buf_init(&b, SMALL_EVENT);
	emit_small(s, "stream-error", &b, events_room_error(&b, room, error));
	buf_free(&b);
}

/* Answers an event's acknowledgement, if the client asked for one:
 * `43<id>[{"ok":...}]`. */
static void
ack(struct session *s, const struct sio_packet *pk, bool ok, const char *what)
{
	struct buf arg, pkt;

	if (pk->ack_id < 0)
		return;
	buf_init(&arg, SMALL_EVENT);
	buf_init(&pkt, SMALL_EVENT);
	if ((ok ? events_ack_ok(&arg, what) : events_ack_error(&arg, what)) &&
	    buf_appendc(&pkt, (char)('0' + EIO_MESSAGE)) &&
	    sio_encode_ack(&pkt, "/", pk->ack_id, arg.data, arg.len))
		(void)session_send(s, pkt.data, pkt.len);
	buf_free(&pkt);
	buf_free(&arg);
}

/* ---- checks shared by the events ----------------------------------------- */

/* Counts one generation against the caller's chat limit (the HTTP routes'
 * class and keys: both front ends share the budget), then checks the
 * user's daily token budget as the HTTP routes do. Returns NULL to go on,
 * or the message to send. */
static const char *
rate_check(const struct session *s, const char *user_id)
{
	struct ratelimit_verdict v;
	struct request_result res;
	long retry_after;

	if ((res = request_ratelimit(cfg, store, RATELIMIT_CHAT, user_id, s->client_ip, &v)).status != 0)
		return res.message;
	return request_budget_check(cfg, store, user_id, &retry_after).message;
}

/* A client's conversation for a stateless turn: the HTTP routes' rules,
 * and at least one message. NULL with the problem in err. */
static json_object *
messages_clean(json_object *arr, char *err, size_t errlen)
{
	json_object *out;

	(void)conversation_clean(arr, "messages", &out, err, errlen);  /* out NULL on failure */
	if (out != NULL && json_object_array_length(out) == 0) {
		(void)snprintf(err, errlen, "messages must hold 1 to %d messages",
		    CONVERSATION_MESSAGES_MAX);
		json_object_put(out);
		out = NULL;
	}
	return out;
}

/* ---- seed 001 ------------------------------------------------------------- */

/* A token in join-room authenticates the socket, like one in the CONNECT
 * auth payload; a socket never changes user. Returns NULL, or the refusal. */
static const char *
join_authenticate(struct session *s, const char *token)
{
	char user[SESSION_USER_MAX];
	struct request_result res;

	if ((res = request_caller_token(cfg, store, token, user, sizeof(user))).status != 0)
		return res.message;
	if (s->user_id[0] != '\0' && strcmp(s->user_id, user) != 0)
		return "The socket is authenticated as another user";
	(void)snprintf(s->user_id, sizeof(s->user_id), "%s", user);
	return NULL;
}

/* A room that a user streamed into is theirs (request_room_enter): only
 * sockets authenticated as that user join it; the others get the ack's
 * error and stream-error {error, roomName}. */
static void
on_join_room(struct session *s, const struct sio_packet *pk)
{
	json_object *arg = sio_event_arg(pk, 0);
	const char *room = NULL, *who = NULL, *token = NULL, *err = NULL, *refused;
	char owner[SESSION_USER_MAX];
	struct request_result res;
	size_t len = 0, tlen = 0;

	if (arg == NULL || !json_object_is_type(arg, json_type_object) ||
	    !json_in_string(arg, "roomName", JSON_REQUIRED, ROOM_NAME_MAX, &room, &len, &err) ||
	    len == 0) {
		ack(s, pk, false, "roomName must be a string of 1 to 128 bytes");
		return;
	}
	if (!json_in_string(arg, "participantName", JSON_OPTIONAL, LIMIT_PARTICIPANT_BYTES, &who, NULL, &err)) {
		ack(s, pk, false, "participantName must be a string of at most 128 bytes");
		return;
	}
	if (!json_in_string(arg, "token", JSON_OPTIONAL, AUTH_TOKEN_MAX, &token, &tlen, &err)) {
		refused = REQUEST_MSG_UNAUTHORIZED;
		goto refuse;
	}
	if (token != NULL && tlen > 0 && (refused = join_authenticate(s, token)) != NULL)
		goto refuse;
	if ((res = request_room_enter(store, room, s->user_id, owner, sizeof(owner))).status != 0) {
		refused = res.message;
		goto refuse;
	}
	if (!room_join(s, room)) {
		ack(s, pk, false, "Too many rooms");
		return;
	}
	/* What the database said, known here too ("" forgets a stale owner). */
	relay_room_owned(room, owner);
	log_debug("session %s: joined room %s as %s", s->sid, room, who != NULL ? who : "-");
	ack(s, pk, true, room);
	return;
refuse:
	log_info("session %s: join-room %s refused: %s", s->sid, room, refused);
	ack(s, pk, false, refused);
	room_error(s, room, refused);
}

static void
on_leave_room(struct session *s, const struct sio_packet *pk)
{
	json_object *arg = sio_event_arg(pk, 0);
	const char *room = NULL, *err = NULL;

	if (arg == NULL || !json_object_is_type(arg, json_type_object) ||
	    !json_in_string(arg, "roomName", JSON_REQUIRED, ROOM_NAME_MAX, &room, NULL, &err)) {
		ack(s, pk, false, "roomName must be a string of 1 to 128 bytes");
		return;
	}
	room_leave(s, room);
	ack(s, pk, true, room);
}

static void
on_stream_chat(struct session *s, const struct sio_packet *pk)
{
	json_object *arg = sio_event_arg(pk, 0), *arr = NULL, *messages;
	const char *room = NULL, *err = NULL, *limited;
	char problem[160], room_copy[ROOM_NAME_MAX + 1];
	struct request_result res;

	if (draining) {
		stream_error(s, "The server is restarting; try again in a moment");
		return;
	}
	if (arg == NULL || !json_object_is_type(arg, json_type_object)) {
		stream_error(s, "The payload must be an object {messages}");
		return;
	}
	(void)json_object_object_get_ex(arg, "messages", &arr);
	if ((messages = messages_clean(arr, problem, sizeof(problem))) == NULL) {
		stream_error(s, problem);
		return;
	}
	if (!json_in_string(arg, "roomName", JSON_OPTIONAL, ROOM_NAME_MAX, &room, NULL, &err)) {
		stream_error(s, "roomName must be a string of at most 128 bytes");
		goto done;
	}
	if (room != NULL && room[0] != '\0' && !room_has(s, room)) {
		stream_error(s, "Join the room first (join-room)");
		goto done;
	}
	if (room == NULL || room[0] == '\0')
		room = room_current(s);   /* the room joined last, if any */
	if (room != NULL) {
		/* A copy: the room's own string goes if s closes meanwhile. */
		(void)snprintf(room_copy, sizeof(room_copy), "%s", room);
		room = room_copy;
	}
	/* A user's stream claims the room; nobody streams into another's. */
	if (room != NULL && (res = request_room_claim(store, room, s->user_id)).status != 0) {
		room_error(s, room, res.message);
		goto done;
	}
	if ((limited = rate_check(s, s->user_id)) != NULL) {
		stream_error(s, limited);
		goto done;
	}
	ack(s, pk, true, room);
	stream_start_001(s->sid, room, s->user_id[0] != '\0' ? s->user_id : NULL, s->client_ip, messages,
	    room != NULL ? "gw_stream_chat_room" : "gw_stream_chat");
done:
	json_object_put(messages);
}

/* ---- seed 003 ------------------------------------------------------------- */

static void
on_ai_chat(struct session *s, const struct sio_packet *pk)
{
	json_object *arg = sio_event_arg(pk, 0);
	const char *token = NULL, *err = NULL, *limited;
	char user[SESSION_USER_MAX], *session_id = NULL;
	struct request_message in;
	struct request_result res;
	size_t len = 0;

	if (draining) {
		ai_error(s, "The server is restarting; try again in a moment", NULL);
		return;
	}
	if (arg == NULL || !json_object_is_type(arg, json_type_object)) {
		ai_error(s, "The payload must be an object {message, sessionId?, token?}", NULL);
		return;
	}
	/* Authentication first: a bad token stores nothing, counts nothing. */
	if (!json_in_string(arg, "token", JSON_OPTIONAL, AUTH_TOKEN_MAX, &token, &len, &err)) {
		ai_error(s, REQUEST_MSG_UNAUTHORIZED, NULL);
		return;
	}
	(void)snprintf(user, sizeof(user), "%s", s->user_id);
	if (token != NULL && len > 0 &&
	    (res = request_caller_token(cfg, store, token, user, sizeof(user))).status != 0) {
		ai_error(s, res.message, NULL);
		return;
	}
	if ((limited = rate_check(s, user)) != NULL) {
		ai_error(s, limited, NULL);
		return;
	}
	/* The seed's own words for bad input (HTTP names json_in's problem). */
	switch (request_message_read(arg, "sessionId", &in)) {
	case REQUEST_INPUT_OK:
		break;
	case REQUEST_INPUT_MESSAGE:
		ai_error(s, "message must be a string of at most " LIMIT_TEXT(LIMIT_CONTENT_BYTES) " bytes", NULL);
		return;
	case REQUEST_INPUT_EMPTY:
		ai_error(s, "message must not be empty", NULL);
		return;
	case REQUEST_INPUT_REF:
		ai_error(s, "sessionId must be a string of at most 128 bytes", NULL);
		return;
	}
	res = request_session_resolve(store, user, s->client_ip, in.ref, in.message, &session_id);
	if (res.status != 0) {
		ai_error(s, res.message, in.ref);
		return;
	}
	ack(s, pk, true, NULL);
	/* The client keeps the name it gave, or learns the new session's id. */
	stream_start_003(s->sid, user[0] != '\0' ? user : NULL, s->client_ip, session_id,
	    in.ref != NULL ? in.ref : session_id, in.message);
	free(session_id);
}

/* ---- the namespace ------------------------------------------------------------ */

static void
on_connect(struct session *s, const struct sio_packet *pk)
{
	char user[SESSION_USER_MAX] = "", ts[EVENTS_TS_LEN];
	json_object *tok;
	struct buf b;

	buf_init(&b, SMALL_EVENT);
	if (!buf_appendc(&b, (char)('0' + EIO_MESSAGE)))
		goto done;
	if (!sio_packet_default_nsp(pk)) {
		char nsp[LIMIT_SESSION_REF_BYTES + 1];

		(void)snprintf(nsp, sizeof(nsp), "%.*s", (int)pk->nsp_len, pk->nsp);
		if (sio_encode_connect_error(&b, nsp, "Invalid namespace"))
			(void)session_send(s, b.data, b.len);
		goto done;
	}
	/* An auth payload {"token"} authenticates the socket for ai:chat. */
	if (pk->data != NULL && json_object_object_get_ex(pk->data, "token", &tok) &&
	    json_object_is_type(tok, json_type_string) && json_object_get_string_len(tok) > 0) {
		static const struct request_result too_long = { 401, REQUEST_MSG_UNAUTHORIZED };
		struct request_result res = json_object_get_string_len(tok) > AUTH_TOKEN_MAX ? too_long
		    : request_caller_token(cfg, store, json_object_get_string(tok), user, sizeof(user));

		if (res.status != 0) {
			if (sio_encode_connect_error(&b, "/", res.message))
				(void)session_send(s, b.data, b.len);
			goto done;
		}
	}
	(void)snprintf(s->user_id, sizeof(s->user_id), "%s", user);
	if (!sio_encode_connect(&b, "/", s->sio_sid) || !session_send(s, b.data, b.len))
		goto done;
	s->connected = true;
	events_timestamp(ts);
	buf_reset(&b);
	if (events_connected(&b, s->sio_sid, ts))
		(void)session_emit(s, "connected", b.data, b.len);
done:
	buf_free(&b);
}

static const struct {
	const char *name;
	void (*handler)(struct session *s, const struct sio_packet *pk);
} events[] = {
	{ "join-room",   on_join_room },
	{ "leave-room",  on_leave_room },
	{ "stream-chat", on_stream_chat },
	{ "ai:chat",     on_ai_chat },
};

void
chat_on_message(struct session *s, const char *p, size_t n)
{
	struct sio_packet pk;
	const char *err, *name;

	if (s->closed)
		return;
	if (!sio_packet_decode(p, n, &pk, &err)) {
		log_info("session %s: bad Socket.IO packet (%s): closing", s->sid, err);
		session_close(s, "parse error");
		return;
	}
	switch (pk.type) {
	case SIO_CONNECT:
		on_connect(s, &pk);
		break;
	case SIO_DISCONNECT:
		if (sio_packet_default_nsp(&pk)) {
			room_leave_all(s);
			s->connected = false;
		}
		break;
	case SIO_EVENT:
		if (!s->connected || !sio_packet_default_nsp(&pk) || (name = sio_event_name(&pk)) == NULL)
			break;
		for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
			if (strcmp(events[i].name, name) == 0) {
				events[i].handler(s, &pk);
				break;
			}
		break;
	default:
		/* ACKs of server events (none asked), binary events (no
		 * attachments are accepted), CONNECT_ERROR: nothing to do. */
		break;
	}
	sio_packet_free(&pk);
}

/* ---- generations queued by chatd ------------------------------------------- */

static void
job_run(void *ctx, const char *room, const char *user_id, const char *messages_json)
{
	json_object *arr, *messages;
	const char *err;
	char problem[160];
	struct request_result res;

	(void)ctx;
	/* chatd claimed the room for user_id before queueing the job; the
	 * claim is checked again, in case the owner went meanwhile. */
	if ((res = request_room_claim(store, room, user_id)).status != 0) {
		log_warn("queued generation for room %s refused (%s): dropped", room, res.message);
		return;
	}
	if ((arr = json_in_parse(messages_json, strlen(messages_json), &err)) == NULL ||
	    (messages = messages_clean(arr, problem, sizeof(problem))) == NULL) {
		log_warn("queued generation for room %s has bad messages: dropped", room);
		json_object_put(arr);
		return;
	}
	log_info("running the queued generation for room %s (%zu local member(s))", room,
	    room_size(room));
	stream_start_001(NULL, room, user_id, NULL, messages, "gw_rest_stream");
	json_object_put(messages);
	json_object_put(arr);
}

void
chat_claim_jobs(void)
{
	int n;

	if (draining)
		return;   /* another gateway takes them */
	do
		n = rooms_pg_claim_jobs(JOBS_PER_CLAIM, job_run, NULL);
	while (n == JOBS_PER_CLAIM && !draining);
}

bool
chat_status(struct buf *b)
{
	return buf_appendc(b, '{') && json_put_key(b, "id") && json_put_stringz(b, gateway_id) &&
	    buf_printf(b, ",\"sessions\":%zu,\"rooms\":%zu,\"streams\":%zu,\"remote_streams\":%zu,"
	        "\"live_generations\":%d,\"database\":%s,\"draining\":%s}",
	        session_count(), room_count(), stream_count(), relay_remote_count(), live_count(),
	        rooms_pg_ready() ? "true" : "false", draining ? "true" : "false");
}
