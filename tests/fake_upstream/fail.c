/* fail.c: misbehaviour on demand: [[status=CODE]] errors and [[fail-first=N]]
 * buckets. */
#include <stdio.h>

#include "buf.h"
#include "directives.h"
#include "fail.h"
#include "http.h"
#include "map.h"

static struct map	fail_first;	/* bucket -> failures so far */

bool
fail_maybe(struct conn *c, const struct directives *d, const char *text,
    size_t text_len, bool *failed)
{
	struct map_entry *e;
	struct buf key = { 0 }, hdr = { 0 };
	char msg[64];
	bool ok = true;

	*failed = false;
	if (d->status < 0)
		return true;
	if (d->fail_first >= 0) {
		/* The bucket is the key directive plus the text, so retries
		 * of the same prompt share it. */
		if ((d->key.p && !buf_append(&key, d->key.p, d->key.n)) ||
		    !BUF_LIT(&key, "\x1f") ||
		    !buf_append(&key, text, text_len) ||
		    (e = map_put(&fail_first, key.data, key.len, 0)) == NULL) {
			buf_free(&key);
			return false;
		}
		buf_free(&key);
		if (e->value >= d->fail_first)
			return true;
		e->value++;
	}
	*failed = true;
	if (d->retry_after.p)
		ok = buf_appendf(&hdr, "Retry-After: %.*s\r\n", (int)d->retry_after.n,
		    d->retry_after.p);
	if (ok && d->retry_after_ms.p)
		ok = buf_appendf(&hdr, "retry-after-ms: %.*s\r\n",
		    (int)d->retry_after_ms.n, d->retry_after_ms.p);
	if (ok && !BUF_LIT(&hdr, "\0"))
		ok = false;
	if (ok && snprintf(msg, sizeof(msg), "fake upstream error %ld", d->status) >=
	    (int)sizeof(msg))
		ok = false;
	if (ok)
		ok = http_error(c, (int)d->status, msg,
		    d->status == 429 ? "rate_limit_exceeded" : "server_error", NULL,
		    NULL, hdr.data);
	buf_free(&hdr);
	return ok;
}

void
fail_reset(void)
{
	map_clear(&fail_first);
}
