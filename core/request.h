/* request.h: the request layer both front ends call (the HTTP handlers and
 * the Socket.IO gateway), so that each rule exists once: who the caller is,
 * whether they may (rate limits), whether the input is valid, which session,
 * and the turn to start.
 *
 * Each step answers a typed result: 0 to go on, or a status (HTTP's
 * numbers: 401, 404, 429, 503...) with the client-visible message. The HTTP
 * front end renders both; the gateway sends the message in its seed's error
 * event, so the two say the same words. Nothing here knows a transport. */
#ifndef CHAT_REQUEST_H
#define CHAT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "chat_limits.h"
#include "ratelimit.h"
#include "store.h"

struct config;
struct chat_turn;

#define REQUEST_TITLE_MAX     256

/* The words both front ends send for the common refusals. */
#define REQUEST_MSG_UNAUTHORIZED "Unauthorized"
#define REQUEST_MSG_UNAVAILABLE  "Database unavailable"
#define REQUEST_MSG_LIMITED      "Too many requests, please try again later"

/* What a step decided. message is static storage (or the caller's
 * not_found message, or the caller's buffer for the spending checks),
 * NULL when status is 0. */
struct request_result {
	int         status;    /* 0: go on; else the HTTP status it amounts to */
	const char *message;   /* the client-visible words */
};

/* --- who the caller is --- */

/* Verifies a bearer token and that its user still exists: 0 with the user
 * in user_id (len bytes), 401 "Unauthorized" (bad token, or its user was
 * deleted since) or 503 "Database unavailable" (cannot tell). token and
 * the arguments are borrowed; user_id is written even on failure. */
struct request_result request_caller_token(const struct config *cfg, struct store *store,
    const char *token, char *user_id, size_t len);

/* An anonymous caller's address: remote (the peer), or when that is one of
 * cfg->trusted_proxies the address its X-Forwarded-For (may be NULL) vouches
 * for. Writes out (len bytes, LIMIT_CLIENT_IP_BYTES is enough). */
void request_client_ip(const struct config *cfg, const char *remote, const char *forwarded_for,
    char *out, size_t len);

/* --- may they --- */

/* Counts one request of class cls (user_id NULL or "": counted per
 * client_ip) and fills *v for the front end to render (HTTP's RateLimit-*
 * headers). 0, 429 "Too many requests, please try again later" or 503
 * "Database unavailable" (*v then says nothing). */
struct request_result request_ratelimit(const struct config *cfg, struct store *store,
    enum ratelimit_class cls, const char *user_id, const char *client_ip,
    struct ratelimit_verdict *v);

/* --- how many streams at once --- */

#define REQUEST_MSG_TOO_MANY_STREAMS "Too many streams open at once, please try again later"
#define REQUEST_STREAM_RETRY_S       5     /* Retry-After past the cap */

/* Takes one of the caller's concurrent-stream slots (cfg->streams_per_user
 * for a user, streams_per_anon per client_ip), counted on every host: 0
 * and *slot (0 when unlimited) to give back with request_stream_slot_release
 * once the stream ends; 429 "Too many streams open at once..." at the cap;
 * 503 without a database. */
struct request_result request_stream_slot_take(const struct config *cfg, struct store *store,
    const char *user_id, const char *client_ip, const char *worker_id, long long *slot);

/* The slot request_stream_slot_take would take, for a statement that takes
 * it with more (store_turn_begin): the holder's name lives here. */
struct request_slot_holder {
	struct store_slot_ask ask;   /* ask.holder: name, or NULL when uncapped */
	char                  name[LIMIT_CLIENT_IP_BYTES + 80];
};

/* Fills *h for the caller (user_id NULL or "": counted per client_ip):
 * 0, with h->ask.holder NULL when its streams are not capped (no slot to
 * take); 500 if the holder does not fit. h must not move while h->ask is
 * used. */
struct request_result request_stream_slot_ask(const struct config *cfg, const char *user_id,
    const char *client_ip, struct request_slot_holder *h);

/* The caller's stream slot for turn, as both front ends take it: a
 * session turn asks for it in the statement that stores its message
 * (turn->slot_ask, pointing into *h, which must outlive the turn's
 * prepare), a stateless one takes it now (turn->slot). The engine gives it
 * back with the end. 0 to go on, or the refusal (429 at the cap). */
struct request_result request_turn_slot(const struct config *cfg, struct store *store,
    const char *user_id, const char *client_ip, const char *worker_id, struct chat_turn *turn,
    struct request_slot_holder *h);

/* What a caller at its cap is told (and the log line it leaves): 429
 * "Too many streams open at once...". */
struct request_result request_stream_slot_refused(const struct config *cfg,
    const char *user_id);

/* Gives a slot back. 0 is no slot; a failure is logged (the slot lapses
 * after the longest stream). Blocking (one query). */
void request_stream_slot_release(struct store *store, long long slot);

/* --- what the store said --- */

/* The one mapping of a store failure to a status and message: 404 with
 * not_found_msg (borrowed: a static string), 409 "Conflict", 400 "Invalid
 * value", 503 "Database unavailable", 500 "Internal server error";
 * STORE_OK is 0. */
