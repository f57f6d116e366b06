/* handlers.h: the route handlers, grouped by file (api_*.c), and the
 * helpers they share for reading request bodies. */
#ifndef CHAT_HANDLERS_H
#define CHAT_HANDLERS_H

#include <json-c/json.h>

#include "http.h"

/* Parses the request body as a JSON object. Returns it (caller puts it) or
 * NULL after rendering the 400/415 error; *status then holds the status. */
json_object *handler_body_object(struct request *r, int *status);

/* Renders a 400 naming the bad field: {"error":"<field> <problem>"}. */
int handler_bad_field(struct request *r, const char *field, const char *problem);

/* Renders a store failure (404 with not_found_msg, 409, 400, 503, 500). */
int handler_store_error(struct request *r, int store_rc, const char *not_found_msg);

/* api_auth.c */
int api_auth_register(struct request *r);
int api_auth_login(struct request *r);
int api_auth_me(struct request *r);

/* api_sessions.c (seed 000) */
int api_sessions_create(struct request *r);
int api_sessions_list(struct request *r);
int api_sessions_get(struct request *r);
int api_sessions_rename(struct request *r);
int api_sessions_delete(struct request *r);
int api_sessions_stream(struct request *r);
int api_sessions_resume(struct request *r);
int api_sessions_cancel(struct request *r);

/* api_health.c */
int api_healthz(struct request *r);
int api_readyz(struct request *r);

#endif
