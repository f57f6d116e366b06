/* authcache.c: a small hash set of user ids, wiped by a generation. */
#include "authcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"

#define AUTHCACHE_SLOTS 4096        /* power of two; a miss costs one query */
#define AUTHCACHE_ID_MAX 40         /* a UUID and its NUL */

struct authcache_entry {
	char     id[AUTHCACHE_ID_MAX];
	uint64_t generation;
	int64_t  added_ms;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct authcache_entry cache[AUTHCACHE_SLOTS];
/* Entries of an older generation are dead; 0 means the cache is off (no
 * listener yet). */
static atomic_uint_least64_t cache_generation;
static uint_least64_t cache_next_generation = 1;

static size_t
slot_of(const char *id)
{
	uint64_t h = 1469598103934665603ULL;  /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h & (AUTHCACHE_SLOTS - 1));
}

bool
authcache_known(const char *user_id)
{
	uint64_t gen = atomic_load(&cache_generation);
	struct authcache_entry *e;
	bool known;

	if (gen == 0 || strlen(user_id) >= AUTHCACHE_ID_MAX)
		return false;
	e = &cache[slot_of(user_id)];
	pthread_mutex_lock(&cache_mu);
	known = e->generation == gen && strcmp(e->id, user_id) == 0 &&
	    clock_now_ms() - e->added_ms < (int64_t)AUTHCACHE_TTL_S * 1000;
	pthread_mutex_unlock(&cache_mu);
	return known;
}

void
authcache_add(const char *user_id)
{
	uint64_t gen = atomic_load(&cache_generation);
	struct authcache_entry *e;

	if (gen == 0 || strlen(user_id) >= AUTHCACHE_ID_MAX)
		return;
	e = &cache[slot_of(user_id)];
	pthread_mutex_lock(&cache_mu);
	memcpy(e->id, user_id, strlen(user_id) + 1);
	e->generation = gen;
	e->added_ms = clock_now_ms();
	pthread_mutex_unlock(&cache_mu);
}

void
authcache_revoke_all(bool listening)
{
	pthread_mutex_lock(&cache_mu);
	atomic_store(&cache_generation, listening ? cache_next_generation++ : 0);
	pthread_mutex_unlock(&cache_mu);
}
