/* ratelimit.c: classes, keys and counting; the front ends render the verdict. */
#include "ratelimit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "store.h"

void
ratelimit_client_ip(const char *remote, const char *forwarded_for, const char *trusted,
    char *out, size_t len)
{
	char hop[64];

	(void)snprintf(out, len, "%s", remote != NULL ? remote : "unknown");
	if (forwarded_for == NULL || trusted == NULL || !config_list_has(trusted, out))
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
			if (!config_list_has(trusted, hop))
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

enum store_rc
ratelimit_hit(const struct config *cfg, struct store *store, enum ratelimit_class cls,
    const char *user_id, const char *client_ip, struct ratelimit_verdict *v)
{
	/* Brute force is per address whoever claims to be logged in. */
	bool by_user = user_id != NULL && user_id[0] != '\0' && cls != RATELIMIT_AUTH;
	char key[200];
	int hits = 0, reset = 0, n;
	enum store_rc rc;

	memset(v, 0, sizeof(*v));
	v->limit = class_limit(cfg, cls, by_user);
	v->window_s = cfg->ratelimit_window;
	v->by_user = by_user;
	if (v->limit <= 0)
		return STORE_OK;
	n = by_user ? snprintf(key, sizeof(key), "%s:u:%s", class_name(cls), user_id)
	            : snprintf(key, sizeof(key), "%s:ip:%s", class_name(cls),
	                  client_ip != NULL ? client_ip : "unknown");
	if (n < 0 || (size_t)n >= sizeof(key))
		return STORE_ERROR;  /* ids and addresses are far shorter */
	if ((rc = store_rate_hit(store, key, cfg->ratelimit_window, &hits, &reset)) != STORE_OK) {
		log_warn("rate limit counter unavailable (%d)", (int)rc);
		return rc;
	}
	ratelimit_verdict_fill(v, hits, reset);
	if (v->limited)
		log_info("rate limited: class=%s %s", class_name(cls), by_user ? "user" : "address");
	return STORE_OK;
}

void
ratelimit_verdict_fill(struct ratelimit_verdict *v, int hits, int reset_s)
{
	v->hits = hits;
	v->reset_s = reset_s;
	v->remaining = hits >= v->limit ? 0 : v->limit - hits;
	v->limited = v->limit > 0 && hits > v->limit;
}