struct request_result request_store_error(enum store_rc rc, const char *not_found_msg);

/* --- valid input: a message to a session (seeds 002 and 003) --- */

enum request_input {
	REQUEST_INPUT_OK = 0,
	REQUEST_INPUT_MESSAGE,   /* "message" missing, not a string or too long */
	REQUEST_INPUT_EMPTY,     /* "message" is "" */
	REQUEST_INPUT_REF,       /* the session reference is not a string of <= 128 bytes */
};

/* A message turn's fields, borrowed from the body read. */
struct request_message {
	const char *message;     /* required, 1 to LIMIT_CONTENT_BYTES bytes */
	const char *ref;         /* NULL (or ""): a new session */
	const char *problem;     /* on failure: what is wrong with the field */
};

/* Reads body's "message" and its session reference ref_field ("sessionId",
 * "conversation_id") into *out. Each front end words the failure its own
 * way (HTTP: "<field> <problem>"). The strings borrow from body. */
enum request_input request_message_read(json_object *body, const char *ref_field,
    struct request_message *out);

/* --- which session --- */

/* The session a message goes to (store_session_resolve): ref NULL opens a
 * new one titled after message; a UUID must be the caller's; any other
 * string names the caller's session of that name (an anonymous caller's
 * names are scoped by client_ip). 0 and *session_id (the caller frees it);
 * 401 "Unauthorized" when no new session may be opened for this caller,
 * 404 "Session not found", or request_store_error's others. */
struct request_result request_session_resolve(struct store *store, const char *user_id,
    const char *client_ip, const char *ref, const char *message, char **session_id);

/* --- which room (seed 001's Socket.IO rooms) --- */

#define REQUEST_MSG_ROOM_TAKEN "This room belongs to another user"

/* May user_id (NULL or "": anonymous) join room? 0 when nobody owns it or
 * the caller does, 403 "This room belongs to another user", 503 without a
 * database. The owner, if any, is written to owner (len bytes; "" when
 * nobody owns the room or on failure). One query. */
struct request_result request_room_enter(struct store *store, const char *room,
    const char *user_id, char *owner, size_t len);

/* May user_id stream into room? An authenticated caller claims the room
 * when nobody owns it (store_room_claim: atomic, on every host) and goes
 * on when it is theirs; an anonymous caller (NULL or "") goes on only in a
 * room nobody owns. Otherwise 403 "This room belongs to another user";
 * 401 when the user no longer exists; 503 without a database. */
struct request_result request_room_claim(struct store *store, const char *room,
    const char *user_id);

/* --- the turn --- */

/* Fills *turn for a message to a stored session: its reply is stored and
 * goes on when the client leaves. Every argument is borrowed by the turn
 * and must outlive it; user_id NULL or "": anonymous; content NULL: answer
 * the last stored user message; idempotency_key may be NULL. */
void request_turn_session(struct chat_turn *turn, const char *route, const char *user_id,
    const char *session_id, const char *content, const char *idempotency_key);

/* --- what they may spend (request_spend.c; the arithmetic is spend.h) --- */

#define REQUEST_MSG_REGISTRATION_CLOSED "Registration is closed"
#define REQUEST_MSG_BUDGET_SPENT \
	"Daily token budget spent; it renews at midnight UTC"
/* Enough for any refusal of a model or max_tokens (the model list is at
 * most LIMIT_MODEL_LIST_BYTES). */
#define REQUEST_SPEND_MSG_BYTES (LIMIT_MODEL_LIST_BYTES + 128)

/* Which model a client asks for: a chat model (model in
 * /v1/chat/completions and /api/settings) or a voice one (realtime_model). */
enum request_model_kind {
	REQUEST_MODEL_CHAT,
	REQUEST_MODEL_REALTIME,
};

/* Checks a model a client asks for against cfg->allowed_models (and the
 * configured model or realtime_model of that kind): 0 (model NULL: none
 * asked, the server's applies), or 400 "<field> must be one of: a, b, c"
 * with field "model" or "realtime_model", written into msg (len bytes,
 * REQUEST_SPEND_MSG_BYTES is enough), which the result then points to. */
struct request_result request_model_check(const struct config *cfg, enum request_model_kind kind,
    const char *model, char *msg, size_t len);

/* Checks a client's max_tokens (field names it: "max_tokens",
 * "max_completion_tokens"; asked <= 0: not asked) against
 * cfg->max_tokens_ceiling: 0, or 400 "<field> must be at most N" written
 * into msg as request_model_check does. */
struct request_result request_max_tokens_check(const struct config *cfg, const char *field,
    long long asked, char *msg, size_t len);

/* Before a generation: whether user_id (NULL or "": anonymous, who has no
 * budget) still has tokens today under cfg->daily_token_budget, counted
 * from the usage recorded since midnight UTC. 0 (also when there is no
 * budget: no query then); 429 "Daily token budget spent..." with
 * *retry_after_s set to the seconds until midnight UTC; 503 "Database
 * unavailable". Blocking (one indexed query). */
struct request_result request_budget_check(const struct config *cfg, struct store *store,
    const char *user_id, long *retry_after_s);

#endif
