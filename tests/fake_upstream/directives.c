/* directives.c: [[directives]] in the last user message that steer a reply. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directives.h"
#include "util.h"

#define TOKENS_MAX	100000L
#define STALL_MAX_MS	3600000L
#define SPLIT_GAP_MAX_MS 1000L

enum dir_kind { DIR_FLAG, DIR_LONG, DIR_TEXT, DIR_PAIR };

static const struct directive_spec {
	const char	*name;
	enum dir_kind	 kind;
	long		 min, max;
	size_t		 off;
} directive_specs[] = {
	{ "request",		DIR_FLAG, 0, 0, offsetof(struct directives, request) },
	{ "system",		DIR_FLAG, 0, 0, offsetof(struct directives, system) },
	{ "crlf",		DIR_FLAG, 0, 0, offsetof(struct directives, crlf) },
	{ "comments",		DIR_FLAG, 0, 0, offsetof(struct directives, comments) },
	{ "no-usage",		DIR_FLAG, 0, 0, offsetof(struct directives, no_usage) },
	{ "tokens",		DIR_LONG, 0, TOKENS_MAX, offsetof(struct directives, tokens) },
	{ "status",		DIR_LONG, 400, 599, offsetof(struct directives, status) },
	{ "fail-first",		DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, fail_first) },
	{ "error-after",	DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, error_after) },
	{ "event-error-after",	DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, event_error_after) },
	{ "drop-after",		DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, drop_after) },
	{ "stall-first",	DIR_LONG, 0, STALL_MAX_MS, offsetof(struct directives, stall_first) },
	{ "stall-headers",	DIR_LONG, 0, STALL_MAX_MS, offsetof(struct directives, stall_headers) },
	{ "stall-after",	DIR_PAIR, 0, STALL_MAX_MS, offsetof(struct directives, stall_after_k) },
	{ "delay",		DIR_LONG, 0, DELAY_MAX_MS, offsetof(struct directives, delay) },
	{ "split-gap",		DIR_LONG, 0, SPLIT_GAP_MAX_MS, offsetof(struct directives, split_gap) },
	{ "raw",		DIR_TEXT, 0, 0, offsetof(struct directives, raw) },
	{ "key",		DIR_TEXT, 0, 0, offsetof(struct directives, key) },
	{ "retry-after",	DIR_TEXT, 0, 0, offsetof(struct directives, retry_after) },
	{ "retry-after-ms",	DIR_TEXT, 0, 0, offsetof(struct directives, retry_after_ms) },
	{ "split",		DIR_TEXT, 0, 0, offsetof(struct directives, split) },
};

static void
directives_init(struct directives *d)
{
	memset(d, 0, sizeof(*d));
	d->tokens = d->status = d->fail_first = -1;
	d->error_after = d->event_error_after = d->drop_after = -1;
	d->stall_first = d->stall_headers = d->stall_after_k = -1;
	d->stall_after_ms = d->delay = d->split_gap = -1;
}

/* Applies the directive whose inside ("name" or "name=value") is s[0, n).
 * Returns 1 if applied, 0 if s is not a known directive (left as text),
 * -1 on a bad value (err says which). */
