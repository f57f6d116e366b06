/* auth_tokencache.c: a direct-mapped table of verified tokens. */
#include "auth_tokencache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOKENCACHE_SLOTS 1024   /* power of two; a miss costs one verification */

struct tokencache_entry {
	char               *token;   /* NULL: empty */
	size_t              len;
	uint64_t            hash;
	struct auth_claims  claims;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tokencache_entry cache[TOKENCACHE_SLOTS];
static char *cache_secret;     /* what the entries were verified with */
static char *cache_issuer;

static uint64_t
hash_of(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;  /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

/* With cache_mu held: the entries were verified with secret and issuer. */
static bool
same_key(const char *secret, const char *issuer)
{
	return cache_secret != NULL && strcmp(cache_secret, secret) == 0 &&
	    strcmp(cache_issuer, issuer) == 0;
}

bool
auth_tokencache_get(const char *secret, const char *issuer, const char *token, size_t len,
    struct auth_claims *out)
{
	uint64_t h = hash_of(token, len);
	struct tokencache_entry *e = &cache[h & (TOKENCACHE_SLOTS - 1)];
	bool hit;

	pthread_mutex_lock(&cache_mu);
	hit = e->token != NULL && e->hash == h && e->len == len &&
	    memcmp(e->token, token, len) == 0 && same_key(secret, issuer);
	if (hit)
		*out = e->claims;
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

/* With cache_mu held: empties every slot and adopts secret and issuer.
 * False when out of memory (the cache then stays empty). */
static bool
rekey(const char *secret, const char *issuer)
{
	for (size_t i = 0; i < TOKENCACHE_SLOTS; i++) {
		free(cache[i].token);
		cache[i].token = NULL;
	}
	free(cache_secret);
	free(cache_issuer);
	cache_secret = strdup(secret);
	cache_issuer = strdup(issuer);
	if (cache_secret != NULL && cache_issuer != NULL)
		return true;
	free(cache_secret);
	free(cache_issuer);
	cache_secret = cache_issuer = NULL;
	return false;
}

void
auth_tokencache_put(const char *secret, const char *issuer, const char *token, size_t len,
    const struct auth_claims *c)
{
	uint64_t h = hash_of(token, len);
	struct tokencache_entry *e = &cache[h & (TOKENCACHE_SLOTS - 1)];
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return;
	memcpy(copy, token, len);
	copy[len] = '\0';
	pthread_mutex_lock(&cache_mu);
	if (!same_key(secret, issuer) && !rekey(secret, issuer)) {
		pthread_mutex_unlock(&cache_mu);
		free(copy);
		return;
	}
	free(e->token);   /* the slot's previous token, if any */
	e->token = copy;
	e->len = len;
	e->hash = h;
	e->claims = *c;
	pthread_mutex_unlock(&cache_mu);
}
