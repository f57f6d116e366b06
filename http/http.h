/* http.h: one request and its response, independent of the transport.
 *
 * A front end (FastCGI worker) fills a struct request with borrowed pointers
 * valid for the request's duration and an http_io to write the response.
 * Handlers return the HTTP status they answered with; if they return a status
 * without having sent anything, app_handle() renders the error JSON. */
#ifndef CHAT_HTTP_H
#define CHAT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "buf.h"
#include "chat_limits.h"
#include "request.h"

struct config;
struct store;
struct upstream;
struct workq;
struct request;

/* Transport callbacks, implemented by the front end. */
struct http_io {
	/* Writes n bytes (may buffer). Returns false once the client is gone. */
	bool (*write)(void *ctx, const char *p, size_t n);
	/* Pushes buffered bytes to the client. Returns false once it is gone. */
	bool (*flush)(void *ctx);
	/* Returns a CGI parameter (e.g. "HTTP_ORIGIN") or NULL; borrowed. */
	const char *(*param)(void *ctx, const char *name);
	/* Optional, NULL when the front end has no event loop. Asks the front
	 * end to carry on the response on its loop once the handler returned:
	 * it then gives loop_req (a request the HTTP layer made for the loop)
	 * an io of its own and calls start(job) on the loop's thread. Returns
	 * false when it cannot (the caller then streams on its own thread). */
	bool (*detach)(void *ctx, struct request *loop_req, void (*start)(void *job), void *job);
	/* Set by a loop front end: ends the response (after the last write)
	 * and lets go of the connection. ctx is not valid afterwards. */
	void (*finish)(void *ctx);
	/* Optional, loop front ends: true when more than its high-water mark
	 * waits for the client; resume(arg) then runs once on the loop when
	 * that drained below the low-water mark or the client left (never
	 * after finish). */
	bool (*throttle)(void *ctx, void (*resume)(void *arg), void *arg);
	void *ctx;
};

#define HTTP_ID_MAX 64
/* The {id} of a path: a UUID, or a model name (GET /v1/models/{model}). */
#define HTTP_PATH_ID_MAX (LIMIT_MODEL_BYTES + 1)

struct request {
	/* From the front end; borrowed until the request ends. */
	const char      *method;
	const char      *path;            /* without the query string */
	const char      *query;           /* "" when absent */
	const char      *authorization;
	const char      *content_type;
	const char      *remote_addr;
	const char      *body;
	size_t           body_len;
	struct http_io   io;

	/* Shared, read-only for the request. */
	const struct config *cfg;
	struct store    *store;
	struct upstream *upstream;         /* the calling thread's client */
	struct workq    *workq;            /* the loop's store writers; NULL without a loop */
	const char      *worker_id;        /* "host:pid" of this process */

	/* Filled by routing and authentication. */
	const char      *route_name;       /* static, for logs and metrics */
	char             path_id[HTTP_PATH_ID_MAX];  /* the {id} segment, if any */
	bool             authed;
	char             user_id[HTTP_ID_MAX];
	char             client_ip[LIMIT_CLIENT_IP_BYTES]; /* request_client_ip: rate limits, anonymous names */

	/* Response state. */
	int              status;
	bool             headers_sent;
	bool             client_gone;
	bool             is_stream;
	bool             detached;         /* the response goes on in the loop */
	int              route_index;      /* in the route table, -1 if none */
	struct buf       headers;          /* extra response header lines */
	uint64_t         bytes_out;
	int64_t          t_start_us;
	int64_t          t_first_byte_us;  /* first body byte of a stream, 0 if none */
};

/* Prepares r for a new request (zeroes the response state). */
void http_request_init(struct request *r);

/* Releases what the request allocated. */
void http_request_free(struct request *r);

/* Moves src's response state (status, headers so far, user, route, timing)
 * into dst, for a response that goes on elsewhere. dst borrows none of
 * src's request strings (method, path, remote_addr are NULL, the body is
 * gone, query is "") and has no io yet; the caller sets what it needs.
 * src stays valid, with no extra headers. Free both. */
void http_request_move(struct request *dst, struct request *src);

/* Returns the request header (CGI name, e.g. "HTTP_LAST_EVENT_ID") or NULL. */
const char *http_param(struct request *r, const char *cgi_name);

/* Adds a response header line (before anything is sent). Values containing
 * CR or LF are refused (header injection). */
bool http_header(struct request *r, const char *name, const char *value);

/* Sends a complete response. http_reply_json takes ownership of obj. All
 * return status, so handlers can `return http_reply_json(...)`. */
int http_reply_raw(struct request *r, int status, const char *content_type,
    const char *body, size_t n);
int http_reply_json(struct request *r, int status, json_object *obj);
/* Sends JSON text that PostgreSQL built, made compact first (in place). */
int http_reply_json_text(struct request *r, int status, char *json);

/* Sends {"error": msg} with status. */
int http_error(struct request *r, int status, const char *msg);

/* Default message for an error status ("Not found", ...). */
const char *http_status_message(int status);

/* Starts a text/event-stream response (200, no buffering, no caching). */
bool http_stream_begin(struct request *r);

/* Writes n bytes of the stream and flushes them. Returns false (and sets
 * client_gone) once the client has left; later calls are no-ops. */
bool http_stream_send(struct request *r, const char *p, size_t n);

/* True if the query names parameter name at all (whatever its value). */
bool http_query_has(const char *query, const char *name);

/* Reads the value of name from an application/x-www-form-urlencoded string
 * (a query), percent-decoded, into out. Returns false if absent or too long. */
bool http_query_get(const char *query, const char *name, char *out, size_t outlen);

#endif
