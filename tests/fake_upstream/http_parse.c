/* http_parse.c: HTTP/1.x request heads and bodies (Content-Length and
 * chunked), every part bounded. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "http.h"
#include "util.h"

#define CHUNK_LINE_MAX	1024u			/* chunk-size line with extensions */

static bool
is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool
bytes_eq_nocase(const char *p, size_t n, const char *z)
{
	return strlen(z) == n && strncasecmp(p, z, n) == 0;
}

void
http_request_reset(struct request *r)
{
	free(r->target);
	free(r->auth);
	free(r->origin);
	free(r->ctype);
	buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

size_t
http_find_head_end(struct conn *c)
{
	const char *d = c->in.data;
	size_t i, n = c->in.len;

	for (i = c->scan_off; i < n; i++) {
		if (d[i] != '\n')
			continue;
		if (i + 1 < n && d[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n')
			return i + 3;
	}
	c->scan_off = n >= 2 ? n - 2 : 0;
	return 0;
}

static bool
header_dup(char **dst, const char *p, size_t n)
{
	free(*dst);
	*dst = util_strndup(p, n);
	return *dst != NULL;
}

/* Interprets one header. Returns 0 or an HTTP status to fail with. */
static int
http_parse_header(struct request *r, const char *name, size_t nlen,
    const char *v, size_t vlen, bool *has_cl, size_t *cl)
{
	long n;
	size_t i, start, end;

	if (bytes_eq_nocase(name, nlen, "content-length")) {
		if (vlen > 12 || vlen == 0)
			return vlen == 0 ? 400 : 413;
		for (i = 0; i < vlen; i++)
			if (v[i] < '0' || v[i] > '9')
				return 400;
		if (!util_parse_long(v, vlen, 0, LONG_MAX, &n))
			return 413;
		if (*has_cl && *cl != (size_t)n)
			return 400;
		*has_cl = true;
		*cl = (size_t)n;
	} else if (bytes_eq_nocase(name, nlen, "transfer-encoding")) {
		/* Only "chunked" (as the final coding) is understood. */
		start = vlen;
		while (start > 0 && v[start - 1] != ',')
			start--;
		while (start < vlen && (v[start] == ' ' || v[start] == '\t'))
			start++;
		if (!bytes_eq_nocase(v + start, vlen - start, "chunked"))
			return 501;
		if (start != 0)
			return 501;
		r->body_mode = BODY_CHUNKED;
	} else if (bytes_eq_nocase(name, nlen, "connection")) {
		for (start = 0; start < vlen; start = end + 1) {
			end = start;
			while (end < vlen && v[end] != ',')
				end++;
			i = end;
			while (start < i && (v[start] == ' ' || v[start] == '\t'))
				start++;
			while (i > start && (v[i - 1] == ' ' || v[i - 1] == '\t'))
				i--;
			if (bytes_eq_nocase(v + start, i - start, "close"))
				r->keep_alive = false;
			else if (bytes_eq_nocase(v + start, i - start, "keep-alive"))
				r->keep_alive = true;
		}
	} else if (bytes_eq_nocase(name, nlen, "expect")) {
		if (bytes_eq_nocase(v, vlen, "100-continue"))
			r->expect_continue = true;
	} else if (bytes_eq_nocase(name, nlen, "authorization")) {
		if (!header_dup(&r->auth, v, vlen))
			return 500;
	} else if (bytes_eq_nocase(name, nlen, "origin")) {
		if (!header_dup(&r->origin, v, vlen))
			return 500;
	} else if (bytes_eq_nocase(name, nlen, "content-type")) {
		if (!header_dup(&r->ctype, v, vlen))
			return 500;
	}
	return 0;
}

int
http_parse_head(struct request *r, const char *d, size_t n)
{
	const char *line, *eol, *end = d + n, *sp1, *sp2, *colon;
	size_t len, mlen, tlen, vstart, vend;
	bool has_cl = false;
	size_t cl = 0;
	int st;

	/* Request line. */
	eol = memchr(d, '\n', n);
	len = (size_t)(eol - d);
	if (len > 0 && d[len - 1] == '\r')
		len--;
	if ((sp1 = memchr(d, ' ', len)) == NULL)
		return 400;
	mlen = (size_t)(sp1 - d);
	if (mlen == 0 || mlen >= sizeof(r->method))
		return mlen == 0 ? 400 : 501;
	if ((sp2 = memchr(sp1 + 1, ' ', len - mlen - 1)) == NULL)
		return 400;
	tlen = (size_t)(sp2 - sp1 - 1);
	if (tlen == 0)
		return 400;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)d[i]))
			return 400;
	memcpy(r->method, d, mlen);
	r->method[mlen] = '\0';
	if ((size_t)(d + len - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return 400;
	if (sp2[8] == '0')
		r->http10 = true;
	else if (sp2[8] != '1')
		return 400;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= 0x20 || (unsigned char)sp1[1 + i] == 0x7f)
			return 400;
	if ((r->target = util_strndup(sp1 + 1, tlen)) == NULL)
		return 500;
	r->path_len = strcspn(r->target, "?");
	r->keep_alive = !r->http10;

	/* Header fields. */
	for (line = eol + 1; line < end; line = eol + 1) {
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			break;
		len = (size_t)(eol - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t')
			return 400;	/* obsolete line folding */
		if ((colon = memchr(line, ':', len)) == NULL || colon == line)
			return 400;
		for (const char *p = line; p < colon; p++)
			if (!is_tchar((unsigned char)*p))
				return 400;
		vstart = (size_t)(colon - line) + 1;
		vend = len;
		while (vstart < vend && (line[vstart] == ' ' || line[vstart] == '\t'))
			vstart++;
		while (vend > vstart && (line[vend - 1] == ' ' || line[vend - 1] == '\t'))
			vend--;
		st = http_parse_header(r, line, (size_t)(colon - line),
		    line + vstart, vend - vstart, &has_cl, &cl);
		if (st != 0)
			return st;
	}

	if (r->body_mode == BODY_CHUNKED) {
		/* Both framings: a smuggling attempt or a broken proxy. Use
		 * chunked as the RFC says, but do not reuse the connection. */
		if (has_cl)
			r->keep_alive = false;
		r->ch = CH_SIZE;
	} else if (has_cl && cl > 0) {
		if (cl > BODY_MAX)
			return 413;
		r->body_mode = BODY_LENGTH;
		r->body_left = cl;
	}
	return 0;
}

int
http_read_body(struct conn *c)
{
	struct request *r = &c->req;
	const char *d = c->in.data, *nl;
	size_t pos = 0, avail = buf_live(&c->in), take, i, len;
	long sz;
	int rc = 1;

	if (r->body_mode == BODY_NONE)
		return 0;
	if (r->body_mode == BODY_LENGTH) {
		take = avail < r->body_left ? avail : r->body_left;
		if (!buf_append(&r->body, d, take))
			return 500;
		buf_drop_front(&c->in, take);
		r->body_left -= take;
		return r->body_left == 0 ? 0 : 1;
	}

	while (rc == 1 && pos < avail) {
		switch (r->ch) {
		case CH_SIZE:
			if ((nl = memchr(d + pos, '\n', avail - pos)) == NULL) {
				if (avail - pos > CHUNK_LINE_MAX)
					rc = 400;
				goto out;
			}
			len = (size_t)(nl - (d + pos));
			if (len > CHUNK_LINE_MAX)
				return 400;
			sz = 0;
			for (i = 0; i < len; i++) {
				char h = d[pos + i];
				int v;

				if (h >= '0' && h <= '9')
					v = h - '0';
				else if (h >= 'a' && h <= 'f')
					v = h - 'a' + 10;
				else if (h >= 'A' && h <= 'F')
					v = h - 'A' + 10;
				else
					break;	/* ';' extensions, CR */
				if (sz > (long)BODY_MAX)
					return 413;
				sz = sz * 16 + v;
			}
			if (i == 0)
				return 400;
			if (sz > (long)BODY_MAX ||
			    r->body.len + (size_t)sz > BODY_MAX)
				return 413;
			pos += len + 1;
			r->body_left = (size_t)sz;
			r->ch = sz == 0 ? CH_TRAILER : CH_DATA;
			break;
		case CH_DATA:
			take = avail - pos < r->body_left ? avail - pos : r->body_left;
			if (!buf_append(&r->body, d + pos, take))
				return 500;
			pos += take;
			r->body_left -= take;
			if (r->body_left == 0)
				r->ch = CH_DATA_END;
			break;
		case CH_DATA_END:
			if (d[pos] == '\r') {
				if (avail - pos < 2)
					goto out;
				pos++;
			}
			if (d[pos] != '\n')
				return 400;
			pos++;
			r->ch = CH_SIZE;
			break;
		case CH_TRAILER:
			if ((nl = memchr(d + pos, '\n', avail - pos)) == NULL) {
				if (avail - pos > HEAD_MAX)
					rc = 431;
				goto out;
			}
			len = (size_t)(nl - (d + pos));
			pos += len + 1;
			if (len == 0 || (len == 1 && d[pos - 2] == '\r'))
				rc = 0;	/* blank line: end of the message */
			break;
		}
	}
out:
	buf_drop_front(&c->in, pos);
	return rc;
}
