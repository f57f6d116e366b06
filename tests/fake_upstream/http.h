/* http.h: HTTP/1.x requests (parsing, bounded) and responses (the one error renderer). */
#ifndef FAKE_UPSTREAM_HTTP_H
#define FAKE_UPSTREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "buf.h"

#define HEAD_MAX	(64u * 1024u)		/* request line + headers */
#define BODY_MAX	(4u * 1024u * 1024u)	/* decoded request body */

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct request {
	char		 method[16];
	char		*target;	/* path and query */
	size_t		 path_len;	/* bytes of target before '?' */
	char		*auth;		/* Authorization, or NULL */
	char		*origin;	/* Origin, or NULL */
	char		*ctype;		/* Content-Type, or NULL */
	bool		 http10;
	bool		 keep_alive;
	bool		 expect_continue;
	bool		 head_done;
	enum body_mode	 body_mode;
	size_t		 body_left;	/* length: bytes to come; chunked: of this chunk */
	enum chunk_state ch;
	struct buf	 body;
};

struct conn;

/* Frees what r owns and zeroes it for the next request. */
void	http_request_reset(struct request *r);

/* Returns the length of the head (through the blank line) buffered in c->in,
 * or 0 when it is not complete; remembers where to resume the search. */
size_t	http_find_head_end(struct conn *c);

/* Parses the head in d[0, n) into r (r owns copies). Returns 0 or an HTTP
 * status to fail with. */
int	http_parse_head(struct request *r, const char *d, size_t n);

/* Moves body bytes from c->in to the request body.
 * Returns 0 when complete, 1 when more input is needed, else a status. */
int	http_read_body(struct conn *c);

/* Logs "METHOD PATH STATUS" to stderr unless --quiet. */
void	http_log_request(const struct conn *c, const char *status);
void	http_log_status(const struct conn *c, int status);

/* Queues a complete response (or holds it back when c->defer_ms is set).
 * extra: preformatted header lines ("Name: value\r\n"), may be NULL; body is
 * copied. Returns false if c must be destroyed. */
bool	http_respond(struct conn *c, int status, const char *ctype,
    const char *extra, const char *body, size_t len);

/* Serializes obj (and releases it, always) as the response body. */
bool	http_respond_json(struct conn *c, int status, json_object *obj,
    const char *extra);

/* The one place that renders OpenAI-style errors. param/code/extra may be
 * NULL. */
bool	http_error(struct conn *c, int status, const char *message,
    const char *type, const char *param, const char *code, const char *extra);

/* Protocol errors: answer and close. */
bool	http_fail(struct conn *c, int status, const char *message);

#endif
