/* route.h: the route table: method, authentication and handler per path. */
#ifndef FAKE_UPSTREAM_ROUTE_H
#define FAKE_UPSTREAM_ROUTE_H

#include <stdbool.h>

struct conn;

/* Dispatches one complete request (OPTIONS, 405, 401, 404 or a handler).
 * Returns false if c must be destroyed. */
bool	route_request(struct conn *c);

#endif
