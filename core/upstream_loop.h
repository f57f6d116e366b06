/* upstream_loop.h: the process's upstream_multi driven by its event loop.
 *
 * Binds libcurl's sockets and timer (the upstream_multi hooks) to loop.h
 * watches and timers, and ticks the transfers (deadlines, heartbeats,
 * cancel checks, retries) every UPSTREAM_LOOP_TICK_MS. One per process;
 * the gateway and the FastCGI workers both use it. Loop thread only. */
#ifndef CHAT_UPSTREAM_LOOP_H
#define CHAT_UPSTREAM_LOOP_H

#include <stdbool.h>

struct config;
struct upstream_multi;

#define UPSTREAM_LOOP_TICK_MS 250

/* Creates the driver on the loop (cfg is borrowed until upstream_loop_stop).
 * Returns it, or NULL after logging why. */
struct upstream_multi *upstream_loop_start(const struct config *cfg);

/* The driver while started, else NULL. */
struct upstream_multi *upstream_loop_multi(void);

/* Aborts every transfer (their done callbacks run) and frees the driver
 * and its watches. NULL-safe to call when never started. */
void upstream_loop_stop(void);

#endif
