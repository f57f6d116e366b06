/* api_sessions.c: seed 000's chat sessions and their stream (SPEC §3). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "chat_limits.h"
#include "config.h"
#include "dialect.h"
#include "engine.h"
#include "handlers.h"
#include "json_in.h"
#include "json_out.h"
#include "list_cursor.h"
#include "request.h"
#include "resume_stream.h"
#include "replay.h"
#include "log.h"
#include "process.h"
#include "store.h"
#include "sweep.h"
#include "turn_stream.h"

#define TITLE_MAX    200
#define LIST_DEFAULT 20
#define LIST_MAX     100
/* Past this offset, the list answers 400 and points to the cursor. */
#define LIST_OFFSET_MAX 1000
/* A session's messages per page (GET …/sessions/{id}?limit=). */
#define MESSAGES_DEFAULT 50
#define MESSAGES_MAX     200
#define SEARCH_MAX       200

static const char session_not_found[] = "Session not found";

static int
reply_owned_json(struct request *r, int status, char *json)
{
	status = http_reply_json_text(r, status, json);
	free(json);
	return status;
}

int
api_sessions_create(struct request *r)
{
	json_object *body = NULL;
	const char *title = NULL, *initial = NULL, *err;
	char *session = NULL;
	enum store_rc rc;
	int status;

	/* The body is optional: no body means an untitled session. */
	if (r->body_len > 0 && (body = handler_body_object(r, &status)) == NULL)
		return status;
	if (body != NULL) {
		if (!json_in_string(body, "title", JSON_OPTIONAL, TITLE_MAX, &title, NULL, &err)) {
			status = handler_bad_field(r, "title", err);
			goto done;
		}
		if (!json_in_string(body, "initial_message", JSON_OPTIONAL, LIMIT_CONTENT_BYTES, &initial, NULL, &err)) {
			status = handler_bad_field(r, "initial_message", err);
			goto done;
		}
		if (initial != NULL && initial[0] == '\0')
			initial = NULL;
	}
	rc = store_session_create(r->store, r->user_id, title, initial, &session);
	/* The user of a valid token was deleted: the token is worthless. */
	if (rc == STORE_NOT_FOUND)
		status = http_error(r, 401, "Unauthorized");
	else if (rc != STORE_OK)
		status = handler_store_error(r, rc, session_not_found);
	else
		status = reply_owned_json(r, 201, session);
done:
	json_object_put(body);
	return status;
}

/* Reads a non-negative integer query parameter; def if absent. */
static bool
query_int(struct request *r, const char *name, int def, int max, int *out)
{
	char v[16], *end;
	long l;

	if (!http_query_get(r->query, name, v, sizeof(v))) {
		/* Absent: the default. Present but unreadable (too long, NUL): bad. */
		*out = def;
		return !http_query_has(r->query, name);
	}
	l = strtol(v, &end, 10);
	if (end == v || *end != '\0' || l < 0 || l > max)
		return false;
	*out = (int)l;
	return true;
}

