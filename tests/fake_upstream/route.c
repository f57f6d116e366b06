/* route.c: the route table: method, authentication and handler per path. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "conn.h"
#include "http.h"
#include "models.h"
#include "realtime.h"
#include "route.h"
#include "sdp.h"
#include "stats.h"

static bool
auth_key_ok(const struct conn *c)
{
	const char *a = c->req.auth;

	if (srv.api_key == NULL)
		return true;
	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	return strcmp(a + 7, srv.api_key) == 0;
}

enum auth_kind { AUTH_NONE, AUTH_KEY, AUTH_EPHEMERAL };

static const struct route {
	const char	*path;
	const char	*method;
	enum auth_kind	 auth;
	bool		(*handler)(struct conn *);
} routes[] = {
	{ "/v1/chat/completions",	"POST", AUTH_KEY,	chat_handle },
	{ "/v1/models",			"GET",	AUTH_KEY,	models_handle },
	{ "/v1/realtime/client_secrets", "POST", AUTH_KEY,	realtime_handle_client_secrets },
	{ "/v1/realtime/sessions",	"POST", AUTH_KEY,	realtime_handle_sessions },
	{ "/v1/realtime/calls",		"POST", AUTH_EPHEMERAL,	sdp_handle_calls },
	{ "/v1/realtime",		"POST", AUTH_EPHEMERAL,	sdp_handle_beta },
	{ "/_fake/stats",		"GET",	AUTH_NONE,	stats_handle },
	{ "/_fake/reset",		"POST", AUTH_NONE,	stats_handle_reset },
};

static bool
path_is(const struct request *r, const char *z)
{
	return strlen(z) == r->path_len && memcmp(r->target, z, r->path_len) == 0;
}

static bool
path_has_prefix(const struct request *r, const char *z)
{
	size_t n = strlen(z);

	return r->path_len >= n && memcmp(r->target, z, n) == 0;
}

bool
route_request(struct conn *c)
{
	struct request *r = &c->req;
	const struct route *rt = NULL;
	char msg[160], allow[48];
	size_t i;

	c->keep_alive = r->keep_alive;
	/* No HEAD support: the error body we send would desync keep-alive. */
	if (strcmp(r->method, "HEAD") == 0)
		c->keep_alive = false;
	c->defer_ms = 0;
	c->cors = path_has_prefix(r, "/v1/realtime");

	if (strcmp(r->method, "OPTIONS") == 0) {
		c->cors = true;
		return http_respond(c, 204, NULL,
		    "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
		    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
		    "Access-Control-Max-Age: 600\r\n", NULL, 0);
	}
	if (!path_has_prefix(r, "/_fake/"))
		stats.requests++;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (path_is(r, routes[i].path))
			rt = &routes[i];
	if (rt == &routes[0] && strcmp(r->method, "POST") == 0)
		stats.chat_requests++;

	if (rt && strcmp(r->method, rt->method) != 0) {
		if (snprintf(allow, sizeof(allow), "Allow: %s, OPTIONS\r\n",
		    rt->method) >= (int)sizeof(allow))
			return false;
		if (snprintf(msg, sizeof(msg), "Invalid method for %s: use %s.",
		    rt->path, rt->method) >= (int)sizeof(msg))
			return false;
		return http_error(c, 405, msg, "invalid_request_error", NULL,
		    "method_not_allowed", allow);
	}
	if (path_has_prefix(r, "/v1/") && (rt == NULL || rt->auth == AUTH_KEY) &&
	    !auth_key_ok(c))
		return http_error(c, 401, "Incorrect API key provided",
		    "invalid_request_error", NULL, "invalid_api_key", NULL);
	if (rt == NULL) {
		if (snprintf(msg, sizeof(msg), "Unknown request URL: %s %.*s.",
		    r->method, (int)(r->path_len > 100 ? 100 : r->path_len),
		    r->target) < 0)
			return false;
		return http_error(c, 404, msg, "invalid_request_error", NULL,
		    "unknown_url", NULL);
	}
	if (rt->auth == AUTH_EPHEMERAL && !realtime_auth_ok(c))
		return http_error(c, 401, "Invalid or expired ephemeral key "
		    "(expected Bearer ek_... minted by this server)",
		    "invalid_request_error", NULL, "invalid_api_key", NULL);
	return rt->handler(c);
}
