/* app.c: the route table and the request pipeline. */
#include "app.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "handlers.h"
#include "log.h"
#include "router.h"
#include "store.h"

static const struct route routes[] = {
	{ "GET",    "/healthz", api_healthz, ROUTE_PUBLIC, "healthz" },
	{ "GET",    "/readyz",  api_readyz,  ROUTE_PUBLIC, "readyz" },

	{ "POST",   "/api/auth/register", api_auth_register, ROUTE_PUBLIC, "auth_register" },
	{ "POST",   "/api/auth/login",    api_auth_login,    ROUTE_PUBLIC, "auth_login" },
	{ "POST",   "/auth/login",        api_auth_login,    ROUTE_PUBLIC, "auth_login" },
	{ "GET",    "/api/auth/me",       api_auth_me,       ROUTE_AUTH_REQUIRED, "auth_me" },

	{ "POST",   "/api/chat/realtime/sessions",        api_sessions_create, ROUTE_AUTH_REQUIRED, "sessions_create" },
	{ "GET",    "/api/chat/realtime/sessions",        api_sessions_list,   ROUTE_AUTH_REQUIRED, "sessions_list" },
	{ "GET",    "/api/chat/realtime/sessions/{id}",   api_sessions_get,    ROUTE_AUTH_REQUIRED, "sessions_get" },
	{ "PATCH",  "/api/chat/realtime/sessions/{id}",   api_sessions_rename, ROUTE_AUTH_REQUIRED, "sessions_rename" },
	{ "DELETE", "/api/chat/realtime/sessions/{id}",   api_sessions_delete, ROUTE_AUTH_REQUIRED, "sessions_delete" },
	{ "POST",   "/api/chat/realtime/sessions/{id}/stream", api_sessions_stream, ROUTE_AUTH_REQUIRED, "sessions_stream" },
	{ "GET",    "/api/chat/realtime/sessions/{id}/stream", api_sessions_resume, ROUTE_AUTH_REQUIRED, "sessions_resume" },
	{ "POST",   "/api/chat/realtime/sessions/{id}/cancel", api_sessions_cancel, ROUTE_AUTH_REQUIRED, "sessions_cancel" },

	{ "POST",   "/stream/chat",            api_seed002_stream, ROUTE_AUTH_REQUIRED, "seed002_stream" },
	{ "POST",   "/api/v2/ai/chat/stream",  api_seed003_stream, ROUTE_AUTH_OPTIONAL, "seed003_stream" },
	{ "POST",   "/api/chat",               api_chat004,        ROUTE_AUTH_OPTIONAL, "seed004_chat" },
	{ "GET",    "/api/settings",           api_settings_get,   ROUTE_AUTH_REQUIRED, "settings_get" },
	{ "PUT",    "/api/settings",           api_settings_put,   ROUTE_AUTH_REQUIRED, "settings_put" },
	{ "POST",   "/api/session",            api_realtime_session, ROUTE_AUTH_REQUIRED, "realtime_session" },
	{ "POST",   "/openai/chatCompletion",  api_openai_chat_completion, ROUTE_AUTH_REQUIRED, "seed001_completion" },
	{ "POST",   "/api/livekit/token",      api_livekit_token,  ROUTE_AUTH_REQUIRED, "livekit_token" },
	{ "POST",   "/v1/chat/completions",    api_v1_chat_completions, ROUTE_AUTH_REQUIRED, "v1_chat_completions" },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Authenticates r from its bearer token: 0 if the request may go on, else
 * the status to answer (401 for a missing or bad token, or the token of a
 * user deleted since; 503 when that cannot be checked). */
static int
app_authenticate(struct request *r, enum route_auth need)
{
	const char *token = auth_bearer(r->authorization);
	enum store_rc rc;

	if (need == ROUTE_PUBLIC)
		return 0;
	if (token == NULL)
		return need == ROUTE_AUTH_OPTIONAL &&
		    (r->authorization == NULL || r->authorization[0] == '\0') ? 0 : 401;
	if (!auth_token_verify(r->cfg, token, r->user_id, sizeof(r->user_id)))
		return 401;
	/* One indexed lookup per request: a deleted user's tokens die at once. */
	if ((rc = store_user_exists(r->store, r->user_id)) != STORE_OK)
		return rc == STORE_NOT_FOUND ? 401 : 503;
	r->authed = true;
	return 0;
}

static void
app_log(const struct request *r)
{
	int64_t now = http_now_us();
	char ttfb[32] = "-";

	if (r->is_stream && r->t_first_byte_us > 0)
		(void)snprintf(ttfb, sizeof(ttfb), "%.1f", (double)(r->t_first_byte_us - r->t_start_us) / 1000.0);
	log_fields(LOG_INFO, "event=request method=%s route=%s status=%d user=%s duration_ms=%.1f ttfb_ms=%s bytes=%llu client_gone=%d",
	    r->method, r->route_name != NULL ? r->route_name : "-", r->status,
	    r->authed ? r->user_id : "-", (double)(now - r->t_start_us) / 1000.0, ttfb,
	    (unsigned long long)r->bytes_out, r->client_gone ? 1 : 0);
}

void
app_handle(struct request *r)
{
	const struct route *route = NULL;
	char allow[64];
	int status;

	switch (router_match(routes, NROUTES, r->method, r->path, &route, r->path_id,
	    sizeof(r->path_id), allow, sizeof(allow))) {
	case ROUTE_NOT_FOUND:
		r->route_name = "not_found";
		status = http_error(r, 404, "Not found");
		goto done;
	case ROUTE_BAD_METHOD:
		r->route_name = "bad_method";
		(void)http_header(r, "Allow", allow);
		status = http_error(r, 405, "Method not allowed");
		goto done;
	case ROUTE_FOUND:
		break;
	}
	r->route_name = route->name;
	if ((size_t)r->cfg->max_body_size < r->body_len) {
		status = http_error(r, 413, "Request body too large");
		goto done;
	}
	if ((status = app_authenticate(r, route->auth)) != 0) {
		status = http_error(r, status, status == 401 ? "Unauthorized" : "Database unavailable");
		goto done;
	}
	status = route->handler(r);
	if (!r->headers_sent)
		status = http_error(r, status, http_status_message(status));
done:
	r->status = status;
	app_log(r);
}
