/* api_streams.c: the streamed routes of seeds 002 and 003. Both resolve the
 * session the client names (or open a new one), then hand the turn to the
 * engine with their dialect. The rules are the request layer's (request.h),
 * shared with the gateway's ai:chat. */
#include <stdlib.h>
#include <string.h>

#include "dialect.h"
#include "engine.h"
#include "handlers.h"
#include "request.h"
#include "turn_stream.h"

static int
stream_run(struct request *r, const struct dialect *dialect, const char *ref_field)
{
	const char *user = r->authed ? r->user_id : NULL;
	json_object *body = NULL, *metadata;
	const char *err = NULL, *key;
	char *session_id = NULL;
	struct request_message in;
	struct request_result res;
	struct chat_turn turn;
	int status;

	if ((status = handler_idempotency_key(r, &key)) != 0)
		goto done;
	if ((body = handler_body_object(r, &status)) == NULL)
		goto done;
	switch (request_message_read(body, ref_field, &in)) {
	case REQUEST_INPUT_OK:
		break;
	case REQUEST_INPUT_MESSAGE:
	case REQUEST_INPUT_EMPTY:
		status = handler_bad_field(r, "message", in.problem);
		goto done;
	case REQUEST_INPUT_REF:
		status = handler_bad_field(r, ref_field, in.problem);
		goto done;
	}
	/* Seed 002's metadata is accepted when it is an object, and ignored. */
	if (json_object_object_get_ex(body, "metadata", &metadata) && metadata != NULL &&
	    !json_object_is_type(metadata, json_type_object)) {
		status = handler_bad_field(r, "metadata", "must be an object");
		goto done;
	}
	res = request_session_resolve(r->store, user, r->client_ip, in.ref, in.message, &session_id);
	if (res.status != 0) {
		status = http_error(r, res.status, res.message);
		goto done;
	}
	request_turn_session(&turn, r->route_name, user, session_id, in.message, key);
	/* The client keeps using the name it gave, or learns the new id. */
	const char *known_as = in.ref != NULL ? in.ref : session_id;
	status = turn_stream_run(r, &turn, dialect, known_as, strlen(known_as) + 1, &err);
	if (status != 200)
		status = http_error(r, status, err);
done:
	free(session_id);
	json_object_put(body);
	return status;
}

int
api_seed002_stream(struct request *r)
{
	return stream_run(r, &dialect_seed002, "conversation_id");
}

int
api_seed003_stream(struct request *r)
{
	return stream_run(r, &dialect_seed003, "sessionId");
}
