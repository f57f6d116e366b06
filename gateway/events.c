/* events.c: JSON arguments of the seeds' Socket.IO events. */
#include "events.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "json_out.h"

void
events_timestamp(char out[EVENTS_TS_LEN])
{
	struct timeval tv;
	struct tm tm;
	char ts[80];   /* room for any int the compiler imagines in tm */

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	(void)snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (int)(tv.tv_usec / 1000) % 1000);
	(void)snprintf(out, EVENTS_TS_LEN, "%.*s", EVENTS_TS_LEN - 1, ts);
}

bool
events_stream_start(struct buf *b, const char *stream_id, const char *room, const char *ts)
{
	if (!buf_appendc(b, '{') || !json_put_key(b, "streamId") || !json_put_stringz(b, stream_id))
		return false;
	if (room != NULL && (!buf_appendc(b, ',') || !json_put_key(b, "roomName") ||
	    !json_put_stringz(b, room)))
		return false;
	return buf_appendc(b, ',') && json_put_key(b, "timestamp") && json_put_stringz(b, ts) &&
	    buf_appendc(b, '}');
}

bool
events_stream_chunk(struct buf *b, const char *stream_id, const char *content, size_t clen,
    const char *full, size_t flen, bool complete)
{
	return buf_appendc(b, '{') && json_put_key(b, "content") && json_put_string(b, content, clen) &&
	    buf_appendc(b, ',') && json_put_key(b, "fullResponse") && json_put_string(b, full, flen) &&
	    buf_appendc(b, ',') && json_put_key(b, "isComplete") &&
	    buf_appendz(b, complete ? "true" : "false") && buf_appendc(b, ',') &&
	    json_put_key(b, "streamId") && json_put_stringz(b, stream_id) && buf_appendc(b, '}');
}

bool
events_stream_complete(struct buf *b, const char *stream_id, const char *full, size_t flen,
    const char *ts)
{
	return buf_appendc(b, '{') && json_put_key(b, "fullResponse") && json_put_string(b, full, flen) &&
	    buf_appendc(b, ',') && json_put_key(b, "timestamp") && json_put_stringz(b, ts) &&
	    buf_appendc(b, ',') && json_put_key(b, "streamId") && json_put_stringz(b, stream_id) &&
	    buf_appendc(b, '}');
}

bool
events_stream_error(struct buf *b, const char *stream_id, const char *error)
{
	if (!buf_appendc(b, '{') || !json_put_key(b, "error") || !json_put_stringz(b, error))
		return false;
	if (stream_id != NULL && (!buf_appendc(b, ',') || !json_put_key(b, "streamId") ||
	    !json_put_stringz(b, stream_id)))
		return false;
	return buf_appendc(b, '}');
}

bool
events_room_error(struct buf *b, const char *room, const char *error)
{
	return buf_appendc(b, '{') && json_put_key(b, "error") && json_put_stringz(b, error) &&
	    buf_appendc(b, ',') && json_put_key(b, "roomName") && json_put_stringz(b, room) &&
	    buf_appendc(b, '}');
}

bool
events_connected(struct buf *b, const char *client_id, const char *ts)
{
	return buf_appendc(b, '{') && json_put_key(b, "message") &&
	    json_put_stringz(b, "Connected to the streaming server") && buf_appendc(b, ',') &&
	    json_put_key(b, "clientId") && json_put_stringz(b, client_id) && buf_appendc(b, ',') &&
	    json_put_key(b, "timestamp") && json_put_stringz(b, ts) && buf_appendc(b, '}');
}

bool
events_ai_stream(struct buf *b, const char *content, size_t len, const char *session_id)
{
	return buf_appendc(b, '{') && json_put_key(b, "content") && json_put_string(b, content, len) &&
	    buf_appendc(b, ',') && json_put_key(b, "sessionId") && json_put_stringz(b, session_id) &&
	    buf_appendc(b, '}');
}

bool
events_ai_complete(struct buf *b, const char *full, size_t len, const char *session_id)
{
	return buf_appendc(b, '{') && json_put_key(b, "response") && json_put_string(b, full, len) &&
	    buf_appendc(b, ',') && json_put_key(b, "sessionId") && json_put_stringz(b, session_id) &&
	    buf_appendc(b, '}');
}

bool
events_ai_error(struct buf *b, const char *error, const char *session_id)
{
	if (!buf_appendc(b, '{') || !json_put_key(b, "error") || !json_put_stringz(b, error))
		return false;
	if (session_id != NULL && (!buf_appendc(b, ',') || !json_put_key(b, "sessionId") ||
	    !json_put_stringz(b, session_id)))
		return false;
	return buf_appendc(b, '}');
}

bool
events_ack_ok(struct buf *b, const char *room)
{
	if (!buf_appendz(b, "{\"ok\":true"))
		return false;
	if (room != NULL && (!buf_appendc(b, ',') || !json_put_key(b, "roomName") ||
	    !json_put_stringz(b, room)))
		return false;
	return buf_appendc(b, '}');
}

bool
events_ack_error(struct buf *b, const char *error)
{
	return buf_appendz(b, "{\"ok\":false,") && json_put_key(b, "error") &&
	    json_put_stringz(b, error) && buf_appendc(b, '}');
}
