/* app.c: the route table and the request pipeline. */
#include "app.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "cors.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "request.h"
#include "router.h"
#include "store.h"

#define C_NONE RATELIMIT_NONE
#define C_CHAT RATELIMIT_CHAT
#define C_AUTH RATELIMIT_AUTH
#define C_API  RATELIMIT_API
#define SESSIONS "/api/chat/realtime/sessions"

static const struct route routes[] = {
	{ "GET",    "/healthz", api_healthz, ROUTE_PUBLIC, C_NONE, "healthz" },
	{ "GET",    "/readyz",  api_readyz,  ROUTE_PUBLIC, C_NONE, "readyz" },
	{ "GET",    "/metrics", api_metrics, ROUTE_PUBLIC, C_NONE, "metrics" },
	{ "GET",    "/status",  api_status,  ROUTE_PUBLIC, C_NONE, "status" },

	{ "POST",   "/api/auth/register", api_auth_register, ROUTE_PUBLIC, C_AUTH, "auth_register" },
	{ "POST",   "/api/auth/login",    api_auth_login,    ROUTE_PUBLIC, C_AUTH, "auth_login" },
	{ "POST",   "/auth/login",        api_auth_login,    ROUTE_PUBLIC, C_AUTH, "auth_login" },
	{ "GET",    "/api/auth/me",       api_auth_me,       ROUTE_AUTH_REQUIRED, C_API, "auth_me" },

	{ "POST",   SESSIONS,                  api_sessions_create, ROUTE_AUTH_REQUIRED, C_API, "sessions_create" },
	{ "GET",    SESSIONS,                  api_sessions_list,   ROUTE_AUTH_REQUIRED, C_API, "sessions_list" },
	{ "GET",    SESSIONS "/{id}",          api_sessions_get,    ROUTE_AUTH_REQUIRED, C_API, "sessions_get" },
	{ "PATCH",  SESSIONS "/{id}",          api_sessions_rename, ROUTE_AUTH_REQUIRED, C_API, "sessions_rename" },
	{ "DELETE", SESSIONS "/{id}",          api_sessions_delete, ROUTE_AUTH_REQUIRED, C_API, "sessions_delete" },
	{ "POST",   SESSIONS "/{id}/stream",   api_sessions_stream, ROUTE_AUTH_REQUIRED, C_CHAT, "sessions_stream" },
	{ "GET",    SESSIONS "/{id}/stream",   api_sessions_resume, ROUTE_AUTH_REQUIRED, C_API, "sessions_resume" },
	{ "POST",   SESSIONS "/{id}/cancel",   api_sessions_cancel, ROUTE_AUTH_REQUIRED, C_API, "sessions_cancel" },

	{ "POST",   "/stream/chat",            api_seed002_stream, ROUTE_AUTH_REQUIRED, C_CHAT, "seed002_stream" },
	{ "POST",   "/api/v2/ai/chat/stream",  api_seed003_stream, ROUTE_AUTH_OPTIONAL, C_CHAT, "seed003_stream" },
	{ "POST",   "/api/chat",               api_chat004,        ROUTE_AUTH_OPTIONAL, C_CHAT, "seed004_chat" },
	{ "GET",    "/api/settings",           api_settings_get,   ROUTE_AUTH_REQUIRED, C_API, "settings_get" },
	{ "PUT",    "/api/settings",           api_settings_put,   ROUTE_AUTH_REQUIRED, C_API, "settings_put" },
	{ "POST",   "/api/session",            api_realtime_session, ROUTE_AUTH_REQUIRED, C_CHAT, "realtime_session" },
	{ "POST",   "/openai/chatCompletion",  api_openai_chat_completion, ROUTE_AUTH_REQUIRED, C_CHAT, "seed001_completion" },
	{ "POST",   "/openai/chatCompletion/stream/start", api_gateway_stream_start, ROUTE_AUTH_REQUIRED, C_CHAT, "seed001_stream_start" },
	{ "POST",   "/api/livekit/token",      api_livekit_token,  ROUTE_AUTH_REQUIRED, C_API, "livekit_token" },
	{ "POST",   "/v1/chat/completions",    api_v1_chat_completions, ROUTE_AUTH_REQUIRED, C_CHAT, "v1_chat_completions" },
	{ "GET",    "/v1/models",              api_v1_models_list, ROUTE_AUTH_REQUIRED, C_API, "v1_models" },
	{ "GET",    "/v1/models/{model}",      api_v1_models_get,  ROUTE_AUTH_REQUIRED, C_API, "v1_model" },
	{ "GET",    "/api/config",             api_config_get,     ROUTE_AUTH_REQUIRED, C_API, "config" },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Authenticates r from its bearer token: 0 to go on (anonymous when the
 * route allows it), else what to answer (request_caller_token's 401 or
 * 503). */
static struct request_result
app_authenticate(struct request *r, enum route_auth need)
{
	static const struct request_result go_on = { 0, NULL },
	    unauthorized = { 401, REQUEST_MSG_UNAUTHORIZED };
	const char *token = auth_bearer(r->authorization);
	bool no_header = r->authorization == NULL || r->authorization[0] == '\0';
	char query_token[AUTH_TOKEN_MAX + 1];
	struct request_result res;

	if (need == ROUTE_PUBLIC)
		return go_on;
	/* EventSource cannot send headers: a GET may carry its token as
	 * ?access_token= (nginx logs no query strings). */
	if (token == NULL && no_header && strcmp(r->method, "GET") == 0 &&
	    http_query_get(r->query, "access_token", query_token, sizeof(query_token)))
		token = query_token;
	if (token == NULL)
		return need == ROUTE_AUTH_OPTIONAL && no_header ? go_on : unauthorized;
	if ((res = request_caller_token(r->cfg, r->store, token, r->user_id, sizeof(r->user_id))).status != 0)
		return res;
	r->authed = true;
	return go_on;
}

static void
app_log(const struct request *r)
{
	int64_t now = clock_now_us();
	char ttfb[32] = "-";

	if (r->is_stream && r->t_first_byte_us > 0)
		(void)snprintf(ttfb, sizeof(ttfb), "%.1f", (double)(r->t_first_byte_us - r->t_start_us) / 1000.0);
	log_fields(LOG_INFO, "event=request method=%s route=%s status=%d user=%s duration_ms=%.1f ttfb_ms=%s bytes=%llu client_gone=%d",
	    r->method, r->route_name != NULL ? r->route_name : "-", r->status,
	    r->authed ? r->user_id : "-", (double)(now - r->t_start_us) / 1000.0, ttfb,
	    (unsigned long long)r->bytes_out, r->client_gone ? 1 : 0);
}

void
app_init(void)
{
	static const char *names[NROUTES];

	for (size_t i = 0; i < NROUTES; i++)
		names[i] = routes[i].name;
	metrics_set_routes(names, (int)NROUTES);
}

/* Answers a CORS preflight (OPTIONS with Access-Control-Request-Method). */
static int
cors_preflight(struct request *r, const char *origin, const char *allow)
{
	if (origin == NULL || !cors_origin_allowed(r->cfg, origin, NULL))
		return http_error(r, 403, "Origin not allowed");
	(void)http_header(r, "Access-Control-Allow-Origin", origin);
	(void)http_header(r, "Vary", "Origin");
	(void)http_header(r, "Access-Control-Allow-Methods", allow);
	(void)http_header(r, "Access-Control-Allow-Headers",
	    "Authorization, Content-Type, Idempotency-Key, Last-Event-ID");
	(void)http_header(r, "Access-Control-Max-Age", "600");
	return http_reply_raw(r, 204, "text/plain", NULL, 0);
}

/* Counts r against its class. Returns 0 to go on (RateLimit-* headers
 * added), or the status after rendering 429 (with Retry-After) or 503. */
static int
app_ratelimit(struct request *r, enum ratelimit_class cls)
{
	struct ratelimit_verdict v;
	struct request_result res;
	char value[32];

	res = request_ratelimit(r->cfg, r->store, cls, r->authed ? r->user_id : NULL, r->client_ip, &v);
	if (res.status == 503)
		return http_error(r, res.status, res.message);   /* v says nothing */
	if (v.limit <= 0)
		return 0;
	(void)snprintf(value, sizeof(value), "%d;w=%d", v.limit, v.window_s);
	(void)http_header(r, "RateLimit-Policy", value);
	(void)snprintf(value, sizeof(value), "%d", v.limit);
	(void)http_header(r, "RateLimit-Limit", value);
	(void)snprintf(value, sizeof(value), "%d", v.remaining);
	(void)http_header(r, "RateLimit-Remaining", value);
	(void)snprintf(value, sizeof(value), "%d", v.reset_s);
	(void)http_header(r, "RateLimit-Reset", value);
	if (res.status == 0)
		return 0;
	(void)http_header(r, "Retry-After", value);
	return http_error(r, res.status, res.message);
}

/* Before a route that generates, for a user: the daily token budget.
 * Returns 0 to go on, or the status after rendering 429 (Retry-After until
 * midnight UTC) or 503. */
static int
app_budget(struct request *r)
{
	struct request_result res;
	long retry_after = 0;
	char value[32];

	if (!r->authed)
		return 0;
	res = request_budget_check(r->cfg, r->store, r->user_id, &retry_after);
	if (res.status == 0)
		return 0;
	if (res.status == 429) {
		(void)snprintf(value, sizeof(value), "%ld", retry_after);
		(void)http_header(r, "Retry-After", value);
	}
	return http_error(r, res.status, res.message);
}

void
app_handle(struct request *r)
{
	const struct route *route = NULL;
	const char *origin = http_param(r, "HTTP_ORIGIN");
	struct request_result res;
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
		if (strcmp(r->method, "OPTIONS") == 0 &&
		    http_param(r, "HTTP_ACCESS_CONTROL_REQUEST_METHOD") != NULL) {
			r->route_name = "cors_preflight";
			status = cors_preflight(r, origin, allow);
			goto done;
		}
		(void)http_header(r, "Allow", allow);
		status = http_error(r, 405, "Method not allowed");
		goto done;
	case ROUTE_FOUND:
		break;
	}
	r->route_index = (int)(route - routes);
	r->route_name = route->name;
	request_client_ip(r->cfg, r->remote_addr, http_param(r, "HTTP_X_FORWARDED_FOR"),
	    r->client_ip, sizeof(r->client_ip));
	if (cors_origin_allowed(r->cfg, origin, NULL)) {
		(void)http_header(r, "Access-Control-Allow-Origin", origin);
		(void)http_header(r, "Vary", "Origin");
		(void)http_header(r, "Access-Control-Expose-Headers",
		    "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy");
	}
	if ((size_t)r->cfg->max_body_size < r->body_len) {
		status = http_error(r, 413, "Request body too large");
		goto done;
	}
	if ((res = app_authenticate(r, route->auth)).status != 0) {
		status = http_error(r, res.status, res.message);
		goto done;
	}
	if ((status = app_ratelimit(r, (enum ratelimit_class)route->limit_class)) != 0)
		goto done;
	if (route->limit_class == C_CHAT && (status = app_budget(r)) != 0)
		goto done;
	status = route->handler(r);
	if (r->detached)
		return;  /* the loop finishes it: app_finish */
	if (!r->headers_sent)
		status = http_error(r, status, http_status_message(status));
done:
	r->status = status;
	app_finish(r);
}

void
app_finish(const struct request *r)
{
	metrics_request(r->route_index, r->status);
	app_log(r);
}
