/* client.c: the shared libcurl settings and the blocking setup request. */
#include "client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_BODY_MAX (1024 * 1024)

bool
client_base_ok(const char *base, const char **why)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	*why = "not a URL";
	if (u == NULL || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		*why = "the scheme must be http or https";
		goto done;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto done;
	*why = "the host must be a loopback address (127.0.0.1, ::1, localhost)";
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0) {
		ok = true;
	} else {
		struct in_addr a;

		if (inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127)
			ok = true;
	}
done:
	if (ok)
		*why = NULL;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

bool
client_setup(const struct client *c, CURL *e, const char *path)
{
	char url[CLIENT_URL_MAX];
	int n = snprintf(url, sizeof(url), "%s%s", c->base, path);

	if (n < 0 || (size_t)n >= sizeof(url))
		return false;
	curl_easy_setopt(e, CURLOPT_URL, url);
	/* Threads are not used for name lookups here; signals must not be. */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* libcurl negotiates HTTP/2 over TLS by default; measure what was
	 * asked for. */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
	    c->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	/* HTTP/2: wait for a connection being set up to the same place rather
	 * than open one per stream, as a browser does (one per origin). */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, c->http2 ? 1L : 0L);
	if (c->cacert != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
	if (c->source != NULL) {
		char iface[64];

		/* "host!" binds to that address, never to an interface name. */
		snprintf(iface, sizeof(iface), "host!%s", c->source);
		curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
	} else {
		curl_easy_setopt(e, CURLOPT_INTERFACE, NULL);
	}
	/* Loopback only, and no surprises from the environment. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	return true;
}

void
client_random_source(char *out, size_t len)
{
	static uint64_t state;
	uint64_t x;

	if (state == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ull;
	}
	x = state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	state = x;
	/* 127.1-254.0-255.1-254: all of 127/8 is loopback on Linux. */
	snprintf(out, len, "127.%u.%u.%u", (unsigned)(x % 254 + 1), (unsigned)((x >> 8) % 256),
	    (unsigned)((x >> 16) % 254 + 1));
}

size_t
client_collect(char *p, size_t size, size_t nmemb, void *ud)
{
	struct client_reply *r = ud;
	size_t n = size * nmemb;
	char *nb;

	if (r->len + n > CLIENT_BODY_MAX)
		return n;   /* keep the head, drop the rest */
	if ((nb = realloc(r->body, r->len + n + 1)) == NULL)
		return n;
	memcpy(nb + r->len, p, n);
	r->body = nb;
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

bool
client_fetch(const struct client *c, const char *method, const char *path,
    const char *bearer, const char *json, struct client_reply *out)
{
	struct curl_slist *hdrs = NULL, *h;
	char auth[4096];
	CURL *e = NULL;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if ((e = curl_easy_init()) == NULL) {
		snprintf(out->error, sizeof(out->error), "curl_easy_init failed");
		goto done;
	}
	if (!client_setup(c, e, path)) {
		snprintf(out->error, sizeof(out->error), "URL too long");
		goto done;
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, out->error);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, client_collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	if (bearer != NULL) {
		int n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);

		if (n < 0 || (size_t)n >= sizeof(auth)) {
			snprintf(out->error, sizeof(out->error), "token too long");
			goto done;
		}
		if ((h = curl_slist_append(hdrs, auth)) == NULL)
			goto nomem;
		hdrs = h;
	}
	if (json != NULL) {
		if ((h = curl_slist_append(hdrs, "Content-Type: application/json")) == NULL)
			goto nomem;
		hdrs = h;
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	}
	if (strcmp(method, "GET") != 0 && json == NULL)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	out->rc = curl_easy_perform(e);
	if (out->rc != CURLE_OK) {
		if (out->error[0] == '\0')
			snprintf(out->error, sizeof(out->error), "%s", curl_easy_strerror(out->rc));
		goto done;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
	ok = true;
	goto done;
nomem:
	snprintf(out->error, sizeof(out->error), "out of memory");
done:
	curl_slist_free_all(hdrs);
	if (e != NULL)
		curl_easy_cleanup(e);
	return ok;
}

void
client_reply_free(struct client_reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	r->body = NULL;
	r->len = 0;
}
