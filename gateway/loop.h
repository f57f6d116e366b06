/* loop.h: the parts of the gateway's libwebsockets event loop that are not
 * HTTP or WebSocket: foreign file descriptors and timers.
 *
 * libcurl's sockets (through the upstream_multi hooks) and the PostgreSQL
 * LISTEN connection join the loop here. A watched descriptor is adopted as
 * a libwebsockets "raw file" on a dup(), because libwebsockets closes what
 * it adopts while the descriptor stays its owner's (libcurl, libpq).
 * Everything runs on the loop's thread. */
#ifndef GATEWAY_LOOP_H
#define GATEWAY_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct lws_context;
struct lws_vhost;
struct lws_protocols;

/* The protocol entry for adopted descriptors; the vhost's protocol list
 * must include a copy of it (its name is LOOP_PROTOCOL_NAME). */
#define LOOP_PROTOCOL_NAME "chat-fd"
const struct lws_protocols *loop_protocol(void);

/* Binds the module to the context and vhost (after they exist). */
void loop_setup(struct lws_context *ctx, struct lws_vhost *vh);

/* Monotonic milliseconds. */
int64_t loop_now_ms(void);

struct loop_fd;

/* Called when fd is ready. readable and writable both true means the
 * watch broke (the descriptor hung up): the owner should read it to learn
 * the error. */
typedef void (*loop_fd_cb)(void *ctx, int fd, bool readable, bool writable);

/* Starts watching fd for reading. Returns NULL on failure (logged). The
 * caller keeps owning fd; remove the watch before closing it. */
struct loop_fd *loop_fd_add(int fd, loop_fd_cb cb, void *ctx);

/* Sets the interest: readable (level) and writable (re-armed while set). */
void loop_fd_want(struct loop_fd *w, bool readable, bool writable);

/* Stops watching; the callback is never called again. Safe inside the
 * watch's own callback. */
void loop_fd_remove(struct loop_fd *w);

struct loop_timer;

/* A one-shot timer calling fire(ctx). NULL on allocation failure. */
struct loop_timer *loop_timer_new(void (*fire)(void *ctx), void *ctx);

/* (Re)arms it to fire in ms milliseconds (0: at the next loop turn). */
void loop_timer_set(struct loop_timer *t, long ms);

void loop_timer_cancel(struct loop_timer *t);

/* True while armed. */
bool loop_timer_armed(const struct loop_timer *t);

/* Cancels and frees. NULL-safe. */
void loop_timer_free(struct loop_timer *t);

#endif
