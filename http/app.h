/* app.h: handling one request: routing, authentication, the handler, the
 * error rendering and the access log line. Transport-independent. */
#ifndef CHAT_APP_H
#define CHAT_APP_H

#include "http.h"

/* Prepares the route table's metrics labels; call once per process. */
void app_init(void);

/* Handles r completely (the response is sent when it returns). */
void app_handle(struct request *r);

#endif
