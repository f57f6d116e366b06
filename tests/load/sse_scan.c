/* sse_scan.c: the load tool's incremental SSE scanner. */
#include "sse_scan.h"

#include <stdlib.h>
#include <string.h>

void
sse_scan_init(struct sse_scan *s, size_t max, sse_scan_event_fn on_event,
    sse_scan_comment_fn on_comment, void *ctx)
{
	*s = (struct sse_scan){ .max = max, .on_event = on_event, .on_comment = on_comment,
	    .ctx = ctx };
}

void
sse_scan_free(struct sse_scan *s)
{
	if (s == NULL)
		return;
	free(s->line);
	free(s->data);
	s->line = s->data = NULL;
	s->line_len = s->line_alloc = s->data_len = s->data_alloc = 0;
}

void
sse_scan_reset(struct sse_scan *s)
{
	s->line_len = s->data_len = 0;
	s->event[0] = '\0';
	s->has_data = false;
	s->after_cr = false;
}

/* Grows *p to hold need bytes plus a NUL, within max. */
static bool
sse_scan_reserve(char **p, size_t *alloc, size_t need, size_t max)
{
	size_t na;
	char *np;

	if (need > max)
		return false;
	if (need + 1 <= *alloc)
		return true;
	na = *alloc == 0 ? 256 : *alloc;
	while (na < need + 1)
		na *= 2;
	if ((np = realloc(*p, na)) == NULL)
		return false;
	*p = np;
	*alloc = na;
	return true;
}

static bool
sse_scan_dispatch(struct sse_scan *s)
{
	bool go_on = true;

	if (s->has_data) {
		/* Each data line added a newline; the last one is not data. */
		if (s->data_len > 0)
			s->data_len--;
		s->data[s->data_len] = '\0';
		go_on = s->on_event(s->ctx, s->event, s->data, s->data_len);
	}
	s->data_len = 0;
	s->has_data = false;
	s->event[0] = '\0';
	return go_on;
}

/* One complete line, without its terminator. */
static bool
sse_scan_line(struct sse_scan *s, const char *line, size_t len)
{
	const char *colon, *value;
	size_t name_len, value_len;

	if (len == 0)
		return sse_scan_dispatch(s);
	if (line[0] == ':') {
		if (s->on_comment != NULL)
			s->on_comment(s->ctx);
		return true;
	}
	colon = memchr(line, ':', len);
	name_len = colon != NULL ? (size_t)(colon - line) : len;
	value = colon != NULL ? colon + 1 : line + len;
	value_len = len - (size_t)(value - line);
	if (value_len > 0 && value[0] == ' ') {
		value++;
		value_len--;
	}
	if (name_len == 4 && memcmp(line, "data", 4) == 0) {
		if (!sse_scan_reserve(&s->data, &s->data_alloc, s->data_len + value_len + 1, s->max))
			return false;
		memcpy(s->data + s->data_len, value, value_len);
		s->data_len += value_len;
		s->data[s->data_len++] = '\n';
		s->data[s->data_len] = '\0';
		s->has_data = true;
	} else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
		if (value_len >= sizeof(s->event))
			value_len = sizeof(s->event) - 1;
		memcpy(s->event, value, value_len);
		s->event[value_len] = '\0';
	}
	/* id, retry and unknown fields do not matter to the measurements. */
	return true;
}

bool
sse_scan_feed(struct sse_scan *s, const char *p, size_t n)
{
	while (n > 0) {
		size_t k;

		if (s->after_cr) {
			s->after_cr = false;
			if (*p == '\n') {
				p++;
				n--;
				continue;
			}
		}
		for (k = 0; k < n && p[k] != '\n' && p[k] != '\r'; k++)
			;
		if (k == n) {
			/* No terminator yet: keep the piece for the next call. */
			if (!sse_scan_reserve(&s->line, &s->line_alloc, s->line_len + k, s->max))
				return false;
			memcpy(s->line + s->line_len, p, k);
			s->line_len += k;
			return true;
		}
		s->after_cr = p[k] == '\r';
		if (s->line_len == 0) {
			/* The common case: a whole line inside this piece. */
			if (k > s->max || !sse_scan_line(s, p, k))
				return false;
		} else {
			size_t line_len = s->line_len + k;

			if (!sse_scan_reserve(&s->line, &s->line_alloc, line_len, s->max))
				return false;
			memcpy(s->line + s->line_len, p, k);
			s->line_len = 0;
			if (!sse_scan_line(s, s->line, line_len))
				return false;
		}
		p += k + 1;
		n -= k + 1;
	}
	return true;
}
