/* ratelimit.h: fixed-window request limits, shared by all workers and hosts.
 *
 * Counters live in PostgreSQL (an UNLOGGED table, one atomic upsert per
 * limited request), so every worker of every host sees the same count with
 * no extra daemon. Routes belong to a class; each class has a limit per
 * user and per anonymous client address over ratelimit_window seconds. */
#ifndef CHAT_RATELIMIT_H
#define CHAT_RATELIMIT_H

#include <stddef.h>

struct request;

enum ratelimit_class {
	RATELIMIT_NONE = 0,   /* never limited (health, metrics, static reads) */
	RATELIMIT_CHAT,       /* generations: the costly routes (seed 003's limits) */
	RATELIMIT_AUTH,       /* login and register: brute-force protection per address */
	RATELIMIT_API,        /* other authenticated routes */
};

/* Counts r against its class. Returns 0 to go on (RateLimit-* headers added)
 * or 429 after rendering the error with Retry-After; 503 if the counter is
 * unreachable (rendered too). */
int ratelimit_check(struct request *r, enum ratelimit_class cls);

/* The client's address: REMOTE_ADDR, or when that is a trusted proxy the
 * last address in X-Forwarded-For that is not one. Exposed for tests. */
void ratelimit_client_ip(const char *remote, const char *forwarded_for, const char *trusted,
    char *out, size_t len);

#endif