int
api_sessions_list(struct request *r)
{
	struct store_list_page pg = { 0 };
	char cursor[LIST_CURSOR_MAX], q[SEARCH_MAX + 1], after_id[37];
	char *list = NULL;
	enum store_rc rc;
	int status;

	if (!query_int(r, "limit", LIST_DEFAULT, LIST_MAX, &pg.limit) || pg.limit == 0)
		return handler_bad_field(r, "limit", "must be an integer from 1 to 100");
	if (!query_int(r, "offset", 0, INT_MAX, &pg.offset))
		return handler_bad_field(r, "offset", "must be a non-negative integer");
	/* Deep offsets cost a scan of every row skipped: past the cap, the
	 * cursor (next_cursor of the previous page) goes anywhere in O(limit). */
	if (pg.offset > LIST_OFFSET_MAX)
		return handler_bad_field(r, "offset",
		    "must be at most 1000; page further with cursor (the next_cursor of the previous page)");
	if (http_query_has(r->query, "cursor")) {
		if (!http_query_get(r->query, "cursor", cursor, sizeof(cursor)) ||
		    !list_cursor_parse(cursor, &pg.after_us, after_id))
			return handler_bad_field(r, "cursor", "is not a next_cursor of this server");
		if (pg.offset != 0)
			return handler_bad_field(r, "offset", "cannot be combined with cursor");
		pg.after_id = after_id;
	}
	if (http_query_has(r->query, "q")) {
		if (!http_query_get(r->query, "q", q, sizeof(q)))
			return handler_bad_field(r, "q", "must be at most 200 bytes");
		if (!utf8_valid(q, strlen(q)))
			return handler_bad_field(r, "q", "must be UTF-8");
		if (strspn(q, " \t\r\n") == strlen(q))
			return handler_bad_field(r, "q", "must hold a word");
		if (pg.offset != 0)
			return handler_bad_field(r, "offset", "cannot be combined with q (use cursor)");
		pg.q = q;
	}
	rc = store_session_list(r->store, r->user_id, &pg, &list);
	if (rc != STORE_OK)
		return handler_store_error(r, rc, session_not_found);
	/* Written compact by the store: no json_compact pass. */
	status = http_reply_raw(r, 200, "application/json", list, strlen(list));
	free(list);
	return status;
}

int
api_sessions_get(struct request *r)
{
	char before[40];
	const char *b = NULL;
	char *session = NULL;
	enum store_rc rc;
	int limit;

	if (!auth_is_uuid(r->path_id))
		return http_error(r, 404, session_not_found);
	if (!query_int(r, "limit", MESSAGES_DEFAULT, MESSAGES_MAX, &limit) || limit == 0)
		return handler_bad_field(r, "limit", "must be an integer from 1 to 200");
	if (http_query_has(r->query, "before")) {
		if (!http_query_get(r->query, "before", before, sizeof(before)) || !auth_is_uuid(before))
			return handler_bad_field(r, "before", "must be a message id");
		b = before;
	}
	rc = store_session_get(r->store, r->user_id, r->path_id, limit, b, &session);
	if (rc == STORE_INVALID)
		return handler_bad_field(r, "before", "is not a message of this session");
	if (rc != STORE_OK)
		return handler_store_error(r, rc, session_not_found);
	return reply_owned_json(r, 200, session);
}

int
api_sessions_rename(struct request *r)
{
	json_object *body;
	const char *title, *err;
	size_t len;
	char *session = NULL;
	enum store_rc rc;
	int status;

	if (!auth_is_uuid(r->path_id))
		return http_error(r, 404, session_not_found);
	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(body, "title", JSON_REQUIRED, TITLE_MAX, &title, &len, &err))
		status = handler_bad_field(r, "title", err);
	else if (len == 0)
		status = handler_bad_field(r, "title", "must not be empty");
	else if ((rc = store_session_rename(r->store, r->user_id, r->path_id, title, &session)) != STORE_OK)
		status = handler_store_error(r, rc, session_not_found);
	else
		status = reply_owned_json(r, 200, session);
	json_object_put(body);
	return status;
}

int
api_sessions_delete(struct request *r)
{
	enum store_rc rc;

	if (!auth_is_uuid(r->path_id))
		return http_error(r, 404, session_not_found);
	if ((rc = store_session_delete(r->store, r->user_id, r->path_id)) != STORE_OK)
		return handler_store_error(r, rc, session_not_found);
	return http_reply_raw(r, 204, "application/json", NULL, 0);
}

