/* metrics.h: counters shared by the master and every worker process.
 *
 * The master maps one anonymous shared segment before it forks; workers
 * inherit it, so every figure is already aggregated across processes and
 * survives the recycling of a worker. Updates are lock-free atomic adds.
 * /metrics renders it as Prometheus text; /status as a pool status page. */
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

/* Maps the segment. Call once in the master, before forking. */
bool metrics_init(void);

/* Registers the route names in order (index = route id for counting). */
void metrics_set_routes(const char *const *names, int n);

/* Worker slots: the master claims one per child; the child updates it. */
int  metrics_worker_claim(pid_t pid, unsigned generation, int threads);
void metrics_worker_release(pid_t pid);
void metrics_worker_busy(int slot, int delta);
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

/* Renders everything in Prometheus text exposition format. */
bool metrics_render_prometheus(struct buf *out);

/* Renders the pool status page (text, or JSON when json is true). */
bool metrics_render_status(struct buf *out, bool json);

#endif
