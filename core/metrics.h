/* metrics.h: the scoreboard of one front end: chatd's master and every
 * worker process, or one chat-gateway process.
 *
 * chatd: the master maps one anonymous shared segment before it forks;
 * workers inherit it, so every figure is already aggregated across
 * processes and survives the recycling of a worker. /metrics renders it
 * as Prometheus text; /status as a pool status page.
 *
 * chat-gateway: the same segment, mapped by the one process, rendered
 * at its own GET /gateway/metrics with every series labelled
 * frontend="gateway" and without the pool and HTTP route families (they
 * describe chatd). Deliberately not one segment shared by both daemons:
 * see metrics_init. Updates are lock-free atomic adds. */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "upstream.h"

#define METRICS_MAX_WORKERS 256
#define METRICS_MAX_ROUTES  64

enum metric_stream_end { STREAM_END_COMPLETED, STREAM_END_ERROR };

/* Whose figures a process keeps and renders. */
enum metrics_scope {
	METRICS_SCOPE_POOL,      /* chatd: master and workers, the pool, HTTP routes */
	METRICS_SCOPE_GATEWAY,   /* one chat-gateway: streams, tokens, upstream errors */
};

/* Maps the segment (zeroed) and sets the scope. Call once, in chatd's
 * master before forking, or at the gateway's start. Until it succeeds
 * every update is a no-op and the renderings say "unavailable". Returns
 * false when the mapping failed (logged). */
bool metrics_init(enum metrics_scope scope);

/* Unmaps the segment; updates become no-ops again. Safe without init.
 * chatd's master keeps it for its life (workers inherit it); the gateway
 * calls it on its way out. */
void metrics_free(void);

/* Registers the route names in order (index = route id for counting). */
void metrics_set_routes(const char *const *names, int n);

/* Worker slots: the master claims one per child; the child updates it. */
int  metrics_worker_claim(pid_t pid, unsigned generation, int threads);
void metrics_worker_release(pid_t pid);
void metrics_worker_busy(int slot, int delta);

/* Streams open on the worker's event loop (+1 when adopted, -1 closed). */
void metrics_worker_streams(int slot, int delta);
void metrics_worker_request(int slot);
void metrics_respawn(void);

/* A finished request: route index (-1: unmatched) and status. */
void metrics_request(int route, int status);

/* Stream figures (seed 002's names): started, then one end with its
 * duration and time to first byte (< 0: none). */
void metrics_stream_started(void);
void metrics_stream_ended(enum metric_stream_end end, double duration_s, double ttfb_s);
void metrics_upstream_error(enum upstream_error e);   /* UPSTREAM_OK, _ABORTED: "other" */
void metrics_tokens(long prompt, long completion);

/* Renders everything in Prometheus text exposition format: the families
 * of the scope given to metrics_init. Appends to out (owned by the
 * caller); false when out is full. */
bool metrics_render_prometheus(struct buf *out);

/* Renders the pool status page (text, or JSON when json is true). */
bool metrics_render_status(struct buf *out, bool json);

#endif
