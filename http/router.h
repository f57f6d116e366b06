/* router.h: matching a method and path against a table of routes.
 *
 * Patterns are literal paths in which a segment `{id}` matches one path
 * segment of 1..63 characters from [A-Za-z0-9_-], and `{model}` one of
 * 1..63 visible ASCII characters but '/' (model names: gpt-4.1, org:name).
 * The captured segment is copied into the caller's buffer. */
#ifndef CHAT_ROUTER_H
#define CHAT_ROUTER_H

#include <stddef.h>

struct request;

enum route_auth {
	ROUTE_PUBLIC = 0,      /* no token looked at */
	ROUTE_AUTH_OPTIONAL,   /* a valid token identifies the user; none is anonymous */
	ROUTE_AUTH_REQUIRED,   /* 401 without a valid token */
};

typedef int (*route_handler)(struct request *r);

struct route {
	const char      *method;
	const char      *pattern;
	route_handler    handler;
	enum route_auth  auth;
	int              limit_class;  /* enum ratelimit_class */
	const char      *name;         /* short label for logs and metrics */
};

enum route_match { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD };

/* Finds the route for method and path. On ROUTE_FOUND *out points into table
 * and id holds the `{id}` segment ("" if the pattern has none). When the path
 * matches only under other methods, returns ROUTE_BAD_METHOD and writes the
 * allowed methods, comma-separated, into allow. */
enum route_match router_match(const struct route *table, size_t n, const char *method,
    const char *path, const struct route **out, char *id, size_t idlen,
    char *allow, size_t allowlen);

/* True if path matches pattern; fills id (may be NULL). Exposed for tests. */
int router_path_matches(const char *pattern, const char *path, char *id, size_t idlen);

#endif
