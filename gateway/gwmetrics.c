/* gwmetrics.c: the gateway's Prometheus page: the core's scoreboard plus
 * the gateway's own gauges. */
#include "gwmetrics.h"

#include "metrics.h"
#include "room.h"
#include "session.h"
#include "stream.h"

bool
gwmetrics_render(struct buf *out)
{
	return metrics_render_prometheus(out) && buf_printf(out,
	    "# HELP chat_gateway_sessions Engine.IO sessions open in this gateway.\n"
	    "# TYPE chat_gateway_sessions gauge\nchat_gateway_sessions{frontend=\"gateway\"} %zu\n"
	    "# HELP chat_gateway_rooms Rooms with a member in this gateway.\n"
	    "# TYPE chat_gateway_rooms gauge\nchat_gateway_rooms{frontend=\"gateway\"} %zu\n"
	    "# HELP chat_gateway_streams Generations running in this gateway.\n"
	    "# TYPE chat_gateway_streams gauge\nchat_gateway_streams{frontend=\"gateway\"} %zu\n"
	    "# HELP chat_gateway_queued_bytes Bytes queued for the clients of this gateway.\n"
	    "# TYPE chat_gateway_queued_bytes gauge\nchat_gateway_queued_bytes{frontend=\"gateway\"} %zu\n"
	    "# HELP chat_gateway_sessions_dropped_total Sessions closed because their client read too slowly.\n"
	    "# TYPE chat_gateway_sessions_dropped_total counter\n"
	    "chat_gateway_sessions_dropped_total{frontend=\"gateway\"} %zu\n",
	    session_count(), room_count(), stream_count(), session_queued_total(),
	    session_dropped_count());
}
