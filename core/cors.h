/* cors.h: which browser origins may call the service, one rule for both
 * front ends (the HTTP routes' CORS headers and preflights, the gateway's
 * Engine.IO requests and WebSocket upgrades). */
#ifndef CHAT_CORS_H
#define CHAT_CORS_H

#include <stdbool.h>

struct config;

/* True if origin ("scheme://host[:port]", the Origin header) may call: it
 * is listed in cfg->cors_origins (a `*` entry counts only in dev_mode), or
 * host (the request's Host header; NULL or "" to skip this rule) names the
 * same host, so the page came from the service itself. All borrowed. */
bool cors_origin_allowed(const struct config *cfg, const char *origin, const char *host);

#endif
