/* loop_lws.h: the core's event loop (loop.h) on the libwebsockets loop.
 *
 * A watched descriptor is adopted as a libwebsockets "raw file" on a dup(),
 * because libwebsockets closes what it adopts while the descriptor stays
 * its owner's (libcurl, libpq). Timers are libwebsockets sorted-usec lists. */
#ifndef GATEWAY_LOOP_LWS_H
#define GATEWAY_LOOP_LWS_H

#include "loop.h"

struct lws_context;
struct lws_vhost;
struct lws_protocols;

/* The protocol entry for adopted descriptors; the vhost's protocol list
 * must include a copy of it (its name is LOOP_PROTOCOL_NAME). */
#define LOOP_PROTOCOL_NAME "chat-fd"
const struct lws_protocols *loop_protocol(void);

/* Binds the module to the context and vhost (after they exist). */
void loop_setup(struct lws_context *ctx, struct lws_vhost *vh);

#endif
