/* ratelimit.h: fixed-window request limits, shared by all workers and hosts.
 *
 * Counters live in PostgreSQL (an UNLOGGED table, one atomic upsert per
 * limited request), so every worker of every host sees the same count with
 * no extra daemon. Routes belong to a class; each class has a limit per
 * user and per anonymous client address over ratelimit_window seconds. */
#ifndef CHAT_RATELIMIT_H
#define CHAT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct config;

enum ratelimit_class {
	RATELIMIT_NONE = 0,   /* never limited (health, metrics, static reads) */
	RATELIMIT_CHAT,       /* generations: the costly routes (seed 003's limits) */
	RATELIMIT_AUTH,       /* login and register: brute-force protection per address */
	RATELIMIT_API,        /* other authenticated routes */
};

/* What counting one request found; the front end renders it (HTTP: the
 * RateLimit-* headers and 429; Socket.IO: the seed's error event). */
struct ratelimit_verdict {
	int  limit;       /* requests per window; 0: the class is unlimited */
	int  window_s;
	int  hits;        /* in the current window, this one included */
	int  remaining;
	int  reset_s;     /* seconds until the window ends */
	bool by_user;     /* counted per user (else per client address) */
	bool limited;     /* over the limit: refuse, retry after reset_s */
};

/* Counts one request of class cls by user_id (NULL or "": anonymous,
 * counted per client_ip) and fills *v. Returns STORE_OK, or the store's
 * error when the counter is unreachable (*v then says nothing). */
enum store_rc ratelimit_hit(const struct config *cfg, struct store *store,
    enum ratelimit_class cls, const char *user_id, const char *client_ip,
    struct ratelimit_verdict *v);

/* The arithmetic of a verdict from the counter: v->limit set, hits counted
 * in a window that ends in reset_s seconds. Exposed for tests. */
void ratelimit_verdict_fill(struct ratelimit_verdict *v, int hits, int reset_s);

/* The client's address: REMOTE_ADDR, or when that is a trusted proxy the
 * last address in X-Forwarded-For that is not one. Exposed for tests. */
void ratelimit_client_ip(const char *remote, const char *forwarded_for, const char *trusted,
    char *out, size_t len);

#endif
