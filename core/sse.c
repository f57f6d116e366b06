/* sse.c: Server-Sent Events framing. */
#include "sse.h"

#include <string.h>

static bool
sse_field_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

bool
sse_put_event(struct buf *b, const char *id, const char *event, const char *data, size_t n)
{
	size_t start = 0;

	if ((id != NULL && !sse_field_ok(id)) || (event != NULL && !sse_field_ok(event)))
		return false;
	if (id != NULL && !(buf_append(b, "id: ", 4) && buf_appendz(b, id) && buf_appendc(b, '\n')))
		return false;
	if (event != NULL &&
	    !(buf_append(b, "event: ", 7) && buf_appendz(b, event) && buf_appendc(b, '\n')))
		return false;
	/* Split on CR, LF and CRLF: each becomes its own data line. */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && data[i] != '\n' && data[i] != '\r')
			continue;
		if (!(buf_append(b, "data: ", 6) && buf_append(b, data + start, i - start) &&
		    buf_appendc(b, '\n')))
			return false;
		if (i < n && data[i] == '\r' && i + 1 < n && data[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return buf_appendc(b, '\n');
}

bool
sse_open_line_event(struct buf *b, const char *id, const char *event)
{
	if ((id != NULL && !sse_field_ok(id)) || (event != NULL && !sse_field_ok(event)))
		return false;
	if (id != NULL && !(buf_append(b, "id: ", 4) && buf_appendz(b, id) && buf_appendc(b, '\n')))
		return false;
	if (event != NULL &&
	    !(buf_append(b, "event: ", 7) && buf_appendz(b, event) && buf_appendc(b, '\n')))
		return false;
	return buf_append(b, "data: ", 6);
}

bool
sse_close_event(struct buf *b)
{
	return buf_append(b, "\n\n", 2);
}

bool
sse_put_id_block(struct buf *b, const char *id)
{
	return sse_field_ok(id) && buf_append(b, "id: ", 4) && buf_appendz(b, id) &&
	    buf_append(b, "\n\n", 2);
}

bool
sse_put_comment(struct buf *b, const char *text)
{
	if (!sse_field_ok(text))
		return false;
	return buf_append(b, ": ", 2) && buf_appendz(b, text) && buf_append(b, "\n\n", 2);
}
