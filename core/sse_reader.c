/* sse_reader.c: incremental SSE decoder. */
#include "sse_reader.h"

#include <string.h>

void
sse_reader_init(struct sse_reader *r, size_t max, sse_event_fn on_event, void *ctx)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->line, max);
	buf_init(&r->data, max);
	r->on_event = on_event;
	r->ctx = ctx;
}

void
sse_reader_free(struct sse_reader *r)
{
	buf_free(&r->line);
	buf_free(&r->data);
}

void
sse_reader_reset(struct sse_reader *r)
{
	buf_reset(&r->line);
	buf_reset(&r->data);
	r->event[0] = '\0';
	r->has_data = false;
	r->after_cr = false;
}

static int
sse_dispatch(struct sse_reader *r)
{
	int rc = 0;

	if (r->has_data) {
		/* Data lines were joined with LF; the last LF is not part of the data. */
		if (r->data.len > 0 && r->data.data[r->data.len - 1] == '\n')
			r->data.data[--r->data.len] = '\0';
		rc = r->on_event(r->ctx, r->event, r->data.data != NULL ? r->data.data : "",
		    r->data.len);
	}
	buf_reset(&r->data);
	r->event[0] = '\0';
	r->has_data = false;
	return rc;
}

/* Handles one complete line (without its terminator). */
static int
sse_line(struct sse_reader *r, const char *line, size_t len)
{
	const char *colon, *value;
	size_t flen, vlen;

	if (len == 0)
		return sse_dispatch(r);
	if (line[0] == ':')
		return 0;  /* comment, e.g. a keep-alive */
	colon = memchr(line, ':', len);
	flen = colon != NULL ? (size_t)(colon - line) : len;
	value = colon != NULL ? colon + 1 : line + len;
	vlen = len - (size_t)(value - line);
	if (vlen > 0 && value[0] == ' ') {
		value++;
		vlen--;
	}
	if (flen == 4 && memcmp(line, "data", 4) == 0) {
		if (!buf_append(&r->data, value, vlen) || !buf_appendc(&r->data, '\n'))
			return -1;
		r->has_data = true;
	} else if (flen == 5 && memcmp(line, "event", 5) == 0) {
		if (vlen >= sizeof(r->event))
			vlen = sizeof(r->event) - 1;
		memcpy(r->event, value, vlen);
		r->event[vlen] = '\0';
	}
	/* id, retry and unknown fields do not matter to an upstream reader. */
	return 0;
}

int
sse_reader_feed(struct sse_reader *r, const char *p, size_t n)
{
	size_t i = 0;
	int rc;

	while (i < n) {
		const char *start = p + i;
		size_t k = 0;

		if (r->after_cr) {
			r->after_cr = false;
			if (p[i] == '\n') {
				i++;
				continue;
			}
		}
		/* Find the end of the line within this chunk. */
		while (i + k < n && start[k] != '\n' && start[k] != '\r')
			k++;
		if (i + k == n) {
			/* No terminator yet: keep the partial line. */
			if (!buf_append(&r->line, start, k))
				return -1;
			return 0;
		}
		if (start[k] == '\r')
			r->after_cr = true;
		if (r->line.len > 0) {
			if (!buf_append(&r->line, start, k))
				return -1;
			rc = sse_line(r, r->line.data, r->line.len);
			buf_reset(&r->line);
		} else if (k > r->line.max)
			return -1;  /* the same bound, however the line was split */
		else
			rc = sse_line(r, start, k);
		if (rc != 0)
			return rc;
		i += k + 1;
	}
	return 0;
}

int
sse_reader_finish(struct sse_reader *r)
{
	int rc;

	if (r->line.len > 0) {
		rc = sse_line(r, r->line.data, r->line.len);
		buf_reset(&r->line);
		if (rc != 0)
			return rc;
	}
	return sse_dispatch(r);
}
