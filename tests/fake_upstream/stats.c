/* stats.c: counters of requests and streams, and the /_fake/ control
 * endpoints. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fail.h"
#include "http.h"
#include "stats.h"

struct stats stats;

bool
stats_handle(struct conn *c)
{
	char body[512];
	int n;

	n = snprintf(body, sizeof(body), "{\"requests\":%" PRIu64 ","
	    "\"chat_requests\":%" PRIu64 ",\"streams_active\":%" PRIu64 ","
	    "\"streams_completed\":%" PRIu64 ",\"streams_aborted_by_client\":%" PRIu64
	    ",\"streams_errored\":%" PRIu64 ",\"streams_dropped\":%" PRIu64 ","
	    "\"realtime_secrets\":%" PRIu64 ",\"sdp_answers\":%" PRIu64 ","
	    "\"model_lists\":%" PRIu64 "}",
	    stats.requests, stats.chat_requests, stats.streams_active,
	    stats.streams_completed, stats.streams_aborted_by_client,
	    stats.streams_errored, stats.streams_dropped,
	    stats.realtime_secrets, stats.sdp_answers, stats.model_lists);
	if (n < 0 || (size_t)n >= sizeof(body))
		return false;
	return http_respond(c, 200, "application/json", NULL, body, (size_t)n);
}

bool
stats_handle_reset(struct conn *c)
{
	static const char body[] = "{\"ok\":true}";
	uint64_t active = stats.streams_active;

	/* streams_active is a gauge of live streams, not a counter. */
	memset(&stats, 0, sizeof(stats));
	stats.streams_active = active;
	fail_reset();
	return http_respond(c, 200, "application/json", NULL, body, sizeof(body) - 1);
}
