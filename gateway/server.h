/* server.h: the Engine.IO transports on libwebsockets: HTTP long-polling
 * and WebSocket on one port, for socket.io-client 4.x with default options
 * (polling, then upgrade) and with transports: ['websocket'].
 *
 * One vhost; protocols[0] serves both plain HTTP (GET/POST
 * /socket.io/?EIO=4&transport=polling...) and the WebSocket upgrade
 * (/socket.io/?EIO=4&transport=websocket[&sid=...]), since the client
 * sends no subprotocol. Handshakes with an Origin header must be allowed
 * by cors_origins (like the HTTP routes: `*` only in dev_mode), or come
 * from the host they are sent to; others get 403 {"code":4}. Each packet
 * from a client goes to chat_on_message(). GET /gateway/status (not
 * proxied by nginx) reports the process's figures as JSON; GET
 * /gateway/metrics renders them as Prometheus text (gwmetrics.h; nginx
 * proxies it for loopback clients only). */
#ifndef GATEWAY_SERVER_H
#define GATEWAY_SERVER_H

#include <stdbool.h>

struct config;
struct lws_context;

struct server_settings {
	const struct config *cfg;           /* borrowed for the server's life */
	long                 ping_interval_ms;
	long                 ping_timeout_ms;
	long                 max_payload;   /* bytes of a POST body or a WebSocket message */
};

/* Parses cfg->gateway_listen ("host:port", "[v6]:port", ":port"), creates
 * the context listening there with this module's protocol and loop.h's,
 * sets up sessions (session.h) with the heartbeat settings. Returns NULL
 * on failure (logged). Destroy with lws_context_destroy(). */
struct lws_context *server_create(const struct server_settings *settings);

/* Parses "host:port" into host (empty: every interface) and port; false
 * when malformed. Exposed for tests. */
bool server_parse_listen(const char *listen, char *host, unsigned long hostlen, int *port);

#endif