int
api_sessions_stream(struct request *r)
{
	json_object *body = NULL;
	const char *content = NULL, *err = NULL;
	size_t len = 0;
	const char *key;
	int status;

	if (!auth_is_uuid(r->path_id))
		return http_error(r, 404, session_not_found);
	if ((status = handler_idempotency_key(r, &key)) != 0)
		return status;
	/* No body, or no content: answer the session's initial message. */
	if (r->body_len > 0) {
		if ((body = handler_body_object(r, &status)) == NULL)
			return status;
		if (!json_in_string(body, "content", JSON_OPTIONAL, LIMIT_CONTENT_BYTES, &content, &len, &err)) {
			status = handler_bad_field(r, "content", err);
			goto done;
		}
		if (content != NULL && len == 0) {
			status = handler_bad_field(r, "content", "must not be empty");
			goto done;
		}
	}
	struct chat_turn turn;
	request_turn_session(&turn, r->route_name, r->user_id, r->path_id, content, key);
	static const struct dialect_seed000_opts post_framing = { .id_in_own_block = true };
	status = turn_stream_run(r, &turn, &dialect_seed000, &post_framing, sizeof(post_framing), &err);
	if (status != 200)
		status = http_error(r, status, err);
done:
	json_object_put(body);
	return status;
}

/* GET …/stream: resume after a disconnect. The position comes from the
 * Last-Event-ID header, or from ?lastEventId= for EventSource in browsers
 * (which cannot set headers on the first connection). */
int
api_sessions_resume(struct request *r)
{
	const char *last = http_param(r, "HTTP_LAST_EVENT_ID"), *err = NULL;
	char qbuf[128], reply_id[40];
	long long slot;
	long seq = -1;
	int status;

	if (!auth_is_uuid(r->path_id))
		return http_error(r, 404, session_not_found);
	if ((last == NULL || last[0] == '\0') &&
	    http_query_get(r->query, "lastEventId", qbuf, sizeof(qbuf)))
		last = qbuf;
	if (last != NULL && last[0] != '\0' &&
	    !chat_event_id_parse(last, reply_id, sizeof(reply_id), &seq))
		return handler_bad_field(r, "Last-Event-ID", "is not an event id of this server");
	if ((status = turn_stream_slot_take(r, &slot, &err)) != 200)
		return http_error(r, status, err);
	status = resume_stream_run(r, r->path_id, seq >= 0 ? reply_id : NULL, seq, slot, &err);
	if (status == 204)
		status = http_reply_raw(r, 204, "text/event-stream", NULL, 0);
	else if (status != 200)
		status = http_error(r, status, err);
	return status;
}

/* True if the session's reply in flight belongs to a process that is gone;
 * its replies are then marked interrupted (if the database takes it). */
static bool
api_sessions_owner_gone(struct request *r)
{
	struct store_owner o;
	char host[256];
	bool gone;
	long n;

	if (store_reply_owner(r->store, r->user_id, r->path_id, SWEEP_STALE_S, &o) != STORE_OK)
		return false;   /* none, or no database: store_cancel will say */
	process_host(host, sizeof(host));
	if ((gone = sweep_owner_dead(&o, host))) {
		const char *ids[] = { o.id };

		if (store_owners_interrupt(r->store, ids, 1, &n) == STORE_OK && n > 0)
			log_warn("cancel: %ld replies of %s, which is gone, marked interrupted", n, o.id);
	}
	free(o.id);
	return gone;
}

int
api_sessions_cancel(struct request *r)
{
	char *reply_id = NULL;
	enum store_rc rc;
	json_object *o;

	if (!auth_is_uuid(r->path_id))
		return http_error(r, 404, session_not_found);
	/* A reply whose owner is gone says 'streaming' but nothing runs it:
	 * end it for good instead of asking nobody to cancel it. */
	if (api_sessions_owner_gone(r))
		return http_error(r, 409, "No reply in progress");
	rc = store_cancel(r->store, r->user_id, r->path_id, &reply_id);
	if (rc == STORE_CONFLICT)
		return http_error(r, 409, "No reply in progress");
	if (rc != STORE_OK)
		return handler_store_error(r, rc, session_not_found);
	if ((o = json_object_new_object()) == NULL) {
		free(reply_id);
		return http_error(r, 500, "Out of memory");
	}
	json_object_object_add(o, "cancelled", json_object_new_boolean(1));
	json_object_object_add(o, "message_id", json_object_new_string(reply_id));
	free(reply_id);
	return http_reply_json(r, 200, o);
}
