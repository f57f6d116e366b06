/* ratelimit.c: classes, keys, and the 429 answer. */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "store.h"

/* True if ip appears in the comma-separated list. */
static bool
ip_listed(const char *ip, const char *list)
{
	size_t n = strlen(ip);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end != '\0' && *end != ',' && *end != ' ')
			end++;
		if ((size_t)(end - p) == n && n > 0 && strncmp(p, ip, n) == 0)
			return true;
		p = end;
	}
	return false;
}

void
ratelimit_client_ip(const char *remote, const char *forwarded_for, const char *trusted,
    char *out, size_t len)
{
	char hop[64];

	(void)snprintf(out, len, "%s", remote != NULL ? remote : "unknown");
	if (forwarded_for == NULL || trusted == NULL || !ip_listed(out, trusted))
		return;
	/* Walk X-Forwarded-For from the right: each trusted hop vouches for
	 * the one before it; the first untrusted address is the client. */
	const char *end = forwarded_for + strlen(forwarded_for);
	while (end > forwarded_for) {
		const char *start = end;
		while (start > forwarded_for && start[-1] != ',')
			start--;
		const char *a = start, *b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > a && (size_t)(b - a) < sizeof(hop)) {
			memcpy(hop, a, (size_t)(b - a));
			hop[b - a] = '\0';
			/* Only address characters: anything else is not an address,
			 * and the trusted hop it came through is the client. */
			if (strspn(hop, "0123456789abcdefABCDEF:.[]") != strlen(hop))
				return;
			(void)snprintf(out, len, "%s", hop);
			if (!ip_listed(hop, trusted))
				return;
		}
		end = start > forwarded_for ? start - 1 : start;
	}
}

static const char *
class_name(enum ratelimit_class cls)
{
	switch (cls) {
	case RATELIMIT_CHAT: return "chat";
	case RATELIMIT_AUTH: return "auth";
	case RATELIMIT_API:  return "api";
	default:             return "none";
	}
}

/* The limit for this class and caller; 0 means unlimited. */
static int
class_limit(const struct config *cfg, enum ratelimit_class cls, bool authed)
{
	switch (cls) {
	case RATELIMIT_CHAT: return authed ? cfg->ratelimit_chat_user : cfg->ratelimit_chat_anon;
	case RATELIMIT_AUTH: return cfg->ratelimit_auth_ip;
	case RATELIMIT_API:  return authed ? cfg->ratelimit_api_user : cfg->ratelimit_chat_anon;
	default:             return 0;
	}
}

int
ratelimit_check(struct request *r, enum ratelimit_class cls)
{
	const struct config *cfg = r->cfg;
	/* Brute force is per address whoever claims to be logged in. */
	bool by_user = r->authed && cls != RATELIMIT_AUTH;
	int limit = class_limit(cfg, cls, by_user), hits = 0, reset = 0;
	char key[200], ip[64], value[32];
	enum store_rc rc;

	if (limit <= 0)
		return 0;
	if (by_user)
		(void)snprintf(key, sizeof(key), "%s:u:%s", class_name(cls), r->user_id);
	else {
		ratelimit_client_ip(r->remote_addr, http_param(r, "HTTP_X_FORWARDED_FOR"),
		    cfg->trusted_proxies, ip, sizeof(ip));
		(void)snprintf(key, sizeof(key), "%s:ip:%s", class_name(cls), ip);
	}
	rc = store_rate_hit(r->store, key, cfg->ratelimit_window, &hits, &reset);
	if (rc != STORE_OK) {
		log_warn("rate limit counter unavailable (%d)", (int)rc);
		return http_error(r, 503, "Database unavailable");
	}
	(void)snprintf(value, sizeof(value), "%d;w=%d", limit, cfg->ratelimit_window);
	(void)http_header(r, "RateLimit-Policy", value);
	(void)snprintf(value, sizeof(value), "%d", limit);
	(void)http_header(r, "RateLimit-Limit", value);
	(void)snprintf(value, sizeof(value), "%d", hits >= limit ? 0 : limit - hits);
	(void)http_header(r, "RateLimit-Remaining", value);
	(void)snprintf(value, sizeof(value), "%d", reset);
	(void)http_header(r, "RateLimit-Reset", value);
	if (hits <= limit)
		return 0;
	(void)http_header(r, "Retry-After", value);
	log_info("rate limited: class=%s %s", class_name(cls), by_user ? "user" : "address");
	return http_error(r, 429, "Too many requests, please try again later");
}
