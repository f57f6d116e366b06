/* request.c: the request layer of request.h. */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "authcache.h"
#include "chat_limits.h"
#include "config.h"
#include "conversation.h"
#include "engine.h"
#include "json_in.h"
#include "log.h"

#define MSG_NO_SESSION "Session not found"

static const struct request_result go_on = { 0, NULL };

static struct request_result
result(int status, const char *message)
{
	return (struct request_result){ status, message };
}

static const char *
user_or_null(const char *user_id)
{
	return user_id != NULL && user_id[0] != '\0' ? user_id : NULL;
}

struct request_result
request_caller_token(const struct config *cfg, struct store *store, const char *token,
    char *user_id, size_t len)
{
	enum store_rc rc;

	if (!auth_token_verify(cfg, token, user_id, len))
		return result(401, REQUEST_MSG_UNAUTHORIZED);
	/* A deleted user's tokens die at once: known users are cached only
	 * while deletions are heard (authcache.h), else one indexed lookup. */
	if (authcache_known(user_id))
		return go_on;
	if ((rc = store_user_exists(store, user_id)) != STORE_OK)
		return rc == STORE_NOT_FOUND ? result(401, REQUEST_MSG_UNAUTHORIZED)
		                             : result(503, REQUEST_MSG_UNAVAILABLE);
	authcache_add(user_id);
	return go_on;
}

void
request_client_ip(const struct config *cfg, const char *remote, const char *forwarded_for,
    char *out, size_t len)
{
	ratelimit_client_ip(remote, forwarded_for, cfg->trusted_proxies, out, len);
}

struct request_result
request_ratelimit(const struct config *cfg, struct store *store, enum ratelimit_class cls,
    const char *user_id, const char *client_ip, struct ratelimit_verdict *v)
{
	if (ratelimit_hit(cfg, store, cls, user_or_null(user_id), client_ip, v) != STORE_OK)
		return result(503, REQUEST_MSG_UNAVAILABLE);
	return v->limited ? result(429, REQUEST_MSG_LIMITED) : go_on;
}

struct request_result
request_stream_slot_ask(const struct config *cfg, const char *user_id, const char *client_ip,
    struct request_slot_holder *h)
{
	const char *user = user_or_null(user_id);
	int n;

	/* A slot older than the longest stream belongs to a stream that died
	 * without giving it back (its host, say): it no longer counts. */
	h->ask = (struct store_slot_ask){ NULL, user != NULL ? cfg->streams_per_user
	    : cfg->streams_per_anon, cfg->stream_max_duration + 60 };
	if (h->ask.cap <= 0)
		return go_on;
	n = user != NULL ? snprintf(h->name, sizeof(h->name), "u:%s", user)
	                 : snprintf(h->name, sizeof(h->name), "ip:%s", client_ip != NULL ? client_ip : "");
	if (n < 0 || (size_t)n >= sizeof(h->name))
		return result(500, "Internal server error");  /* ids and addresses are far shorter */
	h->ask.holder = h->name;
	return go_on;
}

struct request_result
request_stream_slot_refused(const struct config *cfg, const char *user_id)
{
	const char *user = user_or_null(user_id);

	log_info("stream cap: %s has %d open", user != NULL ? "user" : "address",
	    user != NULL ? cfg->streams_per_user : cfg->streams_per_anon);
	return result(429, REQUEST_MSG_TOO_MANY_STREAMS);
}

struct request_result
request_stream_slot_take(const struct config *cfg, struct store *store, const char *user_id,
    const char *client_ip, const char *worker_id, long long *slot)
{
	struct request_slot_holder h;
	struct request_result res;
	enum store_rc rc;

	*slot = 0;
	res = request_stream_slot_ask(cfg, user_id, client_ip, &h);
	if (res.status != 0 || h.ask.holder == NULL)
		return res;
	rc = store_stream_slot_take(store, h.ask.holder, worker_id, h.ask.cap, h.ask.max_age_s, slot);
	if (rc == STORE_CONFLICT)
		return request_stream_slot_refused(cfg, user_id);
	return request_store_error(rc, "Not found");
}

struct request_result
request_turn_slot(const struct config *cfg, struct store *store, const char *user_id,
    const char *client_ip, const char *worker_id, struct chat_turn *turn,
    struct request_slot_holder *h)
{
	struct request_result res;

	if (turn->session_id == NULL)
		return request_stream_slot_take(cfg, store, user_id, client_ip, worker_id, &turn->slot);
	if ((res = request_stream_slot_ask(cfg, user_id, client_ip, h)).status == 0)
		turn->slot_ask = h->ask.holder != NULL ? &h->ask : NULL;
	return res;
}

