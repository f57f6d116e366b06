/* sdp.c: POST /v1/realtime/calls and POST /v1/realtime: an SDP answer
 * mirroring the offer. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conn.h"
#include "http.h"
#include "sdp.h"
#include "stats.h"

static uint64_t	call_ids;

struct sdp_section {
	char	kind[16];
	char	proto[64];
	char	fmts[128];
	char	mid[32];
	char	dir[16];
	char	pt[8];
	char	rtpmap[128];
	char	fmtp[256];
	bool	opus;
};

static bool
sdp_copy(char *dst, size_t dstsz, const char *p, size_t n)
{
	if (n >= dstsz)
		return false;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return true;
}

/* Sets a fixed-size field from a C string; false if it does not fit. */
static bool
sdp_set(char *dst, size_t dstsz, const char *z)
{
	return sdp_copy(dst, dstsz, z, strlen(z));
}

static bool
sdp_starts(const char *p, size_t n, const char *z)
{
	size_t zl = strlen(z);

	return n >= zl && memcmp(p, z, zl) == 0;
}

/* Reads the offer's media sections so the answer mirrors them (same order,
 * mids, a payload type the offer listed): browsers reject anything else. */
static int
sdp_parse_offer(const char *d, size_t n, struct sdp_section *sec, int max)
{
	const char *line = d, *end = d + n, *nl, *sp;
	struct sdp_section *s = NULL;
	size_t len, f;
	int count = 0;

	for (; line < end; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (sdp_starts(line, len, "m=")) {
			const char *f1, *f2, *f3;

			if (count == max)
				return -1;
			s = &sec[count++];
			memset(s, 0, sizeof(*s));
			if (!sdp_set(s->dir, sizeof(s->dir), "sendrecv"))
				return -1;
			f1 = line + 2;
			if ((f2 = memchr(f1, ' ', len - 2)) == NULL ||
			    (f2 = memchr(f2 + 1, ' ', (size_t)(line + len - f2 - 1))) == NULL)
				return -1;
			f2++;
			if ((f3 = memchr(f2, ' ', (size_t)(line + len - f2))) == NULL)
				return -1;
			sp = memchr(f1, ' ', len - 2);
			if (!sdp_copy(s->kind, sizeof(s->kind), f1, (size_t)(sp - f1)) ||
			    !sdp_copy(s->proto, sizeof(s->proto), f2, (size_t)(f3 - f2)) ||
			    !sdp_copy(s->fmts, sizeof(s->fmts), f3 + 1,
			    (size_t)(line + len - f3 - 1)))
				return -1;
			/* The first format is the default payload type; for
			 * data channels it is a name, and pt is unused. */
			f = strcspn(s->fmts, " ");
			if (strcmp(s->kind, "application") != 0 &&
			    !sdp_copy(s->pt, sizeof(s->pt), s->fmts, f))
				return -1;
			continue;
		}
		if (s == NULL)
			continue;
		if (sdp_starts(line, len, "a=mid:")) {
			if (!sdp_copy(s->mid, sizeof(s->mid), line + 6, len - 6))
				return -1;
		} else if (sdp_starts(line, len, "a=sendonly") ||
		    sdp_starts(line, len, "a=recvonly") ||
		    sdp_starts(line, len, "a=inactive")) {
			/* The answer's direction mirrors the offer's. */
			if (!sdp_set(s->dir, sizeof(s->dir),
			    line[2] == 'i' ? "inactive" :
			    line[2] == 's' ? "recvonly" : "sendonly"))
				return -1;
		} else if (sdp_starts(line, len, "a=rtpmap:")) {
			const char *pt = line + 9, *codec;

			if ((codec = memchr(pt, ' ', len - 9)) == NULL)
				continue;
			f = (size_t)(codec - pt);
			codec++;
			if (!s->opus && strcmp(s->kind, "audio") == 0 &&
			    (size_t)(line + len - codec) > 5 &&
			    strncasecmp(codec, "opus/", 5) == 0) {
				if (!sdp_copy(s->pt, sizeof(s->pt), pt, f))
					return -1;
				s->opus = true;
				s->fmtp[0] = '\0';
			} else if (!(strlen(s->pt) == f && memcmp(s->pt, pt, f) == 0) ||
			    s->rtpmap[0] != '\0') {
				continue;
			}
			if (!sdp_copy(s->rtpmap, sizeof(s->rtpmap), codec,
			    (size_t)(line + len - codec)))
				return -1;
		} else if (sdp_starts(line, len, "a=fmtp:")) {
			const char *pt = line + 7, *params;

			if ((params = memchr(pt, ' ', len - 7)) == NULL)
				continue;
			f = (size_t)(params - pt);
			if (strlen(s->pt) == f && memcmp(s->pt, pt, f) == 0 &&
			    !sdp_copy(s->fmtp, sizeof(s->fmtp), params + 1,
			    (size_t)(line + len - params - 1)))
				return -1;
		}
	}
	return count;
}

