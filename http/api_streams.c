/* api_streams.c: the streamed routes of seeds 002 and 003. Both resolve the
 * session the client names (or open a new one), then hand the turn to the
 * engine with their dialect. */
#include <stdlib.h>
#include <string.h>

#include "chat_limits.h"
#include "config.h"
#include "conversation.h"
#include "dialect.h"
#include "engine.h"
#include "handlers.h"
#include "json_in.h"
#include "ratelimit.h"
#include "sink_sse.h"
#include "store.h"


/* Reads the body's message and session reference fields. */
static int
stream_body(struct request *r, const char *ref_field, json_object **body, const char **message,
    const char **ref)
{
	const char *err;
	size_t len;
	int status;

	if ((*body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(*body, "message", JSON_REQUIRED, LIMIT_CONTENT_BYTES, message, &len, &err))
		return handler_bad_field(r, "message", err);
	if (len == 0)
		return handler_bad_field(r, "message", "must not be empty");
	if (!json_in_string(*body, ref_field, JSON_OPTIONAL, LIMIT_SESSION_REF_BYTES, ref, &len, &err))
		return handler_bad_field(r, ref_field, err);
	if (*ref != NULL && len == 0)
		*ref = NULL;
	return 0;
}

static int
stream_run(struct request *r, const struct dialect *dialect, const char *ref_field)
{
	struct chat_env env = { r->cfg, r->store, r->upstream, r->worker_id };
	json_object *body = NULL, *metadata;
	const char *message, *ref = NULL, *err = NULL, *key;
	char title[256], client[64], *session_id = NULL;
	struct sink_sse sse;
	struct chat_sink sink;
	enum store_rc rc;
	int status;

	if ((status = handler_idempotency_key(r, &key)) != 0)
		goto done;
	if ((status = stream_body(r, ref_field, &body, &message, &ref)) != 0)
		goto done;
	/* Seed 002's metadata is accepted when it is an object, and ignored. */
	if (json_object_object_get_ex(body, "metadata", &metadata) && metadata != NULL &&
	    !json_object_is_type(metadata, json_type_object)) {
		status = handler_bad_field(r, "metadata", "must be an object");
		goto done;
	}
	conversation_title(message, title, sizeof(title));
	ratelimit_client_ip(r->remote_addr, http_param(r, "HTTP_X_FORWARDED_FOR"),
	    r->cfg->trusted_proxies, client, sizeof(client));
	rc = store_session_resolve(r->store, r->authed ? r->user_id : NULL, ref, title, client,
	    &session_id);
	if (rc != STORE_OK) {
		status = rc == STORE_NOT_FOUND && ref == NULL ? http_error(r, 401, "Unauthorized")
		    : handler_store_error(r, rc, "Session not found");
		goto done;
	}
	struct chat_turn turn = {
		.route = r->route_name,
		.user_id = r->authed ? r->user_id : NULL,
		.session_id = session_id,
		.content = message,
		.idempotency_key = key,
	};
	/* The client keeps using the name it gave, or learns the new id. */
	sink_sse_init(&sse, &sink, r, dialect, ref != NULL ? ref : session_id);
	status = chat_turn_run(&env, &turn, &sink, &err);
	if (status != 200)
		status = http_error(r, status, err);
	sink_sse_free(&sse);
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
