/* http.c: response rendering over the front end's transport. */
#include "http.h"
#include "clock.h"
#include "json_out.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define HTTP_MAX_HEADERS 8192

void
http_request_init(struct request *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->headers, HTTP_MAX_HEADERS);
	r->query = "";
	r->route_index = -1;
	r->t_start_us = clock_now_us();
}

void
http_request_free(struct request *r)
{
	buf_free(&r->headers);
}

void
http_request_move(struct request *dst, struct request *src)
{
	*dst = *src;
	/* The header buffer is dst's now; src keeps an empty one of its own. */
	buf_init(&src->headers, HTTP_MAX_HEADERS);
	dst->method = dst->path = dst->remote_addr = dst->authorization = NULL;
	dst->content_type = dst->body = NULL;
	dst->body_len = 0;
	dst->query = "";
	memset(&dst->io, 0, sizeof(dst->io));
}

const char *
http_param(struct request *r, const char *cgi_name)
{
	return r->io.param != NULL ? r->io.param(r->io.ctx, cgi_name) : NULL;
}

bool
http_header(struct request *r, const char *name, const char *value)
{
	if (r->headers_sent || strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return false;
	return buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

const char *
http_status_message(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not found";
	case 405: return "Method not allowed";
	case 409: return "Conflict";
	case 413: return "Request body too large";
	case 415: return "Content-Type must be application/json";
	case 429: return "Too many requests";
	case 500: return "Internal server error";
	case 502: return "Upstream error";
	case 503: return "Service unavailable";
	case 504: return "Upstream timeout";
	default:  return "Error";
	}
}

static bool
http_write(struct request *r, const char *p, size_t n)
{
	if (r->client_gone)
		return false;
	if (!r->io.write(r->io.ctx, p, n)) {
		r->client_gone = true;
		return false;
	}
	r->bytes_out += n;
	return true;
}

/* Sends the CGI status line and headers. */
static bool
http_send_headers(struct request *r, int status, const char *content_type)
{
	char head[256];
	int n;

	r->status = status;
	r->headers_sent = true;
	n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\n",
	    status, http_status_message(status), content_type);
	if (n < 0 || (size_t)n >= sizeof(head))
		return false;
	if (!http_write(r, head, (size_t)n))
		return false;
	if (r->headers.len > 0 && !http_write(r, r->headers.data, r->headers.len))
		return false;
	return http_write(r, "\r\n", 2);
}

int
http_reply_raw(struct request *r, int status, const char *content_type, const char *body, size_t n)
{
	if (r->headers_sent)
		return r->status;
	if (http_send_headers(r, status, content_type) && n > 0)
		(void)http_write(r, body, n);
	if (!r->client_gone)
		(void)r->io.flush(r->io.ctx);
	return status;
}

int
http_reply_json(struct request *r, int status, json_object *obj)
{
	const char *s;
	size_t n;

	if (obj == NULL)
		return http_error(r, 500, "Out of memory");
	s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	status = http_reply_raw(r, status, "application/json", s, n);
	json_object_put(obj);
	return status;
}

int
http_reply_json_text(struct request *r, int status, char *json)
{
	size_t n = json_compact(json, strlen(json));

	return http_reply_raw(r, status, "application/json", json, n);
}

int
http_error(struct request *r, int status, const char *msg)
{
	struct buf b;

	buf_init(&b, 4096);
	if (!(buf_appendz(&b, "{\"error\":") && json_put_stringz(&b, msg) && buf_appendc(&b, '}')))
		status = http_reply_raw(r, status, "application/json", "{\"error\":\"Error\"}", 17);
	else
		status = http_reply_raw(r, status, "application/json", b.data, b.len);
	buf_free(&b);
	return status;
}

bool
http_stream_begin(struct request *r)
{
	r->is_stream = true;
	if (!http_header(r, "Cache-Control", "no-cache") ||
	    !http_header(r, "X-Accel-Buffering", "no"))
		return false;
	if (!http_send_headers(r, 200, "text/event-stream; charset=utf-8"))
		return false;
	return !r->client_gone && r->io.flush(r->io.ctx);
}

bool
http_stream_send(struct request *r, const char *p, size_t n)
{
	if (r->client_gone)
		return false;
	if (r->t_first_byte_us == 0)
		r->t_first_byte_us = clock_now_us();
	if (!http_write(r, p, n))
		return false;
	if (!r->io.flush(r->io.ctx)) {
		r->client_gone = true;
		return false;
	}
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
http_query_has(const char *query, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = query; p != NULL && *p != '\0';) {
		if (strncmp(p, name, n) == 0 && (p[n] == '=' || p[n] == '&' || p[n] == '\0'))
			return true;
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	return false;
}

bool
http_query_get(const char *query, const char *name, char *out, size_t outlen)
{
	size_t namelen = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t seglen = end ? (size_t)(end - p) : strlen(p);

		if (seglen > namelen && strncmp(p, name, namelen) == 0 && p[namelen] == '=') {
			const char *v = p + namelen + 1, *vend = p + seglen;
			size_t o = 0;

			while (v < vend) {
				int c = (unsigned char)*v, h, l;
				if (c == '+') {
					c = ' ';
					v++;
				} else if (c == '%' && vend - v >= 3 && (h = hexval(v[1])) >= 0 &&
				    (l = hexval(v[2])) >= 0) {
					c = h * 16 + l;
					v += 3;
				} else
					v++;
				if (c == 0 || o + 1 >= outlen)
					return false;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}
