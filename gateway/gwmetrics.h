/* gwmetrics.h: the gateway's Prometheus page (GET /gateway/metrics).
 *
 * core/metrics.c keeps the figures the chat engine counts (streams,
 * durations, time to first token, tokens, upstream errors), in this
 * process's scoreboard (metrics_init(METRICS_SCOPE_GATEWAY)), labelled
 * frontend="gateway"; this module adds the gauges only a gateway has.
 * nginx exposes the page at /gateway/metrics to loopback only, like
 * chatd's /metrics. */
#ifndef GATEWAY_GWMETRICS_H
#define GATEWAY_GWMETRICS_H

#include <stdbool.h>

#include "buf.h"

/* Appends the page (Prometheus text format 0.0.4) to out, which the
 * caller owns. Call on the loop thread (it reads the session and stream
 * tables). Returns false when out is full. */
bool gwmetrics_render(struct buf *out);

#endif
