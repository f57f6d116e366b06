/* upstream_multi.h: the upstream client's event-loop driver (the Socket.IO gateway).
 *
 * One upstream_multi runs every transfer of an event loop. The loop calls
 * upstream_multi_socket when a watched fd is ready, upstream_multi_timeout
 * when the timer fires, and upstream_multi_tick every ~250 ms (deadlines,
 * on_tick, retries). Hooks tell the loop what to watch. Everything runs on
 * the loop's thread. Requests, callbacks, results and retries are those of
 * upstream_stream (upstream.h). */
#ifndef CHAT_UPSTREAM_MULTI_H
#define CHAT_UPSTREAM_MULTI_H

#include <stdbool.h>
#include <stddef.h>

#include "upstream.h"

struct config;

struct upstream_multi_hooks {
	void (*watch)(void *ctx, int fd, bool readable, bool writable);
	void (*unwatch)(void *ctx, int fd);
	void (*timer)(void *ctx, long timeout_ms);   /* -1: cancel */
	void *ctx;
};

struct upstream_multi;
struct upstream_job;

/* Creates the driver; hooks is copied, cfg borrowed for its lifetime. Call
 * after fork. Returns NULL on failure. */
struct upstream_multi *upstream_multi_new(const struct config *cfg,
    const struct upstream_multi_hooks *hooks);

/* Aborts every job (their done callbacks run) and frees m. NULL-safe. */
void upstream_multi_free(struct upstream_multi *m);

/* Starts a streamed transfer like upstream_stream (same ops and retries);
 * done(ctx) is called once, on the loop's thread, when res is final. body
 * and ops must stay valid until then. The job belongs to m and is freed
 * after done. Returns NULL on failure (done is then never called; res->error
 * says why). */
struct upstream_job *upstream_multi_stream(struct upstream_multi *m, const char *path,
    const char *body, size_t len, const struct upstream_stream_ops *ops,
    struct upstream_result *res, void (*done)(void *ctx), void *ctx);

/* Stops receiving the upstream's bytes of job j (its reader is behind, so
 * TCP pushes back on the upstream) or starts again. While paused only the
 * stream's overall cap runs; the idle timeout restarts on resume. Loop
 * thread; safe inside the job's own callbacks (applied after them). j may
 * be NULL. */
void upstream_job_pause(struct upstream_job *j, bool paused);

/* The loop's events: fd ready, the timer fired, the ~250 ms tick. */
void upstream_multi_socket(struct upstream_multi *m, int fd, bool readable, bool writable);
void upstream_multi_timeout(struct upstream_multi *m);
void upstream_multi_tick(struct upstream_multi *m);

#endif
