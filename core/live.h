/* live.h: the generations running in this process, and cancel across hosts.
 *
 * The engine registers each generation while it runs. A cancel request on any
 * worker of any host marks the reply in PostgreSQL and sends NOTIFY
 * chat_cancel; every process listens (live_listener_start) and cancels the
 * generation if it runs here: the flag is set and the upstream client woken
 * so the transfer is closed within one tick. */
#ifndef CHAT_LIVE_H
#define CHAT_LIVE_H

#include <stdatomic.h>
#include <stdbool.h>

struct config;
struct upstream;

struct live_gen {
	char             reply_id[40];
	atomic_bool      cancel;
	atomic_bool      followed;   /* a client resumed it: store it more often */
	struct upstream *upstream;   /* woken on cancel; borrowed */
	struct live_gen *next;
};

/* Adds g (owned by the caller, alive until live_unregister). */
void live_register(struct live_gen *g, const char *reply_id, struct upstream *up);
void live_unregister(struct live_gen *g);

/* Cancels the generation of reply_id if it runs in this process. */
bool live_cancel(const char *reply_id);

/* Marks the generation of reply_id as followed, if it runs here. */
bool live_follow(const char *reply_id);

/* Number of generations running in this process. */
int live_count(void);

/* Starts the thread that LISTENs for cancels. Returns false on failure. */
bool live_listener_start(const struct config *cfg);

/* Stops and joins it. */
void live_listener_stop(void);

/* Set before live_listener_start by a process whose resumed streams
 * follow replies on an event loop: called on the listener's thread with
 * the id of a reply that has more stored (NOTIFY chat_reply). */
extern void (*live_reply_stored_hook)(const char *reply_id);

#endif
