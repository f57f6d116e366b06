/* client.h: how the load tool talks HTTP. One place for the libcurl options
 * that every request shares (base URL, TLS trust, HTTP version, timeouts),
 * plus a blocking request for the setup steps outside the measured window. */
#ifndef LOAD_CLIENT_H
#define LOAD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#define CLIENT_URL_MAX 2048

struct client {
	const char *base;           /* borrowed: "http://127.0.0.1:8080", no trailing / */
	const char *cacert;         /* borrowed: PEM file trusted for https, or NULL */
	bool        http2;          /* negotiate HTTP/2 over TLS (else HTTP/1.1) */
	long        connect_ms;     /* connect timeout */
	const char *source;         /* borrowed: local address to bind ("127.4.5.6"),
	                             * or NULL for the kernel's choice */
};

/* Returns true when base is an http(s) URL whose host is a loopback address
 * (127.0.0.0/8, ::1 or localhost): the tool never loads anything else. On
 * false, why names the reason (static string). */
bool client_base_ok(const char *base, const char **why);

/* Applies the shared options to e and points it at base + path. Returns false
 * when the URL does not fit. Call before any request-specific option. */
bool client_setup(const struct client *c, CURL *e, const char *path);

struct client_reply {
	long      status;           /* HTTP status, 0 when no response */
	char     *body;             /* owned, NUL-terminated; NULL when empty */
	size_t    len;
	CURLcode  rc;
	char      error[CURL_ERROR_SIZE];
};

/* One blocking request: method GET or POST, optional bearer token, optional
 * JSON body. Returns true when a response (any status) arrived; out is then
 * filled and owned by the caller (client_reply_free). On false, out->error
 * says why. */
bool client_fetch(const struct client *c, const char *method, const char *path,
    const char *bearer, const char *json, struct client_reply *out);

/* Frees a reply's body. NULL-safe. */
void client_reply_free(struct client_reply *r);

/* Writes a random loopback address other than 127.0.0.x into out (at least
 * 16 bytes): a distinct client address for each simulated user, as real
 * users have, so that per-address limits (logins) count them apart. */
void client_random_source(char *out, size_t len);

/* Collects a response body (CURLOPT_WRITEFUNCTION for a struct client_reply,
 * capped at 1 MiB). */
size_t client_collect(char *p, size_t size, size_t nmemb, void *ud);

#endif
