/* http_respond.c: HTTP responses: status line, CORS, JSON bodies, errors,
 * and the request log. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "http.h"
#include "json.h"
#include "timer.h"

void
http_log_request(const struct conn *c, const char *status)
{
	char path[201];
	size_t i, n;

	if (srv.quiet)
		return;
	n = c->req.target ? strlen(c->req.target) : 0;
	if (n > sizeof(path) - 1)
		n = sizeof(path) - 1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)c->req.target[i];
		path[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	path[n] = '\0';
	fprintf(stderr, "%s %s %s\n", c->req.method[0] ? c->req.method : "-",
	    n ? path : "-", status);
}

void
http_log_status(const struct conn *c, int status)
{
	char s[16];

	if (snprintf(s, sizeof(s), "%d", status) >= (int)sizeof(s))
		return;
	http_log_request(c, s);
}

static const char *
http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/* The Origin to echo in CORS headers: only plain printable values. */
static const char *
cors_origin(const struct conn *c)
{
	const char *o = c->req.origin;
	size_t i;

	if (o == NULL || *o == '\0' || strlen(o) > 256)
		return "*";
	for (i = 0; o[i]; i++)
		if ((unsigned char)o[i] <= 0x20 || (unsigned char)o[i] >= 0x7f)
			return "*";
	return o;
}

static bool
http_append_cors(struct conn *c, struct buf *b)
{
	const char *o = cors_origin(c);

	if (!c->cors)
		return true;
	if (!buf_appendf(b, "Access-Control-Allow-Origin: %s\r\n", o))
		return false;
	if (strcmp(o, "*") != 0 && !BUF_LIT(b, "Vary: Origin\r\n"))
		return false;
	return true;
}

bool
http_respond(struct conn *c, int status, const char *ctype, const char *extra,
    const char *body, size_t len)
{
	bool defer = c->defer_ms > 0;
	struct buf *b = defer ? &c->deferred : &c->out;
	bool ok;

	http_log_status(c, status);
	ok = buf_appendf(b, "HTTP/1.1 %d %s\r\nServer: fake-upstream\r\n",
	    status, http_reason(status));
	if (ok && status != 204)
		ok = buf_appendf(b, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		    ctype, len);
	if (ok)
		ok = buf_appendf(b, "Connection: %s\r\n",
		    c->keep_alive ? "keep-alive" : "close");
	if (ok)
		ok = http_append_cors(c, b);
	if (ok && extra)
		ok = buf_appendz(b, extra);
	if (ok)
		ok = BUF_LIT(b, "\r\n") && buf_append(b, body, len);
	if (!ok)
		return false;
	if (defer) {
		c->state = CS_WAIT;
		ok = timer_arm(c, srv.now + (uint64_t)c->defer_ms);
		c->defer_ms = 0;
		return ok;
	}
	return conn_response_done(c);
}

bool
http_respond_json(struct conn *c, int status, json_object *obj, const char *extra)
{
	const char *s;
	size_t len = 0;
	bool ok;

	if (obj == NULL)
		return false;
	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	ok = s != NULL && http_respond(c, status, "application/json", extra, s, len);
	json_object_put(obj);
	return ok;
}

bool
http_error(struct conn *c, int status, const char *message, const char *type,
    const char *param, const char *code, const char *extra)
{
	json_object *root, *err = NULL;
	bool ok;

	if ((root = json_object_new_object()) == NULL)
		return false;
	/* Containers are attached first: root owns everything on failure. */
	ok = json_add(root, "error", err = json_object_new_object()) &&
	    json_add(err, "message", json_object_new_string(message)) &&
	    json_add(err, "type", json_object_new_string(type)) &&
	    (param ? json_add(err, "param", json_object_new_string(param)) :
	    json_add_null(err, "param")) &&
	    (code ? json_add(err, "code", json_object_new_string(code)) :
	    json_add_null(err, "code"));
	if (!ok) {
		json_object_put(root);
		return false;
	}
	return http_respond_json(c, status, root, extra);
}

bool
http_fail(struct conn *c, int status, const char *message)
{
	c->keep_alive = false;
	c->defer_ms = 0;
	return http_error(c, status, message, "invalid_request_error", NULL,
	    NULL, NULL);
}
