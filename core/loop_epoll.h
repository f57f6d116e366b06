/* loop_epoll.h: the core's event loop (loop.h) on Linux epoll, for the
 * FastCGI workers: one loop per process, run by one thread.
 *
 * Besides the descriptors and timers of loop.h, other threads hand work to
 * the loop with loop_epoll_post (an eventfd wakes it). Timers live in a
 * binary heap, so thousands of them (one per stream) cost O(log n) each. */
#ifndef CHAT_LOOP_EPOLL_H
#define CHAT_LOOP_EPOLL_H

#include <stdbool.h>

#include "loop.h"

/* Creates the process's loop. False on failure (logged). Call once, before
 * any other loop function, from the thread that will run it. */
bool loop_epoll_init(void);

/* Runs callbacks until loop_epoll_stop. Returns false if epoll failed. */
bool loop_epoll_run(void);

/* Makes the running loop_epoll_run return after the current turn (a later
 * run starts afresh). Thread-safe. */
void loop_epoll_stop(void);

/* Runs fn(arg) on the loop's thread, in the order posted. Thread-safe. The
 * caller keeps arg valid until fn ran. False when out of memory (fn never
 * runs then). */
bool loop_epoll_post(void (*fn)(void *arg), void *arg);

/* Frees the loop. Watches and timers still registered are their owners' to
 * free; posted work that never ran is dropped. NULL-safe, idempotent. */
void loop_epoll_free(void);

#endif
