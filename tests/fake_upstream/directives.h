/* directives.h: [[directives]] in the last user message that steer a reply.
 *
 * The list of directives is at the top of fake_upstream.c (the README points
 * there). */
#ifndef FAKE_UPSTREAM_DIRECTIVES_H
#define FAKE_UPSTREAM_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>

#define DELAY_MAX_MS	10000L
#define COUNT_MAX	1000000L		/* K of error-after and friends */

struct slice {
	const char	*p;	/* NULL: absent */
	size_t		 n;
};

/* -1 (or a NULL slice) for every directive that is absent. */

struct directives {
	bool		request, system, crlf, comments, no_usage;
	long		tokens, status, fail_first;
	long		error_after, event_error_after, drop_after;
	long		stall_first, stall_headers, stall_after_k, stall_after_ms;
	long		delay, split_gap;
	struct slice	raw, key, retry_after, retry_after_ms, split;
};

/* Scans s for [[directives]], fills d, and returns in *text (malloc'd,
 * NUL-terminated, the caller frees it) s without them, spaces around them
 * collapsed. The slices in d borrow s. Returns false with err set on a bad
 * directive or OOM. */
bool	directives_parse(const char *s, size_t n, struct directives *d,
    char **text, size_t *text_len, char *err, size_t errsz);

#endif
