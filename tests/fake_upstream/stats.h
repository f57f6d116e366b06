/* stats.h: counters of requests and streams, and the /_fake/ control endpoints. */
#ifndef FAKE_UPSTREAM_STATS_H
#define FAKE_UPSTREAM_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct stats {
	uint64_t	requests;
	uint64_t	chat_requests;
	uint64_t	streams_active;
	uint64_t	streams_completed;
	uint64_t	streams_errored;
	uint64_t	streams_dropped;
	uint64_t	streams_aborted_by_client;
	uint64_t	realtime_secrets;
	uint64_t	sdp_answers;
	uint64_t	model_lists;	/* GET /v1/models answered */
};

/* The counters since start or the last reset; any module may count. */
extern struct stats stats;

struct conn;

/* Answer GET /_fake/stats (the counters as JSON) and POST /_fake/reset
 * (zero the counters but the live-stream gauge, forget fail-first buckets).
 * Return false if c must be destroyed. */
bool	stats_handle(struct conn *c);
bool	stats_handle_reset(struct conn *c);

#endif
