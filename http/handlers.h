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

/* Reads the optional Idempotency-Key header into *key (NULL if absent).
 * Returns 0, or the status after rendering a 400 for a key that is empty,
 * longer than 255 bytes or not visible ASCII. */
int handler_idempotency_key(struct request *r, const char **key);

/* Renders a store failure as request_store_error maps it (404 with
 * not_found_msg, 409, 400, 503, 500). */
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

/* api_streams.c (seeds 002 and 003) */
int api_seed002_stream(struct request *r);
int api_seed003_stream(struct request *r);

/* api_completions.c (seed 004's /api/chat, seed 001, OpenAI-compatible) */
int api_chat004(struct request *r);
int api_openai_chat_completion(struct request *r);
int api_v1_chat_completions(struct request *r);

/* Validates a client's messages array into [{role, content}] with text
 * content; NULL after rendering the 400 (*status set). */
json_object *handler_messages(struct request *r, json_object *arr, const char *field, int *status);

/* The body's required "messages": validated by handler_messages and not
 * empty. A new array (the caller puts it), or NULL after rendering the
 * 400 (*status set). */
json_object *handler_body_messages(struct request *r, json_object *body, int *status);

/* api_settings.c (seed 004) */
int api_settings_get(struct request *r);
int api_settings_put(struct request *r);

/* The settings in force: server defaults overlaid with the user's
 * overrides (JSON text or NULL). A new object, or NULL. */
struct config;
json_object *settings_effective(const struct config *cfg, const char *overrides_json);

/* api_voice.c (seeds 004 and 001) */
int api_realtime_session(struct request *r);
int api_livekit_token(struct request *r);

/* api_gateway.c (seed 001: generations handed to the Socket.IO gateways) */
int api_gateway_stream_start(struct request *r);

/* api_models.c (OpenAI-compatible) */
int api_v1_models_list(struct request *r);
int api_v1_models_get(struct request *r);

/* api_config.c: the server's capabilities for the web UI */
int api_config_get(struct request *r);

/* api_health.c */
int api_healthz(struct request *r);
int api_readyz(struct request *r);
int api_metrics(struct request *r);
int api_status(struct request *r);

#endif
