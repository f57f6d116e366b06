/* api_gateway.c: seed 001's POST /openai/chatCompletion/stream/start
 * {sessionId, messages} → 202 {"sessionId","status":"started"}.
 *
 * chatd does not generate the reply itself: a FastCGI response ends when
 * its handler returns, and the reply must reach Socket.IO clients. The
 * generation is queued for the gateways (store_gateway_job_submit: a row
 * and NOTIFY gw_jobs); one gateway claims it and streams the reply to the
 * room sessionId, which spans every gateway process (gateway/relay.c).
 *
 * The room becomes the caller's (request_room_claim): a room another user
 * owns is refused with 403, so nobody streams into, or reads, someone
 * else's room. */
#include <stdlib.h>

#include "chat_limits.h"
#include "handlers.h"
#include "json_in.h"
#include "request.h"
#include "store.h"


int
api_gateway_stream_start(struct request *r)
{
	json_object *body, *messages = NULL, *resp;
	const char *room, *err;
	char *job_id = NULL;
	size_t len;
	struct request_result res;
	enum store_rc rc;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(body, "sessionId", JSON_REQUIRED, LIMIT_SESSION_REF_BYTES, &room, &len, &err)) {
		status = handler_bad_field(r, "sessionId", err);
		goto done;
	}
	if (len == 0) {
		status = handler_bad_field(r, "sessionId", "must not be empty");
		goto done;
	}
	if ((messages = handler_body_messages(r, body, &status)) == NULL)
		goto done;
	/* The route requires a token: the caller is a user, and the room is
	 * theirs from now on (or someone else's: refused). */
	res = request_room_claim(r->store, room, r->authed ? r->user_id : NULL);
	if (res.status != 0) {
		status = http_error(r, res.status, res.message);
		goto done;
	}
	rc = store_gateway_job_submit(r->store, r->authed ? r->user_id : NULL, room,
	    json_object_to_json_string_ext(messages, JSON_C_TO_STRING_PLAIN), &job_id);
	if (rc != STORE_OK) {
		status = handler_store_error(r, rc, "Not found");
		goto done;
	}
	if ((resp = json_object_new_object()) == NULL) {
		status = http_error(r, 500, "Out of memory");
		goto done;
	}
	json_object_object_add(resp, "sessionId", json_object_new_string_len(room, (int)len));
	json_object_object_add(resp, "status", json_object_new_string("started"));
	status = http_reply_json(r, 202, resp);
done:
	free(job_id);
	json_object_put(messages);
	json_object_put(body);
	return status;
}