static bool
sdp_build_answer(struct buf *b, const struct sdp_section *sec, int n, uint64_t id)
{
	static const char fp[] = "a=fingerprint:sha-256 "
	    "0F:A1:5E:23:74:9B:C2:D8:11:6E:44:3A:8F:B7:09:C5:"
	    "72:1D:E0:58:AB:36:94:CF:07:61:F3:2B:8D:4A:E6:10\r\n";
	bool ok;
	int i;

	ok = buf_appendf(b, "v=0\r\no=- %" PRIu64 " 2 IN IP4 127.0.0.1\r\n"
	    "s=fake\r\nt=0 0\r\n", (uint64_t)4611686018427387904ULL + id);
	if (ok && sec[0].mid[0]) {
		ok = BUF_LIT(b, "a=group:BUNDLE");
		for (i = 0; ok && i < n; i++)
			if (sec[i].mid[0])
				ok = buf_appendf(b, " %s", sec[i].mid);
		ok = ok && BUF_LIT(b, "\r\n");
	}
	ok = ok && BUF_LIT(b, "a=msid-semantic: WMS\r\n");
	for (i = 0; ok && i < n; i++) {
		const struct sdp_section *s = &sec[i];
		bool app = strcmp(s->kind, "application") == 0;

		ok = buf_appendf(b, "m=%s 9 %s %s\r\nc=IN IP4 0.0.0.0\r\n", s->kind,
		    s->proto, app ? s->fmts : s->pt);
		if (ok && !app)
			ok = BUF_LIT(b, "a=rtcp:9 IN IP4 0.0.0.0\r\n");
		ok = ok && BUF_LIT(b, "a=ice-ufrag:fake\r\n"
		    "a=ice-pwd:fakefakefakefakefakefake\r\n") &&
		    BUF_LIT(b, fp) && BUF_LIT(b, "a=setup:active\r\n");
		if (ok && s->mid[0])
			ok = buf_appendf(b, "a=mid:%s\r\n", s->mid);
		if (ok && app)
			ok = BUF_LIT(b, "a=sctp-port:5000\r\na=max-message-size:262144\r\n");
		if (ok && !app) {
			ok = buf_appendf(b, "a=%s\r\na=rtcp-mux\r\n", s->dir);
			if (ok && s->rtpmap[0])
				ok = buf_appendf(b, "a=rtpmap:%s %s\r\n", s->pt, s->rtpmap);
			if (ok && s->fmtp[0])
				ok = buf_appendf(b, "a=fmtp:%s %s\r\n", s->pt, s->fmtp);
		}
	}
	return ok;
}

/* POST /v1/realtime/calls (beta == false) and POST /v1/realtime. */
static bool
sdp_handle(struct conn *c, bool beta)
{
	struct sdp_section sec[16];
	struct buf b = { 0 };
	const char *body = c->req.body.data;
	size_t blen = buf_live(&c->req.body);
	char loc[96];
	uint64_t id;
	bool ok;
	int n;

	if (c->req.ctype == NULL ||
	    strncasecmp(c->req.ctype, "application/sdp", 15) != 0)
		return http_error(c, 400, "Content-Type must be application/sdp",
		    "invalid_request_error", NULL, NULL, NULL);
	if (blen < 3 || memcmp(body, "v=0", 3) != 0)
		return http_error(c, 400, "The SDP offer must start with v=0",
		    "invalid_request_error", NULL, "invalid_offer", NULL);
	if ((n = sdp_parse_offer(body, blen, sec, 16)) < 0)
		return http_error(c, 400, "Could not parse the SDP offer",
		    "invalid_request_error", NULL, "invalid_offer", NULL);
	if (n == 0) {
		/* No media in the offer: answer one Opus audio section. */
		memset(&sec[0], 0, sizeof(sec[0]));
		if (!sdp_set(sec[0].kind, sizeof(sec[0].kind), "audio") ||
		    !sdp_set(sec[0].proto, sizeof(sec[0].proto), "UDP/TLS/RTP/SAVPF") ||
		    !sdp_set(sec[0].pt, sizeof(sec[0].pt), "111") ||
		    !sdp_set(sec[0].mid, sizeof(sec[0].mid), "0") ||
		    !sdp_set(sec[0].dir, sizeof(sec[0].dir), "sendrecv") ||
		    !sdp_set(sec[0].rtpmap, sizeof(sec[0].rtpmap), "opus/48000/2"))
			return false;
		n = 1;
	}
	id = ++call_ids;
	if (!sdp_build_answer(&b, sec, n, id) ||
	    snprintf(loc, sizeof(loc), "Location: /v1/realtime/calls/rtc_fake%"
	    PRIu64 "\r\nAccess-Control-Expose-Headers: Location\r\n", id) >=
	    (int)sizeof(loc)) {
		buf_free(&b);
		return false;
	}
	stats.sdp_answers++;
	ok = http_respond(c, 201, "application/sdp", beta ? NULL : loc, b.data, b.len);
	buf_free(&b);
	return ok;
}

bool
sdp_handle_calls(struct conn *c)
{
	return sdp_handle(c, false);
}

bool
sdp_handle_beta(struct conn *c)
{
	return sdp_handle(c, true);
}
