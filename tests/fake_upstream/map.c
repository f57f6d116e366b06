/* map.c: a string map to int64 (fail-first counters, minted ephemeral keys). */
#include <stdlib.h>
#include <string.h>

#include "map.h"

static size_t
map_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h & (MAP_SLOTS - 1));
}

void
map_clear(struct map *m)
{
	struct map_entry *e, *next;
	size_t i;

	for (i = 0; i < MAP_SLOTS; i++) {
		for (e = m->slots[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		m->slots[i] = NULL;
	}
	m->count = 0;
}

struct map_entry *
map_get(struct map *m, const char *k, size_t n)
{
	struct map_entry *e;

	for (e = m->slots[map_hash(k, n)]; e != NULL; e = e->next)
		if (e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	return NULL;
}

struct map_entry *
map_put(struct map *m, const char *k, size_t n, int64_t v)
{
	struct map_entry *e;
	size_t h;

	if ((e = map_get(m, k, n)) != NULL)
		return e;
	if (m->count >= MAP_MAX)
		map_clear(m);
	if ((e = malloc(sizeof(*e) + n)) == NULL)
		return NULL;
	h = map_hash(k, n);
	e->next = m->slots[h];
	e->value = v;
	e->klen = n;
	memcpy(e->key, k, n);
	m->slots[h] = e;
	m->count++;
	return e;
}
