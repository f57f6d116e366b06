/* loop.h: the event loop of a process: watched file descriptors and timers.
 *
 * The core's streaming code (the upstream transfers on a curl multi, the
 * PostgreSQL LISTEN connection) is written against this interface only.
 * Each front end links one implementation: the gateway's runs on the
 * libwebsockets loop (gateway/loop_lws.c). The watched descriptor stays
 * its owner's (libcurl, libpq); the loop never closes it. Everything runs
 * on the loop's thread. */
#ifndef CHAT_LOOP_H
#define CHAT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

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