static int
directive_apply(struct directives *d, const char *s, size_t n, char *err,
    size_t errsz)
{
	const struct directive_spec *spec = NULL;
	const char *eq, *val = NULL, *colon;
	size_t nlen, vlen = 0, i;
	char *base = (char *)d;
	long v, v2;

	eq = memchr(s, '=', n);
	nlen = eq ? (size_t)(eq - s) : n;
	if (nlen == 0)
		return 0;
	for (i = 0; i < nlen; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-'))
			return 0;
	for (i = 0; i < sizeof(directive_specs) / sizeof(directive_specs[0]); i++)
		if (strlen(directive_specs[i].name) == nlen &&
		    memcmp(directive_specs[i].name, s, nlen) == 0)
			spec = &directive_specs[i];
	if (spec == NULL)
		return 0;
	if (eq) {
		val = eq + 1;
		vlen = n - nlen - 1;
	}

	switch (spec->kind) {
	case DIR_FLAG:
		if (eq)
			goto bad;
		*(bool *)(base + spec->off) = true;
		return 1;
	case DIR_LONG:
		if (!eq || !util_parse_long(val, vlen, spec->min, spec->max, &v))
			goto bad;
		*(long *)(base + spec->off) = v;
		return 1;
	case DIR_PAIR:
		/* stall-after=K:MS fills stall_after_k and stall_after_ms. */
		if (!eq || (colon = memchr(val, ':', vlen)) == NULL)
			goto bad;
		if (!util_parse_long(val, (size_t)(colon - val), 0, COUNT_MAX, &v) ||
		    !util_parse_long(colon + 1, vlen - (size_t)(colon - val) - 1,
		    spec->min, spec->max, &v2))
			goto bad;
		d->stall_after_k = v;
		d->stall_after_ms = v2;
		return 1;
	case DIR_TEXT:
		if (!eq)
			goto bad;
		((struct slice *)(void *)(base + spec->off))->p = val;
		((struct slice *)(void *)(base + spec->off))->n = vlen;
		return 1;
	}
bad:
	if (snprintf(err, errsz, "fake upstream: invalid directive [[%.*s]]",
	    (int)(n > 80 ? 80 : n), s) >= (int)errsz)
		err[errsz - 1] = '\0';
	return -1;
}

/* A header value taken from a directive: printable ASCII, no CR/LF. */
static bool
header_value_ok(struct slice v)
{
	size_t i;

	if (v.n == 0 || v.n > 100)
		return false;
	for (i = 0; i < v.n; i++)
		if ((unsigned char)v.p[i] < 0x20 || (unsigned char)v.p[i] >= 0x7f)
			return false;
	return true;
}

/* Scans s for [[directives]], fills d, and returns in *text (malloc'd,
 * NUL-terminated) s without them, spaces around them collapsed. The slices
 * in d borrow s. Returns false with err set on a bad directive or OOM. */
bool
directives_parse(const char *s, size_t n, struct directives *d, char **text,
    size_t *text_len, char *err, size_t errsz)
{
	const char *rb;
	size_t i = 0, o = 0;
	bool found = false;
	char *out;
	int r;

	directives_init(d);
	*text = NULL;
	if ((out = malloc(n + 1)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return false;
	}
	while (i < n) {
		if (i + 1 < n && s[i] == '[' && s[i + 1] == '[' &&
		    (rb = memmem(s + i + 2, n - i - 2, "]]", 2)) != NULL) {
			r = directive_apply(d, s + i + 2, (size_t)(rb - s - i - 2),
			    err, errsz);
			if (r < 0) {
				free(out);
				return false;
			}
			if (r > 0) {
				found = true;
				i = (size_t)(rb - s) + 2;
				while (i < n && s[i] == ' ' && (o == 0 || out[o - 1] == ' '))
					i++;
				continue;
			}
		}
		out[o++] = s[i++];
	}
	if (found)
		while (o > 0 && util_is_ws((unsigned char)out[o - 1]))
			o--;
	out[o] = '\0';

	if (d->split.p && !(d->split.n == 3 && memcmp(d->split.p, "odd", 3) == 0)) {
		snprintf(err, errsz, "fake upstream: [[split=...]] takes only \"odd\"");
		goto bad;
	}
	if ((d->retry_after.p && !header_value_ok(d->retry_after)) ||
	    (d->retry_after_ms.p && !header_value_ok(d->retry_after_ms))) {
		snprintf(err, errsz, "fake upstream: retry-after values must be printable ASCII (1..100 bytes)");
		goto bad;
	}
	if (d->fail_first >= 0 && d->status < 0) {
		snprintf(err, errsz, "fake upstream: [[fail-first=N]] needs [[status=CODE]]");
		goto bad;
	}
	*text = out;
	*text_len = o;
	return true;
bad:
	free(out);
	return false;
}
