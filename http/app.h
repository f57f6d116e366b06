/* app.h: handling one request: routing, authentication, the handler, the
 * error rendering and the access log line. Transport-independent. */
#ifndef CHAT_APP_H
#define CHAT_APP_H

#include "http.h"

/* Prepares the route table's metrics labels; call once per process. */
void app_init(void);

/* Handles r: routing, authentication, rate limit, the handler. The response
 * is complete when it returns, unless the handler detached r to the front
 * end's loop (r->detached): then the HTTP layer calls app_finish on the
 * loop's request once that response ends. */
void app_handle(struct request *r);

/* Counts and logs a finished request (the access log line). */
void app_finish(const struct request *r);

#endif