void
request_stream_slot_release(struct store *store, long long slot)
{
	enum store_rc rc;

	if (slot > 0 && (rc = store_stream_slot_release(store, slot)) != STORE_OK)
		log_warn("stream slot %lld not released (%d): it lapses by age", slot, (int)rc);
}

struct request_result
request_store_error(enum store_rc rc, const char *not_found_msg)
{
	switch (rc) {
	case STORE_OK:          return go_on;
	case STORE_NOT_FOUND:   return result(404, not_found_msg);
	case STORE_CONFLICT:    return result(409, "Conflict");
	case STORE_INVALID:     return result(400, "Invalid value");
	case STORE_UNAVAILABLE: return result(503, REQUEST_MSG_UNAVAILABLE);
	case STORE_LIMITED:     return result(429, REQUEST_MSG_TOO_MANY_STREAMS);
	case STORE_ERROR:       break;
	}
	return result(500, "Internal server error");
}

enum request_input
request_message_read(json_object *body, const char *ref_field, struct request_message *out)
{
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	if (!json_in_string(body, "message", JSON_REQUIRED, LIMIT_CONTENT_BYTES, &out->message,
	    &len, &out->problem))
		return REQUEST_INPUT_MESSAGE;
	if (len == 0) {
		out->problem = "must not be empty";
		return REQUEST_INPUT_EMPTY;
	}
	if (!json_in_string(body, ref_field, JSON_OPTIONAL, LIMIT_SESSION_REF_BYTES, &out->ref, &len,
	    &out->problem))
		return REQUEST_INPUT_REF;
	if (out->ref != NULL && len == 0)
		out->ref = NULL;   /* "" asks for a new session, like no reference */
	return REQUEST_INPUT_OK;
}

struct request_result
request_session_resolve(struct store *store, const char *user_id, const char *client_ip,
    const char *ref, const char *message, char **session_id)
{
	char title[REQUEST_TITLE_MAX];
	enum store_rc rc;

	conversation_title(message, title, sizeof(title));
	rc = store_session_resolve(store, user_or_null(user_id), ref, title, client_ip, session_id);
	if (rc == STORE_OK)
		return go_on;
	free(*session_id);
	*session_id = NULL;
	/* Creating finds no row only when the owner is gone meanwhile. */
	if (rc == STORE_NOT_FOUND && ref == NULL)
		return result(401, REQUEST_MSG_UNAUTHORIZED);
	return request_store_error(rc, MSG_NO_SESSION);
}

void
request_turn_session(struct chat_turn *turn, const char *route, const char *user_id,
    const char *session_id, const char *content, const char *idempotency_key)
{
	*turn = (struct chat_turn){
		.route = route,
		.user_id = user_or_null(user_id),
		.session_id = session_id,
		.content = content,
		.idempotency_key = idempotency_key,
		.temperature = -1,   /* unused: has_temperature is false */
		/* The reply is stored: it goes on when the client leaves. */
		.stop_when_client_leaves = false,
	};
}

struct request_result
request_room_enter(struct store *store, const char *room, const char *user_id, char *owner,
    size_t len)
{
	const char *user = user_or_null(user_id);
	char *who = NULL;
	enum store_rc rc;
	bool mine;

	if (len > 0)
		owner[0] = '\0';
	rc = store_room_owner(store, room, &who);
	if (rc == STORE_NOT_FOUND)
		return go_on;   /* nobody's: open to anyone */
	if (rc != STORE_OK)
		return request_store_error(rc, "Not found");
	mine = user != NULL && strcmp(who, user) == 0;
	if (mine && len > 0)
		(void)snprintf(owner, len, "%s", who);
	free(who);
	return mine ? go_on : result(403, REQUEST_MSG_ROOM_TAKEN);
}

struct request_result
request_room_claim(struct store *store, const char *room, const char *user_id)
{
	const char *user = user_or_null(user_id);
	char *who = NULL;
	enum store_rc rc;
	bool mine;

	if (user == NULL)
		return request_room_enter(store, room, NULL, NULL, 0);
	rc = store_room_claim(store, room, user, &who);
	if (rc == STORE_NOT_FOUND)
		return result(401, REQUEST_MSG_UNAUTHORIZED);   /* the user is gone */
	if (rc != STORE_OK)
		return request_store_error(rc, "Not found");
	mine = strcmp(who, user) == 0;
	free(who);
	if (!mine)
		log_info("room claim refused: %s belongs to another user", room);
	return mine ? go_on : result(403, REQUEST_MSG_ROOM_TAKEN);
}
