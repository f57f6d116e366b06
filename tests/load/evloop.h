/* evloop.h: libcurl's multi-socket interface on epoll.
 *
 * Thousands of transfers cost one epoll_wait per wakeup and work only for
 * the sockets that are ready (curl_multi_poll would walk every socket each
 * time). The caller drives it: evloop_step waits once, lets libcurl act on
 * the ready sockets and on its timer, then reports each finished transfer
 * through on_done, after removing it from the multi handle (on_done may add
 * it, or another, again). */
#ifndef LOAD_EVLOOP_H
#define LOAD_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

/* A finished transfer: e is no longer in the multi handle. */
typedef void (*evloop_done_fn)(void *ctx, CURL *e, CURLcode rc);

struct evloop {
	CURLM           *multi;
	int              epfd;
	int64_t          timer_at;   /* µs when libcurl wants its timeout, -1 none */
	int              handles;    /* transfers added and not yet finished */
	evloop_done_fn   on_done;
	void            *ctx;
};

/* Creates the multi handle and the epoll set. max_conns bounds connections
 * kept open (0: libcurl's default). multiplex > 0 lets HTTP/2 streams share
 * connections, at most that many connections per host (transfers queue
 * for a place on one: without the bound libcurl opens a connection for
 * every stream that finds the first one full or not yet up). Returns false
 * (logged) on failure; evloop_free is safe either way. */
bool evloop_init(struct evloop *l, evloop_done_fn on_done, void *ctx, long multiplex,
    long max_conns);

/* Starts a transfer. Returns false (logged) when libcurl refuses it. */
bool evloop_add(struct evloop *l, CURL *e);

/* Aborts a running transfer without reporting it. */
void evloop_remove(struct evloop *l, CURL *e);

/* Waits until a socket is ready, libcurl's timer is due, or wait_us passed,
 * and handles what is due. Returns false on an epoll error. */
bool evloop_step(struct evloop *l, int64_t wait_us);

/* Frees the multi handle and the epoll set (not the easy handles, which
 * must have been removed). NULL-safe after a failed init. */
void evloop_free(struct evloop *l);

#endif
